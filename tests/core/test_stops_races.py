"""Races the stop-order machine (test_stops_stateful.py) found, written out synchronously.

All three come from the ``type`` style: the order a fired stop becomes has an id of its own, no
client id, and only its type (STOP_LOSS / TAKE_PROFIT) says it came from a stop. Its FILLED report
looks like a stop's answer to the core (a stop's type, the stop's side, trigger and size), and used
to be taken for the answer to the ``add_order`` of whichever pending stop it fitted first: that
stop was bound to the market order's id and TRIGGERED by it, whether it had fired, been refused, or
never been staged. A fill report never answers a stop's ``add_order`` (a stop has no fills): it is
the fired order's, adopted as an order, and linked to a stop only when exactly one stop can be it.
"""

from __future__ import annotations

from decimal import Decimal

import orjson
from corekit import SYMBOL

from qfex_oms.core import OmsCore
from qfex_oms.core.stop_snapshot import STOP_NOTE_KEY, apply_stop_note, settle_snapshot
from qfex_oms.core.stops import StopOrder, StopState
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus, OrderType, Side, TimeInForce

SL = OrderType.STOP_LOSS
TRIGGER, QTY = Decimal(170), Decimal(1)


def place(core: OmsCore, cid: str) -> StopOrder:
    s = core.place_stop(SYMBOL, Side.SELL, SL, QTY, TRIGGER, cid)
    core.take_frames()
    return s


def ack(stop_id: str, cid: str) -> m.OrderResponse:
    return m.OrderResponse(order_id=stop_id, symbol=SYMBOL, status=OrderStatus.ACK, side=Side.SELL, type=SL,
                           time_in_force=TimeInForce.GTC, quantity=QTY, price=TRIGGER,
                           quantity_remaining=QTY, client_order_id=cid)


def refusal(cid: str) -> m.OrderResponse:
    return m.OrderResponse(order_id="", symbol=SYMBOL, status=OrderStatus.INVALID_STOPLOSS_PRICE,
                           side=Side.SELL, type=SL, price=TRIGGER, quantity=QTY, client_order_id=cid)


def filled(order_id: str) -> m.OrderResponse:
    """The fired order's report, as the ``type`` style marks it: its own id, no client id."""
    return m.OrderResponse(order_id=order_id, symbol=SYMBOL, status=OrderStatus.FILLED, side=Side.SELL,
                           type=SL, time_in_force=TimeInForce.IOC, quantity=QTY, price=TRIGGER,
                           quantity_remaining=Decimal(0), client_order_id="")


def fill(order_id: str, trade_id: str) -> m.FillResponse:
    return m.FillResponse(trade_id=trade_id, order_id=order_id, symbol=SYMBOL, price=TRIGGER, quantity=QTY,
                          side=Side.SELL, client_order_id="", remaining_quantity=Decimal(0),
                          order_type=SL, tif=TimeInForce.IOC)


def trade(order_id: str, trade_id: str) -> m.Trade:
    return m.Trade(trade_id=trade_id, symbol=SYMBOL, price=TRIGGER, quantity=QTY, side=Side.SELL,
                   order_id=order_id, client_order_id="", order_type=SL, tif=TimeInForce.IOC)


def state(s: StopOrder) -> StopState:
    """Read afresh (mypy would narrow ``s.state`` across the replies that move it)."""
    return s.state


def check(core: OmsCore) -> None:
    assert core.stops.check_invariants() == []
    assert core.tracker.check_invariants() == []


def test_a_fired_orders_report_is_not_the_answer_to_a_pending_identical_stops_add_order() -> None:
    """Machine: two identical stops acked, the first fires; its ACK and then the fired order's FILLED
    arrive before the second's ACK. The second was taken as "triggered without firing"."""
    core = OmsCore()
    a, b = place(core, "sc-1"), place(core, "sc-3")
    core.on_reply(ack("S-2", "sc-1"))
    core.on_reply(filled("M-5"))  # a fired (as M-5); b's ACK is still on the way
    assert state(b) is StopState.PENDING and b.stop_order_id is None and b.order is None
    order = core.tracker.by_order_id("M-5")
    assert order is not None and order.adopted
    # a pending stop may be staged too: either of the two can have fired, so neither is linked
    assert a.state is StopState.ACTIVE and a.order is None
    core.on_reply(ack("S-4", "sc-3"))
    assert state(b) is StopState.ACTIVE and b.stop_order_id == "S-4"
    core.on_reply(fill("M-5", "t-6"))
    assert order.fill_total == QTY and a.order is None and b.order is None
    check(core)


def test_a_stop_whose_refusal_is_on_the_way_never_becomes_the_fired_order() -> None:
    """Machine: a refused stop's refusal is still on the way when an acked sibling's fired order
    reports FILLED; the refused stop (first pending) was bound to the order and TRIGGERED."""
    core = OmsCore()
    refused, fired = place(core, "sc-1"), place(core, "sc-2")
    later = [place(core, "sc-6"), place(core, "sc-8")]
    core.on_reply(filled("M-4"))
    for s in (refused, fired, *later):
        assert s.state is StopState.PENDING and s.stop_order_id is None and s.order is None
    core.on_reply(refusal("sc-1"))
    assert refused.state is StopState.REJECTED and refused.order is None
    for stop_id, s in zip(("S-3", "S-7", "S-9"), (fired, *later), strict=True):
        core.on_reply(ack(stop_id, s.client_order_id))
        assert s.state is StopState.ACTIVE and s.stop_order_id == stop_id
    check(core)


def test_each_stop_keeps_only_its_own_fired_orders_fills() -> None:
    """Machine: a acked, b's ACK lost; a fires (M-5, t-6, reported), b fires (M-7, t-8, no report).
    The FILLED of M-5 bound b (pending) to M-5: b's order held a's trade. After a resync each
    stop holds its own order or none (too many stops fit either order: none is guessed)."""
    core = OmsCore()
    a, b = place(core, "sc-1"), place(core, "sc-3")
    core.on_reply(ack("S-2", "sc-1"))
    core.on_reply(filled("M-5"))
    assert b.order is None and b.stop_order_id is None
    core.on_reply(fill("M-5", "t-6"))
    core.on_reply(fill("M-7", "t-8"))
    truth = {a.local_id: {"t-6"}, b.local_id: {"t-8"}}
    for s in (a, b):
        assert s.order is None or {f.trade_id for f in s.order.fills or ()} <= truth[s.local_id]
    core.connection_lost()
    core.take_frames()
    settle_snapshot(core, core.seq, m.AllOrdersResponse(), [trade("M-5", "t-6"), trade("M-7", "t-8")])
    for s in (a, b):
        assert not s.state.is_live
        assert s.order is None or {f.trade_id for f in s.order.fills or ()} <= truth[s.local_id]
        assert s.state is StopState.TRIGGERED or s.last_status == "MISSING_FROM_SNAPSHOT"
    for order_id in ("M-5", "M-7"):
        order = core.tracker.by_order_id(order_id)
        assert order is not None and order.fill_total == QTY  # each trade counted once
    check(core)


def test_a_fired_order_still_links_to_the_only_stop_it_can_have_come_from() -> None:
    """The fix must not stop linking where it is provable: one stop of that kind and side."""
    core = OmsCore()
    a = place(core, "sc-1")
    core.on_reply(ack("S-2", "sc-1"))
    core.on_reply(filled("M-5"))
    assert a.state is StopState.TRIGGERED and a.order is not None and a.order.order_id == "M-5"
    core.on_reply(fill("M-5", "t-6"))
    assert a.order.fill_total == QTY
    check(core)


def test_a_fired_order_is_not_linked_while_a_sibling_is_pending() -> None:
    """One stop acked, an identical one not answered yet: the pending one may be staged and may be
    the one that fired. No link; the snapshot settles both (it shows the staged one)."""
    core = OmsCore()
    a, b = place(core, "sc-1"), place(core, "sc-3")
    core.on_reply(ack("S-2", "sc-1"))
    core.on_reply(fill("M-5", "t-6"))
    assert a.order is None and b.order is None
    assert a.state is StopState.ACTIVE and b.state is StopState.PENDING
    check(core)


def test_a_stop_known_to_have_fired_into_an_order_not_seen_yet_stays_a_candidate() -> None:
    """A replayed settlement note says a fired (into M-9, not in the book yet); b is its identical
    sibling, still staged. When M-9's fill comes, b is not the only stop it can be from: a is too."""
    core = OmsCore()
    a, b = place(core, "sc-1"), place(core, "sc-3")
    core.on_reply(ack("S-2", "sc-1"))
    core.on_reply(ack("S-4", "sc-3"))
    note = orjson.dumps({STOP_NOTE_KEY: [{"stop_order_id": "S-2", "state": "TRIGGERED", "status": None,
                                          "order_id": "M-9"}]})
    apply_stop_note(core, note)
    assert a.state is StopState.TRIGGERED and a.order is None
    core.on_reply(fill("M-9", "t-10"))
    assert b.state is StopState.ACTIVE and b.order is None  # b may have fired too: no guess
    assert a.order is None
    order = core.tracker.by_order_id("M-9")
    assert order is not None and order.adopted and order.fill_total == QTY
    check(core)
