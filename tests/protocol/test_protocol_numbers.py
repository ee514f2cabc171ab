"""The market number domain (qfex_oms.protocol.numbers) at the codec's edges (issue 11, items 6, 7, 9).

A number the exchange sends outside the domain (a huge exponent either way, more significant digits
than any market uses, NaN/Infinity, a zero or negative size) makes its frame malformed: a
``ProtocolError``, never ``decimal.Overflow``, ``MemoryError`` or a 2 GB string. Every numeric field
of every reply kind is probed, in both of its wire forms (a numeric string and a JSON number). The
encoder refuses to write such a number, and a server decoding a request refuses it the same way.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs
import messagekit
import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qfex_oms.protocol import (
    OrderType,
    ProtocolError,
    RequestError,
    Side,
    TimeInForce,
    decode_reply,
    decode_request,
    encode,
    numbers,
)
from qfex_oms.protocol import messages as m

D = Decimal

ORDER = {"order_id": "o-1", "symbol": "AAPL-USD", "status": "ACK", "side": "BUY", "type": "LIMIT",
         "time_in_force": "GTC", "quantity": 1.0, "price": 200.0, "quantity_remaining": 1.0,
         "client_order_id": "c-1", "take_profit": 0.0, "stop_loss": 0.0, "user_id": "u-1",
         "update_time": 1.5, "trade_id": None}
FILL = {"trade_id": "t-1", "order_id": "o-1", "symbol": "AAPL-USD", "price": 200.5, "quantity": 0.004,
        "side": "BUY", "remaining_quantity": 0.0, "fee": 0.0001, "order_price": 200.5, "take_profit": 0.0,
        "stop_loss": 0.0, "realised_pnl": -1.5}
TWAP = {"twap_id": "w-1", "symbol": "AAPL-USD", "status": "ACTIVE", "total_quantity": 5,
        "filled_quantity": 1, "average_fill_price": 251.3}
TRADE = {"trade_id": "t-1", "symbol": "AAPL-USD", "price": 200.5, "quantity": 0.004, "side": "BUY",
         "order_id": "o-1", "fee": 0.00045}
POSITION = {"symbol": "AAPL-USD", "position": -1.25, "margin_alloc": 0.0, "realised_pnl": 0.0,
            "unrealised_pnl": 0.0, "net_funding": 0.0, "open_orders": 0.0, "open_quantity": 0.0,
            "leverage": 5.0, "average_price": 201.5}
BALANCE = {"available_balance": 1.5, "deposit": 9990000000.0, "realised_pnl": 0.0, "unrealised_pnl": 0.0,
           "order_margin": 0.0, "position_margin": 0.0, "net_funding": 0.0}


def _decimal_fields(cls: type) -> list[str]:
    return [name for name, kind, _ in messagekit.fields(cls) if Decimal in (kind, *getattr(
        kind, "__args__", ()))]


def _frame(kind: str, field: str, token: str) -> bytes:
    """A reply of ``kind`` whose ``field`` holds the raw JSON text ``token``."""
    def put(base: dict[str, Any]) -> dict[str, Any]:
        return {**base, field: orjson.Fragment(token)}

    payload: Any
    if kind == "order_response":
        payload = put(ORDER)
    elif kind == "fill_response":
        payload = put(FILL)
    elif kind == "twap_response":
        payload = put(TWAP)
    elif kind == "all_orders_response.orders":
        payload = {"orders": [ORDER, put(ORDER)], "twaps": [TWAP]}
    elif kind == "all_orders_response.twaps":
        payload = {"orders": [ORDER], "twaps": [put(TWAP)]}
    elif kind == "user_trades_response":
        payload = [TRADE, put(TRADE)]
    elif kind == "position_response":
        payload = put(POSITION)
    else:
        payload = put(BALANCE)
    return orjson.dumps({kind.split(".")[0]: payload})


FIELDS: list[tuple[str, str]] = [
    *(("order_response", f) for f in _decimal_fields(m.OrderResponse)),
    *(("fill_response", f) for f in _decimal_fields(m.FillResponse)),
    *(("twap_response", f) for f in _decimal_fields(m.TwapResponse)),
    *(("all_orders_response.orders", f) for f in _decimal_fields(m.OrderResponse)),
    *(("all_orders_response.twaps", f) for f in _decimal_fields(m.TwapResponse)),
    *(("user_trades_response", f) for f in _decimal_fields(m.Trade)),
    *(("position_response", f) for f in _decimal_fields(m.PositionResponse)),
    *(("balance_response", f) for f in _decimal_fields(m.BalanceResponse)),
]
SIZES = {("fill_response", "quantity"), ("user_trades_response", "quantity")}

HOSTILE_TEXTS = [
    "1e999999999", "9e999999", "-1e999999999", "1e-999999999", "1e-30000000", "1E+2000000",
    "0e-999999999", "0e999999999", "-0e-30000000", "1e16", "-1e16", "1e-19", "1" * 60, "0." + "1" * 60,
    "1" * 35, "1.00000000000000000000000000000000000", "1e99999999999999999999", "1" * 100_000,
    "NaN", "nan", "-NaN", "sNaN", "Infinity", "-Infinity", "inf", "1_000", " 1", "1 ", "+", "-", ".", "e5",
    "\u0661\u0662", "0x10", "", "1e", "--1",
]
HOSTILE_NUMBERS = [
    "1e300", "-1e300", "1e-300", "-1e-300", "5e-324", "1e16", "1e-19", "10000000000000000",
    "-10000000000000000", "12345678901234567890", "99999999999999999999999", "1e400", "-1e400",
    "1" + "0" * 400,
]
HOSTILE_SIZES = ["0", "-1", "-0", "0.0", "-0.0", "-0.001", '"0"', '"-1"', '"-0"', '"0e-5"', '"-0.001"',
                 '"0E+3"']
SANE_TEXTS = ["9999999999999999", "-9999999999999999.99", "1e-18", "-1e-18", "1e15", "0.000000000000000000",
              "1234567890123456.789012345678901234", "0.001", "200.50", "7"]


def _tokens() -> list[str]:
    return [json.dumps(t) for t in HOSTILE_TEXTS] + HOSTILE_NUMBERS


def _failures(kind: str, field: str, tokens: list[str]) -> list[str]:
    """The tokens that did not make the frame malformed (or escaped with another exception)."""
    failures = []
    for token in tokens:
        try:
            reply = decode_reply(_frame(kind, field, token))
        except ProtocolError as exc:
            assert len(str(exc)) < 500, f"the error message expands {token[:40]}"
            continue
        except BaseException as exc:
            failures.append(f"{token[:40]}: {type(exc).__name__}")
            continue
        failures.append(f"{token[:40]}: decoded to {_all_decimals(reply)}")
    return failures


@pytest.mark.parametrize(("kind", "field"), FIELDS, ids=[f"{k}.{f}" for k, f in FIELDS])
def test_a_number_outside_the_domain_makes_the_frame_malformed(kind: str, field: str) -> None:
    assert decode_reply(_frame(kind, field, "1.5")) is not None  # the base frame is valid
    assert _failures(kind, field, _tokens()) == []


@pytest.mark.parametrize(("kind", "field"), sorted(SIZES))
def test_a_zero_or_negative_size_makes_the_frame_malformed(kind: str, field: str) -> None:
    assert _failures(kind, field, HOSTILE_SIZES) == []


@pytest.mark.parametrize(("kind", "field"), FIELDS, ids=[f"{k}.{f}" for k, f in FIELDS])
def test_numbers_at_the_domain_bounds_decode_exactly(kind: str, field: str) -> None:
    for text in SANE_TEXTS:
        if (kind, field) in SIZES and D(text) <= 0:
            continue
        reply = decode_reply(_frame(kind, field, json.dumps(text)))
        assert D(text) in _all_decimals(reply), text
        assert str(D(text)) in {str(d) for d in _all_decimals(reply)}, text


def test_zero_and_negative_are_fine_where_no_size_is_meant() -> None:
    reply = decode_reply(_frame("position_response", "position", '"-0"'))
    assert reply.position == 0
    reply = decode_reply(_frame("fill_response", "realised_pnl", "-12.5"))
    assert reply.realised_pnl == D("-12.5")


def test_two_numbers_that_would_overflow_a_sum_are_refused() -> None:
    """Item 6: two quantities of 9e999999 summed raise decimal.Overflow in the default context."""
    with pytest.raises(ProtocolError):
        decode_reply(_frame("fill_response", "quantity", '"9e999999"'))


def test_the_fast_path_cache_does_not_keep_a_refused_number() -> None:
    for _ in range(2):
        with pytest.raises(ProtocolError):
            decode_reply(_frame("order_response", "quantity", "1e300"))


# --------------------------------------------------------------------------- the domain itself


@pytest.mark.parametrize("text", SANE_TEXTS)
def test_sane_numbers_are_in_the_domain(text: str) -> None:
    assert numbers.problem(D(text)) is None
    assert numbers.parse(text) == D(text)


@pytest.mark.parametrize("text", [t for t in HOSTILE_TEXTS if len(t) < 100])
def test_hostile_texts_are_refused_with_a_short_message(text: str) -> None:
    with pytest.raises(numbers.NumberError) as info:
        numbers.parse(text)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize("value", [D("1e999999999999"), D("1e-999999999"), D("1" * 35), D("NaN"),
                                   D("-Infinity"), D("0e-19"), D(10**16), 10**16, -(10**16), 10**100_000,
                                   1e16, 1e-19, float("nan"), float("inf")], ids=lambda v: type(v).__name__)
def test_values_outside_the_domain_are_refused(value: object) -> None:
    with pytest.raises(numbers.NumberError):
        numbers.parse(value)


@pytest.mark.parametrize("value", [True, None, [1], {"a": 1}, b"1"])
def test_what_is_not_a_number_is_a_type_error(value: object) -> None:
    with pytest.raises(TypeError):
        numbers.parse(value)


def test_sizes() -> None:
    assert numbers.size(D("0.001")) == D("0.001")
    for bad in ("0", "-0", "-1", "0E-5"):
        with pytest.raises(numbers.NumberError):
            numbers.size(D(bad))


def test_the_bounds_are_named_constants() -> None:
    top = D(10) ** (numbers.MAX_MAGNITUDE_EXPONENT + 1)
    assert numbers.problem(top - 1) is None and numbers.problem(top) is not None
    bottom = D(1).scaleb(numbers.MIN_MAGNITUDE_EXPONENT)
    assert numbers.problem(bottom) is None and numbers.problem(bottom / 10) is not None
    most = "1" * numbers.MAX_SIGNIFICANT_DIGITS
    assert numbers.problem(D(most + "E-20")) is None and numbers.problem(D(most + "1E-20")) is not None


# --------------------------------------------------------------------------- property


def _all_decimals(value: Any) -> list[Decimal]:
    if isinstance(value, Decimal):
        return [value]
    if attrs.has(type(value)) or isinstance(value, msgspec.Struct):
        return [d for name in messagekit.names(value) for d in _all_decimals(getattr(value, name))]
    if isinstance(value, tuple | list):
        return [d for v in value for d in _all_decimals(v)]
    return []


_exponents = st.integers(-(10**12), 10**12) | st.integers(-40, 40)
_mantissas = st.integers(-(10**40), 10**40).map(str) | st.decimals(allow_nan=False, allow_infinity=False,
                                                                      places=6).map(str)
_scientific = st.builds(lambda man, exp: f"{man}e{exp}", _mantissas, _exponents)
_texts = st.one_of(st.text(max_size=30), st.decimals().map(str), _scientific,
                   st.floats().map(repr), st.integers().map(str))
TOKENS = st.one_of(
    _texts.map(json.dumps),  # numeric strings, hostile or not
    _scientific,  # JSON numbers with any exponent
    st.floats(allow_nan=False, allow_infinity=False).map(lambda f: orjson.dumps(f).decode()),
    st.integers().map(str),
)


@given(st.sampled_from(FIELDS), TOKENS)
def test_any_number_decodes_into_the_domain_or_makes_the_frame_malformed(where: tuple[str, str],
                                                                        token: str) -> None:
    kind, field = where
    try:
        reply = decode_reply(_frame(kind, field, token))
    except ProtocolError:
        return
    for value in _all_decimals(reply):
        assert numbers.problem(value) is None, (token, value)
    if where in SIZES:
        assert getattr(reply, "quantity", None) is None or reply.quantity > 0


@given(st.sampled_from(["quantity", "price", "take_profit", "stop_loss"]), TOKENS)
def test_any_number_in_a_request_decodes_into_the_domain_or_is_refused(field: str, token: str) -> None:
    params = {"symbol": "AAPL-USD", "side": "BUY", "order_type": "LIMIT", "order_time_in_force": "GTC",
              "quantity": 1, "price": 200, field: orjson.Fragment(token)}
    try:
        request = decode_request(orjson.dumps({"type": "add_order", "params": params}))
    except RequestError as exc:
        assert len(exc.message) < 500
        return
    for value in _all_decimals(request):
        assert numbers.problem(value) is None, (token, value)


# --------------------------------------------------------------------------- encoding and requests


def _add_order(**fields: Any) -> m.AddOrder:
    base: dict[str, Any] = {"symbol": "AAPL-USD", "side": Side.BUY, "order_type": OrderType.LIMIT,
                            "order_time_in_force": TimeInForce.GTC, "quantity": D(1), "price": D(200)}
    return m.AddOrder(**{**base, **fields})


@pytest.mark.parametrize("bad", ["1e999999999999", "1e2000000", "1e-30000000", "1" * 60, "0e-999999999"])
@pytest.mark.parametrize("field", ["quantity", "price", "take_profit"])
def test_the_encoder_never_writes_a_number_outside_the_domain(bad: str, field: str) -> None:
    with pytest.raises(ValueError, match=r"significant|finite|smaller|magnitude|decimal places"):
        encode(_add_order(**{field: D(bad)}))
    with pytest.raises(ValueError):
        encode(m.ModifyOrder("o-1", "AAPL-USD", Side.BUY, OrderType.LIMIT, **{
            "quantity" if field == "take_profit" else field: D(bad)}))


def test_the_encoder_refuses_an_echo_that_would_expand() -> None:
    """Item 9: a reply echoing 1e-30000000 would be 30 million digits of text."""
    with pytest.raises(ValueError):
        encode(m.OrderResponse("o-1", "AAPL-USD", m.OrderStatus.REJECTED, quantity=D("1e-30000000")))


@pytest.mark.parametrize("bad", ['"1e-30000000"', '"1e-999999999"', '"1e999999999"', "1e300",
                                 '"' + "9" * 60 + '"'])
def test_a_request_with_a_number_outside_the_domain_is_refused_without_expanding_it(bad: str) -> None:
    raw = ('{"type": "add_order", "params": {"symbol": "AAPL-USD", "side": "BUY", "order_type": "LIMIT", '
           '"order_time_in_force": "GTC", "price": 200, "quantity": ' + bad + "}}")
    with pytest.raises(RequestError) as info:
        decode_request(raw)
    assert info.value.code == "InvalidParameter"
    assert len(info.value.message) < 200
    assert len(orjson.dumps(info.value.incoming)) < 2 * len(raw)
