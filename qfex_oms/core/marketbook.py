"""A local market picture per symbol, built from QFEX's MDS messages (qfex-api.md §13); no I/O.

``MarketBook`` keeps one symbol's price levels (from ``level2`` images, able to take increments
should QFEX ever send them), its BBO, a bounded list of recent public trades, the mark price and
funding. ``MarketBooks`` routes decoded messages to the right symbol. Every value carries the
exchange's timestamp (``exchange_ns``) and the shell's receive time (``received``, whatever clock
the shell passes in, trio's in the client), so a reader can always tell how old it is.

Nothing doubtful is applied silently (§13.6 documents no gap or replay protocol, so the book cannot
repair itself; it can only refuse and ask for a resync). ``apply`` returns:

* ``Applied`` — the message changed the picture;
* ``Ignored`` — a harmless repeat (the same trade id again), nothing changed;
* ``ResyncNeeded`` — the message was *not* applied, and ``book.needs_resync`` stays set until the
  channel's next clean frame (after ``restart()`` if the venue's sequence restarted): a
  ``sequence`` lower than the last one applied on that channel, an exchange time older than the
  last one applied on that channel, an image or BBO that is crossed (best bid >= best ask), holds
  a size or price <= 0, or repeats a price.

Watermarks are per channel: the scope of QFEX's ``sequence`` is not documented (§13.6), and
per-channel monotonicity holds whatever that scope is. An equal sequence is accepted (a pulsed
channel may repeat an unchanged image).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import deque
from collections.abc import Iterable
from decimal import Decimal
from typing import TypeAlias

from attrs import define, field, frozen

from qfex_oms.protocol import mds

ZERO = Decimal(0)
TWO = Decimal(2)
DEFAULT_TRADE_HISTORY = 200  # what QFEX's CLI keeps per symbol (§13.8)


@frozen
class Stamp:
    """When a value was true at the exchange (ns since the epoch, None if the frame had no time)
    and when this process received it (the shell's clock, seconds)."""

    exchange_ns: int | None
    received: float


@frozen
class Quote:
    """Best bid and offer; a missing side is None."""

    bid_price: Decimal | None
    bid_size: Decimal | None
    ask_price: Decimal | None
    ask_size: Decimal | None
    stamp: Stamp

    @property
    def mid(self) -> Decimal | None:
        if self.bid_price is None or self.ask_price is None:
            return None
        return (self.bid_price + self.ask_price) / TWO


@frozen
class Mark:
    price: Decimal
    stamp: Stamp


@frozen
class FundingRate:
    rate: Decimal
    time_remaining: int | None
    stamp: Stamp


@frozen
class Trade:
    price: Decimal
    size: Decimal
    side: str | None
    trade_id: str | None
    stamp: Stamp


@frozen
class Applied:
    symbol: str
    channel: str


@frozen
class Ignored:
    symbol: str
    channel: str
    reason: str


@frozen
class ResyncNeeded:
    symbol: str
    channel: str
    reason: str


Result: TypeAlias = Applied | Ignored | ResyncNeeded
Levels: TypeAlias = list[tuple[Decimal, Decimal]]


class BookSide:
    """One side's levels: ``sizes`` by price and the prices in best-first order, kept with bisect
    on a sort key (the price for asks, its negation for bids), so the best level is ``keys[0]``."""

    __slots__ = ("is_bid", "keys", "sizes")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.keys: list[Decimal] = []
        self.sizes: dict[Decimal, Decimal] = {}

    def __len__(self) -> int:
        return len(self.keys)

    def _key(self, price: Decimal) -> Decimal:
        return -price if self.is_bid else price

    def best(self) -> tuple[Decimal, Decimal] | None:
        if not self.keys:
            return None
        price = self._key(self.keys[0])
        return price, self.sizes[price]

    def levels(self, n: int | None = None) -> list[tuple[Decimal, Decimal]]:
        keys = self.keys if n is None else self.keys[:n]
        return [(p, self.sizes[p]) for p in (self._key(k) for k in keys)]

    def replace(self, levels: Iterable[tuple[Decimal, Decimal]]) -> None:
        """Take a whole image (already checked by the caller)."""
        self.sizes = dict(levels)
        self.keys = sorted(self._key(p) for p in self.sizes)

    def set(self, price: Decimal, size: Decimal) -> None:
        """One increment: ``size`` 0 removes the level."""
        key = self._key(price)
        if size == ZERO:
            if self.sizes.pop(price, None) is not None:
                del self.keys[bisect_left(self.keys, key)]
            return
        if price not in self.sizes:
            self.keys.insert(bisect_left(self.keys, key), key)
        self.sizes[price] = size


def _image_problem(bid: tuple[mds.Level, ...], ask: tuple[mds.Level, ...]) -> str | None:
    """Why an image (or a BBO) cannot be a book, or None."""
    for side in (bid, ask):
        if any(p <= ZERO or s <= ZERO for p, s in side):
            return "a level with a price or size <= 0"
        if len({p for p, _ in side}) != len(side):
            return "a price repeated on one side"
    if bid and ask and max(p for p, _ in bid) >= min(p for p, _ in ask):
        return "crossed book (best bid >= best ask)"
    return None


@define(slots=True, eq=False)
class MarketBook:
    """One symbol's market picture. Read ``best_bid``/``best_ask``/``mid``/``spread``/``depth``;
    write only through ``apply`` (and ``apply_increment``)."""

    symbol: str
    trade_history: int = DEFAULT_TRADE_HISTORY
    bids: BookSide = field(factory=lambda: BookSide(True))
    asks: BookSide = field(factory=lambda: BookSide(False))
    book_stamp: Stamp | None = None
    quote: Quote | None = None  # from the bbo channel
    mark: Mark | None = None
    funding: FundingRate | None = None
    trades: deque[Trade] = field(init=False)
    resync: dict[str, str] = field(factory=dict)  # channel -> why its last frame was refused
    last_received: dict[str, float] = field(factory=dict)
    _sequence: dict[str, int] = field(factory=dict)
    _time: dict[str, int] = field(factory=dict)
    _trade_ids: set[str] = field(factory=set)
    _image_quote: Quote | None = None  # the image's top as a Quote, built on first read

    def __attrs_post_init__(self) -> None:
        self.trades = deque(maxlen=self.trade_history)

    # ------------------------------------------------------------------ reading

    @property
    def needs_resync(self) -> str | None:
        """Why a channel of this symbol is untrustworthy until its next clean frame, or None."""
        return next(iter(self.resync.values()), None)

    @property
    def best_bid(self) -> Decimal | None:
        best = self.bids.best()
        return None if best is None else best[0]

    @property
    def best_ask(self) -> Decimal | None:
        best = self.asks.best()
        return None if best is None else best[0]

    @property
    def mid(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else (bid + ask) / TWO

    @property
    def spread(self) -> Decimal | None:
        bid, ask = self.best_bid, self.best_ask
        return None if bid is None or ask is None else ask - bid

    def depth(self, n: int | None = None) -> tuple[Levels, Levels]:
        """``(bids, asks)``, each best first, ``n`` levels (all if None)."""
        return self.bids.levels(n), self.asks.levels(n)

    def bbo(self) -> Quote | None:
        """The freshest best bid/offer: the bbo channel's, or the image's top if that is newer."""
        image = self.book_stamp
        if image is not None and (self.quote is None or image.received > self.quote.stamp.received):
            if self._image_quote is None:
                bid, ask = self.bids.best(), self.asks.best()
                self._image_quote = Quote(bid and bid[0], bid and bid[1], ask and ask[0], ask and ask[1],
                                          image)
            return self._image_quote
        return self.quote

    def stale(self, now: float, seconds: float, channel: str | None = None) -> bool:
        """Nothing received on ``channel`` (any channel if None) within ``seconds`` before ``now``,
        or a resync is pending."""
        if self.needs_resync is not None:
            return True
        if channel is not None:
            last = self.last_received.get(channel)
        else:
            last = max(self.last_received.values(), default=None)
        return last is None or now - last > seconds

    # ------------------------------------------------------------------ writing

    def restart(self) -> None:
        """Forget the watermarks (after a reconnect or a resubscribe: the venue's sequence may
        start again); values stay visible, with their stamps, until overwritten."""
        self._sequence.clear()
        self._time.clear()

    def apply(self, message: mds.MdsMessage, received: float) -> Result:
        if isinstance(message, mds.BookImage):
            return self._apply_image(message, received)
        if isinstance(message, mds.Bbo):
            return self._apply_bbo(message, received)
        if isinstance(message, mds.PublicTrade):
            return self._apply_trade(message, received)
        if isinstance(message, mds.MarkPrice):
            return self._apply_mark(message, received)
        if isinstance(message, mds.Funding):
            return self._apply_funding(message, received)
        return Ignored(self.symbol, type(message).__name__, "not kept by the book")

    def apply_increment(self, is_bid: bool, price: Decimal, size: Decimal, received: float, *,
                        sequence: int | None = None, exchange_ns: int | None = None) -> Result:
        """One level change (size 0 deletes). QFEX documents none (§13.6); ready should it come."""
        refused = self._order_problem(mds.LEVEL2, sequence, exchange_ns)
        if refused is None and (price <= ZERO or size < ZERO):
            refused = "a level with a price <= 0 or a negative size"
        if refused is None:
            other = self.asks.best() if is_bid else self.bids.best()
            if size > ZERO and other is not None and (price >= other[0] if is_bid else price <= other[0]):
                refused = "the increment would cross the book"
        if refused is not None:
            return self._refuse(mds.LEVEL2, refused)
        (self.bids if is_bid else self.asks).set(price, size)
        self.book_stamp = Stamp(exchange_ns, received)
        self._image_quote = None
        return self._accepted(mds.LEVEL2, sequence, exchange_ns, received)

    def _apply_image(self, image: mds.BookImage, received: float) -> Result:
        refused = self._order_problem(mds.LEVEL2, image.sequence, image.time_ns)
        refused = refused or _image_problem(image.bid, image.ask)
        if refused is not None:
            return self._refuse(mds.LEVEL2, refused)
        self.bids.replace(image.bid)
        self.asks.replace(image.ask)
        self.book_stamp = Stamp(image.time_ns, received)
        self._image_quote = None
        return self._accepted(mds.LEVEL2, image.sequence, image.time_ns, received)

    def _apply_bbo(self, bbo: mds.Bbo, received: float) -> Result:
        refused = self._order_problem(mds.BBO, bbo.sequence, bbo.time_ns)
        refused = refused or _image_problem(bbo.bid, bbo.ask)
        if refused is not None:
            return self._refuse(mds.BBO, refused)
        bid = bbo.bid[0] if bbo.bid else (None, None)
        ask = bbo.ask[0] if bbo.ask else (None, None)
        self.quote = Quote(bid[0], bid[1], ask[0], ask[1], Stamp(bbo.time_ns, received))
        return self._accepted(mds.BBO, bbo.sequence, bbo.time_ns, received)

    def _apply_trade(self, trade: mds.PublicTrade, received: float) -> Result:
        if trade.trade_id is not None and trade.trade_id in self._trade_ids:
            return Ignored(self.symbol, mds.TRADE, "trade already seen")
        # A trade is an event, not a last value: an older print is still a print; only a sequence
        # going backwards says the stream itself is wrong.
        refused = self._order_problem(mds.TRADE, trade.sequence, None)
        if refused is None and (trade.price <= ZERO or trade.size <= ZERO):
            refused = "a trade with a price or size <= 0"
        if refused is not None:
            return self._refuse(mds.TRADE, refused)
        if len(self.trades) == self.trades.maxlen and self.trades[0].trade_id is not None:
            self._trade_ids.discard(self.trades[0].trade_id)
        if trade.trade_id is not None:
            self._trade_ids.add(trade.trade_id)
        self.trades.append(Trade(trade.price, trade.size, trade.side, trade.trade_id,
                                 Stamp(trade.time_ns, received)))
        return self._accepted(mds.TRADE, trade.sequence, None, received)

    def _apply_mark(self, mark: mds.MarkPrice, received: float) -> Result:
        refused = self._order_problem(mds.MARK_PRICE, None, mark.time_ns)
        if refused is None and mark.price <= ZERO:
            refused = "a mark price <= 0"
        if refused is not None:
            return self._refuse(mds.MARK_PRICE, refused)
        self.mark = Mark(mark.price, Stamp(mark.time_ns, received))
        return self._accepted(mds.MARK_PRICE, None, mark.time_ns, received)

    def _apply_funding(self, funding: mds.Funding, received: float) -> Result:
        refused = self._order_problem(mds.FUNDING, funding.sequence, funding.time_ns)
        if refused is not None:
            return self._refuse(mds.FUNDING, refused)
        self.funding = FundingRate(funding.funding_rate, funding.time_remaining,
                                   Stamp(funding.time_ns, received))
        return self._accepted(mds.FUNDING, funding.sequence, funding.time_ns, received)

    def _order_problem(self, channel: str, sequence: int | None, exchange_ns: int | None) -> str | None:
        last_sequence = self._sequence.get(channel)
        if sequence is not None and last_sequence is not None and sequence < last_sequence:
            return f"sequence went backwards ({sequence} after {last_sequence})"
        last_time = self._time.get(channel)
        if exchange_ns is not None and last_time is not None and exchange_ns < last_time:
            return "frame older than the one applied"
        return None

    def _refuse(self, channel: str, reason: str) -> ResyncNeeded:
        self.resync[channel] = reason
        return ResyncNeeded(self.symbol, channel, reason)

    def _accepted(self, channel: str, sequence: int | None, exchange_ns: int | None,
                  received: float) -> Applied:
        if sequence is not None:
            self._sequence[channel] = sequence
        if exchange_ns is not None:
            self._time[channel] = exchange_ns
        self.last_received[channel] = received
        self.resync.pop(channel, None)  # a clean frame after a refusal is the resync
        return Applied(self.symbol, channel)


@define(slots=True, eq=False)
class MarketBooks:
    """Every symbol's ``MarketBook``, created on first sight; ``apply`` routes a decoded message
    (``market_stats`` fans out to its BBOs and marks, other kinds are ignored)."""

    trade_history: int = DEFAULT_TRADE_HISTORY
    books: dict[str, MarketBook] = field(factory=dict)

    def book(self, symbol: str) -> MarketBook:
        found = self.books.get(symbol)
        if found is None:
            found = self.books[symbol] = MarketBook(symbol, self.trade_history)
        return found

    def apply(self, message: mds.MdsMessage, received: float) -> list[Result]:
        if isinstance(message, mds.MarketStats):
            results: list[Result] = []
            for b in message.bbos:
                bbo = mds.Bbo(b.symbol, b.bid, b.ask, None, b.time_ns)
                results.append(self.book(b.symbol).apply(bbo, received))
            for mark in message.mark_prices:
                results.append(self.book(mark.symbol).apply(mark, received))
            return results
        symbol = getattr(message, "symbol", None)
        if not isinstance(symbol, str):
            return [Ignored("", type(message).__name__, "no symbol")]
        return [self.book(symbol).apply(message, received)]
