"""cancel() by every selector, TWAPs and their two cancel modes, and one frame per concurrent cancel."""

from __future__ import annotations

from decimal import Decimal
from functools import partial

import pytest
import trio
from managerkit import FrameLog, assert_book_matches, wait_state
from simkit import CREDS, PUB, manager
from waiting import wait_until

from qfex_oms import CancelResult, InvalidArgument, OrderManager, OrderState, TwapRejected, TwapState
from qfex_oms.sim import Venue

S, T = "AAPL-USD", "TSLA-USD"
CANCELLED = OrderState.CANCELLED


async def test_cancel_by_order(oms: OrderManager, venue: Venue) -> None:
    order = await oms.place_order(S, "BUY", "1", "100", client_order_id="mm-1")
    frames = FrameLog()
    oms.on_frame_sent = frames
    result = await oms.cancel(order)
    assert isinstance(result, CancelResult)
    assert result.status == "CANCELLED" and result.ok
    assert result.cancelled == (order,)
    assert result.symbol == S and result.value == order.order_id and result.mode == "order_id"
    assert order.state is CANCELLED and order.last_status == "CANCELLED"
    assert frames.of("cancel_order") == [
        {"order_id": order.order_id, "symbol": S, "cancel_order_id_type": "order_id"}]
    assert venue.open_orders(PUB) == []
    await assert_book_matches(oms, venue)


async def test_cancel_by_order_id_and_symbol(oms: OrderManager, venue: Venue) -> None:
    keep = await oms.place_order(S, "BUY", "1", "99")
    order = await oms.place_order(S, "BUY", "1", "100")
    result = await oms.cancel(order_id=order.order_id, symbol=S)
    assert result.status == "CANCELLED" and result.cancelled == (order,)
    assert order.state is CANCELLED and keep.state is OrderState.OPEN
    await assert_book_matches(oms, venue)


async def test_cancel_by_order_id_on_the_wrong_symbol_is_refused(oms: OrderManager) -> None:
    order = await oms.place_order(S, "BUY", "1", "100")
    frames = FrameLog()
    oms.on_frame_sent = frames
    with pytest.raises(InvalidArgument):
        await oms.cancel(order_id=order.order_id, symbol=T)
    assert frames.frames == [] and order.state is OrderState.OPEN


async def test_cancel_by_client_order_id_ends_every_order_sharing_it(oms: OrderManager, venue: Venue) -> None:
    group = [await oms.place_order(S, "BUY", "1", str(100 - i), client_order_id="grp") for i in range(4)]
    other_symbol = await oms.place_order(T, "BUY", "1", "100", client_order_id="grp")
    other_id = await oms.place_order(S, "BUY", "1", "90", client_order_id="solo")
    frames = FrameLog()
    oms.on_frame_sent = frames
    result = await oms.cancel(client_order_id="grp", symbol=S)
    assert result.status == "CANCELLED"
    assert {o.order_id for o in result.cancelled} == {o.order_id for o in group}
    assert len(result.cancelled) == 4
    assert all(o.state is CANCELLED for o in group)
    assert other_symbol.state is OrderState.OPEN and other_id.state is OrderState.OPEN
    assert frames.of("cancel_order") == [
        {"order_id": "grp", "symbol": S, "cancel_order_id_type": "client_order_id"}]
    assert {o.order_id for o in venue.open_orders(PUB)} == {other_symbol.order_id, other_id.order_id}
    await assert_book_matches(oms, venue)


async def test_cancel_by_client_order_id_adopts_orders_placed_elsewhere(venue: Venue) -> None:
    """Orders sharing the client id that another process placed before we connected end too."""
    async with manager(venue) as other:
        foreign = await other.place_order(S, "SELL", "1", "300", client_order_id="grp")
    async with manager(venue) as oms:
        mine = [await oms.place_order(S, "SELL", "1", str(301 + i), client_order_id="grp")
                for i in range(2)]
        result = await oms.cancel(client_order_id="grp", symbol=S)
        assert result.status == "CANCELLED"
        assert all(o.state is CANCELLED for o in mine)
        adopted = oms.order(foreign.order_id or "")
        assert adopted is not None and adopted.adopted and adopted.state is CANCELLED
        assert {o.order_id for o in result.cancelled} == {foreign.order_id, *(o.order_id for o in mine)}
        assert venue.open_orders(PUB) == []
        await assert_book_matches(oms, venue)


async def test_cancel_by_client_order_id_with_nothing_open(oms: OrderManager, venue: Venue) -> None:
    result = await oms.cancel(client_order_id="nobody", symbol=S)
    assert result.status == "NO_SUCH_ORDER" and result.cancelled == ()
    await assert_book_matches(oms, venue)


async def test_cancel_of_a_filled_order_sends_nothing(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    order = await oms.place_order(S, "BUY", "1", "100")
    await oms2.place_order(S, "SELL", "1", "100", time_in_force="IOC")
    await wait_state(order, OrderState.FILLED)
    frames = FrameLog()
    oms.on_frame_sent = frames
    result = await oms.cancel(order)
    assert result.status == "ALREADY_CLOSED" and not result.ok and result.cancelled == ()
    result = await oms.cancel(order_id=order.order_id, symbol=S)
    assert result.status == "ALREADY_CLOSED"
    assert frames.frames == []
    assert order.state is OrderState.FILLED and order.filled_quantity == Decimal(1)
    await assert_book_matches(oms, venue)


async def test_cancel_of_a_filled_order_unknown_to_the_manager(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    """By id, an order this manager never saw that has already filled: QFEX says NO_SUCH_ORDER."""
    order = await oms.place_order(S, "BUY", "1", "100")
    await oms2.place_order(S, "SELL", "1", "100", time_in_force="IOC")
    await wait_state(order, OrderState.FILLED)
    async with manager(venue) as fresh:
        assert fresh.order(order.order_id or "") is None
        result = await fresh.cancel(order_id=order.order_id, symbol=S)
        assert result.status == "NO_SUCH_ORDER" and result.cancelled == ()
        assert fresh.orders(open_only=False) == []  # nothing invented
        await assert_book_matches(fresh, venue)


async def test_cancel_of_an_unknown_order_id(oms: OrderManager, venue: Venue) -> None:
    keep = await oms.place_order(S, "BUY", "1", "100")
    result = await oms.cancel(order_id="00000000-0000-0000-0000-000000000000", symbol=S)
    assert result.status == "NO_SUCH_ORDER" and not result.ok and result.cancelled == ()
    assert keep.state is OrderState.OPEN
    await assert_book_matches(oms, venue)


async def test_concurrent_cancels_of_one_order_send_one_frame(oms: OrderManager, venue: Venue) -> None:
    order = await oms.place_order(S, "BUY", "1", "100")
    frames = FrameLog()
    oms.on_frame_sent = frames
    results: list[CancelResult] = []

    async def cancel_it(how: int) -> None:
        if how == 0:
            results.append(await oms.cancel(order))
        else:
            results.append(await oms.cancel(order_id=order.order_id, symbol=S))

    async with trio.open_nursery() as nursery:
        for i in range(10):
            nursery.start_soon(cancel_it, i % 2)
    assert len(results) == 10
    assert all(r.status == "CANCELLED" and r.cancelled == (order,) for r in results)
    assert frames.types() == ["cancel_order"]
    assert order.state is CANCELLED
    await assert_book_matches(oms, venue)


async def test_cancel_while_pending_cancel_sends_nothing_new(oms: OrderManager, venue: Venue) -> None:
    orders = [await oms.place_order(S, "BUY", "1", str(100 - i)) for i in range(20)]
    frames = FrameLog()
    oms.on_frame_sent = frames
    async with trio.open_nursery() as nursery:
        for order in orders:
            for _ in range(3):
                nursery.start_soon(oms.cancel, order)
    assert len(frames.of("cancel_order")) == 20
    assert sorted(p["order_id"] for p in frames.of("cancel_order")) == sorted(o.order_id for o in orders)
    await assert_book_matches(oms, venue)


async def test_cancel_before_ack_is_held_and_sent_by_order_id(venue: Venue) -> None:
    """Two unACKed orders share a client id: cancelling one must not take its sibling down."""
    venue.faults.set_latency(0.05, public_key=PUB)
    async with manager(venue) as oms:
        frames = FrameLog()
        oms.on_frame_sent = frames
        async with trio.open_nursery() as nursery:
            for price in ("100", "99"):
                nursery.start_soon(partial(oms.place_order, S, "BUY", "1", price, client_order_id="twin"))
            await wait_until(lambda: len(frames.of("add_order")) == 2, what="both orders sent")
            first = next(o for o in oms.orders() if o.price == Decimal(100))
            assert first.state is OrderState.PENDING_NEW and first.order_id is None
            result = await oms.cancel(first)
        venue.faults.clear(PUB)
        assert result.status == "CANCELLED" and result.cancelled == (first,)
        (sent,) = frames.of("cancel_order")
        assert sent == {"order_id": first.order_id, "symbol": S, "cancel_order_id_type": "order_id"}
        sibling = next(o for o in oms.orders() if o.price == Decimal(99))
        assert sibling.state is OrderState.OPEN
        await assert_book_matches(oms, venue)


async def test_place_twap_and_its_children(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    for i in range(4):
        await oms2.place_order(S, "SELL", "5", str(200 + i))
    twap = await oms.place_twap(S, "BUY", total_quantity="10", num_orders=4, order_interval_secs=30,
                                client_twap_id="rb-1")
    assert twap.twap_id and twap.client_twap_id == "rb-1" and twap.symbol == S
    assert twap.state in (TwapState.ACTIVE, TwapState.COMPLETED)
    assert oms.twaps() == [twap]
    await wait_until(lambda: twap.state is TwapState.COMPLETED, what="TWAP completes")
    await wait_until(lambda: len(twap.children) == 4 and all(c.state.is_terminal for c in twap.children),
                     what="four children ended")
    assert sum((c.filled_quantity for c in twap.children), Decimal(0)) == Decimal(10)
    assert twap.filled_quantity == Decimal(10)
    assert all(c.twap_id == twap.twap_id and c.adopted for c in twap.children)
    assert oms.twaps(open_only=True) == []
    await assert_book_matches(oms, venue)


async def test_cancel_twap_by_twap(oms: OrderManager, venue: Venue) -> None:
    twap = await oms.place_twap(S, "BUY", total_quantity="10", num_orders=100, order_interval_secs=30)
    assert twap.state is TwapState.ACTIVE and twap.client_twap_id  # a client id was generated
    frames = FrameLog()
    oms.on_frame_sent = frames
    result = await oms.cancel(twap)
    assert result.status == "CANCELLED" and result.twap is twap
    assert twap.state is TwapState.CANCELLED
    assert frames.of("cancel_order") == [
        {"order_id": twap.twap_id, "symbol": S, "cancel_order_id_type": "twap_id"}]
    assert venue.twaps(PUB, active_only=True) == []
    placed = len(venue.orders(PUB))
    await trio.sleep(0.1)  # ~3 intervals: no child after the cancel
    assert len(venue.orders(PUB)) == placed
    again = await oms.cancel(twap)
    assert again.status == "ALREADY_CLOSED"
    await assert_book_matches(oms, venue)


async def test_cancel_twap_by_client_twap_id_and_symbol(oms: OrderManager, venue: Venue) -> None:
    twap = await oms.place_twap(T, "SELL", total_quantity="5", num_orders=50, order_interval_secs=30,
                                client_twap_id="rb-2")
    other = await oms.place_twap(S, "SELL", total_quantity="5", num_orders=50, order_interval_secs=30,
                                 client_twap_id="rb-2")
    result = await oms.cancel(client_twap_id="rb-2", symbol=T)
    assert result.status == "CANCELLED"
    assert twap.state is TwapState.CANCELLED and other.state is TwapState.ACTIVE
    assert [t.twap_id for t in venue.twaps(PUB, active_only=True)] == [other.twap_id]
    result = await oms.cancel(twap_id=other.twap_id, symbol=S)
    assert result.status == "CANCELLED" and other.state is TwapState.CANCELLED
    await assert_book_matches(oms, venue)


async def test_cancel_twap_unknown_to_the_manager(venue: Venue) -> None:
    async with manager(venue) as other:
        twap = await other.place_twap(S, "BUY", total_quantity="5", num_orders=50, order_interval_secs=30,
                                      client_twap_id="far")
    async with manager(venue, CREDS) as oms:
        result = await oms.cancel(client_twap_id="far", symbol=S)
        assert result.status == "CANCELLED"
        adopted = oms.twaps()
        assert [t.twap_id for t in adopted] == [twap.twap_id] and adopted[0].adopted
        assert adopted[0].state is TwapState.CANCELLED
        result = await oms.cancel(twap_id=twap.twap_id, symbol=S)
        assert result.status == "ALREADY_CLOSED"
    assert venue.twaps(PUB, active_only=True) == []
    async with manager(venue, CREDS) as oms:
        result = await oms.cancel(twap_id=twap.twap_id, symbol=S)
        assert result.status == "NO_SUCH_ORDER" and result.twap is None


async def test_cancel_of_a_completed_twap(oms: OrderManager, venue: Venue) -> None:
    twap = await oms.place_twap(S, "BUY", total_quantity="2", num_orders=2, order_interval_secs=30)
    await wait_until(lambda: twap.state is TwapState.COMPLETED, what="TWAP completes")
    frames = FrameLog()
    oms.on_frame_sent = frames
    result = await oms.cancel(client_twap_id=twap.client_twap_id, symbol=S)
    assert result.status == "ALREADY_CLOSED" and frames.frames == []
    await assert_book_matches(oms, venue)


async def test_twap_rejections_raise_twap_rejected(oms: OrderManager, venue: Venue) -> None:
    twap = await oms.place_twap(S, "BUY", total_quantity="5", num_orders=50, order_interval_secs=30,
                                client_twap_id="dup")
    with pytest.raises(TwapRejected) as info:
        await oms.place_twap(S, "BUY", total_quantity="5", num_orders=50, order_interval_secs=30,
                             client_twap_id="dup")
    assert info.value.status == "InvalidParameter" and info.value.twap.state is TwapState.REJECTED
    with pytest.raises(TwapRejected):
        await oms.place_twap(S, "BUY", total_quantity="0.001", num_orders=5, order_interval_secs=30)
    assert oms.twaps(open_only=True) == [twap]
    await oms.cancel(twap)
    await assert_book_matches(oms, venue)
