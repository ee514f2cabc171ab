"""The races of design.md, each as a synchronous test of the pure core."""

from __future__ import annotations

from decimal import Decimal

import pytest
from corekit import SYMBOL, ack, fill, new_id, place, resp

from qfex_oms.core import CancelError, CancelIntent, OmsCore, OrderEvent, OrderState, apply_snapshot
from qfex_oms.core.events import CancelFinished, FillReceived, RequestErrored
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, ErrorCode, OrderStatus, TimeInForce

# ---------------------------------------------------------------- cancel before ACK


def test_cancel_before_ack_with_unique_client_id_goes_by_client_id_at_once(core: OmsCore) -> None:
    order = place(core, cid="solo")
    request = core.cancel(CancelIntent(order))
    assert core.take_frames() == [m.CancelOrder("solo", SYMBOL, CancelIdType.CLIENT_ORDER_ID)]
    oid = ack(core, order)
    assert order.state is OrderState.PENDING_CANCEL
    assert core.take_frames() == []
    core.on_reply(resp(oid, "CANCELLED", cid="solo"))
    assert order.state is OrderState.CANCELLED
    assert request.done and request.status == "CANCELLED" and request.cancelled == [order]


def test_cancel_before_ack_waits_for_ack_when_a_sibling_shares_the_client_id(core: OmsCore) -> None:
    sibling = place(core, cid="dup")
    ack(core, sibling)
    order = place(core, cid="dup")
    request = core.cancel(CancelIntent(order))
    assert core.take_frames() == [], "a client-id cancel would also kill the sibling"
    assert order.cancel_requested and not request.done
    oid = ack(core, order)
    assert core.take_frames() == [m.CancelOrder(oid, SYMBOL, CancelIdType.ORDER_ID)]
    assert order.state is OrderState.PENDING_CANCEL
    assert sibling.state is OrderState.OPEN
    core.on_reply(resp(oid, "CANCELLED", cid="dup"))
    assert request.done and request.cancelled == [order]
    assert sibling.state is OrderState.OPEN


def test_deferred_cancel_of_an_order_rejected_on_arrival_finishes(core: OmsCore) -> None:
    sibling = place(core, cid="dup")
    ack(core, sibling)
    order = place(core, cid="dup")
    request = core.cancel(CancelIntent(order))
    core.on_reply(resp("", "BAD_SYMBOL", cid="dup"))
    assert order.state is OrderState.REJECTED
    assert request.done and request.status == "BAD_SYMBOL" and core.take_frames() == []


def test_second_cancel_of_a_pending_order_sends_nothing(core: OmsCore) -> None:
    order = place(core)
    ack(core, order)
    first = core.cancel(CancelIntent(order))
    assert len(core.take_frames()) == 1
    second = core.cancel(CancelIntent(order))
    assert second is first and core.take_frames() == []
    core.cancel(CancelIntent(order), retry=True)
    assert len(core.take_frames()) == 1, "an explicit retry resends"


def test_cancel_of_an_order_already_closed_sends_nothing(core: OmsCore) -> None:
    order = place(core, qty="1")
    oid = ack(core, order)
    core.on_reply(fill(oid, "1", "0", trade_id="t1"))
    request = core.cancel(CancelIntent(order))
    assert core.take_frames() == [] and request.done and request.status == "ALREADY_CLOSED"


# ---------------------------------------------------------------- fills and cancels


def test_late_partial_fill_after_cancelled_is_counted_and_keeps_cancelled(core: OmsCore) -> None:
    order = place(core, qty="3")
    oid = ack(core, order)
    core.cancel(CancelIntent(order))
    core.on_reply(resp(oid, "CANCELLED"))
    core.on_reply(fill(oid, "1", "2", trade_id="late-1"))
    assert order.state is OrderState.CANCELLED
    assert order.filled_quantity == Decimal(1)
    assert any(isinstance(e, FillReceived) for e in core.take_events())


def test_late_fill_that_completes_a_cancelled_order_makes_it_filled(core: OmsCore) -> None:
    order = place(core, qty="2")
    oid = ack(core, order)
    core.on_reply(resp(oid, "CANCELLED"))
    core.on_reply(fill(oid, "2", "0", trade_id="late-2"))
    assert order.state is OrderState.FILLED and order.remaining_quantity == 0


def test_no_such_order_after_a_fill_is_not_a_cancel(core: OmsCore) -> None:
    order = place(core, qty="1")
    oid = ack(core, order)
    request = core.cancel(CancelIntent(order))
    core.on_reply(fill(oid, "1", "0", trade_id="t-nso"))
    core.on_reply(resp(oid, "NO_SUCH_ORDER"))
    assert order.state is OrderState.FILLED
    assert request.done and request.status == "NO_SUCH_ORDER" and request.cancelled == []


def test_no_such_order_before_the_fill_rolls_back_and_marks_for_settlement(core: OmsCore) -> None:
    order = place(core, qty="1")
    oid = ack(core, order)
    request = core.cancel(CancelIntent(order))
    core.on_reply(resp(oid, "NO_SUCH_ORDER"))
    assert order.state is OrderState.OPEN, "never invent a cancel"
    assert order.needs_settlement and request.status == "NO_SUCH_ORDER"
    core.on_reply(fill(oid, "1", "0", trade_id="t-after"))
    assert order.state is OrderState.FILLED and not order.needs_settlement


def test_cancel_refused_by_rejected_leaves_the_order_open(core: OmsCore) -> None:
    order = place(core)
    oid = ack(core, order)
    request = core.cancel(CancelIntent(order))
    core.on_reply(resp(oid, "REJECTED"))
    assert order.state is OrderState.OPEN
    assert request.done and request.status == "REJECTED"


def test_err_for_a_cancel_rolls_back_through_the_incoming_message_echo(core: OmsCore) -> None:
    order = place(core)
    oid = ack(core, order)
    request = core.cancel(CancelIntent(order))
    (frame,) = core.take_frames()
    from qfex_oms.protocol import incoming_echo

    core.on_reply(m.Err(ErrorCode.RATE_LIMITED, "slow down", incoming_echo(frame)))
    assert order.state is OrderState.OPEN
    assert request.done and request.status == "RateLimited"
    assert oid == order.order_id


def test_err_for_a_new_order_rejects_it_with_the_error_code(core: OmsCore) -> None:
    order = place(core, cid="e1")
    core.on_reply(m.Err(ErrorCode.INVALID_ORDER, "bad", {"type": "add_order",
                                                         "params": {"symbol": SYMBOL,
                                                                    "client_order_id": "e1"}}))
    assert order.state is OrderState.REJECTED and order.last_status == "InvalidOrder"


def test_err_for_a_query_is_reported_not_dropped(core: OmsCore) -> None:
    core.on_reply(m.Err(ErrorCode.RATE_LIMITED, None, {"type": "get_user_orders", "params": {}}))
    (event,) = core.take_events()
    assert isinstance(event, RequestErrored) and event.request_type == "get_user_orders"


# ---------------------------------------------------------------- client-id cancels


def test_cancel_by_client_id_hits_three_orders_one_unknown_locally(core: OmsCore) -> None:
    a, b = place(core, cid="grp"), place(core, cid="grp")
    oid_a, oid_b = ack(core, a), ack(core, b)
    request = core.cancel(CancelIntent(client_order_id="grp", symbol=SYMBOL))
    assert core.take_frames() == [m.CancelOrder("grp", SYMBOL, CancelIdType.CLIENT_ORDER_ID)]
    assert a.state is b.state is OrderState.PENDING_CANCEL
    stranger = new_id("foreign")
    core.on_reply(resp(stranger, "CANCELLED", cid="grp"))
    core.on_reply(resp(oid_a, "CANCELLED", cid="grp"))
    assert not request.done
    core.on_reply(resp(oid_b, "CANCELLED", cid="grp"))
    assert request.done and request.status == "CANCELLED"
    adopted = core.tracker.by_order_id(stranger)
    assert adopted is not None and adopted.adopted and adopted.state is OrderState.CANCELLED
    assert {o.order_id for o in request.cancelled} == {oid_a, oid_b, stranger}


def test_cancel_by_client_id_with_nothing_known_finishes_on_the_first_answer(core: OmsCore) -> None:
    request = core.cancel(CancelIntent(client_order_id="ghost", symbol=SYMBOL))
    core.take_frames()
    core.on_reply(resp("", "NO_SUCH_ORDER", cid="ghost"))
    assert request.done and request.status == "NO_SUCH_ORDER"


def test_cancel_by_client_id_also_cancels_an_unacked_member_on_its_ack(core: OmsCore) -> None:
    acked = place(core, cid="mix")
    ack(core, acked)
    pending = place(core, cid="mix")
    core.cancel(CancelIntent(client_order_id="mix", symbol=SYMBOL))
    assert len(core.take_frames()) == 1
    oid = ack(core, pending)
    assert core.take_frames() == [m.CancelOrder(oid, SYMBOL, CancelIdType.ORDER_ID)]


# ---------------------------------------------------------------- duplicates and reordering


def test_duplicate_ack_and_duplicate_fill_change_nothing(core: OmsCore) -> None:
    order = place(core, qty="3")
    oid = ack(core, order, "dup-oid")
    ack(core, order, "dup-oid")
    core.on_reply(fill(oid, "1", "2", trade_id="t-dup"))
    core.on_reply(fill(oid, "1", "2", trade_id="t-dup"))
    core.on_reply(resp(oid, "FILLED", remaining="2", trade_id="t-dup"))
    core.on_reply(resp(oid, "FILLED", remaining="2", trade_id="t-dup"))
    assert order.filled_quantity == Decimal(1) and len(order.fills or []) == 1
    assert order.state is OrderState.OPEN


def test_filled_order_response_before_the_fill_response_counts_once(core: OmsCore) -> None:
    order = place(core, qty="3")
    oid = ack(core, order)
    core.on_reply(resp(oid, "FILLED", remaining="1", trade_id="t-x"))
    assert order.filled_quantity == Decimal(2) and order.state is OrderState.OPEN
    core.on_reply(fill(oid, "2", "1", trade_id="t-x"))
    assert order.filled_quantity == Decimal(2) and order.remaining_quantity == Decimal(1)


def test_fill_before_ack_binds_the_order_and_opens_it(core: OmsCore) -> None:
    order = place(core, cid="early", qty="3")
    core.on_reply(fill("oid-early", "1", "2", trade_id="t-early", cid="early"))
    assert order.order_id == "oid-early" and order.state is OrderState.OPEN
    ack(core, order, "oid-early")
    assert order.state is OrderState.OPEN and order.filled_quantity == Decimal(1)


def test_cancelled_before_ack_ends_the_order_and_a_late_ack_is_dropped(core: OmsCore) -> None:
    order = place(core, cid="race")
    core.on_reply(resp("oid-race", "CANCELLED", cid="race"))
    assert order.state is OrderState.CANCELLED
    core.on_reply(resp("oid-race", "ACK", cid="race", remaining="3"))
    assert order.state is OrderState.CANCELLED


def test_gtc_partial_fill_stays_open_and_ioc_partial_fill_ends(core: OmsCore) -> None:
    gtc = place(core, cid="g", qty="3")
    ioc = place(core, cid="i", qty="3", tif=TimeInForce.IOC)
    gtc_id, ioc_id = ack(core, gtc), ack(core, ioc)
    core.on_reply(resp(gtc_id, "FILLED", cid="g", remaining="1", trade_id="tg"))
    core.on_reply(resp(ioc_id, "FILLED", cid="i", remaining="1", trade_id="ti", tif=TimeInForce.IOC))
    assert gtc.state is OrderState.OPEN
    assert ioc.state is OrderState.CANCELLED and ioc.filled_quantity == Decimal(2)


def test_rejected_new_order_keeps_the_qfex_status(core: OmsCore) -> None:
    order = place(core, cid="bad")
    core.on_reply(resp("", "INVALID_TICK_SIZE_PRECISION_PRICE", cid="bad"))
    assert order.state is OrderState.REJECTED
    assert order.last_status == "INVALID_TICK_SIZE_PRECISION_PRICE"


def test_unknown_status_for_a_new_order_is_a_rejection_keeping_its_name(core: OmsCore) -> None:
    order = place(core, cid="odd")
    core.on_reply(resp("", "SOMETHING_NEW", cid="odd"))
    assert order.state is OrderState.REJECTED and order.last_status == "SOMETHING_NEW"


# ---------------------------------------------------------------- lost in flight


def test_a_timeout_makes_an_order_unknown_never_rejected(core: OmsCore) -> None:
    order = place(core)
    core.order_lost(order, "TIMEOUT")
    assert order.state is OrderState.UNKNOWN and order.needs_settlement
    ack(core, order)
    assert order.state is OrderState.OPEN


def test_disconnect_mid_cancel_leaves_unknown_and_fails_the_request(core: OmsCore) -> None:
    order = place(core)
    ack(core, order)
    request = core.cancel(CancelIntent(order))
    core.connection_lost()
    assert order.state is OrderState.UNKNOWN and request.done and request.status == "DISCONNECTED"
    assert any(isinstance(e, CancelFinished) for e in core.take_events())


# ---------------------------------------------------------------- snapshot settlement


def test_snapshot_settles_unknown_adopts_foreign_and_closes_missing(core: OmsCore) -> None:
    resting, filled, gone = place(core, cid="r"), place(core, cid="f", qty="2"), place(core, cid="g")
    rid, fid = ack(core, resting), ack(core, filled)
    ack(core, gone)
    core.connection_lost()
    core.order_lost(resting, "TIMEOUT")
    fence = core.seq
    snapshot = m.AllOrdersResponse(orders=(resp(rid, "ACK", cid="r", remaining="3"),
                                           resp("foreign-1", "ACK", cid="x", remaining="3")))
    trades = (m.Trade("tr-1", SYMBOL, Decimal(200), Decimal(2), filled.side, fid),)
    diff = apply_snapshot(core, fence, snapshot, trades)
    assert resting.state is OrderState.OPEN
    assert filled.state is OrderState.FILLED
    assert gone.state is OrderState.CANCELLED and gone.last_status == "MISSING_FROM_SNAPSHOT"
    assert [o.order_id for o in diff.adopted] == ["foreign-1"]
    assert core.tracker.check_invariants() == []
    assert core.tracker.open_count() == len(core.tracker.open_orders()) == 2
    again = apply_snapshot(core, core.seq, snapshot, trades)
    assert not again.fills_added, "a fill seen twice counts once"


def test_snapshot_leaves_orders_placed_after_it_was_requested_alone(core: OmsCore) -> None:
    fence = core.seq
    newer = place(core, cid="n")
    apply_snapshot(core, fence, m.AllOrdersResponse())
    assert newer.state is OrderState.PENDING_NEW


# ---------------------------------------------------------------- argument errors


@pytest.mark.parametrize(
    ("intent", "message"),
    [
        (CancelIntent(), "needs an order"),
        (CancelIntent(order_id="a", client_order_id="b", symbol=SYMBOL), "exactly one selector"),
        (CancelIntent(client_order_id="b"), "needs the symbol"),
        (CancelIntent(twap_id=""), "non-empty"),
    ],
)
def test_bad_cancel_intents_fail_with_nothing_queued(core: OmsCore, intent: CancelIntent,
                                                     message: str) -> None:
    with pytest.raises(CancelError, match=message):
        core.cancel(intent)
    assert core.take_frames() == []


def test_cancelling_an_order_this_core_does_not_track_fails(core: OmsCore) -> None:
    stranger = OmsCore()
    order = place(stranger)
    with pytest.raises(CancelError, match="not tracked"):
        core.cancel(CancelIntent(order))
    assert core.take_frames() == []


# ------------------------------------------------------------------ cancels withdrawn before the wire


def test_a_withdrawn_retry_leaves_the_request_its_first_frame_sent_waiting(core: OmsCore) -> None:
    """Caller B's cancel went out; caller A's retry joined B's request, and A's frame was withdrawn
    from the pacer. B's frame stands: the order stays PENDING_CANCEL and B's answer still lands."""
    order = place(core, "c1")
    order_id = ack(core, order)
    first = core.cancel(CancelIntent(order))
    assert core.take_frames()
    retry = core.cancel(CancelIntent(order), retry=True)
    assert retry is first and core.take_frames()
    core.withdraw_cancel(retry, "NOT_SENT")
    assert not first.done and order.state is OrderState.PENDING_CANCEL
    core.on_reply(resp(order_id, "CANCELLED", cid="c1"))
    assert first.done and first.status == "CANCELLED" and order.state is OrderState.CANCELLED


def test_a_withdrawn_cancel_alone_reopens_its_order(core: OmsCore) -> None:
    order = place(core, "c1")
    ack(core, order)
    request = core.cancel(CancelIntent(order))
    assert core.take_frames()
    core.withdraw_cancel(request, "NOT_SENT")
    assert request.done and request.status == "NOT_SENT" and order.state is OrderState.OPEN


@pytest.mark.parametrize("how", ["withdrawn", "refused by err"])
def test_a_group_cancel_ending_unsent_or_refused_keeps_a_members_own_cancel_pending(
    core: OmsCore, how: str
) -> None:
    """O1 has its own cancel on the wire when a group cancel covering it ends without effect: O1
    stays PENDING_CANCEL for its own cancel, whose loss then makes it UNKNOWN (not silently OPEN)."""
    o1, o2 = place(core, "g"), place(core, "g")
    ack(core, o1)
    ack(core, o2)
    own = core.cancel(CancelIntent(o1))
    core.take_frames()
    group = core.cancel(CancelIntent(client_order_id="g", symbol=SYMBOL))
    assert group is not own and core.take_frames()
    if how == "withdrawn":
        core.withdraw_cancel(group, "NOT_SENT")
    else:
        core.on_reply(m.Err(error_code=ErrorCode.RATE_LIMITED, message="slow down", incoming_message={
            "type": "cancel_order", "params": {"order_id": "g", "symbol": SYMBOL,
                                               "cancel_order_id_type": "client_order_id"}}))
    assert group.done
    assert o1.state is OrderState.PENDING_CANCEL and o2.state is OrderState.OPEN
    core.cancel_lost(own, "TIMEOUT")
    assert o1.state is OrderState.UNKNOWN and o1.needs_settlement


@pytest.mark.parametrize("ending", ["NOT_SENT", "REJECTED"])
def test_a_group_cancel_on_the_wire_waits_for_its_answer_when_its_only_order_is_refused(
    core: OmsCore, ending: str
) -> None:
    """A cancel by client id went out while its only known member was still pending; that member is
    then withdrawn before the wire (or rejected). The exchange still answers the cancel, and that
    answer, not the member's fate, is its result: it may have found members this core never knew."""
    order = place(core, "g")
    group = core.cancel(CancelIntent(client_order_id="g", symbol=SYMBOL))
    assert core.take_frames()
    if ending == "NOT_SENT":
        core.apply_order_event(order, OrderEvent.REJECT, "NOT_SENT")
    else:
        core.on_reply(resp("", "REJECTED", cid="g"))
    assert order.state is OrderState.REJECTED and not group.done
    core.on_reply(m.OrderResponse(order_id="g", symbol=SYMBOL, status=OrderStatus.NO_SUCH_ORDER,
                                  client_order_id="g"))
    assert group.done and group.status == "NO_SUCH_ORDER"


def test_cancelling_an_ended_order_is_already_closed_even_with_a_group_cancel_still_open(
    core: OmsCore,
) -> None:
    """The group cancel on the wire waits for the exchange's answer; a new cancel of its member that
    has ended must not join it (and wait on an answer that may never name this order)."""
    order = place(core, "g")
    group = core.cancel(CancelIntent(client_order_id="g", symbol=SYMBOL))
    core.take_frames()
    core.on_reply(resp("", "REJECTED", cid="g"))
    assert order.state is OrderState.REJECTED and not group.done
    again = core.cancel(CancelIntent(order))
    assert again is not group and again.done and again.status == "ALREADY_CLOSED"
    assert core.take_frames() == []
