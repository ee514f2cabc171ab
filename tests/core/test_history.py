"""Issue 11 / 15: orders the exchange never named to us, settled from QFEX's order history.

The fault run's remaining failures: every answer to an ``add_order`` lost, the exchange ended the
order (cancel-on-disconnect, a fill, a rejection), so no snapshot shows it and nothing gives the
book its id. ``apply_snapshot(defer_missing=True)`` leaves such an order (and any order it does not
show) for the history; ``settle_from_history`` binds it by the same rules as a snapshot row and ends
it as the exchange did, and ends an order known by id with the status QFEX gives.
Two pending orders alike in everything bind pairwise to as many identical exchange orders.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from corekit import SYMBOL, place, resp

from qfex_oms.core import OmsCore, Order, OrderState, Twap, TwapState, apply_snapshot
from qfex_oms.core.history import settle_from_history, settle_twaps_from_history
from qfex_oms.core.snapshot import SETTLED_MISSING
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus, OrderType, Side, TimeInForce
from qfex_oms.protocol.rest import HistoricOrder, HistoricTwap

D = Decimal
EMPTY = m.AllOrdersResponse(orders=(), twaps=())


def _row(order_id: str, status: str, *, cid: str = "c1", qty: str = "3", filled: str = "0",
         price: str = "200") -> HistoricOrder:
    ts = datetime(2026, 12, 3, tzinfo=UTC)
    return HistoricOrder(order_id, OrderStatus(status), ts, SYMBOL, Side.BUY, OrderType.LIMIT,
                         TimeInForce.GTC, D(qty), D(price), cid, D(0), D(filled),
                         None if filled == "0" else D(price), None, None, "")


def _lost(core: OmsCore, cid: str = "c1") -> Order:
    """An order whose every answer was lost: no id, UNKNOWN."""
    order = place(core, cid)
    core.order_lost(order, "timeout")
    return order


def _unnamed(core: OmsCore) -> list[Order]:
    diff = apply_snapshot(core, core.seq, EMPTY, defer_missing=True)
    assert diff.settled == []  # nothing concluded for a missing order: the history decides
    return diff.missing


def test_an_order_cancelled_unseen_is_bound_and_cancelled_from_history(core: OmsCore) -> None:
    order = _lost(core)
    fence = core.seq
    unnamed = _unnamed(core)
    assert unnamed == [order] and order.state is OrderState.UNKNOWN
    diff = settle_from_history(core, fence, unnamed, [_row("X1", "CANCELLED")])
    assert order.order_id == "X1" and order.state is OrderState.CANCELLED
    assert order.last_status == "CANCELLED"
    assert diff.settled == [order] and diff.ended == [order]


def test_a_fill_learnt_from_history_and_then_from_trades_counts_once(core: OmsCore) -> None:
    order = _lost(core)
    fence = core.seq
    settle_from_history(core, fence, _unnamed(core), [_row("X1", "FILLED", filled="3")])
    assert order.state is OrderState.FILLED and order.filled_quantity == 3
    trade = m.Trade("t-1", SYMBOL, D("200"), D("3"), Side.BUY, "X1", fee=D(0), client_order_id="c1",
                    order_type=OrderType.LIMIT, tif=TimeInForce.GTC)
    apply_snapshot(core, core.seq, EMPTY, [trade])  # the trade's details arrive afterwards
    assert order.filled_quantity == 3 and len(order.fills or []) == 1


def test_a_rejected_order_ends_rejected_never_cancelled(core: OmsCore) -> None:
    order = _lost(core)
    fence = core.seq
    settle_from_history(core, fence, _unnamed(core), [_row("X1", "REJECTED")])
    assert order.state is OrderState.REJECTED


def test_an_order_the_history_does_not_name_never_arrived(core: OmsCore) -> None:
    """No row (the request was lost on the way): settled as a missing order, from its fills."""
    order = _lost(core)
    fence = core.seq
    diff = settle_from_history(core, fence, _unnamed(core), [_row("X9", "CANCELLED", price="199")])
    assert order.order_id is None and order.state is OrderState.CANCELLED
    assert order.last_status == SETTLED_MISSING and diff.settled == [order]


def test_two_rows_for_one_pending_order_decide_nothing(core: OmsCore) -> None:
    """One more exchange order than ours under the client id: one is a stranger; which is unknown."""
    order = _lost(core)
    fence = core.seq
    diff = settle_from_history(core, fence, _unnamed(core),
                               [_row("X1", "CANCELLED"), _row("X2", "FILLED", filled="3")])
    assert order.order_id is None and order.state is OrderState.UNKNOWN
    assert sorted(diff.unresolved) == ["X1", "X2"]


def test_identical_siblings_bind_pairwise_to_as_many_identical_rows(core: OmsCore) -> None:
    """Fault-run seed 44: two pending orders share a client id and look alike; which exchange order
    is which cannot matter, and leaving both unsettled would be wrong for ever."""
    first, second = _lost(core, "g3"), _lost(core, "g3")
    fence = core.seq
    settle_from_history(core, fence, _unnamed(core),
                        [_row("X2", "CANCELLED", cid="g3"), _row("X1", "CANCELLED", cid="g3")])
    assert {first.order_id, second.order_id} == {"X1", "X2"}
    assert first.state is second.state is OrderState.CANCELLED


def test_identical_siblings_with_a_cancel_waiting_are_not_interchangeable(core: OmsCore) -> None:
    from qfex_oms.core import CancelIntent

    first, second = place(core, "g3"), place(core, "g3")
    core.cancel(CancelIntent(target=first))  # held until its ACK: the two now differ
    core.take_frames()
    for order in (first, second):
        core.order_lost(order, "timeout")
    fence = core.seq
    settle_from_history(core, fence, [first, second],
                        [_row("X1", "CANCELLED", cid="g3"), _row("X2", "CANCELLED", cid="g3")])
    assert first.order_id is None and second.order_id is None


def test_an_order_answered_after_the_snapshot_is_not_settled_as_missing(core: OmsCore) -> None:
    """Its ACK arrives while the history is asked (a delayed reply): the ACK is newer than the
    snapshot, so the order is not settled for having been missing from it."""
    from qfex_oms.core.history import mark

    order = _lost(core)
    fence = core.seq
    missing = _unnamed(core)
    marks = {o.local_id: mark(o) for o in missing}
    core.on_reply(resp("X1", "ACK", remaining="3"))
    settle_from_history(core, fence, missing, [], marks)
    assert order.order_id == "X1" and order.state is OrderState.OPEN


def test_an_order_placed_after_the_fence_is_left_alone(core: OmsCore) -> None:
    fence = core.seq
    order = _lost(core)
    settle_from_history(core, fence, [order], [_row("X1", "CANCELLED")])
    assert order.order_id is None and order.state is OrderState.UNKNOWN


def test_without_defer_a_missing_unnamed_order_is_settled_as_before(core: OmsCore) -> None:
    order = _lost(core)
    diff = apply_snapshot(core, core.seq, EMPTY)
    assert order.state is OrderState.CANCELLED and diff.settled == [order] and diff.missing == []


def test_a_modify_refused_after_a_report_ended_the_order_leaves_nothing_to_settle(core: OmsCore) -> None:
    """Found by the state machine: CANCELLED_STP overtakes the answer to a modify, which is then
    CANNOT_MODIFY_NO_SUCH_ORDER. The order is settled by its report; flagging it for settlement
    left a CANCELLED order 'needing settlement' that no snapshot would ever clear."""
    from corekit import ack

    order = place(core, qty="1")
    order_id = ack(core, order)
    core.modify_order(order, None, D(2))
    core.take_frames()
    core.on_reply(resp(order_id, "CANCELLED_STP", qty="1", remaining="1"))
    core.on_reply(resp(order_id, "CANNOT_MODIFY_NO_SUCH_ORDER", qty="1"))
    assert order.state is OrderState.CANCELLED and not order.needs_settlement


def test_a_known_order_cancelled_unseen_ends_with_qfex_status_not_a_guess(core: OmsCore) -> None:
    from corekit import ack

    order = place(core)
    order_id = ack(core, order)
    fence = core.seq
    missing = _unnamed(core)
    assert missing == [order] and order.state is OrderState.OPEN
    diff = settle_from_history(core, fence, missing, [_row(order_id, "CANCELLED_STP")])
    assert order.state is OrderState.CANCELLED and order.last_status == "CANCELLED_STP"
    assert diff.ended == [order]


def test_a_known_order_filled_while_away_ends_filled_from_history(core: OmsCore) -> None:
    from corekit import ack

    order = place(core)
    order_id = ack(core, order)
    fence = core.seq
    settle_from_history(core, fence, _unnamed(core), [_row(order_id, "FILLED", filled="3")])
    assert order.state is OrderState.FILLED and order.filled_quantity == 3


def test_a_known_order_the_history_does_not_list_is_settled_from_its_fills(core: OmsCore) -> None:
    from corekit import ack

    order = place(core)
    ack(core, order)
    fence = core.seq
    settle_from_history(core, fence, _unnamed(core), [])
    assert order.state is OrderState.CANCELLED and order.last_status == SETTLED_MISSING


# --------------------------------------------------------------------------- TWAPs (fault-run seed 169)


def _twap(core: OmsCore, ctid: str = "tw-1", total: str = "2") -> Twap:
    twap = core.place_twap(SYMBOL, Side.BUY, D(total), 2, 30, False, ctid)
    core.take_frames()
    return twap


def _twap_row(twap_id: str, status: str, *, ctid: str = "tw-1", total: str = "2",
              filled: str = "2") -> HistoricTwap:
    return HistoricTwap(twap_id, SYMBOL, status, Side.BUY, ctid, D(total), D(filled), 2, 30, False)


def _twaps_missing(core: OmsCore) -> list[Twap]:
    diff = apply_snapshot(core, core.seq, EMPTY, defer_missing=True)
    assert diff.twaps_settled == []
    return diff.twaps_missing


def test_twaps_whose_reports_were_all_lost_are_named_and_completed_from_history(core: OmsCore) -> None:
    """Seed 169: two TWAPs alike but for their client ids, every report lost; a child seen under
    ``twap:T1:1`` cannot say which is its parent. The history names both; the child joins T1."""
    first, second = _twap(core, "tw-a"), _twap(core, "tw-b")
    child = m.OrderResponse(order_id="c-1", symbol=SYMBOL, status=OrderStatus.FILLED, side=Side.BUY,
                            type=OrderType.MARKET, time_in_force=TimeInForce.IOC, quantity=D(1),
                            price=D(0), quantity_remaining=D(0), client_order_id="twap:T1:1")
    core.on_reply(child)
    assert first.twap_id is None and second.twap_id is None
    fence = core.seq
    missing = _twaps_missing(core)
    assert missing == [first, second]
    settle_twaps_from_history(core, fence, missing, [_twap_row("T1", "COMPLETED", ctid="tw-a"),
                                                     _twap_row("T2", "CANCELLED", ctid="tw-b",
                                                               filled="0")])
    assert (first.twap_id, first.state) == ("T1", TwapState.COMPLETED)
    assert (second.twap_id, second.state) == ("T2", TwapState.CANCELLED)
    assert [c.order_id for c in first.children] == ["c-1"]
    assert first.filled_quantity == 2  # the exchange's figure: its other child's report was lost too


def test_a_known_twap_ends_as_the_history_says(core: OmsCore) -> None:
    twap = _twap(core)
    core.on_reply(m.TwapResponse(twap_id="T1", symbol=SYMBOL, status="ACTIVE", side=Side.BUY,
                                 client_twap_id="tw-1", total_quantity=D(2), total_num_orders=2))
    fence = core.seq
    settle_twaps_from_history(core, fence, _twaps_missing(core), [_twap_row("T1", "COMPLETED")])
    assert twap.state is TwapState.COMPLETED


def test_a_twap_the_history_does_not_list_is_settled_as_before(core: OmsCore) -> None:
    twap = _twap(core)
    fence = core.seq
    settle_twaps_from_history(core, fence, _twaps_missing(core), [])
    assert twap.state is TwapState.CANCELLED


def test_one_row_for_two_different_pending_twaps_sharing_a_client_id_decides_nothing(core: OmsCore) -> None:
    first, second = _twap(core), _twap(core, total="4")
    fence = core.seq
    settle_twaps_from_history(core, fence, _twaps_missing(core), [_twap_row("T1", "COMPLETED")])
    assert first.twap_id is None and second.twap_id is None
    assert not first.state.is_terminal  # a row could be it: left for a later look
    assert second.state is TwapState.CANCELLED  # no row looks like it: gone, as before
