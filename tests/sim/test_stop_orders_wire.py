"""Stop orders as a client written from QFEX's docs alone sees them: raw JSON frames over
trio-websocket, each reply checked against the documented field set (qfex-api.md §4.2, §14), and
both readings of where ``get_user_orders`` lists stops (CHOICES C45)."""

from __future__ import annotations

from datetime import datetime

import pytest
from sim_helpers import BOTH, connect
from simkit import PUB, PUB2
from stopkit import SYMBOL, frames_until, go_long, replies

from qfex_oms.sim.choices import StopListing

# qfex-api.md §14.3: StopOrder's fields, exactly.
STOP_ORDER_FIELDS = {"stop_order_id", "user_id", "symbol", "price", "quantity", "direction",
                     "stop_order_type", "client_order_id", "update_time"}
# §4.2: OrderResponse's schema; §14.5's cancel answer shows at least these.
ORDER_RESPONSE_FIELDS = {"order_id", "symbol", "status", "quantity", "price", "take_profit", "stop_loss",
                         "side", "type", "time_in_force", "user_id", "client_order_id",
                         "quantity_remaining", "update_time", "trade_id"}
CANCEL_EXAMPLE_FIELDS = {"order_id", "symbol", "status", "quantity", "price", "side", "type",
                         "time_in_force", "user_id", "client_order_id", "quantity_remaining"}


async def test_a_docs_only_client_sees_the_documented_shapes(venue):
    async with connect(venue, PUB, channels=()) as a, connect(venue, PUB2) as b:
        await a.send_raw('{"type": "subscribe", "params": {"channels": ["stop_orders"]}}')
        subscribed = await a.recv()
        assert subscribed == {"subscribed": "stop_orders"}
        await a.send_raw('{"type": "subscribe", "params": {"channels": ["order_responses", "fills"]}}')
        await a.recv_many(2)
        await go_long(a, b, quantity="2")
        # §14.2's frame, verbatim but for the trigger.
        await a.send_raw('{"type": "add_order", "params": {"symbol": "AAPL-USD", "side": "SELL", '
                         '"order_type": "TAKE_PROFIT", "order_time_in_force": "GTC", "quantity": 1, '
                         '"price": 200}}')
        ack = await a.recv_key("order_response")
        assert CANCEL_EXAMPLE_FIELDS <= set(ack) <= ORDER_RESPONSE_FIELDS
        assert (ack["status"], ack["type"], ack["price"], ack["side"]) == ("ACK", "TAKE_PROFIT", 200, "SELL")
        push = await a.recv_key("stop_order_response")
        assert set(push) == STOP_ORDER_FIELDS
        assert push["stop_order_id"] == ack["order_id"]
        assert (push["direction"], push["stop_order_type"], push["price"], push["quantity"]) == (
            "SELL", "TAKE_PROFIT", 200, 1)
        assert push["user_id"] == venue.user_id(PUB) and push["client_order_id"] == ""
        assert datetime.fromisoformat(push["update_time"]).tzinfo is not None  # an ISO date-time string
        # §14.6, the docs page's shape; then the AsyncAPI's.
        sid = ack["order_id"]
        await a.send_raw('{"type": "modify_stop_order", "params": {"stop_order_id": "' + sid + '", "symbol": '
                         '"AAPL-USD", "side": "SELL", "order_type": "TAKE_PROFIT", "quantity": 2, '
                         '"price": 201}}')
        assert set(await a.recv_key("ack")) == {"incoming_message"}
        modified = await a.recv_key("order_response")
        assert set(modified) <= ORDER_RESPONSE_FIELDS
        assert (modified["status"], modified["quantity"], modified["price"]) == ("MODIFIED", 2, 201)
        assert (await a.recv_key("stop_order_response"))["quantity"] == 2
        await a.send_raw('{"type": "modify_stop_order", "params": {"stop_order_id": "' + sid + '", "symbol": '
                         '"AAPL-USD", "price": 202, "quantity": 1}}')
        await a.recv_key("ack")
        assert (await a.recv_key("order_response"))["price"] == 202
        await a.recv_key("stop_order_response")
        # §14.5.
        await a.send_raw('{"type": "cancel_stop_order", "params": {"stop_order_id": "' + sid + '"}}')
        assert (await a.recv_key("ack"))["incoming_message"]["type"] == "cancel_stop_order"
        cancelled = await a.recv_key("order_response")
        assert CANCEL_EXAMPLE_FIELDS <= set(cancelled) <= ORDER_RESPONSE_FIELDS
        expected = {"order_id": sid, "symbol": "AAPL-USD", "status": "CANCELLED", "quantity": 0, "price": 202,
                    "side": "SELL", "type": "TAKE_PROFIT", "time_in_force": "GTC", "client_order_id": "",
                    "quantity_remaining": 0}
        assert {k: cancelled[k] for k in expected} == expected


async def test_stop_pushes_reach_only_subscribers_of_stop_orders(venue):
    async with connect(venue, PUB, channels=BOTH) as a, connect(venue, PUB2) as b, \
            connect(venue, PUB, channels=("stop_orders",)) as watcher:
        await go_long(a, b)
        await a.send("add_order", symbol=SYMBOL, side="SELL", order_type="STOP_LOSS",
                     order_time_in_force="GTC", quantity=1, price=95)
        stop_id = (await a.recv_key("order_response"))["order_id"]
        # The watcher (stop_orders only) gets the push, and no order_response; ``a`` gets no push:
        # the next frame it sees is the answer to its query.
        assert (await watcher.recv_key("stop_order_response"))["stop_order_id"] == stop_id
        await a.send("get_user_orders")
        assert "all_orders_response" in await a.recv()


@pytest.mark.parametrize("listing", list(StopListing))
async def test_get_user_orders_lists_stops_where_each_reading_looks(venue, listing):
    venue.stop_rules.listing = listing
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)
        await a.send("add_order", symbol=SYMBOL, side="SELL", order_type="STOP_LOSS",
                     order_time_in_force="GTC", quantity=1, price=95, client_order_id="sl-1")
        stop_id = (await a.recv_key("order_response"))["order_id"]
        resting = (await a.order(side="BUY", price=50, quantity=1))["order_id"]
        await a.send("get_user_orders")
        listed = await a.recv_key("all_orders_response")
        await a.send("get_order", symbol=SYMBOL, order_id=stop_id)
        single = await a.recv_key("order_response")
    rows = {o["order_id"]: o for o in listed["orders"]}
    in_orders = listing in (StopListing.ORDERS_KEY, StopListing.BOTH)
    in_stop_orders = listing in (StopListing.STOP_ORDERS_KEY, StopListing.BOTH)
    assert set(rows) == ({resting, stop_id} if in_orders else {resting})
    if in_orders:
        row = rows[stop_id]
        assert (row["type"], row["price"], row["status"]) == ("STOP_LOSS", 95, "ACK")
    stops = listed.get("stop_orders", [])
    assert [s["stop_order_id"] for s in stops] == ([stop_id] if in_stop_orders else [])
    if in_stop_orders:
        assert set(stops[0]) == STOP_ORDER_FIELDS and stops[0]["client_order_id"] == "sl-1"
    assert (single["order_id"], single["type"], single["status"]) == (stop_id, "STOP_LOSS", "ACK")


async def test_a_triggered_stop_trades_as_documented_frames(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await go_long(a, b)
        await a.send("add_order", symbol=SYMBOL, side="SELL", order_type="STOP_LOSS",
                     order_time_in_force="GTC", quantity=1, price=95)
        stop_id = (await a.recv_key("order_response"))["order_id"]
        await b.send("add_order", symbol=SYMBOL, side="BUY", order_type="LIMIT", order_time_in_force="GTC",
                     quantity=1, price=94)
        await b.recv_key("order_response")
        venue.set_mark(SYMBOL, "94.5")
        frames = await frames_until(a, lambda fs: bool(replies(fs, status="FILLED", order_id=stop_id)))
    for frame in frames:
        (key,) = frame
        if key == "order_response":
            assert set(frame[key]) <= ORDER_RESPONSE_FIELDS
    (fill,) = replies(frames, "fill_response")
    assert (fill["order_id"], fill["side"]) == (stop_id, "SELL")
    assert (fill["price"], fill["remaining_quantity"]) == (94, 0)
