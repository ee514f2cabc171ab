"""What the REST tests share: a raw websocket trader to make history, and scripted HTTP servers.

Imported by name (tests have no packages; pytest puts this folder on the path).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve
from simkit import PUB, PUB2, SECRET, SECRET2
from trio_websocket import WebSocketConnection, open_websocket_url

from qfex_oms.protocol import encode, make_auth
from qfex_oms.sim import Venue

SECRETS = {PUB: SECRET, PUB2: SECRET2}
TERMINAL = {"FILLED", "CANCELLED", "REJECTED"}


class Trader:
    """A raw websocket client: auth, subscriptions, orders; every read is bounded."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self.ws = ws

    async def send(self, type_: str, **params: Any) -> None:
        await self.ws.send_message(orjson.dumps({"type": type_, "params": params}).decode())

    async def recv(self) -> dict[str, Any]:
        with trio.fail_after(5):
            frame: dict[str, Any] = orjson.loads(await self.ws.get_message())
            return frame

    async def until(self, key: str, predicate: Callable[[Any], bool] = lambda _: True) -> Any:
        """Read frames until one of kind ``key`` whose payload satisfies ``predicate``."""
        while True:
            frame = await self.recv()
            if key in frame and predicate(frame[key]):
                return frame[key]

    async def order(self, cid: str, side: str, price: str, quantity: str, tif: str = "GTC",
                    done: Callable[[str], bool] = lambda status: True) -> dict[str, Any]:
        """Place a LIMIT order; return the first order_response of it whose status satisfies ``done``."""
        await self.send("add_order", symbol="AAPL-USD", side=side, order_type="LIMIT",
                        order_time_in_force=tif, price=float(price), quantity=float(quantity),
                        client_order_id=cid)
        answer: dict[str, Any] = await self.until(
            "order_response", lambda o: o["client_order_id"] == cid and done(o["status"]))
        return answer


@asynccontextmanager
async def trader(venue: Venue, public_key: str, channels: tuple[str, ...] = ("order_responses",)
                 ) -> AsyncIterator[Trader]:
    async with open_websocket_url(f"{venue.url}/?api_key={public_key}") as ws:
        client = Trader(ws)
        await ws.send_message(encode(make_auth(public_key, SECRETS[public_key])).decode())
        assert await client.until("authenticated") is True
        for channel in channels:
            await client.send("subscribe", channels=[channel])
            await client.until("subscribed", lambda c, channel=channel: c == channel)
        yield client


Script = Callable[[dict[str, Any]], Awaitable[tuple[int, list[tuple[bytes, bytes]], bytes]]]


@asynccontextmanager
async def http_server(script: Script) -> AsyncIterator[str]:
    """A real HTTP server on loopback whose every answer ``script(scope)`` decides; yields its URL."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        status, headers, body = await script(scope)
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config))  # type: ignore[arg-type]
        yield binds[0]
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def silent_server() -> AsyncIterator[tuple[str, list[int]]]:
    """A TCP listener that accepts and never answers; yields its URL and the accept count (a list
    of one int, so the test sees it change)."""
    accepted = [0]

    async def hold(stream: trio.SocketStream) -> None:
        accepted[0] += 1
        await trio.sleep_forever()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, hold, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}", accepted
        nursery.cancel_scope.cancel()
