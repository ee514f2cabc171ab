"""Raw trio-websocket clients for simulator tests (imported by name: tests have no packages)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import orjson
import trio
from simkit import PUB, PUB2, SECRET, SECRET2
from trio_websocket import WebSocketConnection, open_websocket_url

from qfex_oms.protocol import encode, make_auth
from qfex_oms.sim import Venue

SECRETS = {PUB: SECRET, PUB2: SECRET2}
BOTH = ("order_responses", "fills")


class Client:
    """A raw websocket client with small helpers; every read has a timeout so no test hangs (a hang
    guard, 5 s: a frame that must come may be late on a loaded machine)."""

    def __init__(self, ws: WebSocketConnection, public_key: str) -> None:
        self.ws = ws
        self.public_key = public_key

    async def send(self, type_: str, **params: Any) -> None:
        await self.ws.send_message(orjson.dumps({"type": type_, "params": params}).decode())

    async def send_raw(self, text: str | bytes) -> None:
        await self.ws.send_message(text)

    async def recv(self, within: float = 5.0) -> dict[str, Any]:
        with trio.fail_after(within):
            return orjson.loads(await self.ws.get_message())

    async def recv_key(self, key: str, within: float = 5.0) -> Any:
        """The next frame, which must be of kind ``key``; returns its payload."""
        frame = await self.recv(within)
        assert list(frame) == [key], frame
        return frame[key]

    async def recv_many(self, n: int, within: float = 5.0) -> list[dict[str, Any]]:
        return [await self.recv(within) for _ in range(n)]

    async def expect_silence(self, seconds: float = 0.1) -> None:
        with trio.move_on_after(seconds):
            frame = await self.ws.get_message()
            raise AssertionError(f"unexpected frame {frame}")

    async def auth(self, secret: str | None = None, **kwargs: Any) -> bool:
        await self.ws.send_message(
            encode(make_auth(self.public_key, secret or SECRETS[self.public_key], **kwargs)).decode()
        )
        return (await self.recv_key("authenticated")) is True

    async def subscribe(self, *channels: str) -> None:
        for channel in channels:
            await self.send("subscribe", channels=[channel])
            assert await self.recv_key("subscribed") == channel

    async def order(self, **params: Any) -> dict[str, Any]:
        """Send add_order and return the first order_response (ACK or the rejection)."""
        defaults = {"symbol": "AAPL-USD", "order_type": "LIMIT", "order_time_in_force": "GTC"}
        await self.send("add_order", **{**defaults, **params})
        return await self.recv_key("order_response")


@asynccontextmanager
async def connect(
    venue: Venue,
    public_key: str = PUB,
    *,
    auth: bool = True,
    channels: Iterable[str] = BOTH,
    header: bool = False,
) -> AsyncIterator[Client]:
    if header:
        url, headers = venue.url + "/", [("x-qfex-public-key", public_key)]
    else:
        url, headers = f"{venue.url}/?api_key={public_key}", None
    async with open_websocket_url(url, extra_headers=headers) as ws:
        client = Client(ws, public_key)
        if auth:
            assert await client.auth()
            await client.subscribe(*channels)
        yield client


async def rest(client: Client, side: str, price: str, quantity: str, **extra: Any) -> dict[str, Any]:
    """Place a GTC LIMIT that is expected to rest; returns its ACK."""
    ack = await client.order(side=side, price=float(price), quantity=float(quantity), **extra)
    assert ack["status"] == "ACK", ack
    return ack
