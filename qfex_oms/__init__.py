"""qfex_oms: a trio order manager for the QFEX exchange, with a QFEX-compatible simulator.

The public names below are imported on first use (PEP 562 ``__getattr__``), not when the package is:
every ``qfex_oms.*`` module, the ``qfex-oms`` command included, imports this file first, and the
order manager pulls in trio, websockets and the core (most of a second at start-up), which
``qfex-oms --help`` or a config error never needs. ``from qfex_oms import OrderManager`` works as it
always did; type checkers and the docs read the imports under ``TYPE_CHECKING``. A new public name
goes in three places: that block, ``_LAZY`` and ``__all__`` (tests/app/test_cli_startup.py checks
they agree).
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from qfex_oms._version import __version__
from qfex_oms.errors import (
    AuthenticationError,
    ConnectError,
    Halted,
    InvalidArgument,
    JournalUnavailable,
    ModifyRejected,
    NotConnected,
    NotSent,
    OrderRejected,
    OrderStatusUnknown,
    QfexOmsError,
    RequestFailed,
    RequestTimeout,
    RiskRefused,
    TwapRejected,
)

if TYPE_CHECKING:
    from qfex_oms.client.connection import ReconnectPolicy
    from qfex_oms.client.manager import ManagerSettings, OrderManager, open_order_manager
    from qfex_oms.client.marketdata import MarketData, MarketDataSettings, open_market_data
    from qfex_oms.client.results import CancelResult, KillReport
    from qfex_oms.client.session import Credentials
    from qfex_oms.client.strategy_view import StrategyView
    from qfex_oms.core.cancel import CancelScope
    from qfex_oms.core.events import StopUpdated
    from qfex_oms.core.model import Fill, Order, Twap
    from qfex_oms.core.pacer import PacerSettings
    from qfex_oms.core.risk import RiskLimits, SymbolLimits
    from qfex_oms.core.snapshot import SnapshotDiff
    from qfex_oms.core.states import OrderState, TwapState
    from qfex_oms.core.stops import StopOrder, StopState

# Each lazily imported public name and the module that defines it.
_LAZY: dict[str, str] = {
    "ReconnectPolicy": "qfex_oms.client.connection",
    "ManagerSettings": "qfex_oms.client.manager",
    "OrderManager": "qfex_oms.client.manager",
    "open_order_manager": "qfex_oms.client.manager",
    "MarketData": "qfex_oms.client.marketdata",
    "MarketDataSettings": "qfex_oms.client.marketdata",
    "open_market_data": "qfex_oms.client.marketdata",
    "CancelResult": "qfex_oms.client.results",
    "KillReport": "qfex_oms.client.results",
    "Credentials": "qfex_oms.client.session",
    "StrategyView": "qfex_oms.client.strategy_view",
    "CancelScope": "qfex_oms.core.cancel",
    "StopUpdated": "qfex_oms.core.events",
    "Fill": "qfex_oms.core.model",
    "Order": "qfex_oms.core.model",
    "Twap": "qfex_oms.core.model",
    "PacerSettings": "qfex_oms.core.pacer",
    "RiskLimits": "qfex_oms.core.risk",
    "SymbolLimits": "qfex_oms.core.risk",
    "SnapshotDiff": "qfex_oms.core.snapshot",
    "OrderState": "qfex_oms.core.states",
    "TwapState": "qfex_oms.core.states",
    "StopOrder": "qfex_oms.core.stops",
    "StopState": "qfex_oms.core.stops",
}


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access, then keep the name (no second lookup)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AuthenticationError",
    "CancelResult",
    "CancelScope",
    "ConnectError",
    "Credentials",
    "Fill",
    "Halted",
    "InvalidArgument",
    "JournalUnavailable",
    "KillReport",
    "ManagerSettings",
    "MarketData",
    "MarketDataSettings",
    "ModifyRejected",
    "NotConnected",
    "NotSent",
    "Order",
    "OrderManager",
    "OrderRejected",
    "OrderState",
    "OrderStatusUnknown",
    "PacerSettings",
    "QfexOmsError",
    "ReconnectPolicy",
    "RequestFailed",
    "RequestTimeout",
    "RiskLimits",
    "RiskRefused",
    "SnapshotDiff",
    "StopOrder",
    "StopState",
    "StopUpdated",
    "StrategyView",
    "SymbolLimits",
    "Twap",
    "TwapRejected",
    "TwapState",
    "__version__",
    "open_market_data",
    "open_order_manager",
]
