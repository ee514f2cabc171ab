"""An optional background market for the simulator: a liquidity provider around a random walk.

Without it nothing fills unless a test scripts a second account (and a user's own cross is cancelled
by self-trade prevention). With it, each symbol has a price that moves and a few levels of resting
liquidity on each side, so a strategy's orders rest, fill and move its P&L.

The provider is an ordinary account (``MARKET_ACCOUNT``, added to the venue's accounts when the market
is on) trading over a real websocket connection to the venue's own trade port, signed like any
client: authentication, rate limits, self-trade prevention and time in force all apply to it.

Every ``step`` seconds it cancels its quotes (``cancel_all_orders``) and quotes again around the next
price of each symbol's path: ``levels`` bids and asks, ``half_spread_ticks`` from the price and
``level_gap_ticks`` apart, ``size`` each. A new quote that crosses a resting order of another
account trades with it, which is how the market fills the user's orders as the price moves.

The path is a geometric random walk, ``p <- p * exp(drift * dt + volatility * sqrt(dt) * N(0, 1))``
(drift and volatility per second), drawn from ``random.Random(f"{seed}:{symbol}")``: the n-th price
of a symbol depends only on the seed, the symbol's settings and n, so a test can replay it
(``price_path``). Prices are rounded to the tick and kept inside the symbol's min/max price.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from functools import partial

import trio
import trio_websocket
from attrs import field, frozen

from qfex_oms.logs import cap_frame, get_logger
from qfex_oms.protocol import OrderType, Side, TimeInForce, encode
from qfex_oms.protocol.messages import AddOrder, CancelAllOrders
from qfex_oms.protocol.signing import make_auth
from qfex_oms.sim.settings import Account, SymbolSpec

log = get_logger("qfex_oms.sim.market")

MARKET_ACCOUNT = Account("qfex_pub_market", "qfex_secret_market", "00000000-0000-4000-8000-000000000003")
# Start prices of the default symbols (plausible, not QFEX's); any other symbol starts mid-range.
DEFAULT_STARTS = {"AAPL-USD": Decimal("200"), "TSLA-USD": Decimal("250"), "US500-USD": Decimal("5000")}


@frozen
class MarketSymbol:
    """One symbol's price process: ``drift`` and ``volatility`` are per second (fractions)."""

    symbol: str
    start: Decimal
    drift: float = 0.0
    volatility: float = 0.0005


@frozen
class MarketSettings:
    seed: int = 0
    step: float = 0.5  # seconds between re-quotes (one price step)
    levels: int = 3
    half_spread_ticks: int = 5
    level_gap_ticks: int = 5
    size: Decimal = Decimal("5")
    symbols: tuple[MarketSymbol, ...] | None = None  # None: every venue symbol, DEFAULT_STARTS
    account: Account = field(default=MARKET_ACCOUNT)


def symbol_settings(settings: MarketSettings, specs: Sequence[SymbolSpec]) -> list[MarketSymbol]:
    """The symbols the market trades: the settings' own, or one per venue symbol."""
    if settings.symbols is not None:
        return list(settings.symbols)
    return [MarketSymbol(s.symbol, DEFAULT_STARTS.get(s.symbol, (s.min_price + s.max_price) / 2))
            for s in specs]


def _on_tick(price: float, spec: SymbolSpec) -> Decimal:
    ticks = (Decimal(repr(price)) / spec.tick_size).to_integral_value(ROUND_HALF_EVEN)
    return min(max(ticks * spec.tick_size, spec.min_price), spec.max_price)


def price_path(symbol: MarketSymbol, spec: SymbolSpec, seed: int, step: float) -> Iterator[Decimal]:
    """The symbol's prices, one per step, starting with its start price (on the tick)."""
    rng = random.Random(f"{seed}:{symbol.symbol}")
    price = float(symbol.start)
    drift = symbol.drift * step
    scale = symbol.volatility * math.sqrt(step)
    while True:
        yield _on_tick(price, spec)
        price *= math.exp(drift + scale * rng.gauss(0.0, 1.0))


def quotes(mid: Decimal, spec: SymbolSpec, settings: MarketSettings) -> list[AddOrder]:
    """The provider's GTC limit orders around ``mid``: best levels first, bids then asks."""
    orders = []
    for k in range(settings.levels):
        offset = (settings.half_spread_ticks + k * settings.level_gap_ticks) * spec.tick_size
        for side, price in ((Side.BUY, mid - offset), (Side.SELL, mid + offset)):
            if spec.min_price <= price <= spec.max_price:
                orders.append(AddOrder(symbol=spec.symbol, side=side, order_type=OrderType.LIMIT,
                                       order_time_in_force=TimeInForce.GTC, quantity=settings.size,
                                       price=price))
    return orders


class BackgroundMarket:
    """The running provider; ``history[symbol]`` lists every price it has quoted around."""

    def __init__(self, url: str, settings: MarketSettings, specs: Sequence[SymbolSpec]) -> None:
        self.url = url
        self.settings = settings
        self.specs = {s.symbol: s for s in specs}
        self.symbols = [m for m in symbol_settings(settings, specs) if m.symbol in self.specs]
        self.history: dict[str, list[Decimal]] = {m.symbol: [] for m in self.symbols}
        self.steps = 0
        self.errors = 0
        self._paths = {m.symbol: price_path(m, self.specs[m.symbol], settings.seed, settings.step)
                       for m in self.symbols}

    def price(self, symbol: str) -> Decimal | None:
        """The price the provider is quoting around now."""
        prices = self.history.get(symbol)
        return prices[-1] if prices else None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Connect as ``settings.account`` and quote every step until cancelled."""
        account = self.settings.account
        async with trio_websocket.open_websocket_url(f"{self.url}/?api_key={account.public_key}") as ws:
            await ws.send_message(encode(make_auth(account.public_key, account.secret_key)).decode())
            with trio.fail_after(10):
                while b'"authenticated":true' not in _bytes(await ws.get_message()).replace(b" ", b""):
                    pass
            async with trio.open_nursery() as nursery:
                nursery.start_soon(partial(self._drain, ws))
                task_status.started()
                while True:
                    await self.step(ws)
                    await trio.sleep(self.settings.step)

    async def step(self, ws: trio_websocket.WebSocketConnection) -> None:
        """Cancel the old quotes, take one step of every path, quote around it."""
        await ws.send_message(encode(CancelAllOrders()).decode())
        for market in self.symbols:
            mid = next(self._paths[market.symbol])
            self.history[market.symbol].append(mid)
            for order in quotes(mid, self.specs[market.symbol], self.settings):
                await ws.send_message(encode(order).decode())
        self.steps += 1

    async def _drain(self, ws: trio_websocket.WebSocketConnection) -> None:
        """Read and drop the venue's answers; an ``err`` (a rate limit, say) is logged."""
        while True:
            raw = await ws.get_message()
            if _bytes(raw).startswith(b'{"err"'):
                self.errors += 1
                log.info("sim.market_refused", frame=cap_frame(raw))


def _bytes(raw: str | bytes) -> bytes:
    return raw.encode() if isinstance(raw, str) else raw
