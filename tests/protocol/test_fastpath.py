"""The hand-written hot-path structurers must agree with the generic converter, field by field."""

from __future__ import annotations

import messagekit
import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from qfex_oms.protocol import ProtocolError, decode_reply
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.codec import converter

# Market numbers (qfex_oms.protocol.numbers): no subnormal floats, which make a frame malformed.
_market_floats = st.one_of(st.just(0.0), st.floats(1e-12, 1e9))
_numbers = st.one_of(st.none(), st.integers(0, 10**9), _market_floats,
                     st.sampled_from([0.0, 1.0, 200.5, 0.004]))
_text = st.one_of(st.none(), st.text(max_size=8))

_order = st.fixed_dictionaries(
    {"order_id": st.text(max_size=8), "symbol": st.sampled_from(["AAPL-USD", "TSLA-USD"]),
     "status": st.sampled_from(["ACK", "FILLED", "CANCELLED", "NO_SUCH_ORDER", "NEW_THING"])},
    optional={"side": st.sampled_from(["BUY", "SELL", "SIDEWAYS"]),
              "type": st.sampled_from(["LIMIT", "MARKET", "ALO"]),
              "time_in_force": st.sampled_from(["GTC", "IOC", "GFD"]),
              "quantity": _numbers, "price": _numbers, "quantity_remaining": _numbers,
              "client_order_id": _text, "take_profit": _numbers, "stop_loss": _numbers,
              "user_id": _text, "update_time": st.one_of(st.none(), st.floats(0, 2e9)),
              "trade_id": _text, "unknown_field": st.integers(-(2**63), 2**63 - 1)})

# The shape QFEX sends: every field present, floats and strings. It takes the straight-line path;
# the optional-field strategy above mostly takes the checked one, so both are compared.
_floats = st.one_of(_market_floats, st.sampled_from([0.0, 1.0, 200.5, 0.004]),
                    st.integers(0, 10**12), st.sampled_from([0, 1, 100]))  # QFEX may write 1 or 1.0
_complete_order = st.fixed_dictionaries(
    {"order_id": st.text(max_size=8), "symbol": st.sampled_from(["AAPL-USD", "TSLA-USD"]),
     "status": st.sampled_from(["ACK", "FILLED", "CANCELLED", "NO_SUCH_ORDER", "NEW_THING"]),
     "side": st.sampled_from(["BUY", "SELL", "SIDEWAYS"]), "type": st.sampled_from(["LIMIT", "ALO"]),
     "time_in_force": st.sampled_from(["GTC", "IOC", "GFD"]), "quantity": _floats, "price": _floats,
     "quantity_remaining": _floats, "client_order_id": st.text(max_size=8), "take_profit": _floats,
     "stop_loss": _floats, "user_id": st.text(max_size=8), "update_time": st.floats(0, 2e9)},
    optional={"trade_id": _text})

_fill = st.fixed_dictionaries(
    {"trade_id": st.text(max_size=8), "order_id": st.text(max_size=8), "symbol": st.just("AAPL-USD"),
     "price": st.floats(0.01, 1e6), "quantity": st.integers(1, 100),
     "side": st.sampled_from(["BUY", "SELL"])},
    optional={"client_order_id": _text, "remaining_quantity": _numbers, "fee": _numbers,
              "aggressor_side": st.sampled_from(["BUY", "SELL"]), "tif": st.sampled_from(["IOC", "GTC"]),
              "order_type": st.sampled_from(["MARKET", "LIMIT"]), "timestamp": st.floats(0, 2e9),
              "execution_type": st.just("NEW")})


def _generic(kind: type, payload: dict) -> object:
    """What cattrs' generic hooks (without the fast hook) make of the payload, field by field for
    ``OrderResponse`` (a msgspec struct, which cattrs does not build itself)."""
    import cattrs

    from qfex_oms.protocol import codec

    plain = cattrs.Converter(detailed_validation=False)
    for hook_type in (str, bool, int, float):
        plain.register_structure_hook(hook_type, converter.get_structure_hook(hook_type))
    from qfex_oms.protocol.enums import OpenStrEnum

    for enum_type in OpenStrEnum.__subclasses__():
        plain.register_structure_hook(enum_type, codec.structure_enum)
    plain.register_structure_hook(codec.Decimal, codec._structure_decimal)
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        if not isinstance(payload, dict):
            raise TypeError("not an object")
        return messagekit.structure_by_fields(plain.structure, kind, payload)
    return plain.structure(payload, kind)


@given(_order)
def test_order_response_fast_path_matches_the_converter(payload: dict) -> None:
    fast = decode_reply(orjson.dumps({"order_response": payload}))
    assert fast == _generic(m.OrderResponse, orjson.loads(orjson.dumps(payload)))


@given(_complete_order)
def test_complete_order_response_matches_the_converter_digit_for_digit(payload: dict) -> None:
    fast = decode_reply(orjson.dumps({"order_response": payload}))
    slow = _generic(m.OrderResponse, orjson.loads(orjson.dumps(payload)))
    assert fast == slow
    for name in ("quantity", "price", "quantity_remaining", "take_profit", "stop_loss"):
        assert str(getattr(fast, name)) == str(getattr(slow, name))  # same text, not only same value
    assert type(fast.status) is type(slow.status) and fast.status.known == slow.status.known


def test_an_integer_keeps_its_own_text_when_the_equal_float_is_cached() -> None:
    base = {"order_id": "o", "symbol": "A", "status": "ACK", "side": "BUY", "type": "LIMIT",
            "time_in_force": "GTC", "quantity": 7.0, "price": 150.0, "quantity_remaining": 7.0,
            "client_order_id": "c", "take_profit": 0.0, "stop_loss": 0.0, "user_id": "u",
            "update_time": 1.5}
    as_floats = decode_reply(orjson.dumps({"order_response": base}))
    as_ints = decode_reply(orjson.dumps({"order_response": {**base, "quantity": 7, "price": 150,
                                                            "quantity_remaining": 7, "take_profit": 0}}))
    assert (str(as_floats.quantity), str(as_floats.price)) == ("7.0", "150.0")
    assert (str(as_ints.quantity), str(as_ints.price), str(as_ints.take_profit)) == ("7", "150", "0")


def test_a_number_not_yet_cached_takes_the_checked_path_and_is_cached_after() -> None:
    from qfex_oms.protocol import fastpath

    payload = {"order_id": "o", "symbol": "A", "status": "ACK", "side": "BUY", "type": "LIMIT",
               "time_in_force": "GTC", "quantity": 3.25, "price": 123.4567, "quantity_remaining": 3.25,
               "client_order_id": "c", "take_profit": 0.0, "stop_loss": 0.0, "user_id": "u",
               "update_time": 1.5}
    fastpath._decimals.pop(123.4567, None)
    first = decode_reply(orjson.dumps({"order_response": payload}))
    assert 123.4567 in fastpath._decimals
    again = decode_reply(orjson.dumps({"order_response": payload}))
    assert str(first.price) == str(again.price) == "123.4567"
    assert again.price is first.price  # shared from the cache


@pytest.mark.parametrize(("field", "value"), [
    ("quantity", True), ("quantity", "3"), ("client_order_id", 7), ("user_id", None),
    ("status", ["ACK"]), ("update_time", "now"), ("trade_id", 5),
])
def test_a_complete_frame_with_one_odd_field_gets_the_checked_paths_answer(field: str, value: object) -> None:
    payload = {"order_id": "o", "symbol": "A", "status": "ACK", "side": "BUY", "type": "LIMIT",
               "time_in_force": "GTC", "quantity": 3.0, "price": 200.5, "quantity_remaining": 3.0,
               "client_order_id": "c", "take_profit": 0.0, "stop_loss": 0.0, "user_id": "u",
               "update_time": 1.5, field: value}
    raw = orjson.dumps({"order_response": payload})
    try:
        expected = _generic(m.OrderResponse, orjson.loads(raw)["order_response"])
    except Exception:  # whatever the converter refuses, the fast path must refuse too
        with pytest.raises(ProtocolError):
            decode_reply(raw)
        return
    assert decode_reply(raw) == expected


@given(_fill)
def test_fill_response_fast_path_matches_the_converter(payload: dict) -> None:
    fast = decode_reply(orjson.dumps({"fill_response": payload}))
    assert fast == _generic(m.FillResponse, orjson.loads(orjson.dumps(payload)))


@pytest.mark.parametrize("payload", [
    {"order_id": None, "symbol": "A", "status": "ACK"},
    {"order_id": "o", "symbol": "A", "status": 3},
    {"order_id": "o", "symbol": "A", "status": "ACK", "quantity": "x1"},
    {"order_id": "o", "symbol": "A", "status": "ACK", "quantity": True},
    {"order_id": "o", "symbol": "A", "status": "ACK", "client_order_id": 5},
    {"order_id": "o", "symbol": "A", "status": "ACK", "side": ["BUY"]},
    {"symbol": "A", "status": "ACK"},
])
def test_fast_path_refuses_what_the_converter_refuses(payload: dict) -> None:
    raw = orjson.dumps({"order_response": payload})
    with pytest.raises(ProtocolError) as info:
        decode_reply(raw)
    assert info.value.raw == raw.decode()
