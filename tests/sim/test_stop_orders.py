"""Stop orders in the simulator (qfex-api.md §14, CHOICES C39-C47), over real loopback websockets."""

from __future__ import annotations

from decimal import Decimal

from sim_helpers import BOTH, connect, rest
from simkit import PUB, PUB2
from stopkit import SYMBOL, frames_until, go_long, has, replies, stop

from qfex_oms.sim.stops import StopState

D = Decimal
WITH_STOPS = (*BOTH, "stop_orders")


def _position(venue) -> Decimal:
    return D(str(venue.position(PUB, SYMBOL).quantity))


async def test_bracket_take_profit_fires_when_the_mark_rises_and_cancels_the_stop_loss(venue):
    async with connect(venue, PUB, channels=WITH_STOPS) as a, connect(venue, PUB2) as b:
        frames = await go_long(a, b, take_profit=110, stop_loss=90, client_order_id="br-1")
        (tp,) = replies(frames, status="ACK", type="TAKE_PROFIT")
        (sl,) = replies(frames, status="ACK", type="STOP_LOSS")
        # Staged on the parent's fill, sized to it, closing it (SELL), carrying its client id (C39).
        assert (tp["side"], tp["price"], tp["quantity"], tp["client_order_id"]) == ("SELL", 110, 1, "br-1")
        assert (sl["side"], sl["price"]) == ("SELL", 90)
        assert {s.stop_order_id for s in venue.stops(PUB)} == {tp["order_id"], sl["order_id"]}
        parent_id = replies(frames, status="FILLED")[0]["order_id"]
        assert all(s.parent_order_id == parent_id for s in venue.stops(PUB))
        await rest(b, "BUY", "109", "1")  # liquidity for the take-profit's market order
        venue.set_mark(SYMBOL, "110")
        fired = await frames_until(a, lambda fs: bool(replies(fs, status="FILLED", order_id=tp["order_id"]))
                                   and bool(replies(fs, status="CANCELLED", order_id=sl["order_id"])))
    # The take-profit became a market order under its own id (C40) whose fill is an ordinary fill.
    (ack,) = replies(fired, status="ACK", order_id=tp["order_id"])
    assert (ack["type"], ack["time_in_force"]) == ("STOP_MARKET", "IOC")
    assert (ack["side"], ack["quantity"]) == ("SELL", 1)
    (fill,) = replies(fired, "fill_response", order_id=tp["order_id"])
    assert (fill["price"], fill["quantity"], fill["order_type"]) == (109, 1, "STOP_MARKET")
    assert _position(venue) == 0
    assert venue.stops(PUB) == []
    states = {s.stop_order_id: s.state for s in venue.stops(PUB, open_only=False)}
    assert states == {tp["order_id"]: StopState.TRIGGERED, sl["order_id"]: StopState.CANCELLED}
    assert venue.order(tp["order_id"]).filled == 1


async def test_bracket_stop_loss_fires_when_the_mark_falls(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        frames = await go_long(a, b, take_profit=110, stop_loss=90)
        (tp,) = replies(frames, status="ACK", type="TAKE_PROFIT")
        (sl,) = replies(frames, status="ACK", type="STOP_LOSS")
        await rest(b, "BUY", "89", "1")
        venue.set_mark(SYMBOL, "95")  # between the two triggers: nothing fires
        assert len(venue.stops(PUB)) == 2
        venue.set_mark(SYMBOL, "89.5")
        fired = await frames_until(a, lambda fs: bool(replies(fs, status="FILLED", order_id=sl["order_id"]))
                                   and bool(replies(fs, status="CANCELLED", order_id=tp["order_id"])))
    assert replies(fired, "fill_response", order_id=sl["order_id"])[0]["price"] == 89
    assert _position(venue) == 0 and venue.stops(PUB) == []


async def test_without_a_pinned_mark_the_last_trade_fires_a_stop(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b, quantity="2")
        sl = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        assert sl["status"] == "ACK" and sl["type"] == "STOP_LOSS" and sl["price"] == 95
        await rest(b, "BUY", "94", "2")
        # A trade at 94 (our own sale) moves the mark below the trigger.
        await a.send("add_order", symbol=SYMBOL, side="SELL", order_type="LIMIT", order_time_in_force="IOC",
                     quantity=1, price=94)
        await frames_until(a, has(status="FILLED", order_id=sl["order_id"]))
    assert _position(venue) == 0


async def test_a_fired_stop_with_no_liquidity_ends_cancelled_like_any_market_order(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)
        sl = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        venue.set_mark(SYMBOL, "90")
        frames = await frames_until(a, has(status="CANCELLED", order_id=sl["order_id"]))
    assert replies(frames, status="ACK", order_id=sl["order_id"])[0]["type"] == "STOP_MARKET"
    assert _position(venue) == 1  # nothing traded


async def test_cancel_stop_answers_ack_then_cancelled_and_not_found_afterwards(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)
        sl = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        await a.send("cancel_stop_order", stop_order_id=sl["order_id"])
        ack = await a.recv_key("ack")
        echo = {"type": "cancel_stop_order", "params": {"stop_order_id": sl["order_id"]}}
        assert ack["incoming_message"] == echo
        cancelled = await a.recv_key("order_response")
        assert (cancelled["order_id"], cancelled["status"]) == (sl["order_id"], "CANCELLED")
        assert (cancelled["type"], cancelled["price"]) == ("STOP_LOSS", 95)
        assert cancelled["quantity"] == 0 and cancelled["quantity_remaining"] == 0
        assert venue.stops(PUB) == []
        # Again: not found, and no ack (C43).
        await a.send("cancel_stop_order", stop_order_id=sl["order_id"])
        again = await a.recv_key("order_response")
        assert (again["order_id"], again["status"]) == (sl["order_id"], "NO_SUCH_ORDER")
        await a.send("cancel_stop_order", stop_order_id="no-such-stop")
        assert (await a.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"


async def test_cancel_and_modify_of_a_stop_that_already_fired(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)
        sl = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        await rest(b, "BUY", "94", "1")
        venue.set_mark(SYMBOL, "94")
        await frames_until(a, has(status="FILLED", order_id=sl["order_id"]))
        await a.send("cancel_stop_order", stop_order_id=sl["order_id"])
        assert (await a.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
        await a.send("modify_stop_order", stop_order_id=sl["order_id"], symbol=SYMBOL, price=93, quantity=1)
        answer = await a.recv_key("order_response")
        assert (answer["order_id"], answer["status"]) == (sl["order_id"], "CANNOT_MODIFY_NO_SUCH_ORDER")
    assert venue.order(sl["order_id"]).filled == 1  # its fill stands


async def test_modify_stop_with_and_without_side_and_type(venue):
    async with connect(venue, PUB, channels=WITH_STOPS) as a, connect(venue, PUB2) as b:
        await go_long(a, b, quantity="2")
        tp = await stop(a, "SELL", "TAKE_PROFIT", "120", "1")
        await a.recv_key("stop_order_response")
        # The AsyncAPI / CLI shape.
        await a.send("modify_stop_order", stop_order_id=tp["order_id"], symbol=SYMBOL, price=125, quantity=2)
        assert (await a.recv_key("ack"))["incoming_message"]["type"] == "modify_stop_order"
        modified = await a.recv_key("order_response")
        assert (modified["status"], modified["price"], modified["quantity"]) == ("MODIFIED", 125, 2)
        push = await a.recv_key("stop_order_response")
        assert (push["stop_order_id"], push["price"], push["quantity"]) == (tp["order_id"], 125, 2)
        # The docs page's shape, price only.
        await a.send("modify_stop_order", stop_order_id=tp["order_id"], symbol=SYMBOL, side="SELL",
                     order_type="TAKE_PROFIT", price=130)
        await a.recv_key("ack")
        assert (await a.recv_key("order_response"))["price"] == 130
        await a.recv_key("stop_order_response")
        # side / order_type that do not match the stop: refused, unchanged (C44).
        await a.send("modify_stop_order", stop_order_id=tp["order_id"], symbol=SYMBOL, side="BUY",
                     order_type="TAKE_PROFIT", price=131)
        assert (await a.recv_key("order_response"))["status"] == "CANNOT_MODIFY_NO_SUCH_ORDER"
        # Larger than the position, or a trigger the mark (100) already crossed: refused.
        await a.send("modify_stop_order", stop_order_id=tp["order_id"], symbol=SYMBOL, price=130, quantity=3)
        assert (await a.recv_key("order_response"))["status"] == "REJECTED"
        await a.send("modify_stop_order", stop_order_id=tp["order_id"], symbol=SYMBOL, price=99, quantity=1)
        assert (await a.recv_key("order_response"))["status"] == "INVALID_TAKEPROFIT_PRICE"
    (live,) = venue.stops(PUB)
    assert (live.price, live.quantity) == (D("130"), D("2"))


async def test_a_stop_larger_than_the_position_is_refused(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        flat = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        assert flat["status"] == "REJECTED"
        await go_long(a, b)
        too_big = await stop(a, "SELL", "STOP_LOSS", "95", "1.5")
        assert too_big["status"] == "REJECTED" and too_big["type"] == "STOP_LOSS"
        # A BUY stop would grow a long position: nothing for it to close.
        wrong_way = await stop(a, "BUY", "TAKE_PROFIT", "90", "1")
        assert wrong_way["status"] == "REJECTED"
    assert venue.stops(PUB) == []
    assert [s.state for s in venue.stops(PUB, open_only=False)] == [StopState.REJECTED] * 3


async def test_a_trigger_on_the_wrong_side_of_the_mark_is_refused(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)  # mark: the last trade, 100
        assert (await stop(a, "SELL", "TAKE_PROFIT", "95", "1"))["status"] == "INVALID_TAKEPROFIT_PRICE"
        assert (await stop(a, "SELL", "STOP_LOSS", "105", "1"))["status"] == "INVALID_STOPLOSS_PRICE"
        off_tick = await stop(a, "SELL", "STOP_LOSS", "95.005", "1")
        assert off_tick["status"] == "INVALID_TICK_SIZE_PRECISION_PRICE"
        # A parent whose take-profit is below its own buy price is refused before it trades.
        parent = await a.order(side="BUY", price=101, quantity=1, take_profit=99)
        assert parent["status"] == "INVALID_TAKEPROFIT_PRICE"
        parent = await a.order(side="BUY", price=99, quantity=1, stop_loss=100)
        assert parent["status"] == "INVALID_STOPLOSS_PRICE"
    assert venue.stops(PUB) == [] and venue.open_orders(PUB) == []


async def test_cancel_all_orders_cancels_stops_too(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b, quantity="2")
        sl = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        tp = await stop(a, "SELL", "TAKE_PROFIT", "120", "1")
        resting = await rest(a, "BUY", "50", "1")
        await a.send("cancel_all_orders")
        await a.recv_key("ack")
        frames = await frames_until(a, lambda fs: len(replies(fs, status="CANCELLED")) == 3)
        assert {r["order_id"] for r in replies(frames, status="CANCELLED")} == {
            sl["order_id"], tp["order_id"], resting["order_id"]}
    assert venue.stops(PUB) == []


async def test_cancel_all_can_be_told_to_leave_stops(venue):
    venue.stop_rules.cancel_all_covers_stops = False  # the other reading of C46
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)
        sl = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        await a.send("cancel_all_orders")
        await a.recv_key("ack")
        await a.send("get_user_orders")
        listed = await a.recv_key("all_orders_response")
    assert [s.stop_order_id for s in venue.stops(PUB)] == [sl["order_id"]]
    assert [o["order_id"] for o in listed["orders"]] == [sl["order_id"]]


async def test_the_venue_can_refuse_to_cancel_one_stop(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b, quantity="2")
        stuck = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        other = await stop(a, "SELL", "STOP_LOSS", "94", "1")
        venue.faults.refuse_stop_cancel(stuck["order_id"], public_key=PUB)
        await a.send("cancel_stop_order", stop_order_id=stuck["order_id"])
        refused = await a.recv_key("order_response")  # no ack first (C47)
        assert (refused["order_id"], refused["status"]) == (stuck["order_id"], "REJECTED")
        await a.send("cancel_all_orders")
        await a.recv_key("ack")
        cancelled = await a.recv_key("order_response")
        assert (cancelled["order_id"], cancelled["status"]) == (other["order_id"], "CANCELLED")
        assert [s.stop_order_id for s in venue.stops(PUB)] == [stuck["order_id"]]
        venue.faults.clear(PUB)
        await a.send("cancel_stop_order", stop_order_id=stuck["order_id"])
        await a.recv_key("ack")
        assert (await a.recv_key("order_response"))["status"] == "CANCELLED"
    assert venue.stops(PUB) == []


async def test_cancel_on_disconnect_cancels_stops(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)
        await stop(a, "SELL", "STOP_LOSS", "95", "1")
        await a.send("cancel_on_disconnect", cancel_on_disconnect=True)
        await a.recv_key("ack")
        await venue.drop_connections(PUB)
        async with connect(venue, PUB) as again:
            await again.send("get_user_orders")
            listed = await again.recv_key("all_orders_response")
    assert listed["orders"] == [] and listed["stop_orders"] == []
    assert venue.stops(PUB) == []


async def test_a_resting_parent_stages_its_stops_on_its_first_fill_and_grows_them(venue):
    async with connect(venue, PUB, channels=WITH_STOPS) as a, connect(venue, PUB2) as b:
        parent = await rest(a, "BUY", "100", "2", take_profit=110, stop_loss=90, client_order_id="p-1")
        assert venue.stops(PUB) == []  # nothing staged before it trades (C39)
        await b.send("add_order", symbol=SYMBOL, side="SELL", order_type="LIMIT", order_time_in_force="IOC",
                     quantity=1, price=100)
        first = await frames_until(a, lambda fs: len(replies(fs, "stop_order_response")) == 2)
        assert {(r["type"], r["quantity"]) for r in replies(first, status="ACK")} == {
            ("TAKE_PROFIT", 1), ("STOP_LOSS", 1)}
        await b.send("add_order", symbol=SYMBOL, side="SELL", order_type="LIMIT", order_time_in_force="IOC",
                     quantity=1, price=100)
        second = await frames_until(a, lambda fs: len(replies(fs, "stop_order_response")) == 2)
        assert {(r["type"], r["quantity"]) for r in replies(second, status="MODIFIED")} == {
            ("TAKE_PROFIT", 2), ("STOP_LOSS", 2)}
    stops = venue.stops(PUB)
    shown = {(s.parent_order_id, s.client_order_id, s.quantity) for s in stops}
    assert shown == {(parent["order_id"], "p-1", 2)}


async def test_another_accounts_stop_cannot_be_cancelled_or_modified(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)
        sl = await stop(a, "SELL", "STOP_LOSS", "95", "1")
        await b.send("cancel_stop_order", stop_order_id=sl["order_id"])
        assert (await b.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
        await b.send("modify_stop_order", stop_order_id=sl["order_id"], symbol=SYMBOL, price=96, quantity=1)
        assert (await b.recv_key("order_response"))["status"] == "CANNOT_MODIFY_NO_SUCH_ORDER"
        await b.send("cancel_stop_order")
        assert (await b.recv_key("err"))["error_code"] == "InvalidParameter"
    assert [s.price for s in venue.stops(PUB)] == [D("95")]
