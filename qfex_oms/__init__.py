"""qfex_oms: a trio order manager for the QFEX exchange, with a QFEX-compatible simulator."""

from qfex_oms._version import __version__
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
