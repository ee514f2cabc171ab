"""The background market: a seeded path that replays exactly, a liquidity provider that keeps its
levels on each side around it, fills a user's order, and is held to the venue's rules like any
account (here: its rate limit)."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

from simkit import manager
from waiting import wait_until

from qfex_oms.sim import open_simulator
from qfex_oms.sim.market import MARKET_ACCOUNT, MarketSettings, MarketSymbol, price_path
from qfex_oms.sim.settings import DEFAULT_SYMBOLS, RateLimitSettings

SPEC = DEFAULT_SYMBOLS[0]  # AAPL-USD, tick 0.01
FAST = MarketSettings(seed=11, step=0.02, symbols=(MarketSymbol("AAPL-USD", D(200), 0.001, 0.01),))


def first(n: int, seed: int, symbol: MarketSymbol = FAST.symbols[0], step: float = 0.02) -> list[D]:
    return list(itertools.islice(price_path(symbol, SPEC, seed, step), n))


def test_the_seeded_path_replays_and_stays_on_the_tick() -> None:
    path = first(200, seed=11)
    assert path == first(200, seed=11)
    assert path != first(200, seed=12)
    assert path[0] == D(200) and len(set(path)) > 10  # it moves
    assert all(p % SPEC.tick_size == 0 and SPEC.min_price <= p <= SPEC.max_price for p in path)


async def test_the_provider_quotes_its_path_and_keeps_levels_on_each_side() -> None:
    async with open_simulator(rate_limits=None, market=FAST) as venue:
        market = venue.market
        assert market is not None and MARKET_ACCOUNT.public_key in {a.public_key for a in venue.accounts}
        await wait_until(lambda: market.steps >= 5)
        assert market.history["AAPL-USD"] == first(len(market.history["AAPL-USD"]), seed=11)

        def quoted_around_the_last_price() -> bool:
            depth, price = venue.depth("AAPL-USD"), market.price("AAPL-USD")
            return (price is not None and len(depth["bids"]) == 3 and len(depth["asks"]) == 3
                    and depth["bids"][0][0] == price - 5 * SPEC.tick_size
                    and depth["asks"][0][0] == price + 5 * SPEC.tick_size)

        await wait_until(quoted_around_the_last_price)
        async with manager(venue) as oms:
            ask = venue.depth("AAPL-USD")["asks"][-1][0]  # deep enough to fill whatever step we are on
            order = await oms.place_order("AAPL-USD", "BUY", "1", ask + 1, time_in_force="IOC",
                                          client_order_id="take")
            await wait_until(lambda: order.filled_quantity == 1)
        assert venue.position("qfex_pub_demo", "AAPL-USD").quantity == D(1)


async def test_the_provider_is_rate_limited_like_any_account() -> None:
    limits = RateLimitSettings(units_per_second=1.0, capacity=10.0)
    async with open_simulator(rate_limits=limits, market=FAST) as venue:
        market = venue.market
        assert market is not None
        await wait_until(lambda: market.errors > 0)
