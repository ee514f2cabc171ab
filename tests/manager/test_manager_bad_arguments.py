"""A strategy's bad arguments fail with ``InvalidArgument`` before any frame is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from managerkit import FrameLog, assert_book_matches
from simkit import manager

from qfex_oms import InvalidArgument, OrderManager, QfexOmsError
from qfex_oms.sim import Venue

S = "AAPL-USD"
Call = Callable[[OrderManager], Awaitable[Any]]

BAD_ORDERS: dict[str, dict[str, Any]] = {
    "bad side": {"side": "HOLD"},
    "side not a string": {"side": 1},
    "bad order_type": {"order_type": "ICEBERG"},
    "stop orders are not placeable": {"order_type": "STOP_MARKET"},
    "bad time_in_force": {"time_in_force": "DAY"},
    "MARKET with GTC": {"order_type": "MARKET", "price": None, "time_in_force": "GTC"},
    "MARKET with FOK": {"order_type": "MARKET", "price": None, "time_in_force": "FOK"},
    "ALO with IOC": {"order_type": "ALO", "time_in_force": "IOC"},
    "ALO with FOK": {"order_type": "ALO", "time_in_force": "FOK"},
    "zero quantity": {"quantity": 0},
    "negative quantity": {"quantity": "-1"},
    "NaN quantity": {"quantity": float("nan")},
    "NaN quantity as text": {"quantity": "NaN"},
    "infinite quantity": {"quantity": float("inf")},
    "garbage quantity": {"quantity": "one"},
    "quantity None": {"quantity": None},
    "quantity bool": {"quantity": True},
    "quantity list": {"quantity": [1]},
    "missing price on LIMIT": {"price": None},
    "missing price on ALO": {"order_type": "ALO", "price": None},
    "price on MARKET": {"order_type": "MARKET", "price": "200"},
    "zero price": {"price": 0},
    "garbage price": {"price": "cheap"},
    "over-long client id": {"client_order_id": "x" * 65},
    "client id with spaces": {"client_order_id": "mm 1"},
    "empty client id": {"client_order_id": ""},
    "empty symbol": {"symbol": ""},
    "symbol not a string": {"symbol": None},
    "bad take_profit": {"take_profit": "nope"},
    # The market number domain (qfex_oms.protocol.numbers, issue 11 item 7): these used to raise
    # MemoryError while the frame was formatted, leaving a PENDING_NEW order, or to send a 2 MB frame.
    "quantity 1e999999999999": {"quantity": "1e999999999999"},
    "quantity 1e2000000": {"quantity": "1e2000000"},
    "quantity Decimal 1e2000000": {"quantity": Decimal("1e2000000")},
    "quantity 1e-30000000": {"quantity": "1e-30000000"},
    "quantity 1e16": {"quantity": 10**16},
    "quantity a huge int": {"quantity": 10**5000},
    "quantity float 1e300": {"quantity": 1e300},
    "quantity 60 digits": {"quantity": "1." + "1" * 59},
    "quantity Decimal 60 digits": {"quantity": Decimal("1." + "1" * 59)},
    "quantity 1_000": {"quantity": "1_000"},
    "quantity a 100 kB text": {"quantity": "1" * 100_000},
    "price 9e999999": {"price": "9e999999"},
    "price 1e-999999999": {"price": Decimal("1e-999999999")},
    "take_profit 1e2000000": {"take_profit": "1e2000000"},
    "stop_loss 1e-19": {"stop_loss": "1e-19"},
}


def _place(**overrides: Any) -> Call:
    fields = {"symbol": S, "side": "BUY", "quantity": "1", "price": "100", **overrides}
    symbol, side, quantity, price = (fields.pop(k) for k in ("symbol", "side", "quantity", "price"))
    return lambda oms: oms.place_order(symbol, side, quantity, price, **fields)


def _twap(**overrides: Any) -> Call:
    fields = {"total_quantity": "10", "num_orders": 5, "order_interval_secs": 30, **overrides}
    symbol, side = fields.pop("symbol", S), fields.pop("side", "BUY")
    return lambda oms: oms.place_twap(symbol, side, **fields)


BAD_CALLS: dict[str, Call] = {
    **{f"place_order: {name}": _place(**args) for name, args in BAD_ORDERS.items()},
    "cancel: no selector": lambda oms: oms.cancel(),
    "cancel: order_id and client_order_id": lambda oms: oms.cancel(order_id="1", client_order_id="a",
                                                                    symbol=S),
    "cancel: twap_id and client_twap_id": lambda oms: oms.cancel(twap_id="1", client_twap_id="a",
                                                                  symbol=S),
    "cancel: order_id without symbol": lambda oms: oms.cancel(order_id="1"),
    "cancel: client_order_id without symbol": lambda oms: oms.cancel(client_order_id="mm-1"),
    "cancel: twap_id without symbol": lambda oms: oms.cancel(twap_id="1"),
    "cancel: client_twap_id without symbol": lambda oms: oms.cancel(client_twap_id="rb-1"),
    "cancel: empty order_id": lambda oms: oms.cancel(order_id="", symbol=S),
    "place_twap: num_orders 1": _twap(num_orders=1),
    "place_twap: num_orders 0": _twap(num_orders=0),
    "place_twap: num_orders not an int": _twap(num_orders=2.5),
    "place_twap: interval 29": _twap(order_interval_secs=29),
    "place_twap: interval 0": _twap(order_interval_secs=0),
    "place_twap: bad side": _twap(side="UP"),
    "place_twap: zero total": _twap(total_quantity=0),
    "place_twap: over-long client_twap_id": _twap(client_twap_id="t" * 65),
    "place_twap: total 1e999999999999": _twap(total_quantity="1e999999999999"),
    "place_twap: total 60 digits": _twap(total_quantity="9" * 60),
}


@pytest.mark.parametrize("call", BAD_CALLS.values(), ids=list(BAD_CALLS))
async def test_bad_argument_raises_before_any_frame(oms: OrderManager, venue: Venue, call: Call) -> None:
    frames = FrameLog()
    oms.on_frame_sent = frames
    with pytest.raises(InvalidArgument) as info:
        await call(oms)
    assert isinstance(info.value, QfexOmsError) and str(info.value)
    assert frames.frames == []
    assert oms.orders(open_only=False) == [] and oms.twaps() == []
    assert venue.orders("qfex_pub_demo") == []


async def test_every_bad_call_in_a_row_sends_nothing_and_the_manager_still_works(
    oms: OrderManager, venue: Venue
) -> None:
    frames = FrameLog()
    oms.on_frame_sent = frames
    for call in BAD_CALLS.values():
        with pytest.raises(InvalidArgument):
            await call(oms)
    assert frames.frames == []
    order = await oms.place_order(S, "BUY", "1", "100")
    assert frames.types() == ["add_order"]
    assert order.quantity == Decimal(1)
    await assert_book_matches(oms, venue)


async def test_bad_modify_arguments_send_nothing(oms: OrderManager, venue: Venue) -> None:
    order = await oms.place_order(S, "BUY", "1", "100")
    frames = FrameLog()
    oms.on_frame_sent = frames
    for kwargs in ({}, {"price": "-1"}, {"quantity": "zero"}, {"price": float("nan")},
                   {"quantity": "1e2000000"}, {"price": Decimal("1e999999999999")}, {"price": "1e-30000000"}):
        with pytest.raises(InvalidArgument):
            await oms.modify_order(order, **kwargs)
    assert frames.frames == []
    assert order.price == Decimal(100)


async def test_cancel_of_an_order_from_another_manager_is_refused(
    oms: OrderManager, oms2: OrderManager
) -> None:
    """An ``Order`` object the manager does not track has no meaning for it: refused, nothing sent."""
    foreign = await oms2.place_order(S, "SELL", "1", "300")
    frames = FrameLog()
    oms.on_frame_sent = frames
    with pytest.raises(InvalidArgument):
        await oms.cancel(foreign)
    with pytest.raises(InvalidArgument):
        await oms.modify_order(foreign, price="301")
    with pytest.raises(InvalidArgument):
        await oms.cancel(foreign, symbol="TSLA-USD")
    assert frames.frames == []


async def test_unknown_manager_option_is_an_invalid_argument(venue: Venue) -> None:
    with pytest.raises(InvalidArgument, match="unknown order manager option"):
        async with manager(venue, no_such_option=1):
            pass
