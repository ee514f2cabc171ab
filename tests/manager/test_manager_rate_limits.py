"""A burst of 1,000 orders against a venue that rate-limits like QFEX (weights, two buckets).

The simulator's bucket is shrunk so a burst overflows it at once: with the manager's pacer every
order is placed at QFEX's 200 units/s, without it most are answered RateLimited. Neither outcome may
depend on how fast a busy machine runs the test (make test runs in parallel workers): the pacer's
venue keeps 60 units above the pacer's burst of 40 (about 0.3 s of frames arriving late, bunched, at
the venue's reader), and the unpaced bursts go to a venue that refills at 20 units/s, which they
overflow unless sending them takes ten times longer than on an idle machine.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
import trio
from managerkit import FrameLog, assert_book_matches
from simkit import PUB, manager
from waiting import wait_until

from qfex_oms import OrderManager, OrderRejected, PacerSettings
from qfex_oms.sim import RateLimitSettings, Venue, open_simulator

BURST = 1000
SYMBOLS = ("AAPL-USD", "TSLA-USD")


@pytest.fixture
async def tight_venue() -> AsyncIterator[Venue]:
    """QFEX's refill rate, a bucket of 100 units: 1,000 orders paced at 180/s fit, an unpaced burst not."""
    async with open_simulator(rate_limits=RateLimitSettings(units_per_second=200, capacity=100)) as v:
        yield v


@pytest.fixture
async def slow_venue() -> AsyncIterator[Venue]:
    """A bucket of 50 units refilled at 20/s: a burst overflows it even when a loaded machine sends it
    slowly."""
    async with open_simulator(rate_limits=RateLimitSettings(units_per_second=20, capacity=50)) as v:
        yield v


async def burst(oms: OrderManager, n: int = BURST) -> Counter[str]:
    outcomes: Counter[str] = Counter()

    async def place(i: int) -> None:
        try:
            await oms.place_order(SYMBOLS[i % 2], "BUY", "1", f"{100 + (i % 500) / 100:.2f}")
            outcomes["placed"] += 1
        except OrderRejected as exc:
            outcomes[f"rejected {exc.status}"] += 1

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(place, i)
    return outcomes


async def test_the_pacer_keeps_a_burst_of_1000_orders_inside_the_limit(tight_venue: Venue) -> None:
    venue = tight_venue
    async with manager(venue, request_timeout=15.0) as oms:
        with trio.fail_after(15):
            outcomes = await burst(oms)
        assert outcomes == Counter(placed=BURST)
        assert len(venue.open_orders(PUB)) == BURST
        await assert_book_matches(oms, venue)
        # The kill switch skips the pacer and still cleans everything up.
        report = await oms.cancel_all()
        assert report.clean and len(report.cancelled_orders) == BURST
        assert venue.open_orders(PUB) == []


async def test_without_the_pacer_the_same_burst_is_rate_limited(slow_venue: Venue) -> None:
    venue = slow_venue
    async with manager(venue, pacer=None) as oms:
        with trio.fail_after(15):
            outcomes = await burst(oms)
        assert sum(outcomes.values()) == BURST
        assert outcomes["rejected RateLimited"] > BURST // 2, outcomes
        assert set(outcomes) <= {"placed", "rejected RateLimited"}, outcomes
        assert outcomes["placed"] == len(venue.open_orders(PUB)) > 0
        await trio.sleep(0.5)  # let the bucket refill for the snapshot (5 units at 20/s)
        await assert_book_matches(oms, venue)


async def test_rate_limited_cancels_are_retried(slow_venue: Venue) -> None:
    """Cancels are idempotent: a RateLimited answer is retried after a backoff, not surfaced."""
    venue = slow_venue
    # The placer is paced under the venue's 20/s; the canceller is not: 80 cancels overflow 50 units.
    slow = PacerSettings(units_per_second=18, burst=40)
    async with manager(venue, pacer=slow) as placer, manager(venue, pacer=None) as canceller:
        orders = [await placer.place_order("AAPL-USD", "BUY", "1", str(100 + i)) for i in range(80)]
        await wait_until(lambda: len(canceller.orders()) == 80, what="the push of 80 ACKs")
        statuses: Counter[str] = Counter()
        frames = FrameLog()
        canceller.on_frame_sent = frames

        async def cancel(order_id: str | None) -> None:
            statuses[(await canceller.cancel(order_id=order_id, symbol="AAPL-USD")).status] += 1

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for order in orders:
                    nursery.start_soon(cancel, order.order_id)
        assert statuses == Counter(CANCELLED=80)
        assert len(frames.of("cancel_order")) > 80  # some were answered RateLimited and sent again
        assert venue.open_orders(PUB) == []
        await assert_book_matches(canceller, venue)
        await wait_until(lambda: placer.orders() == [], what="the push of 80 CANCELLEDs")
