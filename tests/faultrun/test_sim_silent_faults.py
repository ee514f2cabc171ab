"""The simulator's faults that the random-fault run needs beyond tests/sim: silent drops, lost requests.

A silent drop closes the TCP stream with no close frame (the client sees code 1006, "abnormal"); a
lost request never reaches the venue, and with it the connection dies the same silent way, which is
how a cancel written into a connection that is already dead is lost in the real world.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from qfex_oms.protocol import encode, make_auth
from qfex_oms.sim import Venue, open_simulator

PUB, SECRET = "qfex_pub_demo", "qfex_secret_demo"
ABNORMAL = 1006  # RFC 6455: the connection ended without a close frame


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with open_simulator(rate_limits=None, ping_interval=None) as v:
        yield v


async def send(ws: WebSocketConnection, type_: str, **params: Any) -> None:
    await ws.send_message(orjson.dumps({"type": type_, "params": params}).decode())


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    with trio.fail_after(5):  # a hang guard
        return orjson.loads(await ws.get_message())


@asynccontextmanager
async def connect(venue: Venue) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket_url(f"{venue.url}/?api_key={PUB}") as ws:
        await ws.send_message(encode(make_auth(PUB, SECRET)).decode())
        assert await recv(ws) == {"authenticated": True}
        await send(ws, "subscribe", channels=["order_responses"])
        assert await recv(ws) == {"subscribed": "order_responses"}
        yield ws


async def rest(ws: WebSocketConnection) -> str:
    await send(ws, "add_order", symbol="AAPL-USD", side="BUY", order_type="LIMIT",
               order_time_in_force="GTC", quantity="1", price="100", client_order_id="c")
    ack = (await recv(ws))["order_response"]
    assert ack["status"] == "ACK"
    return str(ack["order_id"])


async def test_a_silent_disconnect_sends_no_close_frame(venue: Venue) -> None:
    async with connect(venue) as ws:
        await send(ws, "cancel_on_disconnect", cancel_on_disconnect=True)
        assert "ack" in await recv(ws)
        await rest(ws)
        venue.faults.disconnect_after(1, public_key=PUB, silent=True)
        await send(ws, "get_user_orders")
        assert "all_orders_response" in await recv(ws)
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.reason.code == ABNORMAL
    with trio.fail_after(5):
        while venue.open_orders(PUB):  # noqa: ASYNC110 - the venue's own state, no frame to wait on
            await trio.sleep(0.01)  # an unexpected drop: cancel-on-disconnect fired


async def test_a_lost_cancel_never_reaches_the_venue_and_its_connection_dies(venue: Venue) -> None:
    async with connect(venue) as ws:
        order_id = await rest(ws)
        venue.faults.lose_requests(1, "cancel_order", public_key=PUB)
        await send(ws, "get_user_orders")  # not of the lost type: answered
        assert "all_orders_response" in await recv(ws)
        await send(ws, "cancel_order", order_id=order_id, symbol="AAPL-USD",
                   cancel_order_id_type="order_id")
        await send(ws, "get_user_orders")  # written after the drop: lost too
        with pytest.raises(ConnectionClosed) as info:
            await recv(ws)
        assert info.value.reason.code == ABNORMAL
    assert [o.order_id for o in venue.open_orders(PUB)] == [order_id]
    async with connect(venue) as ws:  # the fault was used up: the next cancel goes through
        await send(ws, "cancel_order", order_id=order_id, symbol="AAPL-USD",
                   cancel_order_id_type="order_id")
        assert (await recv(ws))["order_response"]["status"] == "CANCELLED"


async def test_a_lost_request_can_leave_the_connection_up(venue: Venue) -> None:
    async with connect(venue) as ws:
        order_id = await rest(ws)
        venue.faults.lose_requests(1, "cancel_order", public_key=PUB, then_drop=False)
        await send(ws, "cancel_order", order_id=order_id, symbol="AAPL-USD",
                   cancel_order_id_type="order_id")
        await send(ws, "get_user_orders")
        reply = (await recv(ws))["all_orders_response"]
        assert [o["order_id"] for o in reply["orders"]] == [order_id]
