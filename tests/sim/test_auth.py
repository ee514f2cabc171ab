"""Connection and HMAC authentication (qfex-api.md §2)."""

from __future__ import annotations

import time

import orjson
import pytest
import trio
from sim_helpers import connect
from simkit import PUB, PUB2, SECRET
from trio_websocket import ConnectionClosed, ConnectionRejected, open_websocket_url

from qfex_oms.protocol import encode, make_auth, sign
from qfex_oms.sim import open_simulator


async def test_good_auth_then_orders_work(venue):
    async with connect(venue, auth=False) as c:
        assert await c.auth()
        await c.subscribe("order_responses")
        ack = await c.order(side="BUY", price=100.0, quantity=1.0)
        assert ack["status"] == "ACK"
        assert ack["user_id"] == venue.user_id(PUB)


async def test_header_form_of_public_key(venue):
    async with connect(venue, PUB2, auth=False, header=True) as c:
        assert await c.auth()


async def test_bad_signature_is_refused_and_connection_stays_usable(venue):
    async with connect(venue, auth=False) as c:
        assert not await c.auth(secret="wrong")
        assert await c.auth()  # a retry with a fresh nonce still works


async def test_stale_timestamp_is_refused(venue):
    async with connect(venue, auth=False) as c:
        assert not await c.auth(unix_ts=int(time.time()) - 301)
        assert not await c.auth(unix_ts=int(time.time()) + 400)
        assert await c.auth(unix_ts=int(time.time()) - 200)


async def test_replayed_nonce_is_refused_across_connections(venue):
    async with connect(venue, auth=False) as c:
        assert await c.auth(nonce="c0ffee")
    async with connect(venue, auth=False) as c:
        assert not await c.auth(nonce="c0ffee")
    # Nonces are per account: the other account may use the same one.
    async with connect(venue, PUB2, auth=False) as c:
        assert await c.auth(nonce="c0ffee")


async def test_non_hex_or_long_nonce_is_refused(venue):
    async with connect(venue, auth=False) as c:
        assert not await c.auth(nonce="not-hex!")
        assert not await c.auth(nonce="a" * 101)


async def test_public_key_must_match_the_connection(venue):
    async with connect(venue, PUB2, auth=False) as c:
        ts = int(time.time())
        frame = {"type": "auth", "params": {"hmac": {
            "public_key": PUB, "nonce": "ab12", "unix_ts": ts, "signature": sign(SECRET, "ab12", ts)}}}
        await c.send_raw(orjson.dumps(frame).decode())
        assert await c.recv_key("authenticated") is False


async def test_jwt_is_not_supported(venue):
    async with connect(venue, auth=False) as c:
        await c.send("auth", jwt="eyJ...")
        assert await c.recv_key("authenticated") is False


@pytest.mark.parametrize("query", ["?api_key=nobody", ""])
async def test_unknown_or_missing_api_key_is_rejected_at_handshake(venue, query):
    with pytest.raises(ConnectionRejected) as info:
        async with open_websocket_url(venue.url + "/" + query):
            pass
    assert info.value.status_code == 401


async def test_requests_before_auth_are_refused(venue):
    async with connect(venue, auth=False) as c:
        await c.send("get_user_orders")
        err = await c.recv_key("err")
        assert err["error_code"] == "PermissionDenied"
        assert err["incoming_message"]["type"] == "get_user_orders"


async def test_second_auth_is_already_authenticated(venue):
    async with connect(venue, auth=False) as c:
        assert await c.auth()
        await c.send_raw(encode(make_auth(PUB, SECRET)).decode())
        err = await c.recv_key("err")
        assert err["error_code"] == "AlreadyAuthenticated"
        assert err["incoming_message"]["type"] == "auth"


async def test_auth_deadline_closes_unauthenticated_connection(autojump_clock):
    async with open_simulator(ping_interval=20.0) as venue:
        async with connect(venue, auth=False) as c:
            with pytest.raises(ConnectionClosed) as info:
                await c.ws.get_message()
            assert info.value.reason.code == 1008
            assert trio.current_time() >= 60.0
        # An authenticated connection is not closed, and survives several ping periods.
        async with connect(venue) as c:
            await trio.sleep(150)
            await c.send("get_user_orders")
            assert (await c.recv_key("all_orders_response", within=5))["orders"] == []


async def test_auth_deadline_with_a_short_real_setting():
    async with open_simulator(auth_deadline=0.2) as venue, connect(venue, auth=False) as c:
        with trio.fail_after(5), pytest.raises(ConnectionClosed):
            await c.ws.get_message()


async def test_pings_are_answered_and_keep_the_connection(venue):
    async with open_simulator(ping_interval=0.02, pong_timeout=1.0) as v, connect(v) as c:
        # Deliberate: ten ping periods pass to prove the connection is NOT closed meanwhile (bounded).
        await trio.sleep(0.2)
        await c.send("get_user_orders")
        assert await c.recv_key("all_orders_response")
