"""The manager's websocket: wsproto driven on a trio stream by the connection's own reader.

trio-websocket runs a reader task of its own that puts each message in a memory channel, and the
manager's reader takes it from there before waking the caller: two task switches per reply, plus a
``StrictFIFOLock`` that forces a scheduler pass on every send even when nobody else is sending.
Here the connection's reader task drives wsproto itself and hands each message straight to the
manager (one switch: reader -> caller), and a send takes the socket without a scheduler pass when
it is free (``send_all`` still checkpoints, so ``send_message`` is a checkpoint as trio requires).
Measured side by side in ``bench`` (issue 19).

Kept from trio-websocket, so the rest of the package sees no difference: the method names the
session uses (``send_message``, ``get_message``, ``aclose``), ``trio_websocket.ConnectionClosed``
with its ``CloseReason`` when the connection ends, and a refused upgrade worded by the session's
``rejected_upgrade``, as on the trio-websocket path. Kept from ``qfex_oms.wsfix``: no pong once a
closing handshake has started (RFC 6455 §5.5.2 owes none, and wsproto refuses one), so a ping
crossing our close frame ends nothing.
"""

from __future__ import annotations

import contextlib
import ssl
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

import trio
from trio_websocket import CloseReason, ConnectionClosed
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError, RemoteProtocolError

RECEIVE_SIZE = 64 * 1024
ABNORMAL = 1006  # RFC 6455 §7.1.5: closed without a close frame
MessageSink = Callable[[str | bytes], None]


class UpgradeRejected(Exception):
    """The server answered the upgrade with an HTTP error (the session names it for the user)."""

    def __init__(self, status_code: int) -> None:
        super().__init__(f"the websocket upgrade was refused: HTTP {status_code}")
        self.status_code = status_code


class WsClient:
    """One client websocket (see the module docstring). Not safe across trio runs."""

    def __init__(self, stream: trio.abc.Stream, ws: WSConnection, max_message_size: int) -> None:
        self._stream = stream
        self._ws = ws
        self._max = max_message_size
        self._parts: list[str | bytes] = []
        self._size = 0
        self._pending: deque[str | bytes] = deque()
        self._busy = False  # a task is writing to the stream
        self._queue = trio.lowlevel.ParkingLot()  # writers waiting their turn, FIFO
        self._reading = False
        self._ended = trio.Event()
        self.close_reason: CloseReason | None = None
        self.buffered = False  # wsproto may hold frames that arrived with the upgrade

    # ----------------------------------------------------------------- sending

    async def send_message(self, message: str | bytes) -> None:
        """One message; raises ``ConnectionClosed`` once the connection is closing or gone."""
        if self.close_reason is not None or self._ws.state is not ConnectionState.OPEN:
            raise ConnectionClosed(self.close_reason or CloseReason(ABNORMAL, "closing"))
        kind = TextMessage if isinstance(message, str) else BytesMessage
        await self._write(self._ws.send(kind(data=message)))  # type: ignore[arg-type]

    async def _write(self, data: bytes) -> None:
        """Write under a FIFO hand-off: a free socket is taken at once (no scheduler pass beyond
        ``send_all``'s own checkpoint); a busy one is waited for, and handed over in order."""
        if self._busy:
            await self._queue.park()  # woken owning the socket (unpark hands it over)
        else:
            self._busy = True
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self._end(CloseReason(ABNORMAL, "the socket broke while sending"))
            raise ConnectionClosed(self.close_reason) from None
        finally:
            if self._queue:
                self._queue.unpark()
            else:
                self._busy = False

    # ----------------------------------------------------------------- receiving

    async def get_message(self) -> str | bytes:
        """The next message (for the handshake, before ``run_reader`` takes over)."""
        while not self._pending:
            await self._pump()
        return self._pending.popleft()

    async def run_reader(self, on_message: MessageSink) -> None:
        """Read until the connection ends, handing each message to ``on_message`` (which must not
        await); raises ``ConnectionClosed`` with the close reason at the end."""
        self._reading = True
        pending = self._pending
        try:
            while True:
                while pending:
                    on_message(pending.popleft())
                await self._pump()
        finally:
            self._reading = False

    async def _pump(self) -> None:
        """Receive once from the socket and turn it into messages (or the end). The end is raised
        on the call after it is seen, so the messages that came before it in the same read are
        handed over first."""
        if self.close_reason is not None:
            raise ConnectionClosed(self.close_reason)
        if self.buffered:
            self.buffered = False  # frames that came with the upgrade: parse them before reading
        else:
            try:
                data = await self._stream.receive_some(RECEIVE_SIZE)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._end(CloseReason(ABNORMAL, "the socket closed without a close frame"))
                raise ConnectionClosed(self.close_reason)
            try:
                self._ws.receive_data(bytes(data))
            except RemoteProtocolError as exc:
                self._end(CloseReason(1002, f"protocol error: {exc}"))
                raise ConnectionClosed(self.close_reason) from None
        for event in self._ws.events():
            if isinstance(event, Message):
                if not self._message(event):
                    await trio.aclose_forcefully(self._stream)  # too large: the connection is over
                    return
            elif isinstance(event, Ping):
                if self._ws.state is ConnectionState.OPEN:  # the wsfix lesson: none owed once closing
                    with contextlib.suppress(ConnectionClosed):  # a broken socket shows on the next read
                        await self._write(self._ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                await self._closed_by_peer(event)
                return

    def _message(self, event: Message) -> bool:  # type: ignore[type-arg]
        """Queue a whole message (or keep a fragment); False when it grows past the limit."""
        data = event.data
        if event.message_finished and not self._parts and len(data) <= self._max:
            self._pending.append(data)  # the usual case: one whole message in one event
            return True
        self._size += len(data)
        if self._size > self._max:
            self._end(CloseReason(1009, f"message over {self._max} bytes"))
            return False
        self._parts.append(data)
        if event.message_finished:
            parts, self._parts, self._size = self._parts, [], 0
            self._pending.append("".join(parts) if isinstance(data, str) else b"".join(parts))  # type: ignore[arg-type]
        return True

    async def _closed_by_peer(self, event: CloseConnection) -> None:
        reason = CloseReason(event.code, event.reason)
        if self._ws.state is ConnectionState.REMOTE_CLOSING:  # theirs first: answer it
            with contextlib.suppress(ConnectionClosed, LocalProtocolError):
                await self._write(self._ws.send(event.response()))
        self._end(reason)
        await self._stream.aclose()

    def _end(self, reason: CloseReason) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        self._ended.set()

    # ----------------------------------------------------------------- closing

    async def aclose(self, code: int = 1000, reason: str | None = None) -> None:
        """The closing handshake (bound it with a timeout), then the socket. With the reader
        running, it sees the peer's close frame; without one, this reads until it comes."""
        try:
            if self._ws.state is ConnectionState.OPEN:
                await self._write(self._ws.send(CloseConnection(code=code, reason=reason)))
            if self._reading:
                await self._ended.wait()
            else:
                while self.close_reason is None:
                    await self._pump()
        except (ConnectionClosed, LocalProtocolError):
            pass
        finally:
            self._end(CloseReason(code, reason))
            await self._stream.aclose()


async def connect_ws(url: str, *, max_message_size: int, ssl_context: ssl.SSLContext | None = None
                     ) -> WsClient:
    """Open ``url`` (ws:// or wss://) and complete the upgrade. A refused upgrade raises
    ``UpgradeRejected`` with the HTTP status."""
    parts = urlsplit(url)
    secure = parts.scheme == "wss"
    host = parts.hostname or "localhost"
    port = parts.port or (443 if secure else 80)
    stream: trio.abc.Stream = await trio.open_tcp_stream(host, port)
    try:
        if secure:
            stream = trio.SSLStream(stream, ssl_context or ssl.create_default_context(),
                                    server_hostname=host, https_compatible=True)
            await stream.do_handshake()
        ws = WSConnection(ConnectionType.CLIENT)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        netloc = host if parts.port is None else f"{host}:{parts.port}"
        await stream.send_all(ws.send(Request(host=netloc, target=target)))
        while True:
            data = await stream.receive_some(RECEIVE_SIZE)
            if not data:
                raise OSError(f"{url} closed the connection during the upgrade")
            ws.receive_data(bytes(data))
            for event in ws.events():
                if isinstance(event, AcceptConnection):
                    # Stop here: wsproto keeps what came after the upgrade for the client's reader.
                    client = WsClient(stream, ws, max_message_size)
                    client.buffered = True
                    return client
                if isinstance(event, RejectConnection):
                    raise UpgradeRejected(event.status_code)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
