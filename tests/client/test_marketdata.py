"""open_market_data against the simulator's MDS over loopback: the local book equals the venue's top
levels after random order flow; BBO, trades and mark arrive; injected backwards, older, crossed and
malformed frames are refused and the book recovers; a dropped connection reconnects and resubscribes;
a quiet channel is flagged and resubscribed; a slow consumer loses nothing (or only what it asked to
conflate)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest
import trio
from simkit import CREDS2, manager
from structlog.testing import capture_logs
from waiting import wait_until

from qfex_oms import NotConnected, OrderManager
from qfex_oms.client.marketdata import (
    FeedStatus,
    MarketData,
    MarketUpdate,
    Update,
    UpdateStream,
    open_market_data,
)
from qfex_oms.protocol import mds
from qfex_oms.sim import Venue, open_simulator

SYM = "AAPL-USD"
PULSE = 0.05


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with open_simulator(mds_pulse=PULSE, rate_limits=None) as v:
        yield v


@pytest.fixture
async def md(venue: Venue) -> AsyncIterator[MarketData]:
    assert venue.mds_url is not None
    async with open_market_data(venue.mds_url, [SYM, "TSLA-USD"], pulses={mds.LEVEL2: PULSE},
                                quiet_factor=6.0) as feed:
        yield feed


def venue_top(venue: Venue, symbol: str = SYM, n: int = 20) -> tuple[list, list]:
    depth = venue.depth(symbol)
    return depth["bids"][:n], depth["asks"][:n]


async def buffered(stream: UpdateStream) -> list[Update]:
    """What the stream holds now, without waiting."""
    return [await stream.__anext__() for _ in range(len(stream))]


def synced(md: MarketData, venue: Venue, symbol: str = SYM) -> bool:
    return md.book(symbol).depth(20) == venue_top(venue, symbol) and md.book(symbol).needs_resync is None


async def rest_some(oms: OrderManager) -> None:
    for k in range(3):
        await oms.place_order(SYM, "BUY", "1", D(199) - k, client_order_id=f"b{k}")
        await oms.place_order(SYM, "SELL", "1", D(201) + k, client_order_id=f"s{k}")


async def test_book_equals_the_venue_top_levels_after_random_order_flow(
        venue: Venue, md: MarketData, oms: OrderManager) -> None:
    rng = random.Random(7)
    async with manager(venue, CREDS2) as oms2:
        for n in range(60):
            who = oms if rng.random() < 0.5 else oms2
            side = rng.choice(["BUY", "SELL"])
            price = D(200) + D(rng.randint(-30, 30)) / 10
            await who.place_order(SYM, side, D(rng.randint(1, 5)), price, client_order_id=f"r{n}")
        assert venue_top(venue)[0] and venue_top(venue)[1]
        await wait_until(lambda: synced(md, venue),
                         what=lambda: f"{md.book(SYM).depth(3)} vs {venue_top(venue, n=3)}")
        quote = md.bbo(SYM)
        assert quote is not None and (quote.bid_price, quote.ask_price) == (venue_top(venue)[0][0][0],
                                                                             venue_top(venue)[1][0][0])
        assert quote.stamp.exchange_ns is not None and quote.stamp.received <= trio.current_time()
        assert md.book(SYM).mid == (md.book(SYM).best_bid + md.book(SYM).best_ask) / 2
        assert not md.stale(SYM, 5.0)


async def test_trades_and_mark_from_a_cross(venue: Venue, md: MarketData, oms: OrderManager) -> None:
    async with manager(venue, CREDS2) as oms2:
        await oms.place_order(SYM, "SELL", "2", "200.5", client_order_id="maker")
        await oms2.place_order(SYM, "BUY", "2", "200.5", client_order_id="taker")
        await wait_until(lambda: md.trades(SYM) and md.mark(SYM) is not None)
    (trade,) = md.trades(SYM)
    assert (trade.price, trade.size, trade.side) == (D("200.5"), D(2), "BUY")  # the aggressor's side
    mark = md.mark(SYM)
    assert mark is not None and mark.price == venue.mark(SYM) == D("200.5")
    venue.set_mark(SYM, "201")
    await wait_until(lambda: md.mark(SYM) is not None and md.mark(SYM).price == D(201))


async def test_backwards_older_crossed_and_malformed_frames_never_touch_the_book(
        venue: Venue, md: MarketData, oms: OrderManager) -> None:
    await rest_some(oms)
    await wait_until(lambda: synced(md, venue))
    stream = md.updates([SYM])
    seq = venue.mds.sequence_of(mds.LEVEL2, SYM)
    fake = ((D(150), D(9)),), ((D(250), D(9)),)
    with capture_logs() as logs:
        venue.mds.inject(mds.BookImage(SYM, *fake, sequence=1, time_ns=None))               # backwards
        venue.mds.inject(mds.BookImage(SYM, *fake, sequence=seq + 10**6, time_ns=1))        # older
        await wait_until(lambda: md.resyncs == 2)
        await wait_until(lambda: md.book(SYM).needs_resync is None)  # a genuine pulse came after
        venue.mds.inject(mds.BookImage(SYM, ((D(300), D(1)),), ((D(250), D(1)),), sequence=seq + 10**6))
        venue.mds.inject('{"type":"level2","symbol":"AAPL-USD","bid":[["x","1"]]}')       # malformed
        venue.mds.inject(b"not json at all")
        await wait_until(lambda: md.resyncs == 3 and md.malformed == 2)
    assert md.reconnects == 0
    assert md.book(SYM).best_bid != D(150) and md.book(SYM).best_bid != D(300)
    reasons = [e.reason for e in await buffered(stream)
               if isinstance(e, FeedStatus)]
    assert any("backwards" in r for r in reasons) and any("older" in r for r in reasons)
    assert any("crossed" in r for r in reasons)
    assert any(e["event"] == "malformed market data dropped" and "not json" in e["raw"] for e in logs)
    # Recovered: the next genuine pulse is accepted and the flag clears.
    await oms.place_order(SYM, "BUY", "1", "199.5", client_order_id="after")
    await wait_until(lambda: synced(md, venue) and not md.stale(SYM, 5.0))


async def test_refusals_in_a_row_escalate_to_a_reconnect(venue: Venue, md: MarketData) -> None:
    await wait_until(lambda: mds.LEVEL2 in md.book(SYM).last_received)
    for _ in range(3):
        venue.mds.inject(mds.BookImage(SYM, sequence=0))
    await wait_until(lambda: md.reconnects == 1 and md.connected)
    await wait_until(lambda: not md.stale(SYM, 5.0))


async def test_reconnect_mid_stream_resubscribes(venue: Venue, md: MarketData, oms: OrderManager) -> None:
    await rest_some(oms)
    await wait_until(lambda: synced(md, venue))
    stream = md.updates()
    assert await venue.mds.drop_connections() == 1
    await wait_until(lambda: md.reconnects == 1 and md.connected)
    await oms.place_order(SYM, "BUY", "3", "199.9", client_order_id="late")
    await wait_until(lambda: synced(md, venue))
    kinds = [e.kind for e in await buffered(stream) if isinstance(e, FeedStatus)]
    assert kinds.index("disconnected") < kinds.index("connected")


async def test_quiet_channel_is_flagged_resubscribed_and_recovers(venue: Venue, md: MarketData) -> None:
    await wait_until(lambda: mds.LEVEL2 in md.book(SYM).last_received)
    stream = md.updates([SYM])
    venue.mds.silenced.add(mds.LEVEL2)
    await wait_until(lambda: md.stale(SYM, 100.0), within=5.0)
    venue.mds.silenced.discard(mds.LEVEL2)
    await wait_until(lambda: not md.stale(SYM, 100.0), within=5.0)
    statuses = [e for e in await buffered(stream) if isinstance(e, FeedStatus)]
    assert any(s.kind == "stale" and "quiet" in s.reason for s in statuses)


async def test_slow_consumer_loses_nothing_unless_it_conflates(
        venue: Venue, md: MarketData, oms: OrderManager) -> None:
    everything = md.updates([SYM], high_water=5)
    latest = md.updates([SYM], conflate=True)
    with capture_logs() as logs:
        async with manager(venue, CREDS2) as oms2:
            for n in range(10):
                await oms.place_order(SYM, "SELL", "1", "200", client_order_id=f"m{n}")
                await oms2.place_order(SYM, "BUY", "1", "200", client_order_id=f"t{n}")
            await wait_until(lambda: len(md.trades(SYM)) == 10)
    trades = [u for u in await buffered(everything)
              if isinstance(u, MarketUpdate) and u.channel == mds.TRADE]
    assert len(trades) == 10  # every trade, none dropped, though no one read while they arrived
    assert any(e["event"] == "market-data consumer is falling behind" for e in logs)
    pending = await buffered(latest)
    assert len([u for u in pending if isinstance(u, MarketUpdate)]) == 1  # the latest per symbol


async def test_closing_ends_the_streams(venue: Venue) -> None:
    assert venue.mds_url is not None
    async with open_market_data(venue.mds_url, [SYM]) as feed:
        stream = feed.updates()
    with pytest.raises(StopAsyncIteration):
        await stream.__anext__()


async def test_first_connection_failure_raises_not_connected() -> None:
    with pytest.raises(NotConnected):
        async with open_market_data("ws://127.0.0.1:9", [SYM], connect_timeout=2.0):
            pass
