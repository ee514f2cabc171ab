"""place_order in every mode and modify_order, end to end against the simulator."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from managerkit import FrameLog, assert_book_matches, round_trip, wait_state
from simkit import PUB, PUB2, manager
from waiting import drain

from qfex_oms import InvalidArgument, ModifyRejected, Order, OrderManager, OrderRejected, OrderState
from qfex_oms.core.events import FillReceived, OrderUpdated
from qfex_oms.sim import Venue

S = "AAPL-USD"
OPEN, FILLED, CANCELLED = OrderState.OPEN, OrderState.FILLED, OrderState.CANCELLED


def assert_fields(order: Order, *, symbol: str, side: str, quantity: str, price: str | None,
                  filled: str = "0") -> None:
    assert isinstance(order.order_id, str) and order.order_id
    assert isinstance(order.client_order_id, str) and order.client_order_id
    assert order.symbol == symbol
    assert order.side == side
    assert order.quantity == Decimal(quantity)
    assert order.price == (None if price is None else Decimal(price))
    assert isinstance(order.filled_quantity, Decimal) and order.filled_quantity == Decimal(filled)
    assert order.remaining_quantity == Decimal(quantity) - Decimal(filled)


async def test_limit_gtc_returns_a_live_order_with_every_field(oms: OrderManager, venue: Venue) -> None:
    order = await oms.place_order(S, "BUY", quantity="1.5", price="200.25", order_type="LIMIT",
                                  time_in_force="GTC", client_order_id="mm-1")
    assert_fields(order, symbol=S, side="BUY", quantity="1.5", price="200.25")
    assert order.client_order_id == "mm-1"
    assert order.state is OPEN and order.last_status == "ACK"
    assert oms.order(order.order_id) is order
    assert oms.orders() == [order] and oms.orders(symbol=S) == [order] and oms.orders("TSLA-USD") == []
    sim = venue.order(order.order_id)
    assert sim is not None and sim.is_open and sim.client_order_id == "mm-1"
    assert sim.quantity == Decimal("1.5") and sim.price == Decimal("200.25")
    await assert_book_matches(oms, venue)


@pytest.mark.parametrize(
    ("quantity", "price", "want_q", "want_p"),
    [
        ("2", "150.5", "2", "150.5"),
        (2, 150, "2", "150"),
        (Decimal("0.125"), Decimal("150.50"), "0.125", "150.5"),
        (0.1, 150.55, "0.1", "150.55"),
        (3.0, 99.99, "3", "99.99"),
    ],
    ids=["str", "int", "Decimal", "float", "float-whole"],
)
async def test_numbers_as_str_int_decimal_float(oms: OrderManager, venue: Venue, quantity: object,
                                                price: object, want_q: str, want_p: str) -> None:
    frames = FrameLog()
    oms.on_frame_sent = frames
    order = await oms.place_order(S, "buy", quantity, price)  # type: ignore[arg-type]
    assert order.state is OPEN
    assert order.quantity == Decimal(want_q) and order.price == Decimal(want_p)
    sim = venue.order(order.order_id or "")
    assert sim is not None and sim.quantity == Decimal(want_q) and sim.price == Decimal(want_p)
    # A float goes out as its shortest decimal, never as a binary approximation.
    (params,) = frames.of("add_order")
    assert Decimal(str(params["quantity"])) == Decimal(want_q)
    assert Decimal(str(params["price"])) == Decimal(want_p)


async def test_generated_client_order_ids_are_unique(oms: OrderManager, venue: Venue) -> None:
    orders: list[Order] = []

    async def place(i: int) -> None:
        orders.append(await oms.place_order(S, "BUY", "1", str(100 + i)))

    async with trio.open_nursery() as nursery:
        for i in range(30):
            nursery.start_soon(place, i)
    ids = [o.client_order_id for o in orders]
    assert len(set(ids)) == 30 and all(ids)
    assert {o.order_id for o in orders} == {o.order_id for o in venue.open_orders(PUB)}
    assert all(venue.order(o.order_id or "").client_order_id == o.client_order_id for o in orders)
    await assert_book_matches(oms, venue)


async def test_client_id_prefix_is_used_for_generated_ids(venue: Venue) -> None:
    async with manager(venue, client_id_prefix="strat7-") as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        assert order.client_order_id.startswith("strat7-")


async def test_limit_gtc_partial_fill_stays_open(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    resting = await oms.place_order(S, "BUY", "5", "100")
    taker = await oms2.place_order(S, "SELL", "2", "100", time_in_force="IOC")
    await wait_state(taker, FILLED)
    await wait_state(resting, OPEN)
    await round_trip(oms)
    assert resting.state is OPEN
    assert resting.filled_quantity == Decimal(2) and resting.remaining_quantity == Decimal(3)
    assert [f.quantity for f in resting.fills or ()] == [Decimal(2)]
    assert resting.last_status == "FILLED"
    await assert_book_matches(oms, venue)
    await assert_book_matches(oms2, venue, PUB2)


async def test_limit_ioc_fills_what_it_can_and_the_rest_ends(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    await oms2.place_order(S, "SELL", "1", "101")
    await oms2.place_order(S, "SELL", "1", "102")
    ioc = await oms.place_order(S, "BUY", "5", "102", time_in_force="IOC")
    await wait_state(ioc, CANCELLED, FILLED)
    await round_trip(oms)
    assert ioc.state is CANCELLED
    assert ioc.filled_quantity == Decimal(2) and len(ioc.fills or ()) == 2
    assert ioc.average_price == Decimal("101.5")
    nothing = await oms.place_order(S, "BUY", "1", "50", time_in_force="IOC")
    await wait_state(nothing, CANCELLED)
    assert nothing.filled_quantity == 0
    await assert_book_matches(oms, venue)
    await assert_book_matches(oms2, venue, PUB2)


async def test_limit_ioc_sweep_never_reports_cancelled_before_its_last_fill(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    """An IOC that sweeps two levels and fills in full must not look CANCELLED in between. It relies
    on one FILLED report per sweep, at its end (QFEX's docs; the simulator's choice C24)."""
    await oms2.place_order(S, "SELL", "1", "101")
    await oms2.place_order(S, "SELL", "1", "102")
    stream = oms.events()
    ioc = await oms.place_order(S, "BUY", "2", "102", time_in_force="IOC")
    await wait_state(ioc, FILLED)
    states = [e.state for e in await drain(stream) if isinstance(e, OrderUpdated) and e.order is ioc]
    assert states[-1] is FILLED
    assert CANCELLED not in states, states


async def test_limit_fok(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    await oms2.place_order(S, "SELL", "1", "101")
    too_big = await oms.place_order(S, "BUY", "2", "101", time_in_force="FOK")
    await wait_state(too_big, CANCELLED)
    assert too_big.filled_quantity == 0
    assert len(venue.open_orders(PUB2)) == 1  # FOK took nothing
    fits = await oms.place_order(S, "BUY", "1", "101", time_in_force="FOK")
    await wait_state(fits, FILLED)
    assert fits.filled_quantity == Decimal(1) and fits.remaining_quantity == 0
    await assert_book_matches(oms, venue)
    await assert_book_matches(oms2, venue, PUB2)


async def test_market_order_fills_against_the_book(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    ask = await oms2.place_order(S, "SELL", "3", "250")
    market = await oms.place_order(S, "BUY", "2", order_type="MARKET")
    assert market.price is None and market.time_in_force == "IOC"
    await wait_state(market, FILLED)
    await round_trip(oms)  # the fill_response follows the FILLED order_response
    assert market.filled_quantity == Decimal(2) and market.fills and market.fills[0].price == Decimal(250)
    await wait_state(ask, OPEN)
    await round_trip(oms2)
    assert ask.filled_quantity == Decimal(2) and ask.remaining_quantity == Decimal(1)
    # Market with no liquidity left on the other side ends without a fill.
    empty = await oms.place_order("TSLA-USD", "SELL", "1", order_type="MARKET", time_in_force="IOC")
    await wait_state(empty, CANCELLED)
    assert empty.filled_quantity == 0
    await assert_book_matches(oms, venue)
    await assert_book_matches(oms2, venue, PUB2)


async def test_alo_rests_when_it_does_not_cross(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    await oms2.place_order(S, "SELL", "1", "105")
    alo = await oms.place_order(S, "BUY", "1", "104.99", order_type="ALO")
    assert alo.time_in_force == "GTC"
    await round_trip(oms)
    assert alo.state is OPEN
    assert venue.order(alo.order_id or "").is_open  # type: ignore[union-attr]
    await assert_book_matches(oms, venue)


async def test_alo_that_would_cross_ends_without_trading(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    ask = await oms2.place_order(S, "SELL", "1", "105")
    alo = await oms.place_order(S, "BUY", "1", "105", order_type="ALO", time_in_force="GTC")
    await wait_state(alo, CANCELLED)
    assert alo.filled_quantity == 0 and alo.fills is None
    assert ask.state is OPEN and ask.filled_quantity == 0
    assert venue.trades(PUB) == [] and venue.trades(PUB2) == []
    await assert_book_matches(oms, venue)
    await assert_book_matches(oms2, venue, PUB2)


async def test_exchange_rejection_raises_order_rejected(oms: OrderManager, venue: Venue) -> None:
    with pytest.raises(OrderRejected) as info:
        await oms.place_order(S, "BUY", "1", "200.001")  # finer than the 0.01 tick
    assert info.value.status == "INVALID_TICK_SIZE_PRECISION_PRICE"
    assert info.value.order.state is OrderState.REJECTED
    with pytest.raises(OrderRejected) as info:
        await oms.place_order("NOPE-USD", "BUY", "1", "100")
    assert info.value.status == "BAD_SYMBOL"
    with pytest.raises(OrderRejected) as info:
        await oms.place_order(S, "BUY", "1", "20000")  # above max price
    assert info.value.status == "PRICE_GREATER_THAN_MAX_PRICE"
    assert oms.orders() == []
    await assert_book_matches(oms, venue)


async def test_modify_price_and_quantity(oms: OrderManager, venue: Venue) -> None:
    order = await oms.place_order(S, "BUY", "1", "100")
    frames = FrameLog()
    oms.on_frame_sent = frames
    same = await oms.modify_order(order, price="101.5", quantity=3)
    assert same is order
    assert order.state is OPEN and order.last_status == "MODIFIED"
    assert order.price == Decimal("101.5") and order.quantity == Decimal(3)
    assert order.remaining_quantity == Decimal(3)
    assert frames.types() == ["modify_order"]
    await oms.modify_order(order, price=102)
    assert order.price == Decimal(102) and order.quantity == Decimal(3)
    await oms.modify_order(order, quantity=Decimal("0.5"))
    sim = venue.order(order.order_id or "")
    assert sim is not None and sim.price == Decimal(102) and sim.quantity == Decimal("0.5")
    await assert_book_matches(oms, venue)


async def test_modify_after_partial_fill_is_rejected(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    order = await oms.place_order(S, "SELL", "4", "300")
    taker = await oms2.place_order(S, "BUY", "1", "300")
    await wait_state(taker, FILLED)
    await round_trip(oms)
    with pytest.raises(ModifyRejected) as info:
        await oms.modify_order(order, price="301")
    assert info.value.status == "CANNOT_MODIFY_PARTIAL_FILL"
    assert order.state is OPEN and order.price == Decimal(300)
    assert order.filled_quantity == Decimal(1)
    await assert_book_matches(oms, venue)


async def test_modify_that_crosses_trades(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    await oms2.place_order(S, "SELL", "1", "110")
    order = await oms.place_order(S, "BUY", "1", "100")
    events = oms.events()
    await oms.modify_order(order, price="110")
    await wait_state(order, FILLED)
    await round_trip(oms)
    assert order.filled_quantity == Decimal(1)
    fills = [e for e in await drain(events) if isinstance(e, FillReceived)]
    assert len(fills) == 1 and fills[0].fill.price == Decimal(110)
    await assert_book_matches(oms, venue)


async def test_modify_of_a_closed_order_is_refused_locally(oms: OrderManager) -> None:
    order = await oms.place_order(S, "BUY", "1", "100")
    await oms.cancel(order)
    with pytest.raises(InvalidArgument):
        await oms.modify_order(order, price="99")


async def test_reduce_only_take_profit_and_stop_loss_go_on_the_wire(oms: OrderManager, venue: Venue) -> None:
    frames = FrameLog()
    oms.on_frame_sent = frames
    order = await oms.place_order(S, "BUY", "1", "100", reduce_only=False, take_profit="120",
                                  stop_loss=90.5)
    (params,) = frames.of("add_order")
    assert params["reduce_only"] is False
    assert Decimal(str(params["take_profit"])) == Decimal(120)
    assert Decimal(str(params["stop_loss"])) == Decimal("90.5")
    assert order.take_profit == Decimal(120) and order.stop_loss == Decimal("90.5")
    sim = venue.order(order.order_id or "")
    assert sim is not None and sim.take_profit == Decimal(120) and sim.stop_loss == Decimal("90.5")
    await assert_book_matches(oms, venue)
