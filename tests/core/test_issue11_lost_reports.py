"""Issue 11, what the seeded fault run found in the core: reports lost around a TWAP's end and a modify.

N1: a TWAP missing from a complete snapshot ended; QFEX lists only active TWAPs, so absence does
not say how. With no cancel that may have ended it unseen it completed, and its filled quantity is
its children's. N2: a lost MODIFIED left the old size in the book and ``quantity - leaves`` invented
fills; every report and snapshot row naming a size now carries it, with its own leaves. Kill switch:
the ``cancel_all_orders`` intent is durable (owed) like any cancel's.
"""

from __future__ import annotations

from decimal import Decimal

from corekit import SYMBOL, ack, place, resp

from qfex_oms.core import CancelIntent, OmsCore, Order, OrderState, Twap, TwapState, apply_snapshot
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, OrderStatus, OrderType, Side, TimeInForce

D = Decimal


def _twap(core: OmsCore, total: str = "2", num: int = 2, ctid: str = "tw-1") -> Twap:
    twap = core.place_twap(SYMBOL, Side.BUY, D(total), num, 30, False, ctid)
    core.take_frames()
    return twap


def _twap_resp(twap_id: str, status: str = "ACTIVE", *, total: str = "2", num: int = 2,
               filled: str = "0", ctid: str = "tw-1") -> m.TwapResponse:
    return m.TwapResponse(twap_id=twap_id, symbol=SYMBOL, status=status, side=Side.BUY,
                          client_twap_id=ctid, total_quantity=D(total), filled_quantity=D(filled),
                          total_num_orders=num, order_interval_secs=30, reduce_only=False)


def _child(twap_id: str, n: int, status: str, *, qty: str = "1", remaining: str = "1",
           order_id: str | None = None) -> m.OrderResponse:
    return m.OrderResponse(order_id=order_id or f"{twap_id}-c{n}", symbol=SYMBOL, status=OrderStatus(status),
                           side=Side.BUY, type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
                           quantity=D(qty), price=D(0), quantity_remaining=D(remaining),
                           client_order_id=f"twap:{twap_id}:{n}")


def _child_trade(twap_id: str, n: int, trade_id: str, qty: str = "1") -> m.Trade:
    return m.Trade(trade_id, SYMBOL, D("200"), D(qty), Side.BUY, f"{twap_id}-c{n}", fee=D(0),
                   client_order_id=f"twap:{twap_id}:{n}", order_type=OrderType.MARKET,
                   tif=TimeInForce.IOC)


def _empty() -> m.AllOrdersResponse:
    return m.AllOrdersResponse(orders=(), twaps=())


# --------------------------------------------------------------------------- N1: a TWAP's end


def test_a_twap_missing_with_no_cancel_sent_completed_with_its_childrens_fills(core: OmsCore) -> None:
    """The reproduction: 2 children, the first finds no liquidity, the rest of the reports are lost."""
    twap = _twap(core)
    core.on_reply(_twap_resp("T1"))
    core.on_reply(_child("T1", 1, "ACK"))
    core.on_reply(_child("T1", 1, "CANCELLED"))  # no liquidity: an IOC with nothing filled
    # child 2 filled 1 and the TWAP completed; every report of it was lost
    apply_snapshot(core, core.seq, _empty(), [_child_trade("T1", 2, "tr-1")])
    assert twap.state is TwapState.COMPLETED
    assert twap.filled_quantity == 1


def test_a_twap_gone_without_evidence_of_completion_is_cancelled(core: OmsCore) -> None:
    """No cancel of ours, but its last child unknown and nothing filled: another connection of the
    account may have cancelled it (test_a_twap_that_ran_while_away does so over the wire), so it is
    not claimed COMPLETED."""
    twap = _twap(core)
    core.on_reply(_twap_resp("T1"))
    core.on_reply(_child("T1", 1, "ACK"))
    apply_snapshot(core, core.seq, _empty())
    assert twap.state is TwapState.CANCELLED


def test_a_twap_cancel_answered_no_such_order_did_not_end_it(core: OmsCore) -> None:
    """A cancel that raced the TWAP's completion found nothing: the TWAP completed."""
    twap = _twap(core)
    core.on_reply(_twap_resp("T1"))
    core.cancel(CancelIntent(twap))
    core.take_frames()
    core.on_reply(m.OrderResponse(order_id="T1", symbol=SYMBOL, status=OrderStatus.NO_SUCH_ORDER))
    apply_snapshot(core, core.seq, _empty())
    assert twap.state is TwapState.COMPLETED


def test_a_twap_whose_cancel_was_lost_is_not_claimed_completed(core: OmsCore) -> None:
    """A cancel never answered may have ended it: then only its fills can say COMPLETED."""
    twap = _twap(core)
    core.on_reply(_twap_resp("T1"))
    core.cancel(CancelIntent(twap))
    core.take_frames()
    core.connection_lost()
    apply_snapshot(core, core.seq, _empty())
    assert twap.state is TwapState.CANCELLED


def test_a_twap_shown_active_after_its_lost_cancel_clears_the_doubt(core: OmsCore) -> None:
    twap = _twap(core)
    core.on_reply(_twap_resp("T1"))
    core.cancel(CancelIntent(twap))
    core.take_frames()
    core.connection_lost()
    apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=(), twaps=(_twap_resp("T1"),)))
    core.take_frames()  # the owed cancel, sent again
    core.on_reply(m.OrderResponse(order_id="T1", symbol=SYMBOL, status=OrderStatus.NO_SUCH_ORDER))
    apply_snapshot(core, core.seq, _empty())
    assert twap.state is TwapState.COMPLETED


def test_the_kill_switch_and_cancel_on_disconnect_may_have_ended_a_twap(core: OmsCore) -> None:
    killed, dropped = _twap(core, ctid="a"), _twap(core, ctid="b")
    core.on_reply(_twap_resp("TA", ctid="a"))
    core.on_reply(_twap_resp("TB", ctid="b"))
    core.cancel_all_sent()
    core.take_frames()
    assert killed.cancels_in_doubt and dropped.cancels_in_doubt
    other = _twap(core, ctid="c")
    core.on_reply(_twap_resp("TC", ctid="c"))
    core.connection_lost(cancel_on_disconnect=True)
    apply_snapshot(core, core.seq, _empty())
    assert {killed.state, dropped.state, other.state} == {TwapState.CANCELLED}


def test_a_twap_whose_last_child_is_known_completed_whatever_cancel_was_lost(core: OmsCore) -> None:
    twap = _twap(core)
    core.on_reply(_twap_resp("T1"))
    core.cancel(CancelIntent(twap))
    core.take_frames()
    core.connection_lost()
    apply_snapshot(core, core.seq, _empty(), [_child_trade("T1", 2, "tr-2")])
    assert twap.state is TwapState.COMPLETED and twap.filled_quantity == 1


def test_a_twap_whose_reports_were_all_lost_learns_its_id_from_a_child(core: OmsCore) -> None:
    """Both its twap_responses lost: its children name its id; the one id-less TWAP they fit is it."""
    twap = _twap(core)
    core.connection_lost()  # its answer never came: UNKNOWN, no id
    apply_snapshot(core, core.seq, _empty(), [_child_trade("T9", 1, "tr-1"), _child_trade("T9", 2, "tr-2")])
    assert twap.twap_id == "T9"
    assert twap.state is TwapState.COMPLETED and twap.filled_quantity == 2
    assert len(twap.children) == 2


def test_a_child_that_fits_two_id_less_twaps_binds_neither(core: OmsCore) -> None:
    first, second = _twap(core, ctid="a"), _twap(core, ctid="b")
    core.on_reply(_child("T9", 1, "ACK"))
    assert first.twap_id is None and second.twap_id is None
    core.on_reply(_twap_resp("T9", ctid="b"))  # the TWAP's own report decides, and takes its child
    assert second.twap_id == "T9" and [c.order_id for c in second.children] == ["T9-c1"]


def test_a_twap_cancel_by_client_id_answered_for_an_unknown_id_adopts_no_phantom(core: OmsCore) -> None:
    twap = _twap(core)
    core.connection_lost()  # the TWAP's answer was lost: no id
    core.cancel(CancelIntent(client_twap_id="tw-1", symbol=SYMBOL))
    assert [(f.order_id, f.cancel_order_id_type) for f in core.take_frames()
            if isinstance(f, m.CancelOrder)] == [("tw-1", CancelIdType.CLIENT_TWAP_ID)]
    core.on_reply(m.OrderResponse(order_id="T1", symbol=SYMBOL, status=OrderStatus.CANCELLED,
                                  side=Side.BUY, type=OrderType.MARKET, time_in_force=TimeInForce.IOC,
                                  quantity=D(2), price=D(0), quantity_remaining=D(2),
                                  client_order_id="tw-1"))
    assert list(core.tracker.orders()) == []
    assert twap.state is TwapState.CANCELLED and twap.twap_id == "T1"


# --------------------------------------------------------------------------- N2: a lost MODIFIED


def _modified_unheard(core: OmsCore, qty: str = "2") -> tuple[Order, str]:
    order = place(core, qty="3")
    order_id = ack(core, order)
    core.modify_order(order, None, D(qty))
    core.take_frames()
    core.connection_lost()  # the MODIFIED was lost; the modify is cut off
    return order, order_id


def test_a_snapshot_row_carries_the_size_of_a_modify_whose_answer_was_lost(core: OmsCore) -> None:
    """The reproduction: 3, modify to 2 (answer lost), reconcile, cancel: CANCELLED, filled 0."""
    order, order_id = _modified_unheard(core)
    row = resp(order_id, "MODIFIED", qty="2", remaining="2")
    apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=(row,), twaps=()))
    assert (order.quantity, order.remaining_quantity, order.filled_quantity) == (2, 2, 0)
    core.cancel(CancelIntent(order))
    core.take_frames()
    core.on_reply(resp(order_id, "CANCELLED", qty="2", remaining="2"))
    assert order.state is OrderState.CANCELLED and order.filled_quantity == 0


def test_a_cancelled_report_carries_the_size_of_a_modify_whose_answer_was_lost(core: OmsCore) -> None:
    order, order_id = _modified_unheard(core)
    core.cancel(CancelIntent(order))
    core.take_frames()
    core.on_reply(resp(order_id, "CANCELLED", qty="2", remaining="2"))
    assert order.state is OrderState.CANCELLED
    assert (order.quantity, order.filled_quantity) == (2, 0)


def test_a_filled_report_after_a_lost_modify_fills_the_new_size(core: OmsCore) -> None:
    """Venue: 2 after the modify, 1 filled, 1 rests. Not 3 - 1 = 2 filled."""
    order, order_id = _modified_unheard(core)
    core.on_reply(resp(order_id, "FILLED", qty="2", remaining="1", trade_id="t1"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (2, 1, 1)
    assert order.state is OrderState.OPEN


def test_a_filled_reports_quantity_is_not_taken_without_a_modify_in_doubt(core: OmsCore) -> None:
    """A FILLED report's quantity may be the fill's size on QFEX: it does not resize the order."""
    order = place(core, qty="3")
    order_id = ack(core, order)
    core.on_reply(resp(order_id, "FILLED", qty="1", remaining="2", trade_id="t1"))
    assert (order.quantity, order.filled_quantity) == (3, 1)


def test_a_stale_report_does_not_undo_a_modify(core: OmsCore) -> None:
    order = place(core, qty="3")
    order_id = ack(core, order)
    core.modify_order(order, None, D(2))
    core.take_frames()
    late = resp(order_id, "MODIFIED", qty="2", remaining="2")
    late.update_time = 20.0
    core.on_reply(late)
    stale = resp(order_id, "ACK", qty="3", remaining="3")
    stale.update_time = 10.0
    core.on_reply(stale)
    assert (order.quantity, order.remaining_quantity) == (2, 2)


def test_a_price_modify_whose_answer_was_lost_shows_in_the_next_report(core: OmsCore) -> None:
    order = place(core, qty="3")
    order_id = ack(core, order)
    core.modify_order(order, D("199"), None)
    core.take_frames()
    core.connection_lost()
    row = resp(order_id, "MODIFIED", qty="3", remaining="3")
    row.price = D("199")
    apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=(row,), twaps=()))
    assert order.price == D("199")


# --------------------------------------------------------------------------- the kill switch's intent


def test_the_kill_switchs_cancel_is_owed_when_the_connection_drops(core: OmsCore) -> None:
    order = place(core)
    order_id = ack(core, order)
    core.cancel_all_sent()
    core.take_frames()
    assert order.state is OrderState.PENDING_CANCEL
    core.connection_lost()  # the cancel_all_orders was lost with it
    assert order.cancel_owed
    diff = apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=(resp(order_id, "ACK", remaining="3"),),
                                                              twaps=()))
    assert diff.cancels_resent and order.state is OrderState.PENDING_CANCEL
    assert [(f.order_id, f.cancel_order_id_type) for f in core.take_frames()
            if isinstance(f, m.CancelOrder)] == [(order_id, CancelIdType.ORDER_ID)]


def test_the_kill_switchs_cancel_owes_nothing_once_answered(core: OmsCore) -> None:
    order = place(core)
    order_id = ack(core, order)
    core.cancel_all_sent()
    core.take_frames()
    core.on_reply(resp(order_id, "CANCELLED", remaining="3"))
    assert order.state is OrderState.CANCELLED and not order.cancel_owed


def test_a_no_such_order_for_a_twap_cancel_by_client_id_teaches_no_id(core: OmsCore) -> None:
    """NO_SUCH_ORDER echoes the client id sent in ``order_id``: that is no TWAP id."""
    twap = _twap(core)
    core.connection_lost()
    core.cancel(CancelIntent(client_twap_id="tw-1", symbol=SYMBOL))
    core.take_frames()
    core.on_reply(m.OrderResponse(order_id="tw-1", symbol=SYMBOL, status=OrderStatus.NO_SUCH_ORDER,
                                  client_order_id="tw-1"))
    assert twap.twap_id is None and list(core.tracker.orders()) == []
