"""The simulator's market-data websocket (QFEX's MDS, qfex-api.md §13), on its own port.

It publishes the simulator's own market, read from the engine without changing it: ``level2``
images of the top 20 levels on a pulse (``MdsSettings.pulse``, QFEX's documented 500 ms by
default), ``bbo`` as soon as the top of book changes, every ``trade`` as it happens, ``mark_price``
(the ledger's mark, issue #10) when it changes, ``funding`` on the pulse and ``refdata`` (the REST
``/refdata`` body) on subscribe. Frames are flat objects with numbers as strings, exactly as §13's
examples, so QFEX's own CLI pointed here shows the BBO, book and mark.

Nothing is public-key gated (§13.1: "MDS is public"). The engine has no change hook, so the
publisher polls it every ``MdsSettings.poll`` seconds while anyone is connected, and sleeps when
no one is; a poll costs a few dictionary reads per symbol.

Choices where §13 is silent (sim/choices.py C49-C54):

* MDS_CHOICE_ACK: a subscribe is not acknowledged (no ack frame is documented; the CLI expects none).
* MDS_CHOICE_ERRORS: an unreadable or non-subscribe frame answers ``{"err": {"error_code":
  "INVALID_JSON_FORMAT", ...}}`` (§13.7's generic error frame) and keeps the connection open; an
  unknown channel or symbol is subscribed silently and simply never publishes.
* MDS_CHOICE_SEQUENCE: ``sequence`` counts per (channel, symbol) from 1, on level2, bbo, trade and
  funding (the channels whose examples carry one).
* MDS_CHOICE_TRADE_SIDE: a trade's ``side`` is the aggressor's, ``trade_id`` the aggressor's fill id,
  ``execution_type`` is ``"T"`` (the only value in the docs).
* MDS_CHOICE_FIRST_IMAGE: a level2 or bbo subscribe is answered at once with the current image
  (QFEX's next pulse would be; this only saves a test up to one pulse).
* MDS_CHOICE_FUNDING: ``funding`` carries the simulator's ``funding_rate`` with ``time_remaining``
  to the next settlement (0 when settlements are off), on every pulse.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from decimal import Decimal
from itertools import count
from typing import Any

import orjson
import trio
from attrs import define, field, frozen
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from qfex_oms.logs import cap_frame, get_logger
from qfex_oms.protocol import ProtocolError, mds
from qfex_oms.sim.rest import Request, RestApp
from qfex_oms.sim.server import SimServer

log = get_logger("qfex_oms.sim.mds")

DEFAULT_PULSE = 0.5  # seconds: "500ms pulsed stream" (§13.4)
DEFAULT_POLL = 0.01  # seconds between looks at the engine for BBO, trade and mark changes
DEPTH = mds.MAX_LEVEL2_DEPTH
TRADE_EXECUTION_TYPE = "T"
_ZERO = Decimal(0)
_conn_ids = count(1)


@frozen
class MdsSettings:
    pulse: float = DEFAULT_PULSE
    poll: float = DEFAULT_POLL


@define(eq=False)
class MdsConnection:
    ws: WebSocketConnection
    send: trio.MemorySendChannel[str]
    conn_id: int = field(factory=lambda: next(_conn_ids))
    subscriptions: set[tuple[str, str]] = field(factory=set)  # (channel, symbol or "*")

    def wants(self, channel: str, symbol: str) -> bool:
        subs = self.subscriptions
        return (channel, symbol) in subs or (channel, mds.ALL_SYMBOLS) in subs

    def push(self, text: str) -> None:
        try:  # noqa: SIM105 - once per outgoing frame
            self.send.send_nowait(text)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass


class MdsServer:
    """Serve ``handle`` with ``serve_websocket``; run ``publish`` in the same nursery."""

    def __init__(self, server: SimServer, settings: MdsSettings | None = None) -> None:
        self.server = server
        self.engine = server.engine
        self.settings = settings or MdsSettings()
        self.connections: set[MdsConnection] = set()
        self.silenced: set[str] = set()  # channels not published (tests: a quiet channel)
        self._anyone = trio.Event()
        self._sequence: dict[tuple[str, str], int] = {}
        self._last_bbo: dict[str, tuple[Any, ...]] = {}
        self._last_mark: dict[str, Decimal | None] = {}
        self._trade_seen: dict[str, int] = {}  # account -> trades already published
        self._next_pulse = 0.0
        self.start_trades_from_now()

    # ------------------------------------------------------------------ test controls

    def inject(self, message: mds.MdsMessage | str | bytes) -> None:
        """Send one frame (a message, or raw text as it is) to every connection, subscribed or not."""
        text = message if isinstance(message, str) else (
            message.decode() if isinstance(message, bytes) else mds.encode(message).decode())
        for conn in list(self.connections):
            conn.push(text)

    async def drop_connections(self) -> int:
        """Close every MDS connection (an unexpected drop, code 1011); returns how many."""
        dropped = list(self.connections)
        for conn in dropped:
            with trio.move_on_after(1):
                await conn.ws.aclose(code=1011, reason="dropped by the simulator")
        return len(dropped)

    def sequence_of(self, channel: str, symbol: str) -> int:
        return self._sequence.get((channel, symbol), 0)

    # ------------------------------------------------------------------ connections

    async def handle(self, request: WebSocketRequest) -> None:
        try:
            ws = await request.accept()
        except ConnectionClosed:
            return
        send, receive = trio.open_memory_channel[str](math.inf)
        conn = MdsConnection(ws, send)
        self.connections.add(conn)
        self._anyone.set()
        log.info("sim.mds_connected", conn=conn.conn_id)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, conn, receive)
                try:
                    while True:
                        self._on_frame(conn, await ws.get_message())
                except ConnectionClosed:
                    pass
                nursery.cancel_scope.cancel()
        finally:
            self.connections.discard(conn)
            if not self.connections:
                self._anyone = trio.Event()
            send.close()
            log.info("sim.mds_disconnected", conn=conn.conn_id)

    async def _writer(self, conn: MdsConnection, receive: trio.MemoryReceiveChannel[str]) -> None:
        async for text in receive:
            try:
                await conn.ws.send_message(text)
            except ConnectionClosed:
                return

    def _on_frame(self, conn: MdsConnection, raw: str | bytes) -> None:
        try:
            request = mds.decode_subscribe(raw)
        except ProtocolError as exc:
            log.info("sim.mds_bad_frame", conn=conn.conn_id, error=str(exc), raw=cap_frame(raw))
            conn.push(mds.encode(mds.MdsError("INVALID_JSON_FORMAT", str(exc), exc.raw)).decode())
            return
        keys = {(c, s) for c in request.channels for s in request.symbols}
        if request.unsubscribe:
            conn.subscriptions -= keys
            return
        conn.subscriptions |= keys
        for channel, symbol in keys:
            self._first_image(conn, channel, symbol)

    def _first_image(self, conn: MdsConnection, channel: str, symbol: str) -> None:
        symbols = self.engine.symbols if symbol == mds.ALL_SYMBOLS else [symbol]
        if channel == mds.REFDATA:
            conn.push(self._refdata().decode())
            return
        for name in symbols:
            if name not in self.engine.books or channel in self.silenced:
                continue
            if channel == mds.LEVEL2:
                conn.push(self._encode(self._image(name, time.time_ns())))
            elif channel == mds.BBO:
                conn.push(self._encode(self._bbo(name, time.time_ns())))

    # ------------------------------------------------------------------ publishing

    async def publish(self) -> None:
        """Poll the engine and pulse images, forever; idle while no one is connected."""
        while True:
            if not self.connections:
                await self._anyone.wait()
                self.start_trades_from_now()  # trades while no one listened are not news
            now = trio.current_time()
            self.poll_once()
            if now >= self._next_pulse:
                self._next_pulse = now + self.settings.pulse
                self.pulse_once()
            await trio.sleep(min(self.settings.poll, max(0.0, self._next_pulse - now)))

    def poll_once(self) -> None:
        """Send what changed since the last look: BBOs, trades, marks."""
        stamp = time.time_ns()
        for symbol in self.engine.books:
            top = self._top(symbol)
            if top != self._last_bbo.get(symbol):
                self._last_bbo[symbol] = top
                self._broadcast(mds.BBO, symbol, lambda s=symbol: self._bbo(s, stamp))
            mark = self.engine.ledger.mark(symbol)
            if mark != self._last_mark.get(symbol) and mark is not None:
                self._last_mark[symbol] = mark
                self._broadcast(mds.MARK_PRICE, symbol, lambda s=symbol, p=mark: mds.MarkPrice(s, p, stamp))
        for trade in self._new_trades():
            self._broadcast(mds.TRADE, trade.symbol, lambda t=trade: self._trade(t))

    def pulse_once(self) -> None:
        """One pulse: a level2 image and a funding line per symbol."""
        stamp = time.time_ns()
        for symbol in self.engine.books:
            self._broadcast(mds.LEVEL2, symbol, lambda s=symbol: self._image(s, stamp))
            self._broadcast(mds.FUNDING, symbol, lambda s=symbol: self._funding(s, stamp))

    def _broadcast(self, channel: str, symbol: str, build: Any) -> None:
        if channel in self.silenced:
            return
        text: str | None = None
        for conn in self.connections:
            if conn.wants(channel, symbol):
                if text is None:
                    text = self._encode(build())
                conn.push(text)

    def _encode(self, message: mds.MdsMessage) -> str:
        return mds.encode(message).decode()

    def _next(self, channel: str, symbol: str) -> int:
        key = (channel, symbol)
        value = self._sequence[key] = self._sequence.get(key, 0) + 1
        return value

    # ------------------------------------------------------------------ reading the engine

    def _levels(self, symbol: str, bids: bool, n: int) -> tuple[mds.Level, ...]:
        side = self.engine.books[symbol].bids if bids else self.engine.books[symbol].asks
        prices = reversed(side.prices) if bids else iter(side.prices)
        out: list[mds.Level] = []
        for price in prices:
            if len(out) == n:
                break
            size = sum((o.remaining for o in side.levels[price].values()), _ZERO)
            if size > _ZERO:
                out.append((price, size))
        return tuple(out)

    def _top(self, symbol: str) -> tuple[Any, ...]:
        return self._levels(symbol, True, 1), self._levels(symbol, False, 1)

    def _image(self, symbol: str, stamp: int) -> mds.BookImage:
        return mds.BookImage(symbol, self._levels(symbol, True, DEPTH), self._levels(symbol, False, DEPTH),
                             self._next(mds.LEVEL2, symbol), stamp)

    def _bbo(self, symbol: str, stamp: int) -> mds.Bbo:
        bid, ask = self._top(symbol)
        return mds.Bbo(symbol, bid, ask, self._next(mds.BBO, symbol), stamp)

    def _new_trades(self) -> Iterable[Any]:
        for account, state in self.engine.accounts.items():
            seen = self._trade_seen.get(account, 0)
            if len(state.trades) > seen:
                self._trade_seen[account] = len(state.trades)
                yield from (t for t in state.trades[seen:] if not t.is_maker)

    def _trade(self, trade: Any) -> mds.PublicTrade:
        return mds.PublicTrade(trade.symbol, trade.price, trade.quantity, str(trade.aggressor_side),
                               trade.trade_id, TRADE_EXECUTION_TYPE, self._next(mds.TRADE, trade.symbol),
                               int(trade.timestamp * 1_000_000_000))

    def _funding(self, symbol: str, stamp: int) -> mds.Funding:
        settings = self.server.settings
        remaining = 0
        if settings.funding_interval is not None:
            interval = settings.funding_interval
            remaining = math.ceil(interval - trio.current_time() % interval)
        return mds.Funding(symbol, settings.funding_rate, remaining, self._next(mds.FUNDING, symbol), stamp)

    def _refdata(self) -> bytes:
        scope = {"method": "GET", "path": "/refdata", "query_string": b"", "headers": []}
        _, body = RestApp(self.server).answer(Request(scope, b""))
        return orjson.dumps({**orjson.loads(body), "type": mds.REFDATA})

    def start_trades_from_now(self) -> None:
        """Publish only trades that happen from now on (the venue's history is not replayed)."""
        for account, state in self.engine.accounts.items():
            self._trade_seen[account] = len(state.trades)
