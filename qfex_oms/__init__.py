"""qfex_oms: a trio order manager for the QFEX exchange, with a QFEX-compatible simulator."""

from qfex_oms.core.model import Fill, Order, Twap
from qfex_oms.core.pacer import PacerSettings
from qfex_oms.core.snapshot import SnapshotDiff
from qfex_oms.core.states import OrderState, TwapState
from qfex_oms.errors import (
    AuthenticationError,
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
    TwapRejected,
)
from qfex_oms.manager import ManagerSettings, OrderManager, ReconnectPolicy, open_order_manager
from qfex_oms.results import CancelResult, KillReport
from qfex_oms.session import Credentials

__all__ = [
    "AuthenticationError",
    "CancelResult",
    "Credentials",
    "Fill",
    "Halted",
    "InvalidArgument",
    "JournalUnavailable",
    "KillReport",
    "ManagerSettings",
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
    "SnapshotDiff",
    "Twap",
    "TwapRejected",
    "TwapState",
    "open_order_manager",
]
