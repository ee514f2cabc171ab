"""A burst of 1,000 orders against a venue that rate-limits like QFEX (weights, two buckets).

The simulator's bucket is shrunk to 50 units (QFEX's 200 units/s refill) so a burst overflows it
at once: with the manager's pacer every order is placed, without it most are answered RateLimited.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator

import pytest
import trio
from managerkit import FrameLog, assert_book_matches
from simkit import PUB, manager
from waiting import wait_until

from qfex_oms import OrderManager, OrderRejected
from qfex_oms.sim import RateLimitSettings, Venue, open_simulator

BURST = 1000
SYMBOLS = ("AAPL-USD", "TSLA-USD")


@pytest.fixture
async def tight_venue() -> AsyncIterator[Venue]:
    async with open_simulator(rate_limits=RateLimitSettings(units_per_second=200, capacity=50)) as v:
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


async def test_without_the_pacer_the_same_burst_is_rate_limited(tight_venue: Venue) -> None:
    venue = tight_venue
    async with manager(venue, pacer=None) as oms:
        with trio.fail_after(15):
            outcomes = await burst(oms)
        assert sum(outcomes.values()) == BURST
        assert outcomes["rejected RateLimited"] > BURST // 2, outcomes
        assert set(outcomes) <= {"placed", "rejected RateLimited"}, outcomes
        assert outcomes["placed"] == len(venue.open_orders(PUB)) > 0
        await trio.sleep(0.3)  # let the bucket refill for the snapshot
        await assert_book_matches(oms, venue)


async def test_rate_limited_cancels_are_retried(tight_venue: Venue) -> None:
    """Cancels are idempotent: a RateLimited answer is retried after a backoff, not surfaced."""
    venue = tight_venue
    async with manager(venue) as placer, manager(venue, pacer=None) as canceller:
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
