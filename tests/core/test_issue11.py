"""Issue 11 in the pure core: no double fill, no invented cancel, no lost cancel, no crash.

Each test is the synchronous shape of a race the issue reproduced over the wire: an adopted order's
FILLED report then its trade from a snapshot (1), a paged snapshot missing a resting order (2), a
cancel cut off by a disconnect (3), an ``err`` echoing ids of the wrong type (5), a reply naming
another symbol (10), zero, negative and conflicting fills (11).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from corekit import SYMBOL, ack, fill, place, resp
from structlog.testing import capture_logs

from qfex_oms.core import CancelIntent, FillReceived, OmsCore, OrderState, TwapState, apply_snapshot
from qfex_oms.core.replay import replay
from qfex_oms.core.snapshot import (
    SETTLED_MISSING,
    apply_settlement_note,
    settle_from_order_query,
    settlement_note,
)
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, ErrorCode, OrderStatus, Side

OTHER = "TSLA-USD"


def _trade(order_id: str, trade_id: str, qty: str = "1", *, symbol: str = SYMBOL, price: str = "200",
           cid: str = "theirs") -> m.Trade:
    return m.Trade(trade_id, symbol, Decimal(price), Decimal(qty), Side.BUY, order_id, fee=Decimal(0),
                   client_order_id=cid)


def _rows(*rows: m.OrderResponse, twaps: tuple[m.TwapResponse, ...] = ()) -> m.AllOrdersResponse:
    return m.AllOrdersResponse(orders=rows, twaps=twaps)


def _twap_row(twap_id: str, status: str = "ACTIVE", ctid: str = "tw-c") -> m.TwapResponse:
    return m.TwapResponse(twap_id=twap_id, symbol=SYMBOL, status=status, side=Side.BUY,
                          client_twap_id=ctid, total_quantity=Decimal(10), filled_quantity=Decimal(0),
                          total_num_orders=5, order_interval_secs=30, reduce_only=False)


def _cancels(core: OmsCore) -> list[tuple[str, CancelIdType]]:
    return [(f.order_id, f.cancel_order_id_type) for f in core.take_frames()
            if isinstance(f, m.CancelOrder)]


# --------------------------------------------------------------------------- 1. adopted double fill


def test_a_trade_already_counted_by_a_filled_report_does_not_grow_an_adopted_order(core: OmsCore) -> None:
    core.on_reply(resp("X1", "ACK", cid="theirs", qty="1", remaining="1"))  # placed elsewhere
    core.on_reply(resp("X1", "FILLED", cid="theirs", qty="1", remaining="0", trade_id="t1"))
    (order,) = core.tracker.orders()
    assert order.adopted and order.state is OrderState.FILLED and order.filled_quantity == 1
    # its fill_response was lost: the settler learns the trade from get_user_trades
    diff = apply_snapshot(core, core.seq, _rows(), [_trade("X1", "t1")])
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (1, 1, 0)
    assert [f.trade_id for f in order.fills or ()] == ["t1"] and len(diff.fills_added) == 1


def test_a_twap_childs_lost_fill_does_not_double_the_twaps_filled_quantity(core: OmsCore) -> None:
    twap = core.place_twap(SYMBOL, Side.BUY, Decimal(10), 5, 30, False, "tw-c")
    core.take_frames()
    core.on_reply(_twap_row("tw-1"))
    core.on_reply(resp("C1", "ACK", cid="twap:tw-1:1", qty="1", remaining="1"))
    core.on_reply(resp("C1", "FILLED", cid="twap:tw-1:1", qty="1", remaining="0", trade_id="t1"))
    assert twap.filled_quantity == 1
    apply_snapshot(core, core.seq, _rows(twaps=(_twap_row("tw-1"),)), [_trade("C1", "t1", cid="twap:tw-1:1")])
    (child,) = twap.children
    assert (child.quantity, child.filled_quantity) == (1, 1)
    assert twap.filled_quantity == 1


def test_trades_beyond_what_is_known_still_grow_an_order_adopted_from_a_trade(core: OmsCore) -> None:
    apply_snapshot(core, core.seq, _rows(), [_trade("X1", "t1", "1"), _trade("X1", "t2", "2")])
    (order,) = core.tracker.orders()
    assert (order.quantity, order.filled_quantity, order.state) == (3, 3, OrderState.FILLED)


# --------------------------------------------------------------------------- 2. partial snapshots


def test_a_partial_snapshot_settles_nothing_it_does_not_show(core: OmsCore) -> None:
    resting = place(core)
    ack(core, resting, "X1")
    lost = place(core, cid="c2")
    ack(core, lost, "X2")
    core.order_lost(lost, "TIMEOUT")
    diff = apply_snapshot(core, core.seq, _rows(), (), complete=False)
    assert resting.state is OrderState.OPEN and lost.state is OrderState.UNKNOWN and lost.needs_settlement
    assert diff.settled == [] and diff.ended == [] and settlement_note(diff) is None
    assert {o.local_id for o in diff.unconfirmed} == {resting.local_id, lost.local_id}


def test_a_partial_snapshot_still_applies_what_it_shows(core: OmsCore) -> None:
    order = place(core, qty="2")
    ack(core, order, "X1")
    core.order_lost(order, "TIMEOUT")
    diff = apply_snapshot(core, core.seq, _rows(resp("X1", "FILLED", qty="2", remaining="1")),
                          [_trade("X1", "t1", cid="c1")], complete=False)
    assert order.state is OrderState.OPEN and order.filled_quantity == 1 and diff.unconfirmed == []


def test_a_partial_snapshot_leaves_a_missing_twap_alone(core: OmsCore) -> None:
    twap = core.place_twap(SYMBOL, Side.BUY, Decimal(10), 5, 30, False, "tw-c")
    core.take_frames()
    core.on_reply(_twap_row("tw-1"))
    diff = apply_snapshot(core, core.seq, _rows(), (), complete=False)
    assert twap.state is TwapState.ACTIVE and diff.twaps_unconfirmed == [twap]


def test_an_order_query_showing_the_order_confirms_it_open(core: OmsCore) -> None:
    order = place(core, qty="3")
    ack(core, order, "X1")
    core.order_lost(order, "TIMEOUT")
    diff = settle_from_order_query(core, core.seq, order, _rows(resp("X1", "ACK", remaining="2")))
    assert order.state is OrderState.OPEN and not order.needs_settlement
    assert order.remaining_quantity == 2 and diff.confirmed_open == [order]


def test_an_order_query_without_the_order_settles_it_from_its_fills(core: OmsCore) -> None:
    gone = place(core, qty="3")
    ack(core, gone, "X1")
    core.on_reply(fill("X1", "1", "2", trade_id="t1"))
    diff = settle_from_order_query(core, core.seq, gone, _rows())
    assert (gone.state, gone.last_status, gone.filled_quantity) == (OrderState.CANCELLED, SETTLED_MISSING, 1)
    assert diff.settled == [gone] and diff.ended == [gone]
    note = settlement_note(diff)
    assert note is not None
    replayed = OmsCore()  # the journal records it: a replay ends the order the same way
    again = place(replayed, qty="3")
    ack(replayed, again, "X1")
    apply_settlement_note(replayed, note)
    assert again.state is OrderState.CANCELLED


def test_an_order_query_answered_by_a_final_order_response_uses_its_leaves(core: OmsCore) -> None:
    """The simulator (like QFEX's CLI) answers get_order with one order_response."""
    order = place(core, qty="1")
    ack(core, order, "X1")
    core.order_lost(order, "TIMEOUT")
    settle_from_order_query(core, core.seq, order, resp("X1", "FILLED", qty="1", remaining="0"))
    assert order.state is OrderState.FILLED
    other = place(core, cid="c2")
    ack(core, other, "X2")
    settle_from_order_query(core, core.seq, other, m.OrderResponse("X2", SYMBOL, OrderStatus.NO_SUCH_ORDER))
    assert other.state is OrderState.CANCELLED and other.last_status == SETTLED_MISSING


def test_an_order_query_respects_the_fence(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    fence = core.seq
    core.cancel(CancelIntent(order))  # a newer local action than the query
    core.take_frames()
    settle_from_order_query(core, fence, order, _rows())
    assert order.state is OrderState.PENDING_CANCEL


def test_a_row_for_another_symbol_does_not_answer_an_order_query(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    misnamed = _rows(resp("X1", "ACK", remaining="3", symbol=OTHER))
    diff = settle_from_order_query(core, core.seq, order, misnamed)
    assert order.state is OrderState.OPEN and diff.unconfirmed == [order] and diff.ended == []


# --------------------------------------------------------------------------- 3. owed cancels


@pytest.mark.parametrize("lose", ["send_failed", "disconnect", "timeout"])
def test_a_cancel_cut_off_is_sent_again_when_the_resync_finds_it_open(core: OmsCore, lose: str) -> None:
    order = place(core)
    ack(core, order, "X1")
    request = core.cancel(CancelIntent(order))
    core.take_frames()
    if lose == "disconnect":
        core.connection_lost()
    else:
        core.cancel_lost(request, "SEND_FAILED" if lose == "send_failed" else "TIMEOUT")
    assert order.state is OrderState.UNKNOWN and order.cancel_owed
    apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="3")), ())
    assert order.state is OrderState.PENDING_CANCEL, "back to a quiet OPEN although a cancel is owed"
    assert _cancels(core) == [("X1", CancelIdType.ORDER_ID)]
    core.on_reply(resp("X1", "CANCELLED", remaining="3"))
    assert order.state is OrderState.CANCELLED and not order.cancel_owed


def test_an_owed_cancel_is_moot_when_the_order_filled_meanwhile(core: OmsCore) -> None:
    order = place(core, qty="1")
    ack(core, order, "X1")
    core.cancel(CancelIntent(order))
    core.take_frames()
    core.connection_lost()
    apply_snapshot(core, core.seq, _rows(), [_trade("X1", "t1", cid="c1")])
    assert order.state is OrderState.FILLED and not order.cancel_owed and _cancels(core) == []


def test_a_withdrawn_cancel_owes_nothing(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    request = core.cancel(CancelIntent(order))
    core.take_frames()
    core.withdraw_cancel(request, "NOT_SENT")
    assert order.state is OrderState.OPEN and not order.cancel_owed
    apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="3")), ())
    assert order.state is OrderState.OPEN and _cancels(core) == []


def test_an_owed_cancel_survives_a_refusal_of_its_resend(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    core.cancel(CancelIntent(order))
    core.take_frames()
    core.connection_lost()
    apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="3")), ())
    assert _cancels(core) == [("X1", CancelIdType.ORDER_ID)]
    core.on_reply(resp("X1", "RATE_LIMITED", remaining="3"))
    assert order.state is OrderState.OPEN and order.cancel_owed
    apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="3")), ())
    assert order.state is OrderState.PENDING_CANCEL and _cancels(core) == [("X1", CancelIdType.ORDER_ID)]


def test_a_cancel_held_for_the_ack_is_bound_then_sent_after_the_resync(core: OmsCore) -> None:
    place(core, qty="1")
    order = place(core, qty="2")  # shares c1 with the first: its cancel waits for the ACK
    core.cancel(CancelIntent(order))
    assert core.take_frames() == []
    core.connection_lost()
    assert order.cancel_owed and order.order_id is None
    apply_snapshot(core, core.seq, _rows(resp("X2", "ACK", qty="2", remaining="2")), ())
    assert order.order_id == "X2" and order.state is OrderState.PENDING_CANCEL
    assert _cancels(core) == [("X2", CancelIdType.ORDER_ID)]


def test_an_owed_cancel_goes_out_on_a_late_ack(core: OmsCore) -> None:
    place(core, qty="1")
    order = place(core, qty="2")
    request = core.cancel(CancelIntent(order))
    core.cancel_lost(request, "TIMEOUT")  # held for the ACK, and the caller gave up waiting
    core.on_reply(resp("X2", "ACK", qty="2", remaining="2"))
    assert order.state is OrderState.PENDING_CANCEL and _cancels(core) == [("X2", CancelIdType.ORDER_ID)]


def test_an_order_query_showing_an_owed_order_open_cancels_it_again(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    core.cancel(CancelIntent(order))
    core.take_frames()
    core.connection_lost()
    apply_snapshot(core, core.seq, _rows(), (), complete=False)
    assert order.state is OrderState.UNKNOWN
    settle_from_order_query(core, core.seq, order, _rows(resp("X1", "ACK", remaining="3")))
    assert order.state is OrderState.PENDING_CANCEL and _cancels(core) == [("X1", CancelIdType.ORDER_ID)]


def test_an_owed_twap_cancel_is_sent_again(core: OmsCore) -> None:
    twap = core.place_twap(SYMBOL, Side.BUY, Decimal(10), 5, 30, False, "tw-c")
    core.take_frames()
    core.on_reply(_twap_row("tw-1"))
    core.cancel(CancelIntent(twap))
    core.take_frames()
    core.connection_lost()
    assert twap.state is TwapState.UNKNOWN and twap.cancel_owed
    apply_snapshot(core, core.seq, _rows(twaps=(_twap_row("tw-1"),)), ())
    assert twap.state is TwapState.PENDING_CANCEL and _cancels(core) == [("tw-1", CancelIdType.TWAP_ID)]
    core.on_reply(m.OrderResponse("tw-1", SYMBOL, OrderStatus.CANCELLED))
    assert twap.state is TwapState.CANCELLED and not twap.cancel_owed


def _journal(*records: tuple[str, m.Request | m.Reply]) -> list[tuple[str, bytes]]:
    return [(direction, codec.encode(message)) for direction, message in records]


def test_an_owed_cancel_survives_a_restart(core: OmsCore) -> None:
    add = m.AddOrder(SYMBOL, Side.BUY, m.OrderType.LIMIT, m.TimeInForce.GTC, Decimal(3), Decimal(200), "c1")
    records = _journal(("out", m.Subscribe(("order_responses", "fills"))), ("out", add),
                       ("in", resp("X1", "ACK", remaining="3")),
                       ("out", m.CancelOrder("X1", SYMBOL, CancelIdType.ORDER_ID)))
    replay(core, records)
    order = core.tracker.by_order_id("X1")
    assert order is not None and order.state is OrderState.UNKNOWN and order.cancel_owed
    apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="3")), ())
    assert order.state is OrderState.PENDING_CANCEL and _cancels(core) == [("X1", CancelIdType.ORDER_ID)]


def test_a_restart_after_the_answer_owes_nothing(core: OmsCore) -> None:
    add = m.AddOrder(SYMBOL, Side.BUY, m.OrderType.LIMIT, m.TimeInForce.GTC, Decimal(3), Decimal(200), "c1")
    records = _journal(("out", m.Subscribe(("order_responses", "fills"))), ("out", add),
                       ("in", resp("X1", "ACK", remaining="3")),
                       ("out", m.CancelOrder("X1", SYMBOL, CancelIdType.ORDER_ID)),
                       ("in", resp("X1", "RATE_LIMITED", remaining="3")))
    replay(core, records)
    order = core.tracker.by_order_id("X1")
    assert order is not None and order.state is OrderState.OPEN and not order.cancel_owed


# --------------------------------------------------------------------------- 5. err echoes of the wrong type


@pytest.mark.parametrize("params", [
    {"type": "add_order", "params": {"symbol": SYMBOL, "client_order_id": ["c1"]}},
    {"type": "add_order", "params": {"symbol": SYMBOL, "client_order_id": {"a": 1}}},
    {"type": "add_order", "params": {"symbol": [SYMBOL], "client_order_id": "c1"}},
    {"type": "add_twap", "params": {"symbol": SYMBOL, "client_twap_id": ["tw-c"]}},
    {"type": "cancel_order",
     "params": {"symbol": SYMBOL, "order_id": ["X1"], "cancel_order_id_type": "order_id"}},
    {"type": "cancel_order",
     "params": {"symbol": SYMBOL, "order_id": "X1", "cancel_order_id_type": ["order_id"]}},
    {"type": "modify_order", "params": {"symbol": SYMBOL, "order_id": {"x": 1}}},
    {"type": ["add_order"], "params": {"symbol": SYMBOL, "client_order_id": "c1"}},
    {"type": {"k": 1}, "params": []},
])
def test_an_err_echoing_ids_of_the_wrong_type_matches_nothing(core: OmsCore, params: dict) -> None:
    order = place(core)
    twap = core.place_twap(SYMBOL, Side.BUY, Decimal(10), 5, 30, False, "tw-c")
    core.take_frames()
    core.on_reply(m.Err(ErrorCode.INVALID_ORDER, "bad", params))
    assert order.state is OrderState.PENDING_NEW and twap.state is TwapState.PENDING_NEW
    assert core.tracker.check_invariants() == []


# --------------------------------------------------------------------------- 10. another symbol


def test_an_ack_naming_another_symbol_adopts_no_phantom(core: OmsCore) -> None:
    order = place(core)
    core.on_reply(resp("X1", "ACK", remaining="3", symbol=OTHER))  # our client id, the wrong symbol
    assert len(core.tracker) == 1 and order.state is OrderState.PENDING_NEW
    core.connection_lost()
    apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="3")), ())
    assert (order.order_id, order.state) == ("X1", OrderState.OPEN), "the resting order was cancelled"


def test_replies_naming_a_tracked_id_on_another_symbol_are_dropped(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    core.take_events()
    for reply in (resp("X1", "FILLED", remaining="0", symbol=OTHER, trade_id="t1"),
                  resp("X1", "CANCELLED", remaining="3", symbol=OTHER),
                  fill("X1", "3", "0", trade_id="t2", symbol=OTHER)):
        core.on_reply(reply)
    assert (order.state, order.filled_quantity, order.fills) == (OrderState.OPEN, 0, None)
    assert len(core.tracker) == 1
    assert not any(isinstance(e, FillReceived) for e in core.take_events())


def test_a_row_naming_a_tracked_id_on_another_symbol_neither_confirms_nor_settles(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    core.order_lost(order, "TIMEOUT")
    diff = apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="3", symbol=OTHER)),
                          [_trade("X1", "t1", symbol=OTHER, cid="c1")])
    assert order.state is OrderState.UNKNOWN and order.needs_settlement and order.fills is None
    assert diff.unconfirmed == [order] and len(core.tracker) == 1 and diff.ended == []


# --------------------------------------------------------------------------- 11. malformed fills


@pytest.mark.parametrize(("qty", "price"), [("0", "200"), ("-1", "200"), ("1", "0"), ("1", "-5")])
def test_a_fill_of_no_size_or_price_is_dropped(core: OmsCore, qty: str, price: str) -> None:
    order = place(core)
    ack(core, order, "X1")
    core.take_events()
    bad = fill("X1", qty, "3", trade_id="t1")
    bad.price = Decimal(price)
    with capture_logs() as logs:
        core.on_reply(bad)
    assert order.fills is None and order.filled_quantity == 0 and "t1" not in core.tracker.trade_ids
    assert core.take_events() == []
    assert any(entry["log_level"] == "warning" for entry in logs)
    apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="3")),
                   [_trade("X1", "t2", qty, price=price, cid="c1")])
    assert order.fills is None and order.state is OrderState.OPEN


def test_a_stranger_fill_of_no_size_adopts_nothing(core: OmsCore) -> None:
    core.on_reply(fill("X9", "0", "1", trade_id="t1", cid="theirs"))
    apply_snapshot(core, core.seq, _rows(), [_trade("X8", "t2", "0")])
    assert len(core.tracker) == 0


def test_a_duplicate_trade_id_with_other_numbers_is_a_warning(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    core.on_reply(fill("X1", "1", "2", trade_id="t1"))
    with capture_logs() as logs:
        core.on_reply(fill("X1", "2", "1", trade_id="t1"))
        apply_snapshot(core, core.seq, _rows(resp("X1", "ACK", remaining="2")),
                       [_trade("X1", "t1", "1", price="201", cid="c1")])
    assert order.filled_quantity == 1
    warnings = [e for e in logs if e["log_level"] == "warning" and e.get("trade_id") == "t1"]
    assert len(warnings) == 2, logs
    assert all("first" in w and "second" in w for w in warnings)


# --------------------------------------------------------------------------- found by the machine


def test_an_order_adopted_after_a_snapshot_was_requested_is_not_settled_by_it(core: OmsCore) -> None:
    fence = core.seq  # get_user_orders goes out; then a stranger's fill overtakes its answer
    core.on_reply(fill("X9", "1", "1", trade_id="t1", cid="theirs"))
    (order,) = core.tracker.orders()
    apply_snapshot(core, fence, _rows(), ())  # taken before the order existed
    assert order.state is OrderState.OPEN, "an order newer than the snapshot was settled as gone"


def test_a_partial_snapshot_does_not_conclude_filled_from_a_strangers_trades(core: OmsCore) -> None:
    diff = apply_snapshot(core, core.seq, _rows(), [_trade("X9", "t1", "1")], complete=False)
    (order,) = core.tracker.orders()  # its size is unknown: a row on another page may show it open
    assert order.state is OrderState.UNKNOWN and diff.unconfirmed == [order]
    settle_from_order_query(core, core.seq, order, _rows(resp("X9", "FILLED", cid="theirs", qty="3",
                                                              remaining="2")))
    assert (order.state, order.quantity, order.remaining_quantity) == (OrderState.OPEN, 3, 2)
