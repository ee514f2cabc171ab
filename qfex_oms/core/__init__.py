"""Sans-IO core: order and TWAP state, the tracker, cancel resolution and reconciliation.

Nothing in this package awaits or does I/O; the trio shell feeds it and drains its outputs.
``Event`` and ``RequestFailed`` are deprecated names of ``CoreEvent`` and ``RequestErrored``.
"""

from qfex_oms.core.cancel import CancelError, CancelIntent
from qfex_oms.core.cancelbook import CancelBook
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.events import (
    CancelFinished,
    CoreEvent,
    Event,
    FillReceived,
    ModifyFinished,
    OrderUpdated,
    RequestErrored,
    RequestFailed,
    TwapUpdated,
    Unmatched,
)
from qfex_oms.core.model import CancelRequest, Fill, ModifyRequest, Order, Twap
from qfex_oms.core.snapshot import SnapshotDiff, apply_snapshot, settle_from_order_query
from qfex_oms.core.states import LocalStatus, OrderEvent, OrderState, TwapEvent, TwapState
from qfex_oms.core.tracker import OrderTracker

__all__ = [
    "CancelBook",
    "CancelError",
    "CancelFinished",
    "CancelIntent",
    "CancelRequest",
    "CoreEvent",
    "Event",
    "Fill",
    "FillReceived",
    "LocalStatus",
    "ModifyFinished",
    "ModifyRequest",
    "OmsCore",
    "Order",
    "OrderEvent",
    "OrderState",
    "OrderTracker",
    "OrderUpdated",
    "RequestErrored",
    "RequestFailed",
    "SnapshotDiff",
    "Twap",
    "TwapEvent",
    "TwapState",
    "TwapUpdated",
    "Unmatched",
    "apply_snapshot",
    "settle_from_order_query",
]
