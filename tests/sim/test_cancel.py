"""cancel_order (four modes), cancel_all_orders, subscriptions, cancel_on_disconnect, queries."""

from __future__ import annotations

import time

from sim_helpers import connect, rest
from simkit import PUB, PUB2
from waiting import wait_until


async def test_cancel_by_order_id(venue):
    async with connect(venue) as c:
        ack = await rest(c, "BUY", "200", "1", client_order_id="k")
        await c.send("cancel_order", order_id=ack["order_id"], symbol="AAPL-USD",
                     cancel_order_id_type="order_id")
        reply = await c.recv_key("order_response")
        assert reply["status"] == "CANCELLED" and reply["order_id"] == ack["order_id"]
        assert reply["client_order_id"] == "k" and reply["quantity_remaining"] == 1
        # Again: it is gone.
        await c.send("cancel_order", order_id=ack["order_id"], symbol="AAPL-USD",
                     cancel_order_id_type="order_id")
        gone = await c.recv_key("order_response")
        assert gone["status"] == "NO_SUCH_ORDER" and gone["order_id"] == ack["order_id"]
    assert venue.open_orders(PUB) == []
    assert venue.orders(PUB)[0].status == "CANCELLED"


async def test_cancel_by_order_id_needs_matching_symbol_and_owner(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        ack = await rest(a, "BUY", "200", "1")
        await a.send("cancel_order", order_id=ack["order_id"], symbol="TSLA-USD",
                     cancel_order_id_type="order_id")
        assert (await a.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
        await b.send("cancel_order", order_id=ack["order_id"], symbol="AAPL-USD",
                     cancel_order_id_type="order_id")
        assert (await b.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
    assert len(venue.open_orders(PUB)) == 1


async def test_cancel_by_client_order_id_ends_every_order_sharing_it_on_that_symbol(venue):
    async with connect(venue) as c:
        ids = {(await rest(c, "BUY", p, "1", client_order_id="dup"))["order_id"]
               for p in ("199", "198", "197")}
        other_symbol = await rest(c, "BUY", "100", "1", client_order_id="dup", symbol="TSLA-USD")
        await rest(c, "BUY", "196", "1", client_order_id="other")
        await c.send("cancel_order", order_id="dup", symbol="AAPL-USD",
                     cancel_order_id_type="client_order_id")
        replies = [await c.recv_key("order_response") for _ in range(3)]
        assert {r["order_id"] for r in replies} == ids
        assert {r["status"] for r in replies} == {"CANCELLED"}
        await c.expect_silence()
        await c.send("cancel_order", order_id="dup", symbol="AAPL-USD",
                     cancel_order_id_type="client_order_id")
        gone = await c.recv_key("order_response")
        assert gone["status"] == "NO_SUCH_ORDER" and gone["client_order_id"] == "dup"
    assert {o.order_id for o in venue.open_orders(PUB)} >= {other_symbol["order_id"]}
    assert len(venue.open_orders(PUB)) == 2


async def test_cancel_with_unknown_id_type_is_invalid_parameter(venue):
    async with connect(venue) as c:
        await c.send("cancel_order", order_id="x", symbol="AAPL-USD", cancel_order_id_type="nope")
        err = await c.recv_key("err")
        assert err["error_code"] == "InvalidParameter"
        assert err["incoming_message"]["type"] == "cancel_order"


async def test_cancel_all_acks_then_cancels_everything(venue):
    async with connect(venue) as c:
        ids = {(await rest(c, "BUY", "199", "1", symbol=s))["order_id"]
               for s in ("AAPL-USD", "TSLA-USD")}
        await c.send("cancel_all_orders")
        ack = await c.recv_key("ack")
        assert ack["incoming_message"] == {"type": "cancel_all_orders", "params": {}}
        replies = [await c.recv_key("order_response") for _ in range(2)]
        assert {r["order_id"] for r in replies} == ids
        assert {r["status"] for r in replies} == {"CANCELLED"}
        await c.send("cancel_all_orders")
        await c.recv_key("ack")
        await c.expect_silence()
    assert venue.open_orders(PUB) == []


async def test_order_responses_reach_other_subscribed_connections_only(venue):
    async with (
        connect(venue, PUB) as sender,
        connect(venue, PUB) as watcher,
        connect(venue, PUB, channels=("fills",)) as fills_only,
        connect(venue, PUB, channels=()) as silent,
        connect(venue, PUB2) as stranger,
    ):
        ack = await rest(sender, "BUY", "200", "1")
        assert (await watcher.recv_key("order_response"))["order_id"] == ack["order_id"]
        await stranger.order(side="SELL", price=200.0, quantity=1.0)
        await stranger.recv_many(2)
        for who in (sender, watcher):
            assert (await who.recv_key("order_response"))["status"] == "FILLED"
            await who.recv_key("fill_response")
        assert (await fills_only.recv_key("fill_response"))["order_id"] == ack["order_id"]
        for who in (fills_only, silent, stranger):
            await who.expect_silence(0.05)
        await watcher.send("unsubscribe", channels=["order_responses", "fills"])
        assert await watcher.recv_key("unsubscribed") == "order_responses"
        assert await watcher.recv_key("unsubscribed") == "fills"
        await rest(sender, "BUY", "200", "1")
        await watcher.expect_silence(0.05)


async def test_subscribe_unknown_channel_is_invalid_parameter(venue):
    async with connect(venue) as c:
        await c.send("subscribe", channels=["gossip"])
        assert (await c.recv_key("err"))["error_code"] == "InvalidParameter"
        await c.send("subscribe", channels=["positions", "balances"])
        assert [await c.recv_key("subscribed") for _ in range(2)] == ["positions", "balances"]


async def test_cancel_on_disconnect_cancels_account_orders_on_unexpected_drop(venue):
    async with connect(venue, PUB) as watcher:
        async with connect(venue, PUB) as flagged:
            await flagged.send("cancel_on_disconnect", cancel_on_disconnect=True)
            assert (await flagged.recv_key("ack"))["incoming_message"]["type"] == "cancel_on_disconnect"
            ack = await rest(watcher, "BUY", "200", "1")
            await flagged.recv_key("order_response")
            await flagged.ws.aclose(code=4000)  # not a normal closure: "drops unexpectedly"
        reply = await watcher.recv_key("order_response")
        assert reply["order_id"] == ack["order_id"] and reply["status"] == "CANCELLED"
    assert venue.open_orders(PUB) == []


async def test_cancel_on_disconnect_spares_a_graceful_close_and_can_be_disabled(venue):
    async with connect(venue, PUB) as watcher:
        async with connect(venue, PUB) as graceful:
            await graceful.send("cancel_on_disconnect", cancel_on_disconnect=True)
            await graceful.recv_key("ack")
            await rest(watcher, "BUY", "200", "1")
        async with connect(venue, PUB) as disabled:
            await disabled.send("cancel_on_disconnect", cancel_on_disconnect=True)
            await disabled.recv_key("ack")
            await disabled.send("cancel_on_disconnect", cancel_on_disconnect=False)
            await disabled.recv_key("ack")
            await disabled.ws.aclose(code=4000)
        await watcher.expect_silence(0.1)
    assert len(venue.open_orders(PUB)) == 1


async def test_venue_drop_connections_triggers_cancel_on_disconnect(venue):
    async with connect(venue, PUB2) as other, connect(venue, PUB) as c:
        await c.send("cancel_on_disconnect", cancel_on_disconnect=True)
        await c.recv_key("ack")
        await rest(c, "BUY", "200", "1")
        assert await venue.drop_connections(PUB) == 1
        await wait_until(lambda: not venue.open_orders(PUB), 2.0, "cancel_on_disconnect to fire")
        await other.expect_silence(0.05)


async def test_get_order_open_closed_and_unknown(venue):
    async with connect(venue) as c:
        ack = await rest(c, "BUY", "200", "1", client_order_id="q")
        await c.send("get_order", order_id=ack["order_id"], symbol="AAPL-USD")
        got = await c.recv_key("order_response")
        assert got["status"] == "ACK" and got["client_order_id"] == "q"
        await c.send("cancel_order", order_id=ack["order_id"], symbol="AAPL-USD",
                     cancel_order_id_type="order_id")
        await c.recv_key("order_response")
        await c.send("get_order", order_id=ack["order_id"], symbol="AAPL-USD")
        assert (await c.recv_key("order_response"))["status"] == "CANCELLED"
        await c.send("get_order", order_id="nope", symbol="AAPL-USD")
        assert (await c.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"


async def test_get_order_answers_even_without_subscription(venue):
    async with connect(venue, channels=()) as c:
        await c.send("get_order", order_id="nope", symbol="AAPL-USD")
        assert (await c.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"


async def test_get_user_orders_paging_and_symbol_filter(venue):
    async with connect(venue) as c:
        ids = [(await rest(c, "BUY", str(190 + i), "1"))["order_id"] for i in range(5)]
        tsla = await rest(c, "BUY", "100", "1", symbol="TSLA-USD")
        await c.send("get_user_orders", limit=2, offset=1, symbol="AAPL-USD")
        page = await c.recv_key("all_orders_response")
        assert [o["order_id"] for o in page["orders"]] == ids[1:3]
        assert page["twaps"] == []
        await c.send("get_user_orders")
        everything = await c.recv_key("all_orders_response")
        assert [o["order_id"] for o in everything["orders"]] == [*ids, tsla["order_id"]]
        await c.send("get_user_orders", limit=-1)
        assert (await c.recv_key("err"))["error_code"] == "InvalidParameter"


async def test_get_user_trades_filters(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        first = await rest(a, "BUY", "200", "1")
        second = await rest(a, "BUY", "199", "1")
        await b.order(side="SELL", order_type="MARKET", order_time_in_force="IOC", quantity=2.0)
        await b.recv_many(3)  # two fill_responses, then the sweep's one FILLED (C24)
        await a.recv_many(4)
        await a.send("get_user_trades")
        trades = await a.recv_key("user_trades_response")
        assert [t["order_id"] for t in trades] == [first["order_id"], second["order_id"]]
        await a.send("get_user_trades", order_id=second["order_id"])
        assert [t["price"] for t in await a.recv_key("user_trades_response")] == [199]
        await a.send("get_user_trades", limit=1, offset=1)
        assert len(await a.recv_key("user_trades_response")) == 1
        now = int(time.time())
        await a.send("get_user_trades", start_ts=now + 10)
        assert await a.recv_key("user_trades_response") == []
        await a.send("get_user_trades", start_ts=now - 10, end_ts=now)
        assert len(await a.recv_key("user_trades_response")) == 2
