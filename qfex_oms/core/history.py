"""Settle orders missing from a snapshot from QFEX's order history (REST), rather than by a guess.

An order a complete snapshot does not show has ended: filled, cancelled (by cancel-on-disconnect,
say, or by another connection) or rejected; an order whose every answer was lost may also never have
reached the exchange. The snapshot cannot tell which, nor give an id-less order its id; QFEX's
``GET /user/historic-orders`` (filled or terminally closed orders, by symbol and client id, with
``terminal_status`` and ``filled_qty``) can. Without it, a missing order is settled from its fills
(FILLED when they cover it, else CANCELLED with status ``MISSING_FROM_SNAPSHOT``: the status says
that it was concluded, not reported).

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

from collections.abc import Iterable, Mapping, Sequence

from qfex_oms.core import binding, twap_replies
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.model import Order, Twap
from qfex_oms.core.snapshot import SnapshotDiff, settle_gone, settle_twap_gone
from qfex_oms.core.states import OrderEvent
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus
from qfex_oms.protocol.rest import HistoricOrder, HistoricTwap

log = get_logger("qfex_oms.core")

HISTORY_SOURCE = "historic-orders"  # what the journal note says settled these orders


Mark = tuple[object, ...]


def mark(order: Order) -> Mark:
    """What an order looked like when the snapshot found it missing (see ``settle_from_history``)."""
    return (order.state, order.order_id, order.fill_total, order.last_status)


def settle_from_history(core: OmsCore, fence: int, orders: Sequence[Order],
                        rows: Iterable[HistoricOrder],
                        marks: Mapping[int, Mark] | None = None) -> SnapshotDiff:
    """Settle ``orders`` (live, missing from a complete snapshot) from history rows.

    An order known by id ends as its row says; an order with no id is first bound to a row (see the
    module docstring). An order no row names is settled as a missing one (from its fills,
    ``MISSING_FROM_SNAPSHOT``), unless a row could be it but cannot be told from a sibling's.
    ``fence`` as for snapshots: an order touched after it is left alone. ``marks`` (``mark`` of each
    order when the snapshot was applied; the history is asked in between): an order a report has
    changed since is not settled for being missing — the report is newer than the snapshot — though
    a history row naming it still ends it (closed is closed). Returns a diff whose
    ``settled`` lists every order this ended, ``ended`` those with an id, and ``unresolved`` the
    history rows that several pending orders could be.
    """
    diff = SnapshotDiff()
    waiting = [o for o in orders if o.state.is_live and o.seq <= fence]
    if not waiting:
        return diff
    rows = list(rows)
    by_id = {row.order_id: row for row in rows}
    for order in waiting:
        row = by_id.get(order.order_id) if order.order_id is not None else None
        if row is not None and row.symbol == order.symbol:
            _end(core, order, row)
    keys = {(o.symbol, o.client_order_id) for o in waiting if o.order_id is None}
    unknown = {row.order_id: binding.Unknown.of_history(row) for row in rows
               if (row.symbol, row.client_order_id) in keys
               and core.tracker.by_order_id(row.order_id) is None}
    for order in binding.bind_all(core, fence, unknown):
        assert order.order_id is not None  # bind_all binds
        _end(core, order, by_id[order.order_id])
        log.info("named and settled from QFEX's order history", **order.describe())
    diff.unresolved = list(unknown)
    undecided = {o.local_id for entry in unknown.values() for o in entry.candidates(core.tracker)}
    for order in waiting:
        changed = marks is not None and marks.get(order.local_id) != mark(order)
        if order.state.is_live and order.local_id not in undecided and not changed:
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


def settle_twaps_from_history(core: OmsCore, fence: int, twaps: Sequence[Twap],
                              rows: Iterable[HistoricTwap]) -> SnapshotDiff:
    """Settle ``twaps`` (live, missing from a complete snapshot) from ``GET /user/historic-twaps``.

    A TWAP known by id ends as its row says (COMPLETED or CANCELLED, with its filled quantity), through
    the core's ``twap_response`` path. A TWAP whose id the book never learnt (every report lost) is
    first given its id: by its client id, when exactly as many rows as pending TWAPs share it and they
    look alike (side, size, number of children) — one against one, or identical ones pairwise. Its
    children, adopted earlier under ``twap:<id>:<n>`` client ids, then join it. A TWAP no row names
    is settled as before (``settle_twap_gone``: from what the book knows).
    """
    diff = SnapshotDiff()
    waiting = [t for t in twaps if not t.state.is_terminal and t.seq <= fence]
    rows = [row for row in rows if core.tracker.twap_by_id(row.twap_id) is None
            or core.tracker.twap_by_id(row.twap_id) in waiting]
    by_id = {row.twap_id: row for row in rows}
    _name_twaps(core, [t for t in waiting if t.twap_id is None], rows)
    for twap in waiting:
        row = by_id.get(twap.twap_id or "")
        if row is not None and row.symbol == twap.symbol:
            core.on_reply(_as_twap_report(row))
        if not twap.state.is_terminal:
            if _undecided(core, twap, rows):
                continue  # no id, and a row could be it but not decidably: a later look decides
            settle_twap_gone(core, twap)
        diff.twaps_settled.append(twap)
    return diff


def _looks_like(twap: Twap, row: HistoricTwap) -> bool:
    return (twap.side, twap.total_quantity, twap.num_orders) == (row.side, row.total_quantity,
                                                                 row.total_num_orders)


def _name_twaps(core: OmsCore, unnamed: Sequence[Twap], rows: Sequence[HistoricTwap]) -> None:
    for key in {(t.symbol, t.client_twap_id) for t in unnamed}:
        pending = [t for t in core.tracker.pending_twaps(*key) if t in unnamed]
        named = [r for r in rows if (r.symbol, r.client_twap_id or "") == key
                 and core.tracker.twap_by_id(r.twap_id) is None]
        if not named or len(named) != len(pending):
            continue
        if not all(_looks_like(t, r) for t in pending for r in named):
            continue
        if len(pending) > 1 and any(t.cancel_requested or t.cancel_owed or t.children for t in pending):
            continue  # identical only while nothing of ours tells them apart
        for twap, row in zip(pending, sorted(named, key=lambda r: r.twap_id), strict=True):
            twap_replies.learn_twap_id(core, twap, row.twap_id)
            twap_replies.claim_orphans(core, twap)
            log.info("TWAP named from QFEX's history", **twap.describe())


def _undecided(core: OmsCore, twap: Twap, rows: Sequence[HistoricTwap]) -> bool:
    """An id-less TWAP that rows under its client id could be, but not decidably: left live."""
    return twap.twap_id is None and any(
        (r.symbol, r.client_twap_id or "") == (twap.symbol, twap.client_twap_id) and _looks_like(twap, r)
        for r in rows)


def _as_twap_report(row: HistoricTwap) -> m.TwapResponse:
    return m.TwapResponse(
        twap_id=row.twap_id, symbol=row.symbol, status=row.status, side=row.side,
        client_twap_id=row.client_twap_id, total_quantity=row.total_quantity,
        filled_quantity=row.filled_quantity, total_num_orders=row.total_num_orders,
        order_interval_secs=row.order_interval_secs, reduce_only=row.reduce_only,
        updated_at=None if row.updated_at is None else row.updated_at.timestamp())
