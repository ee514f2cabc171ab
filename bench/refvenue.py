"""A reference venue for the benchmarks: a QFEX responder that costs (almost) nothing.

The simulator spends about 190 us of CPU per round trip (matching, the ledger, account pushes), so a
round trip against it measures both sides at once. This responder answers in a few microseconds, in
a process of its own, so a round trip against it measures the client. It speaks just enough QFEX for
the round-trip rows: ``auth`` -> ``{"authenticated":true}``, ``subscribe`` -> one ``subscribed`` per
channel, ``cancel_on_disconnect`` -> its ``ack``, ``add_order`` -> ``ACK``, ``cancel_order`` (by
order id or client order id) -> ``CANCELLED`` or ``NO_SUCH_ORDER``, ``cancel_all_orders`` ->
``CANCELLED`` for each open order. It pushes no positions or balances (the bare client subscribes
to none, so neither side pays for them here) and never fills.

The reply frames are shaped exactly as the simulator's: each is encoded once, at start, by the
package's own codec from its protocol classes with marker values, and split at the markers; a reply
is then the template's pieces joined with the request's values (``orjson.dumps`` of the request's
own numbers, so ``1`` stays ``1`` and ``1000.3`` stays ``1000.3``, as the simulator writes them).

The websocket side is a minimal RFC 6455 server on an asyncio ``Protocol`` (uvloop when installed:
``pip install -e '.[bench]'``): the upgrade, masked client frames in, unmasked text frames out,
ping/pong and close. It also listens on a second port for the raw-TCP floor: 4-byte length-prefixed
JSON, the same replies, no websocket at all.

Run: ``python -m bench.refvenue`` prints ``ws://127.0.0.1:PORT`` then ``tcp://127.0.0.1:PORT``.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import struct
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any, cast

import orjson

from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus

USER_ID = "00000000-0000-4000-8000-000000000001"
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Marker values: unique texts (and numbers) that cannot occur elsewhere in an encoded reply.
_MARKS = {"order_id": "@OID@", "symbol": "@SYM@", "side": "@SIDE@", "type": "@TYPE@",
          "time_in_force": "@TIF@", "client_order_id": "@COID@"}
_NUM_MARKS = {"quantity": Decimal("777777771"), "price": Decimal("777777772"),
              "quantity_remaining": Decimal("777777773"), "update_time": 777777774.5}
# The order in which the values are joined into a template (the markers' order in the frame).
_FIELDS = ("order_id", "symbol", "side", "type", "time_in_force", "quantity", "price",
           "quantity_remaining", "client_order_id", "update_time")


def _template(status: str) -> list[bytes]:
    """An ``order_response`` of ``status`` encoded by the codec, split at the marker values into
    the constant pieces between the fields (``len(_FIELDS) + 1`` pieces)."""
    reply = m.OrderResponse(
        order_id=_MARKS["order_id"], symbol=_MARKS["symbol"], status=OrderStatus(status),
        side=_MARKS["side"], type=_MARKS["type"], time_in_force=_MARKS["time_in_force"],  # type: ignore[arg-type]
        quantity=_NUM_MARKS["quantity"], price=_NUM_MARKS["price"],  # type: ignore[arg-type]
        quantity_remaining=_NUM_MARKS["quantity_remaining"],  # type: ignore[arg-type]
        client_order_id=_MARKS["client_order_id"], take_profit=Decimal(0), stop_loss=Decimal(0),
        user_id=USER_ID, update_time=_NUM_MARKS["update_time"], trade_id=None)  # type: ignore[arg-type]
    frame = codec.encode(reply)
    pieces: list[bytes] = []
    rest = frame
    for name in _FIELDS:
        mark = _MARKS.get(name)
        token = f'"{mark}"'.encode() if mark is not None else str(_NUM_MARKS[name]).encode()
        head, sep, rest = rest.partition(token)
        if not sep:
            raise RuntimeError(f"the codec's order_response lost the marker of {name}: {frame!r}")
        pieces.append(head)
    pieces.append(rest)
    return pieces


def _split(frame: bytes, marks: tuple[bytes, ...]) -> list[bytes]:
    pieces, rest = [], frame
    for mark in marks:
        head, sep, rest = rest.partition(mark)
        if not sep:
            raise RuntimeError(f"marker {mark!r} missing from {frame!r}")
        pieces.append(head)
    return [*pieces, rest]


class Venue:
    """The protocol state of one connection: its open orders, and the reply templates."""

    ACK = _template("ACK")
    CANCELLED = _template("CANCELLED")
    NO_SUCH_ORDER = _split(codec.encode(m.OrderResponse(
        "@OID@", "@SYM@", OrderStatus("NO_SUCH_ORDER"), client_order_id="", user_id=USER_ID,
        update_time=777777774.5)), (b'"@OID@"', b'"@SYM@"', b"777777774.5"))

    def __init__(self, send: Callable[[bytes], None]) -> None:
        self.send = send
        self.orders: dict[str, list[bytes]] = {}  # order id -> its values, as JSON texts
        self.by_client_id: dict[str, str] = {}
        self.next_id = 1

    def frame(self, data: bytes) -> None:
        try:
            msg: dict[str, Any] = orjson.loads(data)
            kind, params = msg.get("type"), msg.get("params") or {}
        except (orjson.JSONDecodeError, AttributeError):
            return
        if kind == "add_order":
            self._add(params)
        elif kind == "cancel_order":
            self._cancel(params)
        elif kind == "cancel_all_orders":
            for order_id in list(self.orders):
                self._cancelled(order_id)
        elif kind == "auth":
            self.send(b'{"authenticated":true}')
        elif kind == "subscribe":
            for channel in params.get("channels") or ():
                self.send(b'{"subscribed":' + orjson.dumps(channel) + b"}")
        elif kind == "cancel_on_disconnect":
            self.send(b'{"ack":{"incoming_message":' + data + b"}}")

    def _add(self, p: dict[str, Any]) -> None:
        order_id = f"00000000-0000-4000-8000-{self.next_id:012d}"
        self.next_id += 1
        dumps = orjson.dumps
        quantity = dumps(p.get("quantity"))
        values = [dumps(order_id), dumps(p.get("symbol")), dumps(p.get("side")), dumps(p.get("order_type")),
                  dumps(p.get("order_time_in_force")), quantity, dumps(p.get("price")), quantity,
                  dumps(p.get("client_order_id") or "")]
        self.orders[order_id] = values
        if p.get("client_order_id"):
            self.by_client_id[p["client_order_id"]] = order_id
        self.send(_join(self.ACK, values))

    def _cancel(self, p: dict[str, Any]) -> None:
        wanted = str(p.get("order_id"))
        order_id = self.by_client_id.get(wanted) if p.get("cancel_order_id_type") == "client_order_id" \
            else wanted
        if order_id is None or order_id not in self.orders:
            head, middle, after, tail = self.NO_SUCH_ORDER
            now = repr(time.time()).encode()
            symbol = orjson.dumps(p.get("symbol"))
            self.send(head + orjson.dumps(wanted) + middle + symbol + after + now + tail)
            return
        self._cancelled(order_id)

    def _cancelled(self, order_id: str) -> None:
        values = self.orders.pop(order_id)
        coid = orjson.loads(values[8])
        if coid:
            self.by_client_id.pop(coid, None)
        self.send(_join(self.CANCELLED, values))


def _join(pieces: list[bytes], values: list[bytes]) -> bytes:
    out = [pieces[0]]
    for piece, value in zip(pieces[1:-1], values, strict=False):
        out.append(value)
        out.append(piece)
    out.append(repr(time.time()).encode())
    out.append(pieces[-1])
    return b"".join(out)


def ws_frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked server frame (RFC 6455 §5.2)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return bytes((0x80 | opcode, 126)) + struct.pack("!H", n) + payload
    return bytes((0x80 | opcode, 127)) + struct.pack("!Q", n) + payload


class WebSocketServer(asyncio.Protocol):
    """The upgrade, then frames: text to the venue, ping answered, close echoed."""

    def __init__(self) -> None:
        self.buffer = b""
        self.upgraded = False
        self.message = b""
        self.transport: asyncio.Transport | None = None
        self.venue = Venue(self._send_text)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def _send_text(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(ws_frame(payload))

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if not self.upgraded and not self._upgrade():
            return
        self._frames()

    def _upgrade(self) -> bool:
        head, sep, rest = self.buffer.partition(b"\r\n\r\n")
        if not sep:
            return False
        key = b""
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"sec-websocket-key":
                key = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                             b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.upgraded, self.buffer = True, rest
        return True

    def _frames(self) -> None:
        buf = self.buffer
        while len(buf) >= 2:
            b0, b1 = buf[0], buf[1]
            n, at = b1 & 0x7F, 2
            if n == 126:
                if len(buf) < 4:
                    break
                n, at = struct.unpack_from("!H", buf, 2)[0], 4
            elif n == 127:
                if len(buf) < 10:
                    break
                n, at = struct.unpack_from("!Q", buf, 2)[0], 10
            masked = b1 & 0x80
            end = at + (4 if masked else 0) + n
            if len(buf) < end:
                break
            payload = buf[end - n:end]
            if masked:
                mask = buf[at:at + 4]
                key = int.from_bytes(mask * (n // 4 + 1), "big") >> (8 * (4 - n % 4))
                payload = (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big") if n else b""
            buf = buf[end:]
            self._on_frame(b0 & 0x80, b0 & 0x0F, payload)
        self.buffer = buf

    def _on_frame(self, fin: int, opcode: int, payload: bytes) -> None:
        assert self.transport is not None
        if opcode in (0x0, 0x1, 0x2):
            self.message += payload
            if fin:
                message, self.message = self.message, b""
                self.venue.frame(message)
        elif opcode == 0x9:
            self.transport.write(ws_frame(payload, 0xA))
        elif opcode == 0x8:
            self.transport.write(ws_frame(payload[:2], 0x8))
            self.transport.close()


class RawServer(asyncio.Protocol):
    """The raw-TCP floor: 4-byte big-endian length, then one JSON request; replies framed alike."""

    def __init__(self) -> None:
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.venue = Venue(self._send)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def _send(self, payload: bytes) -> None:
        assert self.transport is not None
        self.transport.write(len(payload).to_bytes(4, "big") + payload)

    def data_received(self, data: bytes) -> None:
        buf = self.buffer + data
        while len(buf) >= 4:
            n = int.from_bytes(buf[:4], "big")
            if len(buf) < 4 + n:
                break
            self.venue.frame(buf[4:4 + n])
            buf = buf[4 + n:]
        self.buffer = buf


def new_event_loop() -> tuple[asyncio.AbstractEventLoop, str]:
    """uvloop's loop when it is installed (the ``bench`` extra), else asyncio's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop(), "asyncio"
    return uvloop.new_event_loop(), "uvloop"


async def _serve(host: str) -> None:
    loop = asyncio.get_running_loop()
    ws = await loop.create_server(WebSocketServer, host, 0)
    raw = await loop.create_server(RawServer, host, 0)
    for server, scheme in ((ws, "ws"), (raw, "tcp")):
        sock = server.sockets[0]
        sock_port = sock.getsockname()[1]
        print(f"{scheme}://{host}:{sock_port}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    loop, _ = new_event_loop()
    with contextlib.suppress(KeyboardInterrupt):
        loop.run_until_complete(_serve(sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"))


if __name__ == "__main__":
    main()
