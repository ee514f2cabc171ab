"""Stop orders in the core, synchronously: every answer variant QFEX's sources allow, every race.

qfex-api.md §14: a stop's state comes as ``order_response`` under its id, as ``stop_order_response``
pushes, and as ``ack`` frames; none of them, all of them, in any order, must lead to the same book.
"""

from __future__ import annotations

from decimal import Decimal

from corekit import SYMBOL, ack

from qfex_oms.core import OmsCore
from qfex_oms.core.events import FillReceived, StopRequestFinished, StopUpdated, Unmatched
from qfex_oms.core.replay import replay
from qfex_oms.core.snapshot import apply_snapshot
from qfex_oms.core.stop_snapshot import (
    apply_stop_note,
    settle_snapshot,
    settle_stops,
    stop_settlement_note,
    without_stops,
)
from qfex_oms.core.stops import StopOrder, StopState
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import ErrorCode, OrderStatus, OrderType, Side, TimeInForce

SL, TP = OrderType.STOP_LOSS, OrderType.TAKE_PROFIT


def stop(core: OmsCore, kind: OrderType = SL, trigger: str = "180", qty: str = "1",
         cid: str = "s1", side: Side = Side.SELL) -> StopOrder:
    s = core.place_stop(SYMBOL, side, kind, Decimal(qty), Decimal(trigger), cid)
    return s


def resp(stop_id: str, status: str, *, kind: OrderType = SL, trigger: str = "180", qty: str = "1",
         cid: str = "s1", side: Side = Side.SELL, symbol: str = SYMBOL) -> m.OrderResponse:
    return m.OrderResponse(order_id=stop_id, symbol=symbol, status=OrderStatus(status), side=side, type=kind,
                           time_in_force=TimeInForce.GTC, quantity=Decimal(qty), price=Decimal(trigger),
                           quantity_remaining=Decimal(qty), client_order_id=cid)


def push(stop_id: str, *, kind: OrderType = SL, trigger: str = "180", qty: str = "1", cid: str = "s1",
         side: Side = Side.SELL, when: str | None = None, symbol: str = SYMBOL) -> m.StopOrderResponse:
    return m.StopOrderResponse(stop_order_id=stop_id, symbol=symbol, price=Decimal(trigger),
                               quantity=Decimal(qty), direction=side, stop_order_type=kind,
                               client_order_id=cid, update_time=when)


def ack_of(request: m.Request) -> m.Ack:
    return m.Ack(incoming_message=codec.incoming_echo(request))


def active(core: OmsCore, stop_id: str = "S1", **kw: object) -> StopOrder:
    s = stop(core, **kw)  # type: ignore[arg-type]
    core.take_frames()
    core.on_reply(resp(stop_id, "ACK", kind=s.kind, trigger=str(s.trigger_price), qty=str(s.quantity),
                       cid=s.client_order_id, side=s.side))
    core.take_events()
    assert s.state is StopState.ACTIVE and s.stop_order_id == stop_id
    return s


def stop_events(core: OmsCore) -> list[StopUpdated]:
    return [e for e in core.take_events() if isinstance(e, StopUpdated)]


def triggered_fill(order_id: str, trade_id: str, *, qty: str = "1", cid: str = "",
                   order_type: OrderType = SL) -> m.FillResponse:
    return m.FillResponse(trade_id=trade_id, order_id=order_id, symbol=SYMBOL, price=Decimal("179"),
                          quantity=Decimal(qty), side=Side.SELL, client_order_id=cid,
                          remaining_quantity=Decimal(0), order_type=order_type, tif=TimeInForce.IOC)


def check(core: OmsCore) -> None:
    assert core.stops.check_invariants() == []
    assert core.tracker.check_invariants() == []


# ---------------------------------------------------------------------- placing


def test_standalone_stop_sends_add_order_with_the_trigger_and_is_acked_under_its_own_id() -> None:
    core = OmsCore()
    s = stop(core, TP, trigger="220")
    [frame] = core.take_frames()
    assert isinstance(frame, m.AddOrder)
    assert (frame.order_type, frame.price, frame.side) == (TP, Decimal("220"), Side.SELL)
    assert s.state is StopState.PENDING and core.stops.stops() == [s]
    core.on_reply(resp("S1", "ACK", kind=TP, trigger="220"))
    assert s.state is StopState.ACTIVE and core.stops.by_id("S1") is s
    assert [e.state for e in stop_events(core)] == [StopState.ACTIVE]
    assert core.tracker.orders().__length_hint__() == 0  # a stop is not an order
    check(core)


def test_a_push_alone_binds_the_pending_stop() -> None:
    core = OmsCore()
    s = stop(core)
    core.on_reply(push("S9"))
    assert (s.state, s.stop_order_id) == (StopState.ACTIVE, "S9")
    check(core)


def test_a_refusal_rejects_the_stop_in_either_spelling_or_as_an_err() -> None:
    for status in ("INVALID_STOPLOSS_PRICE", "INVALID_STOP_LOSS_PRICE", "REJECTED"):
        core = OmsCore()
        s = stop(core)
        core.on_reply(resp("", status))
        assert s.state is StopState.REJECTED and s.last_status == status
    core = OmsCore()
    s = stop(core)
    [frame] = core.take_frames()
    core.on_reply(m.Err(error_code=ErrorCode.INVALID_ORDER,
                        incoming_message=codec.incoming_echo(frame)))
    assert s.state is StopState.REJECTED
    check(core)


def test_a_lost_answer_is_unknown_never_rejected_and_a_late_ack_revives_it() -> None:
    core = OmsCore()
    s = stop(core)
    core.stop_lost(s, "TIMEOUT")
    assert s.state is StopState.UNKNOWN and s.needs_settlement
    core.on_reply(resp("S1", "ACK"))
    assert s.state is StopState.ACTIVE
    core2 = OmsCore()
    s2 = stop(core2)
    core2.connection_lost()
    assert s2.state is StopState.UNKNOWN
    check(core)


def test_an_adopted_staged_stop_links_to_its_parent_by_client_id_and_price() -> None:
    core = OmsCore()
    parent = core.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(1),
                              Decimal(200), "entry", take_profit=Decimal(220), stop_loss=Decimal(180))
    ack(core, parent, "P1")
    core.on_reply(push("T1", kind=TP, trigger="220", cid="entry"))
    core.on_reply(push("L1", kind=SL, trigger="180", cid="entry"))
    tp, sl = core.stops.by_id("T1"), core.stops.by_id("L1")
    assert tp is not None and sl is not None
    assert (tp.parent_order_id, sl.parent_order_id) == ("P1", "P1")
    assert tp.adopted and tp.state is StopState.ACTIVE and sl.kind is SL
    check(core)


# ---------------------------------------------------------------------- cancel: every answer variant


def _cancel(core: OmsCore, s: StopOrder) -> m.Request:
    request = core.cancel_stop(s)
    [frame] = core.take_frames()
    assert isinstance(frame, m.CancelStopOrder) and frame.stop_order_id == s.stop_order_id
    assert s.state is StopState.PENDING_CANCEL and not request.done
    core.take_events()
    return frame


def test_a_cancel_ends_the_stop_whichever_answers_come_in_whichever_order() -> None:
    for answers in (["resp"], ["ack"], ["ack", "resp"], ["resp", "ack"], ["resp", "resp", "ack", "ack"]):
        core = OmsCore()
        s = active(core)
        frame = _cancel(core, s)
        request = s.cancel_request
        assert request is not None
        for answer in answers:
            core.on_reply(resp("S1", "CANCELLED", qty="0") if answer == "resp" else ack_of(frame))
        events = core.take_events()
        assert s.state is StopState.CANCELLED, answers
        assert request.done and request.status == "CANCELLED"
        assert [e.state for e in events if isinstance(e, StopUpdated)] == [StopState.CANCELLED]
        assert sum(isinstance(e, StopRequestFinished) for e in events) == 1
        assert s.quantity == Decimal(1)  # the cancel's quantity 0 is not the stop's size
        assert core.stops.stops() == []
        check(core)


def test_no_such_order_is_never_a_cancel() -> None:
    core = OmsCore()
    s = active(core)
    request = core.cancel_stop(s)
    core.on_reply(resp("S1", "NO_SUCH_ORDER", qty="0"))
    assert s.state is StopState.UNKNOWN and s.needs_settlement
    assert request.done and request.status == "NO_SUCH_ORDER"
    assert core.stops.stops() == [s]  # still counted live: the kill switch must not call it clean
    check(core)


def test_a_refused_cancel_goes_back_to_active_by_report_or_err() -> None:
    core = OmsCore()
    s = active(core)
    request = core.cancel_stop(s)
    core.take_frames()
    core.on_reply(resp("S1", "REJECTED"))
    assert s.state is StopState.ACTIVE and request.status == "REJECTED"
    frame = _cancel(core, s)
    core.on_reply(m.Err(error_code=ErrorCode.RATE_LIMITED, incoming_message=codec.incoming_echo(frame)))
    assert s.state is StopState.ACTIVE and s.cancel_request is None
    check(core)


def test_a_lost_cancel_is_owed_and_sent_again_once_the_stop_shows_staged() -> None:
    core = OmsCore()
    s = active(core)
    request = core.cancel_stop(s)
    core.take_frames()
    core.connection_lost()
    assert request.done and request.status == "DISCONNECTED"
    assert s.state is StopState.UNKNOWN and s.cancel_owed
    diff = settle_stops(core, core.seq, m.AllOrdersResponse(stop_orders=(push("S1"),)))
    assert len(diff.cancels_resent) == 1
    assert isinstance(core.take_frames()[0], m.CancelStopOrder)
    assert s.state is StopState.PENDING_CANCEL


def test_cancel_before_the_id_is_refused_with_nothing_sent() -> None:
    core = OmsCore()
    s = stop(core)
    core.take_frames()
    try:
        core.cancel_stop(s)
    except Exception as exc:  # InvalidArgument
        assert "stop_order_id" in str(exc)
    else:
        raise AssertionError("cancel of a stop with no id went through")
    assert core.take_frames() == []


# ---------------------------------------------------------------------- trigger races


def test_trigger_racing_a_cancel_no_such_order_after_the_fill_leaves_it_triggered() -> None:
    core = OmsCore()
    s = active(core)
    request = core.cancel_stop(s)
    core.on_reply(triggered_fill("M1", "t1"))  # the market order it became, new id, type STOP_LOSS
    assert s.state is StopState.TRIGGERED and s.order is not None and s.order.order_id == "M1"
    assert request.done  # answered by the trigger: nothing to wait for
    core.on_reply(resp("S1", "NO_SUCH_ORDER", qty="0"))
    assert s.state is StopState.TRIGGERED
    assert s.order.filled_quantity == Decimal(1)
    check(core)


def test_a_cancel_ack_then_proof_that_it_had_fired_moves_it_to_triggered() -> None:
    core = OmsCore()
    s = active(core)
    frame = _cancel(core, s)
    core.on_reply(ack_of(frame))
    assert s.state is StopState.CANCELLED
    core.on_reply(triggered_fill("M1", "t1"))
    assert s.state is StopState.TRIGGERED and s.order is not None
    check(core)


def test_a_report_under_the_stop_id_with_fills_is_the_order_it_became_counted_once() -> None:
    core = OmsCore()
    s = active(core)
    filled = m.OrderResponse(order_id="S1", symbol=SYMBOL, status=OrderStatus.FILLED, side=Side.SELL,
                             type=SL, time_in_force=TimeInForce.IOC, quantity=Decimal(1),
                             price=Decimal(180), quantity_remaining=Decimal(0))
    core.on_reply(filled)
    assert s.state is StopState.TRIGGERED and s.order is not None
    order = s.order
    for _ in range(2):
        core.on_reply(triggered_fill("S1", "t1"))
    assert order.filled_quantity == Decimal(1) and order.fill_total == Decimal(1)
    assert sum(isinstance(e, FillReceived) for e in core.take_events()) == 1
    assert core.tracker.by_order_id("S1") is order and core.stops.by_id("S1") is s
    check(core)


def test_the_triggered_order_is_linked_by_client_id_when_it_carries_the_stops() -> None:
    core = OmsCore()
    s = active(core, cid="sl-7")
    core.on_reply(triggered_fill("M5", "t5", cid="sl-7", order_type=OrderType.MARKET))
    assert s.state is StopState.TRIGGERED and s.order is not None and s.order.order_id == "M5"


def test_an_unrelated_market_order_does_not_trigger_a_stop() -> None:
    core = OmsCore()
    s = active(core)
    core.on_reply(triggered_fill("X1", "t9", cid="other", order_type=OrderType.MARKET))
    assert s.state is StopState.ACTIVE and s.order is None


# ---------------------------------------------------------------------- modify


def test_modify_by_report_or_by_ack_takes_the_new_trigger() -> None:
    for answer in ("resp", "ack", "both"):
        core = OmsCore()
        s = active(core)
        request = core.modify_stop(s, Decimal("175"), None)
        [frame] = core.take_frames()
        assert isinstance(frame, m.ModifyStopOrder)
        assert (frame.price, frame.quantity, frame.side, frame.order_type) == (Decimal(175), Decimal(1),
                                                                              Side.SELL, SL)
        if answer in ("resp", "both"):
            core.on_reply(resp("S1", "MODIFIED", trigger="175"))
        if answer in ("ack", "both"):
            core.on_reply(ack_of(frame))
        assert s.trigger_price == Decimal(175) and s.state is StopState.ACTIVE
        assert request.done and request.status == "MODIFIED"


def test_a_refused_modify_leaves_the_stop_active_and_unchanged() -> None:
    core = OmsCore()
    s = active(core)
    request = core.modify_stop(s, Decimal("175"), None)
    core.on_reply(resp("S1", "QUANTITY_GREATER_THAN_MAX_QUANTITY"))
    assert s.state is StopState.ACTIVE and s.trigger_price == Decimal(180)
    assert request.status == "QUANTITY_GREATER_THAN_MAX_QUANTITY"
    request = core.modify_stop(s, Decimal("175"), None)
    core.on_reply(resp("S1", "CANNOT_MODIFY_NO_SUCH_ORDER"))
    assert s.state is StopState.UNKNOWN and s.needs_settlement and request.done


# ---------------------------------------------------------------------- pushes


def test_duplicate_and_reordered_pushes_change_nothing() -> None:
    core = OmsCore()
    s = active(core)
    core.on_reply(push("S1", trigger="181", when="2026-01-01T00:00:02Z"))
    assert s.trigger_price == Decimal(181)
    core.take_events()
    core.on_reply(push("S1", trigger="181", when="2026-01-01T00:00:02Z"))
    core.on_reply(push("S1", trigger="179", when="2026-01-01T00:00:01Z"))  # older: reordered
    assert s.trigger_price == Decimal(181) and core.take_events() == []
    core.on_reply(resp("S1", "CANCELLED", qty="0"))
    core.on_reply(push("S1", trigger="181", when="2026-01-01T00:00:03Z"))  # late: must not revive
    assert s.state is StopState.CANCELLED
    check(core)


def test_malformed_stop_frames_leave_the_book_unchanged() -> None:
    core = OmsCore()
    s = active(core)
    for bad in (push("S1", qty="0"), push("S1", trigger="-1"), push("S2", kind=OrderType.LIMIT),
                push("", trigger="150")):
        core.on_reply(bad)
        events = core.take_events()
        assert any(isinstance(e, Unmatched) for e in events)
        assert not any(isinstance(e, StopUpdated) for e in events)
    assert len(core.stops) == 1 and s.trigger_price == Decimal(180) and s.quantity == Decimal(1)
    core.on_reply(push("S1", symbol="MSFT-USD"))  # a tracked id on another symbol
    assert s.symbol == SYMBOL and s.state is StopState.ACTIVE
    check(core)


# ---------------------------------------------------------------------- snapshots


def _stop_row(stop_id: str, **kw: object) -> m.OrderResponse:
    return resp(stop_id, "ACK", **kw)  # type: ignore[arg-type]


def test_a_snapshot_reads_stops_under_either_key_and_never_as_orders() -> None:
    for snapshot in (m.AllOrdersResponse(orders=(_stop_row("S1"),)),
                     m.AllOrdersResponse(stop_orders=(push("S1"),)),
                     m.AllOrdersResponse(orders=(_stop_row("S1"),), stop_orders=(push("S1"),))):
        core = OmsCore()
        s = stop(core)
        core.stop_lost(s, "TIMEOUT")
        apply_snapshot(core, core.seq, without_stops(snapshot))
        diff = settle_stops(core, core.seq, snapshot)
        assert s.state is StopState.ACTIVE and s.stop_order_id == "S1"
        assert list(core.tracker.orders()) == []
        assert diff.adopted == []
        check(core)


def test_a_stop_missing_from_a_complete_snapshot_is_cancelled_unless_it_fired() -> None:
    core = OmsCore()
    gone, fired = active(core, "S1", cid="a"), active(core, "S2", cid="b", trigger="170")
    trade = m.Trade(trade_id="t1", symbol=SYMBOL, price=Decimal(169), quantity=Decimal(1), side=Side.SELL,
                    order_id="M2", client_order_id="b", order_type=OrderType.MARKET, tif=TimeInForce.IOC)
    fence = core.seq
    empty = m.AllOrdersResponse()
    _, diff = settle_snapshot(core, fence, empty, [trade])
    assert fired.state is StopState.TRIGGERED and fired.order is not None
    assert fired.order.filled_quantity == Decimal(1)
    assert gone.state is StopState.CANCELLED and gone.last_status == "MISSING_FROM_SNAPSHOT"
    assert set(map(id, diff.ended)) == {id(gone), id(fired)}
    # the same trade again (the fill channel, a second resync): counted once
    core.on_reply(triggered_fill("M2", "t1", cid="b"))
    apply_snapshot(core, core.seq, empty, [trade])
    assert fired.order.filled_quantity == Decimal(1)
    check(core)


def test_a_partial_snapshot_settles_no_stop_for_being_missing_and_the_fence_holds() -> None:
    core = OmsCore()
    s = active(core)
    diff = settle_stops(core, core.seq, m.AllOrdersResponse(), complete=False)
    assert s.state is StopState.ACTIVE and diff.unconfirmed == [s]
    fence = core.seq
    later = stop(core, cid="late")  # placed after the snapshot was asked for
    settle_stops(core, fence, m.AllOrdersResponse(stop_orders=(push("S1"),)))
    assert later.state is StopState.PENDING


def test_a_stop_adopted_from_a_snapshot_is_settled_like_any_other() -> None:
    core = OmsCore()
    diff = settle_stops(core, core.seq, m.AllOrdersResponse(stop_orders=(push("X1", kind=TP),)))
    [adopted] = diff.adopted
    assert adopted.state is StopState.ACTIVE and adopted.kind is TP and adopted.adopted


# ---------------------------------------------------------------------- journal replay


def test_replay_rebuilds_stops_and_their_settlement_notes() -> None:
    live = OmsCore()
    s1 = stop(live, cid="a")
    s2 = stop(live, cid="b", trigger="170")
    add1, add2 = live.take_frames()
    records: list[tuple[str, bytes]] = [("out", codec.encode(add1)),
                                        ("out", codec.encode(add2))]
    for reply in (resp("S1", "ACK", cid="a"), resp("S2", "ACK", cid="b", trigger="170")):
        live.on_reply(reply)
        records.append(("in", codec.encode(reply)))
    request = live.cancel_stop(s2)
    [cancel] = live.take_frames()
    records.append(("out", codec.encode(cancel)))
    live.on_reply(resp("S2", "CANCELLED", cid="b", qty="0"))
    records.append(("in", codec.encode(resp("S2", "CANCELLED", cid="b", qty="0"))))
    assert request.done and s1.state is StopState.ACTIVE
    diff = settle_stops(live, live.seq, m.AllOrdersResponse())  # S1 gone
    note = stop_settlement_note(diff)
    assert note is not None
    records.append(("note", note))
    rebuilt = OmsCore()
    stats = replay(rebuilt, records)  # type: ignore[arg-type]
    assert stats.skipped == 0
    r1, r2 = rebuilt.stops.by_id("S1"), rebuilt.stops.by_id("S2")
    assert r1 is not None and r2 is not None
    assert (r1.state, r2.state) == (StopState.CANCELLED, StopState.CANCELLED)
    assert r1.last_status == "MISSING_FROM_SNAPSHOT"
    check(rebuilt)


def test_replay_after_a_crash_between_staging_and_trigger_leaves_the_stop_unknown_for_the_resync() -> None:
    live = OmsCore()
    stop(live)
    [add] = live.take_frames()
    rebuilt = OmsCore()
    replay(rebuilt, [("out", codec.encode(add))])
    [s] = rebuilt.stops.stops()
    assert s.state is StopState.UNKNOWN  # never REJECTED: the resync settles it
    apply_stop_note(rebuilt, b'{"stops_settled": []}')
    settle_stops(rebuilt, rebuilt.seq, m.AllOrdersResponse(stop_orders=(push("S1"),)))
    assert s.state is StopState.ACTIVE and s.stop_order_id == "S1"


def test_the_simulators_trigger_sequence_ack_of_type_stop_market_under_the_stop_id() -> None:
    """C40: the fired order has the stop's id and client id, type STOP_MARKET: ACK, fill, FILLED."""
    core = OmsCore()
    s = active(core)
    core.on_reply(m.OrderResponse(order_id="S1", symbol=SYMBOL, status=OrderStatus.ACK, side=Side.SELL,
                                  type=OrderType.STOP_MARKET, time_in_force=TimeInForce.IOC,
                                  quantity=Decimal(1), price=Decimal(180), quantity_remaining=Decimal(1),
                                  client_order_id="s1"))
    assert s.state is StopState.TRIGGERED and s.order is not None
    order = s.order
    core.on_reply(triggered_fill("S1", "t1", cid="s1", order_type=OrderType.STOP_MARKET))
    core.on_reply(triggered_fill("S1", "t1", cid="s1", order_type=OrderType.STOP_MARKET))
    assert order.filled_quantity == Decimal(1) and order.state.is_terminal
    check(core)


def test_a_refusal_with_no_request_in_flight_ends_an_active_stop() -> None:
    core = OmsCore()
    s = active(core)
    core.on_reply(resp("S1", "REJECTED"))  # fired with nothing left to close (C40)
    assert s.state is StopState.REJECTED
