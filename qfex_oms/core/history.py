"""Settle orders the exchange never named to us, from QFEX's order history (REST).

An order whose every answer was lost has no exchange id. If a complete snapshot does not show it
open, it has ended (filled, cancelled — by cancel-on-disconnect, say — or rejected) or it never
reached the exchange. The snapshot cannot tell which, nor give the order its id; QFEX's
``GET /user/historic-orders`` (filled or terminally closed orders, by client id and symbol) can.

A history row names an order by the same attributes a snapshot row does, so it is bound to a pending
order by the same rules (``core.binding``: only where it cannot be wrong). Once bound, the row is
applied as the order's terminal report would have been, through the core's own reply path, so the
state table, the fill accounting and the events are those of a live report. Its fills come from the
trades by order id, as always, so a fill is counted once whatever said it first.

A pending order the history does not name either is gone without a trace: it never reached the
exchange, or the history lags. It is settled as a complete snapshot settles a missing order (from
its fills, CANCELLED with ``MISSING_FROM_SNAPSHOT`` when none). History rows for orders the book
does not have and cannot bind are ignored: they ended before we knew them, and adopting closed
strangers would only add noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from qfex_oms.core import binding
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.model import Order
from qfex_oms.core.snapshot import SnapshotDiff, settle_gone
from qfex_oms.core.states import OrderEvent
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus
from qfex_oms.protocol.rest import HistoricOrder

log = get_logger("qfex_oms.core")

HISTORY_SOURCE = "historic-orders"  # what the journal note says settled these orders


def settle_from_history(core: OmsCore, fence: int, orders: Sequence[Order],
                        rows: Iterable[HistoricOrder]) -> SnapshotDiff:
    """Bind and settle ``orders`` (live, id-less, missing from a complete snapshot) from history.

    ``fence`` as for snapshots: an order touched after it is left alone. Returns a diff whose
    ``settled`` lists every order this ended, ``ended`` those it ended with an id now known, and
    ``unresolved`` the history rows that several pending orders could be.
    """
    diff = SnapshotDiff()
    waiting = [o for o in orders if o.state.is_live and o.order_id is None and o.seq <= fence]
    if not waiting:
        return diff
    symbols = {(o.symbol, o.client_order_id) for o in waiting}
    unknown = {row.order_id: binding.Unknown.of_history(row) for row in rows
               if (row.symbol, row.client_order_id) in symbols
               and core.tracker.by_order_id(row.order_id) is None}
    by_id = {row.order_id: row for row in rows}
    for order in binding.bind_all(core, fence, unknown):
        assert order.order_id is not None  # bind_all binds
        _end(core, order, by_id[order.order_id])
        log.info("settled from QFEX's order history", **order.describe())
    diff.unresolved = list(unknown)
    undecided = {o.local_id for entry in unknown.values() for o in entry.candidates(core.tracker)}
    for order in waiting:
        if order.state.is_live and order.order_id is None and order.local_id not in undecided:
            settle_gone(core, order)
        if not order.state.is_live:
            diff.settled.append(order)
    diff.ended = [o for o in diff.settled if o.order_id is not None]
    return diff


_REPORTED_ENDS = (OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.CANCELLED_STP)


def _end(core: OmsCore, order: Order, row: HistoricOrder) -> None:
    """A fill or a cancel goes through the core's reply path, as its report would have. Any other
    terminal status is a refusal of the order itself (its add_order answer, lost): REJECT. A row
    that is not terminal (QFEX lists closed orders only) proves nothing and is left to the snapshot."""
    if row.terminal_status in _REPORTED_ENDS:
        core.on_reply(as_terminal_report(row))
    elif row.terminal_status not in _NOT_ENDS:
        core.apply_order_event(order, OrderEvent.REJECT, str(row.terminal_status))
        order.needs_settlement = False


_NOT_ENDS = (OrderStatus.ACK, OrderStatus.MODIFIED, OrderStatus.NO_SUCH_ORDER)


def as_terminal_report(row: HistoricOrder) -> m.OrderResponse:
    """The ``order_response`` that would have ended this order: its terminal status and leaves."""
    leaves = max(row.quantity - row.filled_qty, row.quantity * 0)
    return m.OrderResponse(
        order_id=row.order_id, symbol=row.symbol, status=row.terminal_status, side=row.side,
        type=row.type, time_in_force=row.time_in_force, quantity=row.quantity, price=row.price,
        quantity_remaining=leaves, client_order_id=row.client_order_id,
        update_time=row.status_ts.timestamp())
