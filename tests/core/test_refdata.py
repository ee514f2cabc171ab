"""Reference data rules, synchronously: each refused exactly at its boundary, and the rounding helpers."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from attrs import evolve
from hypothesis import given
from hypothesis import strategies as st

from qfex_oms.core.refdata import Instrument, Instruments
from qfex_oms.protocol.enums import OrderType, Side, TimeInForce
from qfex_oms.protocol.rest import RefdataSymbol

LIMIT, MARKET, ALO = OrderType.LIMIT, OrderType.MARKET, OrderType.ALO
GTC, IOC, FOK = TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK

ROW = RefdataSymbol(
    symbol="GOOG-USD", tick_size=D("0.05"), lot_size=D("0.001"), min_price=D("112"), max_price=D("209"),
    min_quantity=D("0.002"), max_quantity=D("100"), order_time_in_force=("GTC", "IOC"),
    order_types=("LIMIT", "MARKET"), status="ACTIVE",
)
GOOG = Instrument.from_refdata(ROW)


def rule(message: str | None) -> str | None:
    return None if message is None else message.split(":", 1)[0]


def test_from_refdata_keeps_every_rule() -> None:
    assert (GOOG.tick_size, GOOG.lot_size, GOOG.min_quantity, GOOG.max_quantity) == (
        D("0.05"), D("0.001"), D("0.002"), D("100"))
    assert (GOOG.min_price, GOOG.max_price) == (D("112"), D("209"))
    assert GOOG.order_types == {LIMIT, MARKET} and GOOG.time_in_force == {GTC, IOC}


@pytest.mark.parametrize(("quantity", "expected"), [
    ("0.001", "min_quantity"), ("0.002", None), ("0.0025", "lot_size"), ("0.003", None),
    ("100", None), ("100.001", "max_quantity"),
])
def test_quantity_rules_at_their_boundaries(quantity: str, expected: str | None) -> None:
    assert rule(GOOG.check(LIMIT, GTC, D(quantity), D("150"))) == expected


@pytest.mark.parametrize(("price", "expected"), [
    ("111.95", "min_price"), ("112", None), ("112.05", None), ("112.07", "tick_size"),
    ("209", None), ("209.05", "max_price"),
])
def test_price_rules_at_their_boundaries(price: str, expected: str | None) -> None:
    assert rule(GOOG.check(LIMIT, GTC, D("1"), D(price))) == expected


def test_a_market_order_has_no_price_to_check_and_a_limit_needs_one() -> None:
    assert GOOG.check(MARKET, IOC, D("1")) is None
    assert rule(GOOG.check(LIMIT, GTC, D("1"))) == "price"


def test_order_type_time_in_force_and_status() -> None:
    assert rule(GOOG.check(ALO, GTC, D("1"), D("150"))) == "order_types"
    assert rule(GOOG.check(LIMIT, FOK, D("1"), D("150"))) == "order_time_in_force"
    for status in ("INACTIVE", "DELISTED"):
        closed = Instrument.from_refdata(evolve(ROW, status=status))
        assert rule(closed.check(LIMIT, GTC, D("1"), D("150"))) == "status"
    # What the reference data does not say restricts nothing: the exchange decides.
    lenient = Instrument.from_refdata(evolve(
        ROW, status="SOMETHING_NEW", order_types=(), order_time_in_force=()))
    assert lenient.check(ALO, GTC, D("1"), D("150")) is None
    assert lenient.check(LIMIT, FOK, D("1"), D("150")) is None


def test_messages_name_the_figures() -> None:
    message = GOOG.check(LIMIT, GTC, D("0.001"), D("150"))
    assert message is not None and "0.001" in message and "0.002" in message and "GOOG-USD" in message


def test_unknown_symbol_lists_the_known_ones() -> None:
    table = Instruments.from_refdata([ROW, evolve(ROW, symbol="AAPL-USD")])
    message = table.check("MSFT-USD", LIMIT, GTC, D("1"), D("150"))
    assert message is not None and rule(message) == "symbol"
    assert "AAPL-USD, GOOG-USD" in message
    assert table.check("GOOG-USD", LIMIT, GTC, D("1"), D("150")) is None
    assert len(table) == 2 and table.get("AAPL-USD") is not None


@pytest.mark.parametrize(("price", "side", "expected"), [
    ("150.07", Side.BUY, "150.05"), ("150.07", Side.SELL, "150.10"),
    ("150.05", Side.BUY, "150.05"), ("150.05", Side.SELL, "150.05"),
    ("150.0500001", Side.SELL, "150.10"), ("150.0499999", Side.BUY, "150.00"),
])
def test_round_price_toward_the_passive_side(price: str, side: Side, expected: str) -> None:
    assert GOOG.round_price(D(price), side) == D(expected)


@pytest.mark.parametrize(("quantity", "expected"), [
    ("1.2349", "1.234"), ("1.234", "1.234"), ("0.0009", "0"), ("5", "5"),
])
def test_round_quantity_down_to_the_lot(quantity: str, expected: str) -> None:
    assert GOOG.round_quantity(D(quantity)) == D(expected)


@given(st.decimals(min_value=D("112"), max_value=D("209"), places=6), st.sampled_from([Side.BUY, Side.SELL]),
       st.decimals(min_value=D("0.002"), max_value=D("100"), places=7))
def test_rounded_orders_pass_and_rounding_is_passive(price: D, side: Side, quantity: D) -> None:
    rounded = GOOG.round_price(price, side)
    size = GOOG.round_quantity(quantity)
    assert (rounded <= price) if side is Side.BUY else (rounded >= price)
    assert abs(rounded - price) < GOOG.tick_size and D(0) <= quantity - size < GOOG.lot_size
    assert GOOG.check_price(rounded) is None
    assert size < GOOG.min_quantity or GOOG.check_quantity(size) is None


def test_a_tiny_tick_divides_exactly() -> None:
    fine = Instrument.from_refdata(evolve(ROW, tick_size=D("1e-18"), max_price=D("1e15")))
    assert fine.check_price(D("999999999999999.999999999999999999")) is None
