"""Settle the book against what the exchange says it has (after a reconnect, a restart, a kill).

Input: the open orders and TWAPs of ``get_user_orders`` (all pages merged) and the account's
trades. Trades go in first as fills, deduplicated by trade id, so an order that filled while we
were away ends FILLED rather than CANCELLED. Then: exchange orders we lack are adopted; our live
orders the exchange shows open are confirmed OPEN; our live orders it does not show are gone and are
settled from their fills (FILLED when nothing remains, else CANCELLED — the only place a cancel is
concluded without a CANCELLED frame, because the order is provably no longer on the book).

``fence`` is the core sequence number when the snapshot was requested: an order touched after it
(placed, cancelled, modified) is newer than the snapshot and is left alone.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import define, field

from qfex_oms.core import twaps as twap_rules
from qfex_oms.core.engine import OmsCore, _order_from_response
from qfex_oms.core.model import Fill, Order, Twap
from qfex_oms.core.states import OrderEvent, OrderState, TwapEvent
from qfex_oms.protocol import messages as m

SETTLED_MISSING = "MISSING_FROM_SNAPSHOT"


@define
class SnapshotDiff:
    adopted: list[Order] = field(factory=list)
    confirmed_open: list[Order] = field(factory=list)
    settled: list[Order] = field(factory=list)
    fills_added: list[Fill] = field(factory=list)
    twaps_adopted: list[Twap] = field(factory=list)
    twaps_settled: list[Twap] = field(factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.adopted or self.settled or self.fills_added or self.twaps_adopted
                    or self.twaps_settled)


def apply_snapshot(core: OmsCore, fence: int, snapshot: m.AllOrdersResponse,
                   trades: Iterable[m.Trade] = ()) -> SnapshotDiff:
    diff = SnapshotDiff()
    tracker = core.tracker
    for trade in trades:
        _apply_trade(core, trade, diff)
    seen: set[int] = set()
    for row in snapshot.orders:
        order = tracker.by_order_id(row.order_id)
        if order is None:
            order = tracker.first_pending(row.symbol, row.client_order_id)
            if order is not None and order.seq <= fence:
                tracker.bind(order, row.order_id)
            else:
                order = tracker.adopt(_order_from_response(row))
                core._link_twap_child(order)
                diff.adopted.append(order)
        seen.add(order.local_id)
        if order.seq > fence:
            continue
        core._note_leaves(order, row.quantity_remaining)
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
    return diff


def _apply_trade(core: OmsCore, trade: m.Trade, diff: SnapshotDiff) -> None:
    if trade.trade_id in core.tracker.trade_ids:
        return
    order = core.tracker.by_order_id(trade.order_id)
    if order is None:
        order = core.tracker.first_pending(trade.symbol, trade.client_order_id)
        if order is not None:
            core.tracker.bind(order, trade.order_id)
    if order is None:
        order = core.tracker.adopt(Order(0, trade.symbol, trade.side, trade.order_type or
                                         m.OrderType.LIMIT, trade.tif or m.TimeInForce.GTC,
                                         trade.quantity, None, trade.client_order_id or "",
                                         order_id=trade.order_id, state=OrderState.UNKNOWN))
        core._link_twap_child(order)
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
