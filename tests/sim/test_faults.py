"""Fault injection through ``venue.faults``: latency, drop, duplicate, reorder, disconnect, races."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from sim_helpers import connect, rest
from simkit import PUB, PUB2
from trio_websocket import ConnectionClosed
from waiting import wait_until


async def test_latency_delays_only_the_targeted_account(venue):
    venue.faults.set_latency(0.2, public_key=PUB)
    async with connect(venue, PUB2) as fast:
        t0 = trio.current_time()
        await rest(fast, "BUY", "200", "1")
        assert trio.current_time() - t0 < 0.15
    async with connect(venue, PUB) as slow:
        t0 = trio.current_time()
        await rest(slow, "BUY", "200", "1")
        assert trio.current_time() - t0 >= 0.2
    venue.faults.clear(PUB)
    async with connect(venue, PUB) as slow:
        t0 = trio.current_time()
        await rest(slow, "BUY", "200", "1")
        assert trio.current_time() - t0 < 0.15


async def test_drop_next_response_of_a_kind(venue):
    async with connect(venue) as c:
        venue.faults.drop_next(1, kind="order_response", public_key=PUB)
        await c.send("get_user_orders")
        await c.recv_key("all_orders_response")  # other kinds pass
        await c.send("add_order", symbol="AAPL-USD", side="BUY", order_type="LIMIT",
                     order_time_in_force="GTC", quantity=1.0, price=200.0, client_order_id="lost")
        await c.expect_silence(0.1)
        ack = await rest(c, "BUY", "199", "1", client_order_id="seen")
        assert ack["client_order_id"] == "seen"
    assert [o.client_order_id for o in venue.open_orders(PUB)] == ["lost", "seen"]


async def test_global_drop_hits_every_account(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        venue.faults.drop_next(2)
        await a.send("get_user_orders")
        await b.send("get_user_orders")
        await a.expect_silence(0.05)
        await b.expect_silence(0.05)
        await a.send("get_user_orders")
        await a.recv_key("all_orders_response")


async def test_duplicate_next_response(venue):
    async with connect(venue) as c:
        venue.faults.duplicate_next(1, kind="order_response", public_key=PUB)
        ack = await rest(c, "BUY", "200", "1")
        assert await c.recv_key("order_response") == ack
        await c.expect_silence(0.05)


async def test_reorder_holds_one_frame_until_after_the_next(venue):
    async with connect(venue) as c:
        venue.faults.reorder_next(1, kind="order_response", public_key=PUB)
        await c.send("add_order", symbol="AAPL-USD", side="BUY", order_type="LIMIT",
                     order_time_in_force="GTC", quantity=1.0, price=200.0)
        await c.send("get_user_orders")
        first = await c.recv()
        second = await c.recv()
        assert list(first) == ["all_orders_response"]
        assert second["order_response"]["status"] == "ACK"


async def test_reordered_frame_is_flushed_if_nothing_follows(venue):
    async with connect(venue) as c:
        venue.faults.reorder_next(1, public_key=PUB)
        t0 = trio.current_time()
        ack = await rest(c, "BUY", "200", "1")
        assert ack["status"] == "ACK" and trio.current_time() - t0 >= 0.4


async def test_disconnect_after_n_frames(venue):
    async with connect(venue) as c:
        await c.send("cancel_on_disconnect", cancel_on_disconnect=True)
        await c.recv_key("ack")
        await rest(c, "BUY", "200", "1")
        venue.faults.disconnect_after(2, public_key=PUB)
        await c.send("get_user_orders")
        await c.send("get_user_orders")
        await c.send("get_user_orders")
        await c.recv_many(2)
        with pytest.raises(ConnectionClosed) as info:
            await c.recv()
        assert info.value.reason.code == 1011
    await wait_until(lambda: not venue.open_orders(PUB), 2.0, "cancel_on_disconnect to fire")


async def test_fill_races_cancel(venue):
    async with connect(venue, PUB) as a:
        first = await rest(a, "SELL", "200.5", "2", client_order_id="race")
        second = await rest(a, "SELL", "201", "1")
        venue.faults.fill_races_cancel(1, public_key=PUB)
        await a.send("cancel_order", order_id=first["order_id"], symbol="AAPL-USD",
                     cancel_order_id_type="order_id")
        filled = await a.recv_key("order_response")
        assert filled["status"] == "FILLED" and filled["quantity_remaining"] == 0
        fill = await a.recv_key("fill_response")
        assert fill["order_id"] == first["order_id"] and fill["quantity"] == 2
        assert fill["trade_id"] == filled["trade_id"] and fill["price"] == 200.5
        assert (await a.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
        # Armed once: the next cancel behaves normally.
        await a.send("cancel_order", order_id=second["order_id"], symbol="AAPL-USD",
                     cancel_order_id_type="order_id")
        assert (await a.recv_key("order_response"))["status"] == "CANCELLED"
    order = venue.order(first["order_id"])
    assert order is not None and order.status == "FILLED" and order.filled == Decimal(2)
    assert [t.order_id for t in venue.trades(PUB)] == [first["order_id"]]


async def test_fill_race_by_client_order_id(venue):
    async with connect(venue, PUB) as a:
        await rest(a, "BUY", "200", "1", client_order_id="r")
        await rest(a, "BUY", "199", "1", client_order_id="r")
        venue.faults.fill_races_cancel(1)
        await a.send("cancel_order", order_id="r", symbol="AAPL-USD",
                     cancel_order_id_type="client_order_id")
        frames = await a.recv_many(5)
        assert [f.get("order_response", {}).get("status") for f in frames] == [
            "FILLED", None, "FILLED", None, "NO_SUCH_ORDER"]
    assert venue.open_orders(PUB) == []


async def test_rate_limit_next_refuses_only_what_it_names(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        order = await rest(a, "SELL", "200.5", "1")
        venue.faults.rate_limit_next(1, "cancel_order", public_key=PUB)
        await rest(a, "SELL", "201", "1")  # another type goes through
        await rest(b, "SELL", "202", "1")  # and so does another account
        cancel = {"order_id": order["order_id"], "symbol": "AAPL-USD", "cancel_order_id_type": "order_id"}
        await a.send("cancel_order", **cancel)
        err = await a.recv_key("err")
        assert err["error_code"] == "RateLimited" and err["retry_after_secs"] == 0
        assert err["incoming_message"] == {"type": "cancel_order", "params": cancel}
        assert venue.order(order["order_id"]).is_open  # refused: not executed
        await a.send("cancel_order", **cancel)  # armed once
        assert (await a.recv_key("order_response"))["status"] == "CANCELLED"
