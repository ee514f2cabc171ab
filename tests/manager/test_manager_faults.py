"""Every fault the simulator injects, each ending with a book that matches a ``get_user_orders`` snapshot.

Dropped, duplicated and reordered replies, latency, a disconnect in the middle of a cancel, and a
fill racing a cancel. The manager runs with a short ``request_timeout`` so a lost answer costs a
fraction of a second; the settler (or the resync after a reconnect) then settles what was lost.
"""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import pytest
import trio
from faultkit import FAST, SHORT, ReceivedLog, next_event
from managerkit import FrameLog, assert_book_matches, round_trip, wait_state
from simkit import PUB, PUB2, manager
from waiting import drain, wait_until

from qfex_oms import NotConnected, OrderManager, OrderState, OrderStatusUnknown, RequestTimeout
from qfex_oms.client import settler
from qfex_oms.client.events import Reconnected
from qfex_oms.core.events import CancelFinished, FillReceived, OrderUpdated
from qfex_oms.core.states import TwapState
from qfex_oms.sim import Venue

S, T = "AAPL-USD", "TSLA-USD"
OPEN, FILLED, CANCELLED, UNKNOWN = (OrderState.OPEN, OrderState.FILLED, OrderState.CANCELLED,
                                    OrderState.UNKNOWN)


def transitions(events: list[object], order: object) -> list[tuple[OrderState, OrderState]]:
    """The state changes an order went through, as the event stream told them."""
    return [(e.previous, e.state) for e in events
            if isinstance(e, OrderUpdated) and e.order is order and e.previous is not e.state]


# ====================================================================== dropped replies


async def test_dropped_twap_response_raises_status_unknown_then_settles_active(venue: Venue) -> None:
    async with manager(venue, request_timeout=SHORT) as oms:
        venue.faults.drop_next(1, kind="twap_response", public_key=PUB)
        with pytest.raises(OrderStatusUnknown) as caught:
            # One hour between children (3.6 s at the fixture's time scale): still running after the
            # timeout, so only the dropped creation answer could have told us about it.
            await oms.place_twap(S, "BUY", total_quantity="10", num_orders=5, order_interval_secs=3600,
                                 client_twap_id="lost-twap")
        twap = caught.value.order
        assert "lost-twap" in str(caught.value) and caught.value.reason == "TIMEOUT"
        assert twap.state is TwapState.UNKNOWN, "never REJECTED: the exchange may be running it"
        (running,) = venue.twaps(PUB, active_only=True)
        # The settler's snapshot finds it running and binds it by its client_twap_id.
        await wait_until(lambda: twap.state is TwapState.ACTIVE, what="the TWAP settled ACTIVE")
        assert twap.twap_id == running.twap_id


async def test_dropped_ack_raises_status_unknown_then_settles_open(venue: Venue) -> None:
    async with manager(venue, request_timeout=SHORT) as oms:
        venue.faults.drop_next(1, kind="order_response", public_key=PUB)
        started = trio.current_time()
        with pytest.raises(OrderStatusUnknown) as caught:
            await oms.place_order(S, "BUY", "1", "100", client_order_id="lost-ack")
        assert trio.current_time() - started >= SHORT * 0.9
        order = caught.value.order
        assert caught.value.reason == "TIMEOUT"
        # Never REJECTED: the exchange may well have it.
        assert order.state is UNKNOWN and order.order_id is None
        (resting,) = venue.open_orders(PUB)
        # The settler's snapshot finds it resting and binds it by its client id.
        await wait_state(order, OPEN)
        assert order.order_id == resting.order_id and order.remaining_quantity == Decimal(1)
        await assert_book_matches(oms, venue)
        # It is a normal order again.
        assert (await oms.cancel(order)).status == "CANCELLED"
        await assert_book_matches(oms, venue)


async def test_dropped_cancelled_times_out_then_settles_cancelled(venue: Venue) -> None:
    async with manager(venue, request_timeout=SHORT) as oms:
        keep = await oms.place_order(S, "BUY", "1", "99")
        order = await oms.place_order(S, "BUY", "1", "100")
        venue.faults.drop_next(1, kind="order_response", public_key=PUB)
        result = await oms.cancel(order)
        assert result.status == "TIMEOUT" and not result.ok and result.cancelled == ()
        assert order.state is UNKNOWN  # a lost cancel answer proves nothing yet
        await wait_state(order, CANCELLED)  # the snapshot no longer shows it: it is gone
        assert order.filled_quantity == 0 and keep.state is OPEN
        await assert_book_matches(oms, venue)


@pytest.mark.parametrize("lost", ["TIMEOUT", "DISCONNECTED"])
async def test_a_partly_answered_cancel_is_not_reported_ok(lost: str, venue: Venue) -> None:
    async with manager(venue, request_timeout=SHORT, reconnect=FAST) as oms:
        group = [await oms.place_order(S, "BUY", "1", str(100 - i), client_order_id="grp")
                 for i in range(3)]
        if lost == "TIMEOUT":
            venue.faults.drop_next(1, kind="order_response", public_key=PUB)  # the first CANCELLED
        else:
            venue.faults.disconnect_after(1, public_key=PUB)  # dies after the first CANCELLED
        result = await oms.cancel(client_order_id="grp", symbol=S)
        assert venue.open_orders(PUB) == []
        unanswered = [o for o in group if o not in result.cancelled]
        assert len(result.cancelled) == 2 - (lost == "DISCONNECTED")
        assert {o.state for o in unanswered} == {UNKNOWN}
        await wait_until(lambda: all(o.state is CANCELLED for o in group), what="settlement")
        await assert_book_matches(oms, venue)
        # When the cancel returned, orders it covered were UNKNOWN (for all the manager knew,
        # still resting), so its result must say the outcome was lost, not "ok".
        assert result.status == lost and not result.ok


async def test_dropped_fill_response_keeps_the_filled_quantity_right(
    oms2: OrderManager, venue: Venue, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The settler fetches a fill a FILLED report named once FILL_GAP_GRACE has passed: on a slow
    # machine it could beat the test's own reconcile() below, leaving it no fill to add. The test
    # is about what that reconcile finds, so the settler waits longer than any test could take.
    monkeypatch.setattr(settler, "FILL_GAP_GRACE", 60.0)
    async with manager(venue, request_timeout=SHORT) as oms:
        bid = await oms.place_order(S, "BUY", "5", "150")
        venue.faults.drop_next(1, kind="fill_response", public_key=PUB)
        await oms2.place_order(S, "SELL", "2", "150", time_in_force="IOC")
        # The FILLED order_response still arrives: its quantity_remaining is enough.
        await wait_until(lambda: bid.filled_quantity == 2, what="the partial fill")
        assert bid.state is OPEN and bid.remaining_quantity == Decimal(3) and not bid.fills
        await oms2.place_order(S, "SELL", "3", "150", time_in_force="IOC")
        await wait_state(bid, FILLED)
        await wait_until(lambda: len(bid.fills or ()) == 1, what="the second fill_response")
        assert bid.filled_quantity == Decimal(5) and bid.remaining_quantity == 0
        # The lost fill's details (price, trade id) come from get_user_trades, counted once.
        diff = await oms.reconcile()
        (sim_first, sim_second) = venue.trades(PUB)
        assert [f.trade_id for f in diff.fills_added] == [sim_first.trade_id]
        assert sorted(f.trade_id for f in bid.fills or ()) == sorted(
            (sim_first.trade_id, sim_second.trade_id))
        assert bid.fill_total == Decimal(5) and bid.filled_quantity == Decimal(5)
        await assert_book_matches(oms, venue)


async def test_a_fill_known_only_from_its_order_response_is_fetched(
    oms2: OrderManager, venue: Venue
) -> None:
    async with manager(venue, request_timeout=SHORT) as oms:
        bid = await oms.place_order(S, "BUY", "2", "150")
        venue.faults.drop_next(1, kind="fill_response", public_key=PUB)
        await oms2.place_order(S, "SELL", "2", "150", time_in_force="IOC")
        await wait_state(bid, FILLED)
        # No reconcile() by the test: the manager itself must notice the missing fill.
        await assert_book_matches(oms, venue)


async def test_a_late_query_answer_is_consumed_by_its_own_request(venue: Venue) -> None:
    """The answer to a timed-out get_user_orders arrives late: it must not answer the next request."""
    async with manager(venue, request_timeout=SHORT) as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        venue.faults.set_latency(SHORT * 1.5, public_key=PUB)
        with pytest.raises(RequestTimeout):
            await oms.reconcile()
        await trio.sleep(SHORT)  # the late answer arrives meanwhile
        venue.faults.clear(PUB)
        # The manager restarts the connection rather than hand a late answer to a later caller;
        # wait until a connection's resync has gone through before asking again.
        with oms.events() as stream, trio.fail_after(10):
            async for event in stream:
                if isinstance(event, Reconnected):
                    break
        later = await oms.place_order(S, "BUY", "1", "101")
        with trio.fail_after(SHORT * 3):
            snapshot = await oms.fetch_open_orders()
        # A stale answer would lack the order placed after it.
        assert {r.order_id for r in snapshot.orders} == {order.order_id, later.order_id}
        await assert_book_matches(oms, venue)


async def test_dropped_snapshot_answer_then_a_later_reconcile_works(venue: Venue) -> None:
    async with manager(venue, request_timeout=SHORT) as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        venue.faults.drop_next(1, kind="all_orders_response", public_key=PUB)
        with pytest.raises(RequestTimeout):
            await oms.reconcile()
        # Allow a fix some grace to expire the abandoned request; then reconciles work again.
        succeeded = 0
        with trio.move_on_after(SHORT * 5):
            while succeeded < 2:
                try:
                    await oms.reconcile()
                    succeeded += 1
                except (RequestTimeout, NotConnected):  # a fix may reconnect to resynchronise
                    succeeded = 0
                    await trio.sleep(0.01)
        assert succeeded == 2, "reconcile() never worked again after one dropped answer"
        assert order.state is OPEN
        await assert_book_matches(oms, venue)


# ====================================================================== duplicated replies


@pytest.mark.parametrize("reply", ["ACK", "FILLED", "fill_response", "CANCELLED"])
async def test_a_duplicated_reply_counts_once(
    reply: str, oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    received = ReceivedLog()
    oms.on_frame_received = received
    stream = oms.events()
    kind = "fill_response" if reply == "fill_response" else "order_response"
    if reply == "ACK":
        venue.faults.duplicate_next(1, kind=kind, public_key=PUB)
    order = await oms.place_order(S, "BUY", "4", "150")
    if reply in ("FILLED", "fill_response"):
        venue.faults.duplicate_next(1, kind=kind, public_key=PUB)
        await oms2.place_order(S, "SELL", "1", "150", time_in_force="IOC")
        await wait_until(lambda: len(order.fills or ()) == 1, what="the fill")
    if reply == "CANCELLED":
        venue.faults.duplicate_next(1, kind=kind, public_key=PUB)
    result = await oms.cancel(order)
    # The duplicate of the CANCELLED is the frame after the one that answered the cancel: the
    # barrier, not drain's idle time, makes sure it has been read before it is counted.
    await round_trip(oms)
    events = await drain(stream)
    # The fault hit what it was meant to hit.
    assert received.count(kind, None if kind == "fill_response" else reply) == 2
    assert result.status == "CANCELLED" and result.cancelled == (order,)
    filled = Decimal(1) if reply in ("FILLED", "fill_response") else Decimal(0)
    assert order.filled_quantity == filled and order.fill_total == filled
    assert len(order.fills or ()) == filled
    assert sum(isinstance(e, FillReceived) for e in events) == filled
    assert sum(isinstance(e, CancelFinished) for e in events) == 1
    assert transitions(events, order) == [(OrderState.PENDING_NEW, OPEN),
                                          (OPEN, OrderState.PENDING_CANCEL),
                                          (OrderState.PENDING_CANCEL, CANCELLED)]
    await assert_book_matches(oms, venue)


async def test_every_reply_duplicated(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    """Each frame to the account twice: ACKs, partial and full FILLED, fills, CANCELLED, queries."""
    venue.faults.duplicate_next(10_000, public_key=PUB)
    received = ReceivedLog()
    oms.on_frame_received = received
    stream = oms.events()
    bid = await oms.place_order(S, "BUY", "3", "150")
    rest = await oms.place_order(T, "BUY", "2", "90", client_order_id="dup")
    twin = await oms.place_order(T, "BUY", "2", "89", client_order_id="dup")
    for _ in range(3):
        await oms2.place_order(S, "SELL", "1", "150", time_in_force="IOC")
    await wait_state(bid, FILLED)
    result = await oms.cancel(client_order_id="dup", symbol=T)
    assert result.status == "CANCELLED" and set(result.cancelled) == {rest, twin}
    assert len(result.cancelled) == 2
    diff = await oms.reconcile()
    assert not diff.changed
    await wait_until(lambda: len(bid.fills or ()) == 3, what="every fill")
    # reconcile() returned on the first user_trades_response; its duplicate is the next frame.
    await wait_until(lambda: received.count("user_trades_response") == 2, what="the duplicated answer")
    events = await drain(stream)
    assert bid.filled_quantity == Decimal(3) and bid.fill_total == Decimal(3)
    assert len({f.trade_id for f in bid.fills or ()}) == 3
    assert sum(isinstance(e, FillReceived) for e in events) == 3
    assert transitions(events, bid) == [(OrderState.PENDING_NEW, OPEN), (OPEN, FILLED)]
    assert received.count("order_response", "ACK") == 6 and received.count("fill_response") == 6
    assert received.count("all_orders_response") == 2 and received.count("user_trades_response") == 2
    venue.faults.clear(PUB)
    await assert_book_matches(oms, venue)


# ====================================================================== reordered replies


async def test_fill_before_its_ack(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    """An order that crosses at once: its ACK is held back and arrives after its FILLED."""
    ask = await oms2.place_order(S, "SELL", "2", "150")
    stream = oms.events()
    venue.faults.reorder_next(1, kind="order_response", public_key=PUB)
    bid = await oms.place_order(S, "BUY", "2", "150")
    await wait_state(bid, FILLED)
    await wait_until(lambda: len(bid.fills or ()) == 1, what="the fill_response")
    events = await drain(stream, idle=0.2)  # the late ACK has come and gone
    assert bid.filled_quantity == Decimal(2) and bid.state is FILLED
    assert transitions(events, bid) == [(OrderState.PENDING_NEW, FILLED)]
    await wait_state(ask, FILLED)
    await assert_book_matches(oms, venue)
    await assert_book_matches(oms2, venue, PUB2)


async def test_fill_response_before_its_order_response(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    bid = await oms.place_order(S, "BUY", "3", "150")
    venue.faults.reorder_next(1, kind="order_response", public_key=PUB)  # hold the FILLED
    await oms2.place_order(S, "SELL", "1", "150", time_in_force="IOC")
    await wait_until(lambda: bid.filled_quantity == 1, what="the partial fill")
    await oms2.place_order(S, "SELL", "2", "150", time_in_force="IOC")
    await wait_state(bid, FILLED)
    await wait_until(lambda: len(bid.fills or ()) == 2, what="both fills")
    assert bid.filled_quantity == Decimal(3) and bid.fill_total == Decimal(3)
    await assert_book_matches(oms, venue)


async def test_late_fill_after_cancelled_is_counted(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    """The fill_response of a partial fill is held back until after the CANCELLED of the rest."""
    bid = await oms.place_order(S, "BUY", "5", "150")
    venue.faults.reorder_next(1, kind="fill_response", public_key=PUB)
    await oms2.place_order(S, "SELL", "2", "150", time_in_force="IOC")
    await wait_until(lambda: bid.filled_quantity == 2, what="the FILLED order_response")
    result = await oms.cancel(bid)  # well inside the simulator's 0.5 s reorder flush
    assert result.status == "CANCELLED" and bid.state is CANCELLED
    await wait_until(lambda: len(bid.fills or ()) == 1, what="the late fill_response")
    assert bid.state is CANCELLED  # a late partial fill does not reopen it
    assert bid.filled_quantity == Decimal(2) and bid.remaining_quantity == Decimal(3)
    await assert_book_matches(oms, venue)


async def test_cancelled_before_the_filled_it_followed(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    """CANCELLED overtakes the FILLED (partial) sent before it; the partial fill is still counted."""
    bid = await oms.place_order(S, "BUY", "5", "150")
    stream = oms.events()
    # Hold the FILLED back; drop its fill_response, so the next frame to pass is the CANCELLED.
    venue.faults.reorder_next(1, kind="order_response", public_key=PUB)
    venue.faults.drop_next(1, kind="fill_response", public_key=PUB)
    await oms2.place_order(S, "SELL", "2", "150", time_in_force="IOC")
    await wait_until(lambda: venue.order(bid.order_id or "").filled == 2, what="the simulator's fill")
    assert bid.filled_quantity == 0  # nothing has reached the manager yet
    result = await oms.cancel(bid)
    assert result.status == "CANCELLED" and result.cancelled == (bid,)
    await wait_until(lambda: bid.filled_quantity == 2, what="the FILLED after the CANCELLED")
    assert bid.state is CANCELLED and bid.remaining_quantity == Decimal(3)
    events = await drain(stream)
    assert transitions(events, bid) == [(OPEN, OrderState.PENDING_CANCEL),
                                        (OrderState.PENDING_CANCEL, CANCELLED)]
    await oms.reconcile()  # the dropped fill_response's details, from get_user_trades
    assert bid.fill_total == Decimal(2) and len(bid.fills or ()) == 1
    await assert_book_matches(oms, venue)


# ====================================================================== latency


async def test_latency_on_every_frame(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    venue.faults.set_latency(0.05)  # every connection, both accounts
    started = trio.current_time()
    order = await oms.place_order(S, "BUY", "2", "150")
    assert trio.current_time() - started >= 0.05 and order.state is OPEN
    await oms2.place_order(S, "SELL", "1", "150", time_in_force="IOC")
    await wait_until(lambda: order.filled_quantity == 1 and len(order.fills or ()) == 1,
                     what="the fill")
    started = trio.current_time()
    result = await oms.cancel(order)
    assert trio.current_time() - started >= 0.05
    assert result.status == "CANCELLED" and order.state is CANCELLED
    assert order.filled_quantity == Decimal(1)
    await assert_book_matches(oms, venue)
    venue.faults.clear_all()
    await assert_book_matches(oms2, venue, PUB2)


async def test_cancel_before_ack_under_latency_is_held_then_sent(venue: Venue) -> None:
    """Two orders share a client id; the one cancelled before its ACK goes by order_id on the ACK."""
    venue.faults.set_latency(0.05, public_key=PUB)
    async with manager(venue) as oms, trio.open_nursery() as nursery:
        frames = FrameLog()
        oms.on_frame_sent = frames
        for price in ("100", "99"):
            nursery.start_soon(partial(oms.place_order, S, "BUY", "1", price, client_order_id="c"))
        await wait_until(lambda: len(frames.of("add_order")) == 2, what="both sent")
        first = next(o for o in oms.orders() if o.price == Decimal(100))
        assert first.order_id is None
        result = await oms.cancel(first)
        assert result.status == "CANCELLED" and result.cancelled == (first,)
        assert frames.types().index("cancel_order") > 1
        assert frames.of("cancel_order") == [
            {"order_id": first.order_id, "symbol": S, "cancel_order_id_type": "order_id"}]
        venue.faults.clear(PUB)
        assert len(oms.orders()) == 1 and oms.orders()[0].state is OPEN
        await assert_book_matches(oms, venue)


async def test_cancel_of_an_unacked_unique_order_under_latency(venue: Venue) -> None:
    """No sibling shares the client id: the cancel may go at once by client id; the order still ends."""
    venue.faults.set_latency(0.05, public_key=PUB)
    async with manager(venue) as oms:
        frames = FrameLog()
        oms.on_frame_sent = frames
        async with trio.open_nursery() as nursery:
            nursery.start_soon(partial(oms.place_order, S, "BUY", "1", "100", client_order_id="u"))
            await wait_until(lambda: len(frames.of("add_order")) == 1, what="the order sent")
            (order,) = oms.orders()
            result = await oms.cancel(order)
        assert result.status == "CANCELLED" and result.cancelled == (order,)
        assert order.state is CANCELLED and len(frames.of("cancel_order")) == 1
        venue.faults.clear(PUB)
        await assert_book_matches(oms, venue)


# ====================================================================== disconnect in the middle of a cancel


async def test_disconnect_in_the_middle_of_a_cancel(venue: Venue) -> None:
    async with manager(venue, reconnect=FAST) as oms:
        keep = await oms.place_order(S, "BUY", "1", "99")
        order = await oms.place_order(S, "BUY", "1", "100")
        stream = oms.events()
        venue.faults.disconnect_after(0, public_key=PUB)  # the cancel's answer never leaves
        result = await oms.cancel(order)
        assert result.status == "DISCONNECTED" and result.cancelled == ()
        assert order.state is UNKNOWN
        assert venue.open_orders(PUB)[0].order_id == keep.order_id  # the exchange did cancel it
        reconnected, _ = await next_event(stream, Reconnected)
        assert order.state is CANCELLED and keep.state is OPEN
        assert reconnected.diff.settled == [order]
        await assert_book_matches(oms, venue)


async def test_drop_while_a_cancel_is_in_flight(venue: Venue) -> None:
    async with manager(venue, reconnect=FAST) as oms:
        orders = [await oms.place_order(S, "BUY", "1", str(100 + i)) for i in range(3)]
        # The CANCELLED must still be on its way when the connection drops: 1 s of latency is a
        # margin for a busy machine (the drop comes as soon as the venue has cancelled, so the
        # test does not wait it out).
        venue.faults.set_latency(1.0, public_key=PUB)
        stream = oms.events()
        async with trio.open_nursery() as nursery:
            results = []

            async def cancel() -> None:
                results.append(await oms.cancel(orders[0]))

            nursery.start_soon(cancel)
            await wait_until(lambda: orders[0].state is OrderState.PENDING_CANCEL, what="in flight")
            await wait_until(lambda: len(venue.open_orders(PUB)) == 2, what="the cancel to land")
            venue.faults.clear(PUB)
            await venue.drop_connections(PUB)
        assert [r.status for r in results] == ["DISCONNECTED"]
        await next_event(stream, Reconnected)
        assert [o.state for o in orders] == [CANCELLED, OPEN, OPEN]
        await assert_book_matches(oms, venue)


async def test_disconnect_mid_cancel_with_cancel_on_disconnect(venue: Venue) -> None:
    async with manager(venue, reconnect=FAST, cancel_on_disconnect=True) as oms:
        orders = [await oms.place_order(sym, "BUY", "1", "100") for sym in (S, S, T)]
        stream = oms.events()
        venue.faults.disconnect_after(0, public_key=PUB)
        result = await oms.cancel(orders[0])
        assert result.status == "DISCONNECTED"
        reconnected, _ = await next_event(stream, Reconnected)
        # The exchange cancelled the rest when the connection died; the resync shows it.
        assert venue.open_orders(PUB) == []
        assert all(o.state is CANCELLED for o in orders)
        assert set(reconnected.diff.settled) == set(orders)
        await assert_book_matches(oms, venue)
        again = await oms.place_order(S, "BUY", "1", "100")  # and it trades on
        assert again.state is OPEN
        await assert_book_matches(oms, venue)


async def test_disconnect_in_the_middle_of_a_client_id_cancel(venue: Venue) -> None:
    """The connection dies after the first of three CANCELLED: the rest is settled by resync."""
    async with manager(venue, reconnect=FAST) as oms:
        group = [await oms.place_order(S, "BUY", "1", str(100 - i), client_order_id="grp")
                 for i in range(3)]
        stream = oms.events()
        venue.faults.disconnect_after(1, public_key=PUB)
        result = await oms.cancel(client_order_id="grp", symbol=S)
        assert result.cancelled == (group[0],)
        assert {o.state for o in group[1:]} == {UNKNOWN}
        await next_event(stream, Reconnected)
        assert all(o.state is CANCELLED for o in group)
        await assert_book_matches(oms, venue)


# ====================================================================== fill racing a cancel


async def test_fill_races_cancel(oms: OrderManager, venue: Venue) -> None:
    order = await oms.place_order(S, "BUY", "2", "150")
    stream = oms.events()
    venue.faults.fill_races_cancel(1, public_key=PUB)
    result = await oms.cancel(order)
    assert result.status == "NO_SUCH_ORDER" and result.cancelled == () and not result.ok
    await wait_state(order, FILLED)
    sim = venue.order(order.order_id or "")
    assert sim is not None and order.filled_quantity == sim.filled == Decimal(2)
    await wait_until(lambda: len(order.fills or ()) == 1, what="the fill_response")
    events = await drain(stream)
    assert CANCELLED not in [state for _, state in transitions(events, order)]
    await assert_book_matches(oms, venue)


async def test_fill_races_cancel_after_a_partial_fill(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    order = await oms.place_order(S, "BUY", "5", "150")
    await oms2.place_order(S, "SELL", "2", "150", time_in_force="IOC")
    await wait_until(lambda: order.filled_quantity == 2, what="the partial fill")
    venue.faults.fill_races_cancel(1, public_key=PUB)
    result = await oms.cancel(order)
    assert result.status == "NO_SUCH_ORDER"
    await wait_state(order, FILLED)
    await wait_until(lambda: len(order.fills or ()) == 2, what="both fills")
    sim = venue.order(order.order_id or "")
    assert sim is not None and order.filled_quantity == sim.filled == Decimal(5)
    assert order.fill_total == Decimal(5)
    await assert_book_matches(oms, venue)


async def test_fill_races_a_client_id_cancel(oms: OrderManager, venue: Venue) -> None:
    group = [await oms.place_order(S, "BUY", "1", str(100 - i), client_order_id="race")
             for i in range(3)]
    venue.faults.fill_races_cancel(1, public_key=PUB)
    result = await oms.cancel(client_order_id="race", symbol=S)
    assert result.status == "NO_SUCH_ORDER" and result.cancelled == ()
    await wait_until(lambda: all(o.state is FILLED for o in group), what="every member filled")
    assert all(o.filled_quantity == venue.order(o.order_id or "").filled == 1  # type: ignore[union-attr]
               for o in group)
    await assert_book_matches(oms, venue)


async def test_fill_race_with_its_reports_lost_is_settled_filled(venue: Venue) -> None:
    """The race's FILLED and fill_response are both lost: NO_SUCH_ORDER alone must not end the
    order as CANCELLED; it rolls back and the settler's snapshot (trades) ends it FILLED."""
    async with manager(venue, request_timeout=SHORT) as oms:
        order = await oms.place_order(S, "BUY", "2", "150")
        venue.faults.fill_races_cancel(1, public_key=PUB)
        venue.faults.drop_next(2, public_key=PUB)  # FILLED and fill_response; NO_SUCH_ORDER passes
        stream = oms.events()
        result = await oms.cancel(order)
        assert result.status == "NO_SUCH_ORDER" and result.cancelled == ()
        assert order.state is not CANCELLED and order.needs_settlement
        await wait_state(order, FILLED)
        assert order.filled_quantity == Decimal(2) and order.fill_total == Decimal(2)
        assert len(order.fills or ()) == 1
        events = await drain(stream)
        assert CANCELLED not in [state for _, state in transitions(events, order)]
        await assert_book_matches(oms, venue)
