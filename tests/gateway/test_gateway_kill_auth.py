"""Per-client cancel-all vs the account-wide kill; client auth as QFEX's; bad clients cut off."""

from __future__ import annotations

import time

import orjson
import pytest
import trio
from gwkit import ARB, MM, OPS, client, gateway_on
from simkit import PUB
from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url
from waiting import wait_until

from qfex_oms import AuthenticationError, OrderState
from qfex_oms.protocol import encode, make_auth
from qfex_oms.sim import Venue

SYM = "AAPL-USD"


async def _open(venue: Venue, sym: str = SYM) -> list[str]:
    return sorted(o.client_order_id for o in venue.open_orders(PUB, sym))


async def test_cancel_all_is_per_client_unless_the_key_may_kill_the_account(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, ARB) as arb, client(gw, OPS) as ops:
        for n in range(3):
            await mm.place_order(SYM, "BUY", "1", str(190 + n), client_order_id=f"m{n}")
            await arb.place_order(SYM, "SELL", "1", str(210 + n), client_order_id=f"a{n}")
        report = await mm.cancel_all()
        mm.resume()
        assert report.clean and len(report.cancelled_orders) == 3
        assert await _open(venue) == ["arb:a0", "arb:a1", "arb:a2"]
        assert all(o.state is OrderState.OPEN for o in arb.orders())

        report = await ops.cancel_all()  # the key with may_kill_account: QFEX's cancel_all_orders
        assert report.clean
        await wait_until(lambda: not venue.open_orders(PUB, SYM), what="the account-wide kill")
        await wait_until(lambda: not arb.orders(), what="arb to see its orders cancelled")
        # The kill switch's halt is lifted once it reported: the others trade on.
        await arb.place_order(SYM, "SELL", "1", "220", client_order_id="after")


async def test_unknown_key_is_refused_on_the_upgrade(venue: Venue) -> None:
    async with gateway_on(venue) as gw:
        with pytest.raises(AuthenticationError):
            async with client(gw.url, ARB.__class__("gw_pub_nobody", "x", "nobody")):  # type: ignore[arg-type]
                pass
        with pytest.raises(HandshakeError):
            async with open_websocket_url(f"{gw.url}?api_key=gw_pub_nobody"):
                pass


async def test_bad_signature_and_replayed_nonce_are_refused(venue: Venue) -> None:
    async with gateway_on(venue) as gw:
        url = f"{gw.url}?api_key={MM.public_key}"
        async with open_websocket_url(url) as ws:
            await ws.send_message(encode(make_auth(MM.public_key, "wrong secret")).decode())
            assert orjson.loads(await ws.get_message()) == {"authenticated": False}
            frame = encode(make_auth(MM.public_key, MM.secret, nonce="c0ffee", unix_ts=int(time.time())))
            await ws.send_message(frame.decode())
            assert orjson.loads(await ws.get_message()) == {"authenticated": True}
        async with open_websocket_url(url) as ws:
            await ws.send_message(frame.decode())  # the same nonce again
            assert orjson.loads(await ws.get_message()) == {"authenticated": False}
        # The credentials of one key with another's public key do not pass either.
        with pytest.raises(AuthenticationError):
            async with client(gw, MM.__class__(MM.public_key, ARB.secret, "mm")):
                pass


async def test_garbage_or_silence_is_cut_off_and_the_others_trade_on(venue: Venue) -> None:
    async with gateway_on(venue, auth_deadline=0.3) as gw, client(gw, ARB) as arb:
        async with open_websocket_url(f"{gw.url}?api_key={MM.public_key}") as garbage:
            await garbage.send_message("\x00 not json at all")
            with pytest.raises(ConnectionClosed):
                while True:
                    await garbage.get_message()
            assert garbage.closed is not None and garbage.closed.code == 1008
        async with open_websocket_url(f"{gw.url}?api_key={MM.public_key}") as silent:
            with pytest.raises(ConnectionClosed), trio.fail_after(5):
                while True:
                    await silent.get_message()
            assert silent.closed is not None and silent.closed.code == 1008
        order = await arb.place_order(SYM, "BUY", "1", "190", client_order_id="still-here")
        assert (await arb.cancel(order)).status == "CANCELLED"
        assert arb.connected


async def test_only_the_own_orders_in_snapshots(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, ARB) as arb:
        await mm.place_order(SYM, "BUY", "1", "190", client_order_id="x")
        order = await arb.place_order(SYM, "BUY", "1", "191", client_order_id="x")
        snapshot = await arb.fetch_open_orders()
        assert [(o.order_id, o.client_order_id) for o in snapshot.orders] == [(order.order_id, "x")]
        diff = await arb.reconcile()
        assert not diff.adopted

