"""Rate limits (general and cancel buckets per account) and hostile input (qfex-api.md §4.9, §7)."""

from __future__ import annotations

import orjson
import pytest
import trio
from sim_helpers import connect, rest
from simkit import PUB, PUB2
from trio_websocket import ConnectionClosed

from qfex_oms.sim import RateLimitSettings, open_simulator


@pytest.fixture
async def limited_venue():
    limits = RateLimitSettings(units_per_second=10.0, capacity=5.0)
    async with open_simulator(rate_limits=limits, ping_interval=None) as v:
        yield v


async def test_rate_limit_general_bucket_is_per_account_across_connections(limited_venue):
    venue = limited_venue
    async with connect(venue, PUB) as a1, connect(venue, PUB) as a2, connect(venue, PUB2) as b:
        # Subscriptions cost 0.1 each: 0.2 spent per connection, 0.4 for PUB so far.
        for i in range(4):
            await rest(a1 if i % 2 else a2, "BUY", "200", "0.001")
            await (a2 if i % 2 else a1).recv_key("order_response")
        await a1.send("add_order", symbol="AAPL-USD", side="BUY", order_type="LIMIT",
                      order_time_in_force="GTC", quantity=1.0, price=200.0, client_order_id="x")
        err = await a1.recv_key("err")
        assert err["error_code"] == "RateLimited"
        assert err["incoming_message"]["params"]["client_order_id"] == "x"
        assert 0 < err["retry_after_secs"] <= 0.1
        # The other account has its own budget; cancels have their own bucket.
        await rest(b, "BUY", "200", "1")
        await a1.send("cancel_order", order_id="x", symbol="AAPL-USD",
                      cancel_order_id_type="client_order_id")
        assert (await a1.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
        await a2.recv_key("order_response")
        # Deliberate: waiting out the advertised retry_after is what is under test (<= 0.15 s).
        await trio.sleep(err["retry_after_secs"] + 0.05)
        await rest(a1, "BUY", "200", "1")


async def test_rate_limit_cancel_bucket(limited_venue):
    async with connect(limited_venue, PUB) as a:
        for _ in range(5):
            await a.send("cancel_order", order_id="x", symbol="AAPL-USD",
                         cancel_order_id_type="order_id")
            assert (await a.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
        await a.send("cancel_all_orders")
        assert (await a.recv_key("err"))["error_code"] == "RateLimited"
        await rest(a, "BUY", "200", "1")  # the general bucket is untouched


GARBAGE: list[tuple[str | bytes, str, bool]] = [
    # (frame, expected error code, incoming_message echoed?)
    ("not json", "InvalidJSONFormat", False),
    ("", "InvalidJSONFormat", False),
    ("[1, 2]", "InvalidJSONFormat", False),
    ("{}", "InvalidJSONFormat", False),
    ('{"type": 5}', "InvalidJSONFormat", False),
    ("[" * 5000, "InvalidJSONFormat", False),
    ('{"type": "frobnicate", "params": {}}', "InvalidJSONFormat", True),
    ('{"type": "add_order"}', "InvalidParameter", True),
    ('{"type": "add_order", "params": []}', "InvalidJSONFormat", True),
    ('{"type": "add_order", "params": {"symbol": "AAPL-USD", "side": "BUY", "order_type": "LIMIT",'
     ' "order_time_in_force": "GTC", "quantity": "abc", "price": 1}}', "InvalidParameter", True),
    ('{"type": "add_order", "params": {"symbol": "AAPL-USD", "side": "HOLD", "order_type": "LIMIT",'
     ' "order_time_in_force": "GTC", "quantity": 1, "price": 200}}', "InvalidParameter", True),
    ('{"type": "add_order", "params": {"symbol": 7, "side": "BUY", "order_type": "LIMIT",'
     ' "order_time_in_force": "GTC", "quantity": 1e999, "price": 200}}', "InvalidJSONFormat", False),
    ('{"type": "cancel_order", "params": {"order_id": null}}', "InvalidParameter", True),
    ('{"type": "get_user_trades", "params": {"limit": "lots"}}', "InvalidParameter", True),
    ('{"type": "subscribe", "params": {"channels": "fills"}}', "InvalidParameter", True),
    ('{"type": "subscribe", "params": {"channels": []}}', "InvalidParameter", True),
    ('{"type": "modify_order", "params": {"order_id": "x", "symbol": "AAPL-USD", "side": "BUY",'
     ' "order_type": "LIMIT", "price": true}}', "InvalidParameter", True),
    (b"\xff\xfe\x00binary", "InvalidJSONFormat", False),
]


async def test_garbage_gets_errors_and_nobody_else_notices(venue):
    async with connect(venue, PUB) as bad, connect(venue, PUB2) as good:
        for frame, code, echoed in GARBAGE:
            await bad.send_raw(frame)
            err = await bad.recv_key("err")
            assert err["error_code"] == code, (frame, err)
            assert (err["incoming_message"] is not None) == echoed, (frame, err)
            # The good client keeps trading between every piece of garbage.
            await good.send("get_user_orders")
            await good.recv_key("all_orders_response")
        await rest(bad, "BUY", "200", "1")  # the bad client's connection still works too


async def test_a_flood_of_garbage_before_auth_does_not_hurt_others(venue):
    async with connect(venue, PUB, auth=False) as bad, connect(venue, PUB2) as good:
        for _ in range(200):
            await bad.send_raw(orjson.dumps({"type": "add_order", "params": {"x": [1] * 50}}))
        for _ in range(200):
            assert (await bad.recv_key("err"))["error_code"] in {"InvalidParameter"}
        await rest(good, "BUY", "200", "1")
        assert await bad.auth()


async def test_oversized_message_closes_only_that_connection(venue):
    async with connect(venue, PUB2) as good:
        async with connect(venue, PUB) as bad:
            with pytest.raises(ConnectionClosed) as info:
                await bad.send_raw("x" * (2 * 1024 * 1024))
                await bad.recv()
            assert info.value.reason.code == 1009  # trio-websocket's max_message_size
        await rest(good, "BUY", "200", "1")
