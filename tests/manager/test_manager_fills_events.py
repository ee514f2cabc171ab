"""Fills between two real accounts, deduplication, and the event stream (order, completeness, slowness)."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import trio
from managerkit import assert_book_matches, round_trip, wait_state
from simkit import PUB, PUB2
from structlog.testing import capture_logs
from waiting import drain, wait_until

from qfex_oms import OrderManager, OrderState
from qfex_oms.client.events import HaltChanged
from qfex_oms.core.events import CancelFinished, FillReceived, OrderUpdated
from qfex_oms.sim import Venue

S = "AAPL-USD"
OPEN, FILLED, CANCELLED = OrderState.OPEN, OrderState.FILLED, OrderState.CANCELLED


async def test_crossing_two_accounts_fills_both_sides(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    bid = await oms.place_order(S, "BUY", "3", "150")
    ask = await oms2.place_order(S, "SELL", "3", "149")
    await wait_state(bid, FILLED)
    await wait_state(ask, FILLED)
    # FILLED comes in an order_response and the fill in its own fill_response: the barrier makes
    # sure both accounts have read the fill too.
    await round_trip(oms)
    await round_trip(oms2)
    for order, side in ((bid, "BUY"), (ask, "SELL")):
        assert order.filled_quantity == Decimal(3) and order.remaining_quantity == 0
        (fill,) = order.fills or ()
        assert fill.price == Decimal(150)  # the resting order's price
        assert fill.quantity == Decimal(3) and fill.side == side and fill.order_id == order.order_id
    (mine,) = venue.trades(PUB)
    (theirs,) = venue.trades(PUB2)
    assert bid.fills and bid.fills[0].trade_id == mine.trade_id
    assert ask.fills and ask.fills[0].trade_id == theirs.trade_id
    await assert_book_matches(oms, venue)
    await assert_book_matches(oms2, venue, PUB2)


async def test_partial_fills_keep_a_gtc_order_open_until_the_last(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    bid = await oms.place_order(S, "BUY", "10", "150")
    for i, quantity in enumerate(("1", "2", "3")):
        taker = await oms2.place_order(S, "SELL", quantity, "150", time_in_force="IOC")
        await wait_state(taker, FILLED)
        await wait_until(lambda n=i + 1: len(bid.fills or ()) == n, what="the fill")
        assert bid.state is OPEN
    assert bid.filled_quantity == Decimal(6) and bid.remaining_quantity == Decimal(4)
    await assert_book_matches(oms, venue)
    await oms2.place_order(S, "SELL", "4", "150")
    await wait_state(bid, FILLED)
    await wait_until(lambda: len(bid.fills or ()) == 4, what="the last fill_response")
    assert bid.filled_quantity == Decimal(10)
    await assert_book_matches(oms, venue)
    await assert_book_matches(oms2, venue, PUB2)


async def test_a_cancel_after_a_partial_fill_keeps_the_fill(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    bid = await oms.place_order(S, "BUY", "5", "150")
    await oms2.place_order(S, "SELL", "2", "150", time_in_force="IOC")
    await wait_until(lambda: bid.filled_quantity == 2, what="the partial fill")
    result = await oms.cancel(bid)
    assert result.status == "CANCELLED" and bid.state is CANCELLED
    assert bid.filled_quantity == Decimal(2) and bid.remaining_quantity == Decimal(3)
    await assert_book_matches(oms, venue)


async def test_duplicated_fill_frames_count_once(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    venue.faults.duplicate_next(5, kind="fill_response", public_key=PUB)
    stream = oms.events()
    bid = await oms.place_order(S, "BUY", "5", "150")
    for _ in range(5):
        await oms2.place_order(S, "SELL", "1", "150", time_in_force="IOC")
    await wait_state(bid, FILLED)
    await round_trip(oms)
    events = await drain(stream)
    fills = [e.fill.trade_id for e in events if isinstance(e, FillReceived)]
    assert len(fills) == 5 and len(set(fills)) == 5
    assert bid.filled_quantity == Decimal(5) and len(bid.fills or ()) == 5
    await assert_book_matches(oms, venue)


async def test_resync_does_not_count_fills_twice(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    bid = await oms.place_order(S, "BUY", "4", "150")
    for _ in range(2):
        await oms2.place_order(S, "SELL", "1", "150", time_in_force="IOC")
    await wait_until(lambda: bid.filled_quantity == 2, what="two fills")
    diff = await oms.reconcile()
    assert diff.fills_added == [] and diff.adopted == [] and diff.settled == []
    assert bid.filled_quantity == Decimal(2) and len(bid.fills or ()) == 2 and bid.state is OPEN
    await assert_book_matches(oms, venue)


async def test_events_arrive_in_order(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    stream = oms.events()
    bid = await oms.place_order(S, "BUY", "3", "150")
    await oms2.place_order(S, "SELL", "1", "150", time_in_force="IOC")
    await wait_until(lambda: bid.filled_quantity == 1, what="first fill")
    await oms2.place_order(S, "SELL", "1", "150", time_in_force="IOC")
    # The fill itself, not filled_quantity: that comes with the FILLED order_response, a frame
    # before the fill_response, and a cancel sent between the two would precede the second fill.
    await wait_until(lambda: len(bid.fills or ()) == 2, what="second fill_response")
    await oms.cancel(bid)
    events = [e for e in await drain(stream) if getattr(e, "order", None) is bid
              or isinstance(e, CancelFinished)]
    kinds = [(type(e).__name__, str(getattr(e, "state", "")) or None) for e in events]
    updates = [e for e in events if isinstance(e, OrderUpdated)]
    assert (updates[0].previous, updates[0].state, updates[0].status) == (OrderState.PENDING_NEW, OPEN, "ACK")
    assert [e.state for e in updates][-2:] == [OrderState.PENDING_CANCEL, CANCELLED], kinds
    fills = [i for i, e in enumerate(events) if isinstance(e, FillReceived)]
    assert len(fills) == 2, kinds
    first_open = events.index(updates[0])
    cancel_sent = events.index(updates[-2])
    assert first_open < fills[0] < fills[1] < cancel_sent, kinds
    assert isinstance(events[-1], CancelFinished) and events[-1].request.status == "CANCELLED"
    assert [e.fill.quantity for e in events if isinstance(e, FillReceived)] == [Decimal(1), Decimal(1)]


async def test_every_subscriber_gets_every_event(oms: OrderManager) -> None:
    first, second = oms.events(), oms.events()
    orders = [await oms.place_order(S, "BUY", "1", str(100 + i)) for i in range(5)]
    await oms.cancel_all()
    oms.resume()
    a, b = await drain(first), await drain(second)
    assert [type(e) for e in a] == [type(e) for e in b] and len(a) > 10
    assert sum(isinstance(e, HaltChanged) for e in a) == 2
    ended = {e.order.order_id for e in a if isinstance(e, OrderUpdated) and e.state is CANCELLED}
    assert ended == {o.order_id for o in orders}


async def test_a_slow_consumer_loses_nothing_and_blocks_nothing(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    n = 150
    with capture_logs() as logs:
        stream = oms.events(high_water=50)
        # The consumer does not read while all of this happens: the reader must keep going.
        with trio.fail_after(10):
            bids = [await oms.place_order(S, "BUY", "1", str(100 + i)) for i in range(n)]
            await oms2.place_order(S, "SELL", str(n // 2), "1", time_in_force="IOC")
            await wait_until(lambda: sum(b.state is FILLED for b in bids) == n // 2, what="fills")
            await oms.cancel_all()
        await wait_until(lambda: all(b.state in (FILLED, CANCELLED) for b in bids), what="every bid to end")
    assert any(e["event"] == "event consumer is falling behind" and e["log_level"] == "warning"
               for e in logs)
    events = await drain(stream)
    per_order: dict[str | None, list[str]] = {}
    for e in events:
        if isinstance(e, OrderUpdated):
            per_order.setdefault(e.order.order_id, []).append(str(e.state))
        elif isinstance(e, FillReceived):
            per_order.setdefault(e.order.order_id, []).append("fill")
    filled = [b for b in bids if b.state is FILLED]
    cancelled = [b for b in bids if b.state is CANCELLED]
    assert len(filled) == n // 2 and len(cancelled) == n - n // 2
    for bid in filled:
        assert [x for x in per_order[bid.order_id] if x != "fill"] == ["OPEN", "FILLED"]
        assert per_order[bid.order_id].count("fill") == 1
    for bid in cancelled:
        assert per_order[bid.order_id] == ["OPEN", "PENDING_CANCEL", "CANCELLED"]
    counts = Counter(type(e).__name__ for e in events)
    assert counts["FillReceived"] == n // 2
    oms.resume()
    await assert_book_matches(oms, venue)


async def test_a_closed_stream_stops_receiving(oms: OrderManager) -> None:
    with oms.events() as stream:
        await oms.place_order(S, "BUY", "1", "100")
    assert await drain(stream) == []
    assert stream not in oms._streams
