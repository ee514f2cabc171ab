"""Settle the book against what the exchange says it has (after a reconnect, a restart, a kill).

Input: the open orders and TWAPs of ``get_user_orders`` (all pages merged) and the account's
trades. Trades go in first as fills, deduplicated by trade id, so an order that filled while we
were away ends FILLED rather than CANCELLED. Then: exchange orders we lack are adopted; our live
orders the exchange shows open are confirmed OPEN; our live orders it does not show are gone and are
settled from their fills (FILLED when nothing remains, else CANCELLED — the only place a cancel is
concluded without a CANCELLED frame, because the order is provably no longer on the book).

``fence`` is the core sequence number when the snapshot was requested: an order touched after it
(placed, cancelled, modified) is newer than the snapshot and is left alone.

An exchange order the book lacks (its ACK was lost) is bound to a pending order only when it is
the one pending order it can describe (side, type, time in force, price, quantity) and no other
unknown exchange order can describe that pending order too: client ids are not unique, and the first
pending order sharing one may be a sibling that never rested. When that cannot be decided, the
exchange order is left out (``unresolved``) and its candidates stay unsettled for a later snapshot or
reply to decide; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import orjson
from attrs import define, field

from qfex_oms.core import twaps as twap_rules
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.model import Fill, Order, Twap
from qfex_oms.core.replies import order_from_response
from qfex_oms.core.states import OrderEvent, OrderState, TwapEvent
from qfex_oms.core.tracker import OrderTracker
from qfex_oms.protocol import messages as m

SETTLED_MISSING = "MISSING_FROM_SNAPSHOT"
NOTE_KEY = "settled"


@define
class SnapshotDiff:
    adopted: list[Order] = field(factory=list)
    confirmed_open: list[Order] = field(factory=list)
    settled: list[Order] = field(factory=list)
    fills_added: list[Fill] = field(factory=list)
    twaps_adopted: list[Twap] = field(factory=list)
    twaps_settled: list[Twap] = field(factory=list)
    unresolved: list[str] = field(factory=list)  # exchange order ids that fit several pending orders
    ended: list[Order] = field(factory=list)  # orders the book knew by id, live before, ended by it

    @property
    def changed(self) -> bool:
        return bool(self.adopted or self.settled or self.fills_added or self.twaps_adopted
                    or self.twaps_settled)


def apply_snapshot(core: OmsCore, fence: int, snapshot: m.AllOrdersResponse,
                   trades: Iterable[m.Trade] = ()) -> SnapshotDiff:
    diff = SnapshotDiff()
    tracker = core.tracker
    known_live = [o for o in tracker.open_orders() if o.order_id is not None]
    trades = list(trades)
    seen = _identify(core, fence, snapshot.orders, trades, diff)
    unresolved = set(diff.unresolved)
    # Strangers the rows describe are adopted from their row before any trade applies: adopted
    # from a trade instead, one would take the trade's size for its own and end FILLED while open.
    for row in snapshot.orders:
        if row.order_id and row.order_id not in unresolved and tracker.by_order_id(row.order_id) is None:
            diff.adopted.append(core.adopt(order_from_response(row)))
    for trade in trades:
        if trade.order_id not in unresolved:
            _apply_trade(core, trade, diff)
    for row in snapshot.orders:
        if row.order_id in unresolved:
            continue
        order = tracker.by_order_id(row.order_id)
        if order is None:
            order = core.adopt(order_from_response(row))
            diff.adopted.append(order)
        seen.add(order.local_id)
        if order.seq > fence:
            continue
        core.note_leaves(order, row.quantity_remaining)
        order.needs_settlement = False
        if order.state is not OrderState.OPEN and order.state.is_live:
            core.apply_order_event(order, OrderEvent.SETTLE_OPEN, str(row.status))
            diff.confirmed_open.append(order)
    for order in tracker.open_orders():
        if order.local_id in seen or order.seq > fence:
            continue
        _settle_gone(core, order)
        diff.settled.append(order)
    _settle_twaps(core, fence, snapshot.twaps, diff)
    diff.ended = [o for o in known_live if not o.state.is_live]
    return diff


@define
class _Unknown:
    """What the snapshot says about an exchange order the book lacks."""

    row: m.OrderResponse | None
    symbol: str
    client_order_id: str | None
    side: m.Side | None
    order_type: m.OrderType | None
    tif: m.TimeInForce | None
    traded: Decimal = Decimal(0)

    def candidates(self, tracker: OrderTracker) -> list[Order]:
        row = self.row
        price, least = (row.price, max(row.quantity or 0, self.traded)) if row else (None, self.traded)
        return [o for o in tracker.pending(self.symbol, self.client_order_id)
                if o.could_be(self.side, self.order_type, self.tif, price, least)]


def _identify(core: OmsCore, fence: int, rows: Sequence[m.OrderResponse], trades: Sequence[m.Trade],
              diff: SnapshotDiff) -> set[int]:
    """Bind what can be decided; return the local ids of pending orders left undecided.

    Unknown ids with no candidate at all are adopted later, as strangers.
    """
    unknown = _unknown_ids(core.tracker, rows, trades)
    while _bind_decidable(core, fence, unknown):
        pass
    undecided: set[int] = set()
    for order_id, entry in unknown.items():
        diff.unresolved.append(order_id)
        undecided.update(o.local_id for o in entry.candidates(core.tracker))
    return undecided


def _unknown_ids(tracker: OrderTracker, rows: Sequence[m.OrderResponse],
                 trades: Sequence[m.Trade]) -> dict[str, _Unknown]:
    """Exchange order ids the book lacks, described by their row (best) or by their new trades."""
    unknown: dict[str, _Unknown] = {}
    for t in trades:
        if t.trade_id not in tracker.trade_ids and tracker.by_order_id(t.order_id) is None:
            entry = unknown.setdefault(t.order_id, _Unknown(None, t.symbol, t.client_order_id, t.side,
                                                            t.order_type, t.tif))
            entry.traded += t.quantity
    for row in rows:
        if tracker.by_order_id(row.order_id) is None:
            entry = unknown.get(row.order_id)
            unknown[row.order_id] = _Unknown(row, row.symbol, row.client_order_id, row.side, row.type,
                                             row.time_in_force, entry.traded if entry else Decimal(0))
    return unknown


def _bind_decidable(core: OmsCore, fence: int, unknown: dict[str, _Unknown]) -> bool:
    """One round: bind each pair that are each other's only candidate; drop ids with none.

    Returns whether anything was bound (a binding can make another decidable). A row's order must
    predate the fence: one placed after it cannot be in the snapshot, but its seq alone does not
    tell "placed after" from "touched after", so that case stays undecided.
    """
    fits = {order_id: entry.candidates(core.tracker) for order_id, entry in unknown.items()}
    claims: dict[int, int] = {}
    for found in fits.values():
        for order in found:
            claims[order.local_id] = claims.get(order.local_id, 0) + 1
    bound = False
    for order_id, found in fits.items():
        if not found:
            del unknown[order_id]
        elif len(found) == 1 and claims[found[0].local_id] == 1 and (
                unknown[order_id].row is None or found[0].seq <= fence):
            core.bind(found[0], order_id)
            del unknown[order_id]
            bound = True
    return bound


def _apply_trade(core: OmsCore, trade: m.Trade, diff: SnapshotDiff) -> None:
    if trade.trade_id in core.tracker.trade_ids:
        return
    order = core.tracker.by_order_id(trade.order_id)
    if order is None:
        order = core.adopt(Order(0, trade.symbol, trade.side, trade.order_type or m.OrderType.LIMIT,
                                 trade.tif or m.TimeInForce.GTC, trade.quantity, None,
                                 trade.client_order_id or "", order_id=trade.order_id,
                                 state=OrderState.UNKNOWN))
        diff.adopted.append(order)
    elif order.remaining_quantity < trade.quantity and order.adopted:
        order.quantity += trade.quantity - order.remaining_quantity
    fill = Fill(trade.trade_id, trade.order_id, trade.symbol, trade.side, trade.price,
                trade.quantity, trade.fee, trade.timestamp)
    if core.record_fill(order, fill):
        diff.fills_added.append(fill)
        event = OrderEvent.FULL_FILL if order.remaining_quantity <= 0 else OrderEvent.PARTIAL_FILL
        if order.state is OrderState.UNKNOWN and event is OrderEvent.PARTIAL_FILL:
            return  # the open-orders part of the snapshot decides whether it still rests
        core.apply_order_event(order, event, "FILLED")


def settlement_note(diff: SnapshotDiff) -> bytes | None:
    """What a snapshot concluded that no frame says, for the journal: which orders it ended, as what.

    Only orders the book knew by id before the snapshot, and only their end (state, leaves, status):
    not the fills it added, the ids it bound or the orders it adopted. Those depend on the book the
    snapshot met, which a replay does not rebuild exactly (an order bound or adopted by a snapshot is
    not known by that id on replay); the resync that follows every start re-learns them from the
    exchange. An end is safe to replay: it only ever applies to the same order, by id, if still live.
    """
    ended = [{"order_id": o.order_id, "state": str(o.state), "status": o.last_status,
              "leaves": str(o.remaining_quantity)}  # so the replayed filled quantity is the live one
             for o in diff.ended if o.order_id is not None]
    return orjson.dumps({NOTE_KEY: ended}) if ended else None


def _note_rows(raw: bytes) -> list[tuple[str, str, str | None, Decimal]]:
    """(order_id, state, status, leaves) per ended order; ValueError for anything else."""
    try:
        return [(str(row["order_id"]), str(row["state"]), row["status"], Decimal(row["leaves"]))
                for row in orjson.loads(raw)[NOTE_KEY]]
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"malformed settlement note: {exc!r}") from None


def note_order_ids(raw: bytes) -> list[str]:
    """Every order id a settlement note names (for the journal's compaction)."""
    return [order_id for order_id, _, _, _ in _note_rows(raw)]


def apply_settlement_note(core: OmsCore, raw: bytes) -> None:
    """Replay a snapshot's conclusion: end the same orders the same way, if the book has them live."""
    for order_id, state, status, leaves in _note_rows(raw):
        order = core.tracker.by_order_id(order_id)
        event = _NOTED_ENDS.get(state)
        if order is None or event is None or not order.state.is_live:
            continue
        core.note_leaves(order, leaves)
        core.apply_order_event(order, event, status)
        order.needs_settlement = False


_NOTED_ENDS = {str(OrderState.FILLED): OrderEvent.FULL_FILL, str(OrderState.CANCELLED): OrderEvent.CANCELLED}


def _settle_gone(core: OmsCore, order: Order) -> None:
    if order.remaining_quantity <= 0:
        core.apply_order_event(order, OrderEvent.FULL_FILL, "FILLED")
    else:
        core.apply_order_event(order, OrderEvent.CANCELLED, SETTLED_MISSING)
    order.needs_settlement = False


def _settle_twaps(core: OmsCore, fence: int, rows: Iterable[m.TwapResponse], diff: SnapshotDiff) -> None:
    tracker = core.tracker
    seen: set[int] = set()
    for row in rows:
        twap = tracker.twap_by_id(row.twap_id)
        if twap is None:
            twap = tracker.first_pending_twap(row.symbol, row.client_twap_id)
            if twap is not None:
                tracker.bind_twap(twap, row.twap_id)
            else:
                twap = tracker.new_twap(twap_rules.twap_from_response(row))
                twap.adopted = True
                diff.twaps_adopted.append(twap)
        seen.add(twap.local_id)
        twap_rules.note_progress(twap, row)
        if twap.seq <= fence:
            core.apply_twap_event(twap, TwapEvent.ACCEPTED, row.status)
    for twap in tracker.twaps(open_only=True):
        if twap.local_id in seen or twap.seq > fence:
            continue
        done = twap.filled_quantity >= twap.total_quantity > 0
        core.apply_twap_event(twap, TwapEvent.COMPLETED if done else TwapEvent.CANCELLED,
                              SETTLED_MISSING)
        diff.twaps_settled.append(twap)
