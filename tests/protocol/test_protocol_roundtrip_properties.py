"""Hypothesis round trips through the codec: replies via ``decode_reply``, requests via ``decode_request``.

Decimals are kept to at most 15 significant digits: that is what a float (which the exchange, and
this codec on the way in, read numbers through) carries exactly. Longer ones are pinned to the
float-nearest reading by tests in the decode modules.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal

import messagekit
import orjson
from hypothesis import given
from hypothesis import strategies as st

from qfex_oms.protocol import (
    CancelIdType,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    decode_reply,
    decode_request,
    encode,
    numbers,
)
from qfex_oms.protocol import messages as m

MAX_PLACES = 8
# 7 integer digits + 8 places = 15 significant digits at most.
BOUND = Decimal(10**7) - Decimal(1).scaleb(-MAX_PLACES)


def decimals(min_value: Decimal = -BOUND, max_value: Decimal = BOUND) -> st.SearchStrategy[Decimal]:
    return st.integers(0, MAX_PLACES).flatmap(
        lambda places: st.decimals(
            min_value=min_value,
            max_value=max_value,
            places=places,
            allow_nan=False,
            allow_infinity=False,
        )
    )


positive = decimals(min_value=Decimal(0))
sizes = decimals(min_value=Decimal(1).scaleb(-MAX_PLACES))  # a fill's quantity: greater than zero
texts = st.text(max_size=40)
ids = st.one_of(st.uuids().map(str), texts)
timestamps = st.floats(min_value=0, max_value=4e9, allow_nan=False, allow_infinity=False)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


order_responses = st.builds(
    m.OrderResponse,
    order_id=ids,
    symbol=texts,
    status=st.sampled_from(OrderStatus),
    side=optional(st.sampled_from(Side)),
    type=optional(st.sampled_from(OrderType)),
    time_in_force=optional(st.sampled_from(TimeInForce)),
    quantity=optional(positive),
    price=optional(decimals()),
    quantity_remaining=optional(positive),
    client_order_id=optional(texts),
    take_profit=optional(positive),
    stop_loss=optional(positive),
    user_id=optional(ids),
    update_time=optional(timestamps),
    trade_id=optional(ids),
)

fill_responses = st.builds(
    m.FillResponse,
    trade_id=ids,
    order_id=ids,
    symbol=texts,
    price=decimals(),
    quantity=sizes,
    side=st.sampled_from(Side),
    client_order_id=optional(texts),
    remaining_quantity=optional(positive),
    aggressor_side=optional(st.sampled_from(Side)),
    fee=optional(decimals()),
    order_type=optional(st.sampled_from(OrderType)),
    tif=optional(st.sampled_from(TimeInForce)),
    order_price=optional(decimals()),
    take_profit=optional(positive),
    stop_loss=optional(positive),
    execution_type=optional(st.sampled_from(["NEW", "TRADE", "PARTIAL"])),
    timestamp=optional(timestamps),
    realised_pnl=optional(decimals()),
    user_id=optional(ids),
)

add_orders = st.builds(
    m.AddOrder,
    symbol=texts,
    side=st.sampled_from(Side),
    order_type=st.sampled_from(OrderType),
    order_time_in_force=st.sampled_from(TimeInForce),
    quantity=positive,
    price=optional(positive),
    client_order_id=optional(texts),
    take_profit=optional(positive),
    stop_loss=optional(positive),
    reduce_only=optional(st.booleans()),
)

cancel_orders = st.builds(
    m.CancelOrder,
    order_id=ids,
    symbol=texts,
    cancel_order_id_type=st.sampled_from(CancelIdType),
)

modify_orders = st.builds(
    m.ModifyOrder,
    order_id=ids,
    symbol=texts,
    side=st.sampled_from(Side),
    order_type=st.sampled_from(OrderType),
    price=optional(positive),
    quantity=optional(positive),
    take_profit=optional(positive),
    stop_loss=optional(positive),
)


def assert_same_types(a: object, b: object) -> None:
    """Equality compares Decimals by value; also check that no field changed type."""
    for name in messagekit.names(a):
        left, right = getattr(a, name), getattr(b, name)
        assert type(left) is type(right), name


@given(order_responses)
def test_order_response_round_trip(reply):
    decoded = decode_reply(encode(reply))
    assert decoded == reply
    assert_same_types(decoded, reply)


@given(fill_responses)
def test_fill_response_round_trip(reply):
    decoded = decode_reply(encode(reply))
    assert decoded == reply
    assert_same_types(decoded, reply)


@given(add_orders)
def test_add_order_round_trip(request_):
    decoded = decode_request(encode(request_))
    assert decoded == request_
    assert_same_types(decoded, request_)


@given(cancel_orders)
def test_cancel_order_round_trip(request_):
    assert decode_request(encode(request_)) == request_


@given(modify_orders)
def test_modify_order_round_trip(request_):
    assert decode_request(encode(request_)) == request_


@given(st.lists(order_responses, max_size=4))
def test_all_orders_response_round_trip(orders):
    reply = m.AllOrdersResponse(orders=tuple(orders))
    assert decode_reply(encode(reply)) == reply


# Encoding is exact at any precision the market number domain allows (qfex_oms.protocol.numbers):
# the text on the wire is the Decimal's own digits.


def _market_decimal(sign: int, digits: str, adjusted: int) -> Decimal:
    return Decimal((sign, tuple(int(c) for c in digits), adjusted - len(digits) + 1))


any_finite_decimal = st.one_of(
    st.builds(_market_decimal, st.integers(0, 1),
              st.integers(1, numbers.MAX_SIGNIFICANT_DIGITS).flatmap(
                  lambda n: st.integers(10 ** (n - 1), 10**n - 1).map(str)),
              st.integers(numbers.MIN_MAGNITUDE_EXPONENT, numbers.MAX_MAGNITUDE_EXPONENT)),
    st.sampled_from([Decimal(0), Decimal("-0"), Decimal("0.000"), Decimal("0E+5")]),
)


NUMBER_TEXT = re.compile(rb'"(quantity|price)":(-?[0-9]+(?:\.[0-9]+)?)[,}]')


@given(any_finite_decimal, any_finite_decimal)
def test_encoded_decimal_is_exact_at_any_precision(quantity, price):
    order = m.AddOrder("AAPL-USD", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, quantity, price=price)
    raw = encode(order)
    params = json.loads(raw, parse_float=Decimal, parse_int=Decimal)["params"]
    assert params["quantity"] == quantity
    assert params["price"] == price
    # Plain positional notation, never an exponent: the text is exactly format(d, "f").
    found = dict(NUMBER_TEXT.findall(raw))
    assert found == {
        b"quantity": format(quantity, "f").encode(),
        b"price": format(price, "f").encode(),
    }


@given(order_responses)
def test_order_response_encodes_as_the_converter_unstructures_each_field(reply):
    """The struct's own unstructurer (no dispatch per field) writes what cattrs' per-field
    unstructuring writes: the same keys in the same order, the same JSON for every value."""
    from qfex_oms.protocol.codec import converter

    expected = {name: converter.unstructure(getattr(reply, name)) for name in messagekit.names(reply)}
    assert encode(reply) == orjson.dumps({m.OrderResponse.KEY: expected})
