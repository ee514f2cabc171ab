"""A TCP proxy between the manager and the simulator that can put a frame on the wire at a chosen moment.

Some races live below trio-websocket's API: a server's ping crossing the client's close frame is
one (trio-websocket issue #184: its reader answers the ping with a pong after the close went out,
and wsproto refuses that with LocalProtocolError). The simulator cannot stage it (trio-websocket
answers a close before any frame of ours), so this proxy reads the frames going through and, when
the client's close passes, writes a server ping to the client first — on a frame boundary, so the
client's stream stays valid.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import urlsplit

import trio

OP_CLOSE = 0x8
PING = bytes([0x89, 0x00])  # FIN + ping, no payload, unmasked (server to client)


class FrameSplitter:
    """Cuts a websocket byte stream into whole frames, after the HTTP upgrade's header block."""

    def __init__(self) -> None:
        self.buffer = b""
        self.upgraded = False

    def feed(self, data: bytes) -> list[tuple[int | None, bytes]]:
        """(opcode, bytes) for each whole unit now available; opcode None for the HTTP header block."""
        self.buffer += data
        out: list[tuple[int | None, bytes]] = []
        if not self.upgraded:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return out
            out.append((None, self.buffer[:end + 4]))
            self.buffer, self.upgraded = self.buffer[end + 4:], True
        while (frame := self._next_frame()) is not None:
            out.append(frame)
        return out

    def _next_frame(self) -> tuple[int, bytes] | None:
        b = self.buffer
        if len(b) < 2:
            return None
        length, offset = b[1] & 0x7F, 2
        if length == 126:
            if len(b) < 4:
                return None
            length, offset = int.from_bytes(b[2:4], "big"), 4
        elif length == 127:
            if len(b) < 10:
                return None
            length, offset = int.from_bytes(b[2:10], "big"), 10
        if b[1] & 0x80:
            offset += 4  # the client's masking key
        if len(b) < offset + length:
            return None
        frame, self.buffer = b[:offset + length], b[offset + length:]
        return b[0] & 0x0F, frame


class InjectingProxy:
    """Forwards one or more connections to ``target``; ``ping_on_close`` arms the ping-crossing-close race."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.ping_on_close = False
        self.pings_injected = 0
        self.url = ""
        # A silent network failure: while set, bytes are swallowed in both directions, the sockets
        # stay open, and neither side sees a close frame or a reset until ``sever()``.
        self.blackhole = False
        self._links: list[tuple[trio.SocketStream, trio.SocketStream]] = []

    async def sever(self) -> None:
        """Cut every connection through the proxy at the TCP level: no close frame, no handshake."""
        links, self._links = self._links, []
        for client, server in links:
            for stream in (client, server):
                with trio.CancelScope(shield=True):
                    await stream.aclose()

    async def _handle(self, client: trio.SocketStream) -> None:
        server = await trio.open_tcp_stream(*self.target)
        self.blackhole = False  # a new connection gets through: the outage was the old one's
        self._links.append((client, server))
        to_client = trio.StrictFIFOLock()

        async def send_client(data: bytes) -> None:
            async with to_client:
                await client.send_all(data)

        async def pump(source: trio.SocketStream, sink: Callable[[bytes], object],
                       on_frame: Callable[[int | None], object] | None) -> None:
            splitter = FrameSplitter()
            try:
                while data := await source.receive_some(65536):
                    for opcode, unit in splitter.feed(data):
                        if on_frame is not None:
                            await on_frame(opcode)  # type: ignore[misc]
                        if not self.blackhole:
                            await sink(unit)  # type: ignore[misc]
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass

        async def before_client_frame(opcode: int | None) -> None:
            if opcode == OP_CLOSE and self.ping_on_close:
                self.pings_injected += 1
                await send_client(PING)

        async with server, client, trio.open_nursery() as nursery:
            nursery.start_soon(pump, client, server.send_all, before_client_frame)
            await pump(server, send_client, None)
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def injecting_proxy(url: str) -> AsyncIterator[InjectingProxy]:
    """A proxy in front of the websocket server at ``url``; connect to ``proxy.url`` instead."""
    parts = urlsplit(url)
    proxy = InjectingProxy((parts.hostname or "127.0.0.1", parts.port or 80))
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, proxy._handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        proxy.url = f"ws://127.0.0.1:{port}{parts.path}"
        yield proxy
        nursery.cancel_scope.cancel()
