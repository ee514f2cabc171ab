"""``wirefast.order_response`` (msgspec, straight from the bytes) either gives exactly what the dict
path gives, digit for digit, or steps aside (None) and lets the dict path decide (issue 19)."""

from __future__ import annotations

import msgspec
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fastpath import _complete_order, _generic, _order

from qfex_oms.protocol import ProtocolError, decode_reply, wirefast
from qfex_oms.protocol import messages as m

_NUMBER_FIELDS = ("quantity", "price", "quantity_remaining", "take_profit", "stop_loss")
USUAL = {"order_id": "o", "symbol": "A", "status": "ACK", "side": "BUY", "type": "LIMIT",
         "time_in_force": "GTC", "quantity": 3.0, "price": 200.5, "quantity_remaining": 3.0,
         "client_order_id": "c", "take_profit": 0.0, "stop_loss": 0.0, "user_id": "u",
         "update_time": 1.5}


def _same(fast: m.OrderResponse, payload: dict) -> None:
    slow = _generic(m.OrderResponse, orjson.loads(orjson.dumps(payload)))
    assert fast == slow
    for name in _NUMBER_FIELDS:
        assert str(getattr(fast, name)) == str(getattr(slow, name))  # the text, not only the value


@given(st.one_of(_order, _complete_order))
def test_it_gives_the_dict_paths_answer_or_steps_aside(payload: dict) -> None:
    raw = orjson.dumps({"order_response": payload})
    fast = wirefast.order_response(raw)
    if fast is not None:
        _same(fast, payload)
    else:  # the dict path decides: the same answer as the converter, or its refusal
        try:
            expected = _generic(m.OrderResponse, orjson.loads(raw)["order_response"])
        except Exception:
            with pytest.raises(ProtocolError):
                decode_reply(raw)
            return
        assert decode_reply(raw) == expected


def test_the_usual_frame_is_taken_from_bytes_and_from_text() -> None:
    raw = orjson.dumps({"order_response": USUAL})
    decode_reply(raw)  # admits its numbers to the cache, as the first sight of a number does
    for frame in (raw, raw.decode()):
        fast = wirefast.order_response(frame)
        assert fast is not None
        _same(fast, USUAL)


def test_the_frame_read_in_place_is_exactly_an_order_response() -> None:
    """The decoded struct becomes an ``OrderResponse`` by ``__class__`` assignment, which needs
    both to have the same fields in the same slots: were they to drift apart, the assignment would
    fail and every frame would quietly take the slow dict path. And the object must be exactly the
    message type: the core dispatches on ``type(reply)``, and msgspec's equality compares types."""
    raw = orjson.dumps({"order_response": USUAL})
    decode_reply(raw)
    fast = wirefast.order_response(raw)
    assert type(fast) is m.OrderResponse
    _same(fast, USUAL)  # equal to the generic dict path's answer, digit for digit
    assert fast == msgspec.structs.replace(fast) and type(msgspec.structs.replace(fast)) is m.OrderResponse


@pytest.mark.parametrize("frame", [
    orjson.dumps({"order_response": USUAL, "extra": 1}),  # another key beside it: the dict path's call
    b'{ "order_response": ' + orjson.dumps(USUAL) + b"}",  # another spelling of the same frame
    orjson.dumps({"fill_response": {"trade_id": "t"}}),
    orjson.dumps({"order_response": {**USUAL, "quantity": 1e300}}),  # not a market number
    orjson.dumps({"order_response": {**USUAL, "quantity": True}}),
    orjson.dumps({"order_response": USUAL}) + b"garbage",
    b'{"order_response":',
])
def test_anything_unusual_steps_aside(frame: bytes) -> None:
    decode_reply(orjson.dumps({"order_response": USUAL}))
    assert wirefast.order_response(frame) is None


def test_a_market_number_never_enters_by_this_path() -> None:
    """Only the dict path's structuring hook admits a number to the cache (after its domain check):
    a number seen first here steps aside, and is cached by the dict path that takes the frame."""
    raw = orjson.dumps({"order_response": {**USUAL, "price": 987.654321}})
    assert wirefast.order_response(raw) is None
    assert str(decode_reply(raw).price) == "987.654321"
    fast = wirefast.order_response(raw)
    assert fast is not None and str(fast.price) == "987.654321"


def test_an_unknown_status_word_gives_the_dict_paths_open_member() -> None:
    """QFEX may add statuses (``OpenStrEnum``): msgspec reads an unknown word through the enum's own
    ``_missing_``, as the dict path does, to an equal member that says it is not known."""
    payload = {**USUAL, "status": "SOMETHING_NEW"}
    fast = wirefast.order_response(orjson.dumps({"order_response": payload}))
    assert fast is not None and not fast.status.known
    _same(fast, payload)
