"""A request whose deadline passes while it still waits for the pacer never reached the exchange.

That outcome is exact, not ambiguous: the order is closed locally (REJECTED, NOT_SENT) and
``NotSent`` is raised, where a deadline after the frame went out still gives UNKNOWN. Before this,
such orders became UNKNOWN and were later settled CANCELLED from a snapshot that did not show them:
a cancel that never happened. The manager here paces at 20 units/s with a burst of 2 and waits
0.3 s, so a burst of 30 requests sends about eight and withdraws the rest.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
import trio
from managerkit import PUB, FrameLog, assert_book_matches, manager

from qfex_oms import NotSent, OrderManager, OrderState, OrderStatusUnknown, PacerSettings
from qfex_oms.sim import Venue

S = "AAPL-USD"
SLOW = {"pacer": PacerSettings(units_per_second=20, burst=2), "request_timeout": 0.3}
# One token, refilled in 0.5 s: after one order, the next request's turn is past its 0.3 s deadline.
ONE_EVERY_HALF_SECOND = {"pacer": PacerSettings(units_per_second=2, burst=1), "request_timeout": 0.3}


async def burst_of_orders(oms: OrderManager, n: int, first_price: int = 100) -> Counter[str]:
    outcomes: Counter[str] = Counter()

    async def place(i: int) -> None:
        try:
            await oms.place_order(S, "BUY", "1", str(first_price + i))
            outcomes["placed"] += 1
        except NotSent as exc:
            assert exc.subject.state is OrderState.REJECTED  # closed, never UNKNOWN
            outcomes["not sent"] += 1
        except OrderStatusUnknown:
            outcomes["unknown"] += 1

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(place, i)
    return outcomes


async def test_orders_withdrawn_from_the_pacer_are_rejected_not_sent_and_never_reach_the_venue(
    venue: Venue,
) -> None:
    async with manager(venue, **SLOW) as oms:
        frames = FrameLog()
        oms.on_frame_sent = frames
        outcomes = await burst_of_orders(oms, 30)
        assert outcomes["unknown"] == 0, outcomes
        assert outcomes["placed"] > 0 and outcomes["not sent"] > 0, outcomes
        assert len(frames.of("add_order")) == outcomes["placed"] == len(venue.open_orders(PUB))
        withdrawn = [o for o in oms.orders(open_only=False) if o.last_status == "NOT_SENT"]
        assert len(withdrawn) == outcomes["not sent"]
        assert all(o.state is OrderState.REJECTED and o.order_id is None for o in withdrawn)
        await trio.sleep(1.5)  # the pacer refills; the settler has had every chance to run
        await oms.reconcile()
        assert all(o.state is OrderState.REJECTED for o in withdrawn)  # never settled as CANCELLED
        await assert_book_matches(oms, venue)


async def test_a_cancel_withdrawn_from_the_pacer_leaves_its_order_open(venue: Venue) -> None:
    async with manager(venue, **SLOW) as oms:
        orders = [await oms.place_order(S, "BUY", "1", str(100 + i)) for i in range(20)]
        frames = FrameLog()
        oms.on_frame_sent = frames
        results = {}

        async def cancel(i: int) -> None:
            results[i] = (await oms.cancel(orders[i])).status

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(cancel, i)
        statuses = Counter(results.values())
        assert set(statuses) == {"CANCELLED", "NOT_SENT"}, statuses
        assert len(frames.of("cancel_order")) == statuses["CANCELLED"]
        for i, status in results.items():
            expected = OrderState.CANCELLED if status == "CANCELLED" else OrderState.OPEN
            assert orders[i].state is expected, (i, status, orders[i].state)
        assert len(venue.open_orders(PUB)) == statuses["NOT_SENT"]
        await trio.sleep(1.0)  # room in the pacer again: the same cancels now go through
        for i, status in results.items():
            if status == "NOT_SENT":
                assert (await oms.cancel(orders[i])).status == "CANCELLED"
        assert venue.open_orders(PUB) == []
        await assert_book_matches(oms, venue)


async def test_a_query_withdrawn_from_the_pacer_does_not_steal_the_next_answer(venue: Venue) -> None:
    """Replies carry no request id: a query that was never sent must not wait for an answer, or
    the next query's answer would be handed to it."""
    async with manager(venue, **ONE_EVERY_HALF_SECOND) as oms:
        first = await oms.place_order(S, "BUY", "1", "99")  # spends the only token
        with pytest.raises(NotSent):
            await oms.fetch_open_orders()  # its token is 0.5 s away; the deadline is 0.3 s
        await trio.sleep(0.7)
        with trio.fail_after(1.0):
            snapshot = await oms.fetch_open_orders()
        assert [row.order_id for row in snapshot.orders] == [first.order_id]


async def test_a_modify_withdrawn_from_the_pacer_changes_nothing_and_can_be_sent_again(venue: Venue) -> None:
    async with manager(venue, **ONE_EVERY_HALF_SECOND) as oms:
        order = await oms.place_order(S, "BUY", "2", "99")
        with pytest.raises(NotSent):
            await oms.modify_order(order, price="98")
        assert order.price == Decimal("99") and order.state is OrderState.OPEN
        assert venue.open_orders(PUB)[0].price == Decimal("99")
        await trio.sleep(0.7)
        await oms.modify_order(order, price="98")  # not "a modify is already in flight"
        assert order.price == Decimal("98")
