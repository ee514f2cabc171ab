"""``open_market_data``: QFEX's public market-data feed (MDS, qfex-api.md §13) for trio programs.

    async with open_market_data(venue.mds_url, ["AAPL-USD"]) as md:
        await md.wait_ready("AAPL-USD")
        md.bbo("AAPL-USD"); md.book("AAPL-USD").mid; md.mark("AAPL-USD"); md.trades("AAPL-USD")
        async for update in md.updates(conflate=True): ...

The context manager owns a nursery with one supervisor task per connection: connect (no auth, §13.1),
send one flat subscribe frame per (channel, symbol) as QFEX's CLI does (§13.2), then read. The
reader decodes each frame (``protocol.mds``) and applies it to the pure ``core.marketbook`` books;
it never awaits application work. On any read error it reconnects with backoff and resubscribes
every subscription (§13.8); the books' watermarks restart, their values stay visible with their
stamps until overwritten.

Never papered over:

* a malformed frame is logged raw (capped), counted, and changes nothing;
* a frame the book refuses (sequence backwards, older than the one applied, crossed or negative
  book) makes the symbol stale and resubscribes that channel; ``RESYNC_ESCALATION`` refusals in a row
  on one channel reconnect (the venue's sequence may have restarted);
* a pulsed channel quiet for longer than ``quiet_factor`` pulses makes the symbol stale and is
  resubscribed; still quiet after ``RESYNC_ESCALATION`` tries, the connection is restarted.

Every value carries the exchange's timestamp and the receive time on trio's clock
(``trio.current_time()``), which is also the clock of ``md.stale(symbol, seconds)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

import trio
import trio_websocket
from attrs import define, evolve, field, frozen

from qfex_oms.client.connection import CONNECTION_ERRORS, ReconnectPolicy, sole_exception
from qfex_oms.core.marketbook import (
    Applied,
    FundingRate,
    Mark,
    MarketBook,
    MarketBooks,
    Quote,
    ResyncNeeded,
    Stamp,
    Trade,
)
from qfex_oms.errors import NotConnected
from qfex_oms.logs import cap_frame, get_logger
from qfex_oms.protocol import ProtocolError, mds

log = get_logger("qfex_oms.marketdata")

DEFAULT_CHANNELS = (mds.LEVEL2, mds.BBO, mds.TRADE, mds.MARK_PRICE, mds.FUNDING)
# Documented cadences (§13.4): level2 "500ms pulsed" (the old page said 50 ms: the longer one, so a
# healthy feed is never called quiet), market_stats once per second. Other channels push on change
# (trade, bbo, mark) or only in a window (funding): quiet there is not a fault, so no pulse.
DEFAULT_PULSES: dict[str, float] = {mds.LEVEL2: 0.5, mds.MARKET_STATS: 1.0}
RESYNC_ESCALATION = 3  # refusals or quiet checks in a row on one channel before a reconnect


@define
class MarketDataSettings:
    channels: tuple[str, ...] = DEFAULT_CHANNELS
    reconnect: ReconnectPolicy = field(factory=lambda: ReconnectPolicy(initial=0.2, maximum=30.0))
    connect_timeout: float = 10.0
    pulses: dict[str, float] = field(factory=lambda: dict(DEFAULT_PULSES))
    quiet_factor: float = 5.0  # a pulsed channel is quiet after this many pulses without a message
    high_water: int = 10_000  # buffered updates of one subscriber before a warning
    trade_history: int = 200
    user_agent: str = "qfex-oms"


# --------------------------------------------------------------------------- updates


@frozen
class MarketUpdate:
    """A value changed: ``value`` is the new BBO (level2's top or the bbo channel's), ``Trade``,
    ``Mark`` or ``FundingRate``, with its stamp."""

    symbol: str
    channel: str
    value: Quote | Trade | Mark | FundingRate | None
    stamp: Stamp


@frozen
class FeedStatus:
    """The feed's health changed: ``kind`` is connected, disconnected, stale, resync or malformed;
    ``symbol`` is None for the whole connection."""

    kind: str
    symbol: str | None
    reason: str


Update: TypeAlias = MarketUpdate | FeedStatus


class UpdateStream:
    """One subscriber's buffer, with the rules of the manager's ``events()``: the reader never blocks
    on it, nothing is dropped, and past ``high_water`` buffered items a warning is logged once per
    crossing. ``conflate=True`` keeps only the latest ``MarketUpdate`` per symbol (in the position
    of the first one not yet read); ``FeedStatus`` items are never conflated."""

    def __init__(self, symbols: frozenset[str] | None, conflate: bool, high_water: int,
                 owner: list[UpdateStream]) -> None:
        self.symbols = symbols
        self.conflate = conflate
        self.high_water = high_water
        self._owner = owner
        self._queue: deque[Update] = deque()
        self._latest: dict[Any, Update] = {}  # conflated mode: key -> item, in arrival order
        self._serial = 0
        self._lot = trio.lowlevel.ParkingLot()
        self._closed = False
        self._warned = False

    def wants(self, symbol: str | None) -> bool:
        return symbol is None or self.symbols is None or symbol in self.symbols

    def push(self, item: Update) -> None:
        if self._closed:
            return
        if self.conflate:
            if isinstance(item, MarketUpdate):
                key: Any = item.symbol
            else:
                self._serial += 1
                key = self._serial
            self._latest[key] = item
        else:
            self._queue.append(item)
        used = len(self)
        if used > self.high_water and not self._warned:
            self._warned = True
            log.warning("market-data consumer is falling behind", buffered=used, high_water=self.high_water)
        elif used <= self.high_water // 2:
            self._warned = False
        self._lot.unpark_all()

    def __len__(self) -> int:
        return len(self._latest) if self.conflate else len(self._queue)

    def close(self) -> None:
        self._closed = True
        self._lot.unpark_all()
        if self in self._owner:
            self._owner.remove(self)

    def __aiter__(self) -> UpdateStream:
        return self

    async def __anext__(self) -> Update:
        while not len(self):
            if self._closed:
                raise StopAsyncIteration
            await self._lot.park()
        if self.conflate:
            key = next(iter(self._latest))
            return self._latest.pop(key)
        return self._queue.popleft()

    def __enter__(self) -> UpdateStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --------------------------------------------------------------------------- the client


class MarketData:
    """Latest values and update streams for the subscribed symbols (see the module docstring)."""

    def __init__(self, url: str, symbols: Sequence[str], settings: MarketDataSettings,
                 nursery: trio.Nursery) -> None:
        self.url = url
        self.symbols = tuple(symbols)
        self.settings = settings
        self.books = MarketBooks(trade_history=settings.trade_history)
        self.connected = False
        self.reconnects = 0
        self.malformed = 0
        self.resyncs = 0
        self._ws: trio_websocket.WebSocketConnection | None = None
        self._streams: list[UpdateStream] = []
        self._changed = trio.lowlevel.ParkingLot()
        self._strikes: dict[tuple[str, str], int] = {}  # (symbol, channel) -> refusals/quiet in a row
        self._quiet: set[tuple[str, str]] = set()
        self._restart: trio.CancelScope | None = None
        self._up = trio.Event()
        self._nursery = nursery  # for resubscribes sent from the (non-awaiting) reader
        self._connected_at = 0.0

    # ------------------------------------------------------------------ reading

    def book(self, symbol: str) -> MarketBook:
        """The symbol's live book (read it, do not write it)."""
        return self.books.book(symbol)

    def bbo(self, symbol: str) -> Quote | None:
        return self.books.book(symbol).bbo()

    def mark(self, symbol: str) -> Mark | None:
        return self.books.book(symbol).mark

    def funding(self, symbol: str) -> FundingRate | None:
        return self.books.book(symbol).funding

    def trades(self, symbol: str) -> list[Trade]:
        """Recent public trades, oldest first (bounded by ``trade_history``)."""
        return list(self.books.book(symbol).trades)

    def stale(self, symbol: str, seconds: float, channel: str | None = None) -> bool:
        """True if nothing arrived for ``symbol`` (on ``channel``, or any) within ``seconds``, if the
        feed is down, if a refused frame awaits its resync, or if a pulsed channel went quiet."""
        if not self.connected or any(key[0] == symbol for key in self._quiet):
            return True
        return self.books.book(symbol).stale(trio.current_time(), seconds, channel)

    def updates(self, symbols: Iterable[str] | None = None, conflate: bool = False,
                high_water: int | None = None) -> UpdateStream:
        """A new subscription to changes from now on (``symbols`` None: all)."""
        stream = UpdateStream(None if symbols is None else frozenset(symbols), conflate,
                              high_water or self.settings.high_water, self._streams)
        self._streams.append(stream)
        return stream

    async def wait_ready(self, symbol: str, channel: str | None = None) -> None:
        """Return once ``symbol`` has a value on ``channel`` (a BBO, from either source, if None);
        wrap it in a trio timeout."""
        book = self.books.book(symbol)
        while (book.bbo() is None) if channel is None else (channel not in book.last_received):
            await self._changed.park()

    def close(self) -> None:
        """End every update stream (their iterators stop)."""
        for stream in list(self._streams):
            stream.close()

    # ------------------------------------------------------------------ the connection

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect, read, reconnect, forever; ``task_status.started()`` after the first subscribe
        (a first connection that fails raises ``NotConnected``)."""
        attempt, first = 0, True
        while True:
            reason = "closed by the venue"
            try:
                await self._connect_and_read(task_status if first else None)
                attempt = 0
            except (*CONNECTION_ERRORS, BaseExceptionGroup) as caught:
                exc = sole_exception(caught)
                if not isinstance(exc, CONNECTION_ERRORS):
                    raise
                if first and not self._up.is_set():
                    raise NotConnected(f"could not connect to market data at {self.url}: {exc!r}") from None
                reason = repr(exc)
            first = False
            self._went_down(reason)
            attempt += 1
            delay = self.settings.reconnect.delay(attempt)
            log.warning("market data disconnected; reconnecting", reason=reason, delay=round(delay, 3))
            await trio.sleep(delay)

    async def _connect_and_read(self, task_status: trio.TaskStatus[None] | None) -> None:
        async with trio.open_nursery() as conn:
            with trio.fail_after(self.settings.connect_timeout):
                ws = await trio_websocket.connect_websocket_url(
                    conn, self.url, extra_headers=[(b"user-agent", self.settings.user_agent.encode())])
            try:
                with trio.CancelScope() as restart:
                    self._restart = restart
                    for book in self.books.books.values():
                        book.restart()
                    self._ws = ws
                    for channel in self.settings.channels:
                        for symbol in self.symbols:
                            await self._send_subscribe(channel, symbol)
                    self.connected = True
                    self._connected_at = trio.current_time()
                    self._up.set()
                    self._publish(FeedStatus("connected", None, self.url))
                    log.info("market data connected", url=self.url, symbols=len(self.symbols))
                    if task_status is not None:
                        task_status.started()
                    while True:
                        self.frame_received(await ws.get_message())
            finally:
                self._ws = None
                self._restart = None
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await ws.aclose()
                conn.cancel_scope.cancel()

    async def _send_subscribe(self, channel: str, symbol: str) -> None:
        ws = self._ws
        if ws is None:
            return
        request = mds.Subscribe(channels=(channel,), symbols=(symbol,))
        await ws.send_message(mds.encode_subscribe(request).decode())

    async def _resubscribe(self, channel: str, symbol: str) -> None:
        """A resubscribe from the reader's side: a connection that died meanwhile is the
        supervisor's to handle (it resubscribes everything), not an error of this task."""
        try:
            await self._send_subscribe(channel, symbol)
        except CONNECTION_ERRORS as exc:
            log.info("market data resubscribe not sent", channel=channel, symbol=symbol, error=repr(exc))

    def restart_connection(self, reason: str) -> None:
        """Drop the connection now; the supervisor reconnects and resubscribes."""
        log.warning("market data restarting the connection", reason=reason)
        if self._restart is not None:
            self._restart.cancel()

    def _went_down(self, reason: str) -> None:
        if self.connected:
            self.reconnects += 1
        self.connected = False
        self._quiet.clear()
        self._strikes.clear()
        self._publish(FeedStatus("disconnected", None, reason))

    # ------------------------------------------------------------------ the reader

    def frame_received(self, raw: bytes | str) -> None:
        """Decode one frame and apply it; never awaits (it runs in the reader)."""
        now = trio.current_time()
        try:
            messages = mds.decode(raw)
        except ProtocolError as exc:
            self.malformed += 1
            log.warning("malformed market data dropped", error=str(exc), raw=cap_frame(raw))
            self._publish(FeedStatus("malformed", None, str(exc)))
            return
        for message in messages:
            if isinstance(message, mds.MdsError):
                log.warning("market data error frame", code=message.error_code, message=message.message)
                continue
            for result in self.books.apply(message, now):
                if isinstance(result, Applied):
                    self._applied(result)
                elif isinstance(result, ResyncNeeded):
                    self._refused(result, raw)
        self._changed.unpark_all()

    def _applied(self, result: Applied) -> None:
        key = (result.symbol, result.channel)
        self._strikes.pop(key, None)
        if key in self._quiet:
            self._quiet.discard(key)
            log.info("market data channel alive again", symbol=result.symbol, channel=result.channel)
        book = self.books.book(result.symbol)
        value: Quote | Trade | Mark | FundingRate | None
        if result.channel in (mds.LEVEL2, mds.BBO):
            value = book.bbo()
        elif result.channel == mds.TRADE:
            value = book.trades[-1]
        elif result.channel == mds.MARK_PRICE:
            value = book.mark
        else:
            value = book.funding
        stamp = value.stamp if value is not None else Stamp(None, trio.current_time())
        self._publish(MarketUpdate(result.symbol, result.channel, value, stamp))

    def _refused(self, result: ResyncNeeded, raw: bytes | str) -> None:
        self.resyncs += 1
        key = (result.symbol, result.channel)
        strikes = self._strikes[key] = self._strikes.get(key, 0) + 1
        log.warning("market data frame refused; resyncing", symbol=result.symbol, channel=result.channel,
                    reason=result.reason, strikes=strikes, raw=cap_frame(raw))
        self._publish(FeedStatus("resync", result.symbol, result.reason))
        self._resync(key, strikes, result.reason)

    def _resync(self, key: tuple[str, str], strikes: int, reason: str) -> None:
        """Resubscribe the channel (the next pulse is the snapshot, §13.6); escalate to a reconnect
        when that keeps failing."""
        if strikes >= RESYNC_ESCALATION:
            self._strikes.pop(key, None)
            if self._restart is not None:
                log.warning("market data reconnecting after repeated resyncs", symbol=key[0],
                            channel=key[1], reason=reason)
                self._restart.cancel()
            return
        if key[1] in self.settings.channels:
            self._nursery.start_soon(self._resubscribe, key[1], key[0])

    def _publish(self, item: Update) -> None:
        symbol = item.symbol
        for stream in list(self._streams):
            if stream.wants(symbol):
                stream.push(item)

    # ------------------------------------------------------------------ quiet channels

    async def watch_quiet(self) -> None:
        """Flag and resubscribe pulsed channels that went quiet past ``quiet_factor`` pulses."""
        pulses = {c: p for c, p in self.settings.pulses.items() if c in self.settings.channels}
        if not pulses:
            return
        period = min(pulses.values()) * self.settings.quiet_factor / 2
        while True:
            await trio.sleep(period)
            if not self.connected:
                continue
            now = trio.current_time()
            for symbol in self.symbols:
                book = self.books.book(symbol)
                for channel, pulse in pulses.items():
                    last = book.last_received.get(channel)
                    since = self._connected_at if last is None else max(last, self._connected_at)
                    if now - since > pulse * self.settings.quiet_factor:
                        self._went_quiet(symbol, channel, now - since)

    def _went_quiet(self, symbol: str, channel: str, quiet_for: float) -> None:
        key = (symbol, channel)
        self._quiet.add(key)
        strikes = self._strikes[key] = self._strikes.get(key, 0) + 1
        reason = f"{channel} quiet for {quiet_for:.2f} s"
        log.warning("market data channel quiet; resubscribing", symbol=symbol, channel=channel,
                    quiet_for=round(quiet_for, 3), strikes=strikes)
        self._publish(FeedStatus("stale", symbol, reason))
        self._resync(key, strikes, reason)


@asynccontextmanager
async def open_market_data(
    url: str,
    symbols: Sequence[str],
    channels: Sequence[str] | None = None,
    *,
    settings: MarketDataSettings | None = None,
    **options: Any,
) -> AsyncIterator[MarketData]:
    """Connect to the MDS at ``url`` (``wss://mds.qfex.com``, ``wss://mds.qfex.io`` or a simulator's
    ``venue.mds_url``), subscribe ``channels`` (``DEFAULT_CHANNELS``) of ``symbols``, and keep the
    books for the duration of the block. ``options`` override ``MarketDataSettings`` fields.
    Raises ``NotConnected`` if the first connection fails."""
    if channels is not None:
        options["channels"] = tuple(channels)
    settings = evolve(settings or MarketDataSettings(), **options)
    failed: NotConnected | None = None
    async with trio.open_nursery() as nursery:
        md = MarketData(url, symbols, settings, nursery)
        try:
            await nursery.start(md.run)
        except NotConnected as exc:  # raised here, not wrapped in the nursery's exception group
            failed = exc
        if failed is None:
            nursery.start_soon(md.watch_quiet)
            try:
                yield md
            finally:
                md.close()
                nursery.cancel_scope.cancel()
    if failed is not None:
        raise failed
