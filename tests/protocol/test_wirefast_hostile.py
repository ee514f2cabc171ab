"""Hostile frames (found by review) on which ``decode_reply`` with ``wirefast`` in front once answered
differently from the dict path alone (``orjson.loads`` + ``fastpath``): each test states the dict
path's answer, which the module docstring promises ("the dict path ... decides every error")."""

from __future__ import annotations

import contextlib

import orjson
import pytest

from qfex_oms.protocol import ProtocolError, decode_reply

USUAL = {"order_id": "o", "symbol": "A", "status": "ACK", "side": "BUY", "type": "LIMIT",
         "time_in_force": "GTC", "quantity": 3.0, "price": 200.5, "quantity_remaining": 3.0,
         "client_order_id": "c", "take_profit": 0.0, "stop_loss": 0.0, "user_id": "u",
         "update_time": 1.5}
BASE = orjson.dumps({"order_response": USUAL})


def _with_unknown(value: bytes) -> bytes:
    return BASE.replace(b'"order_id":"o"', b'"order_id":"o","extra":' + value)


@pytest.fixture(autouse=True)
def _numbers_cached() -> None:
    decode_reply(BASE)  # every number of USUAL admitted: the fast path takes the frame


@pytest.mark.parametrize("extra", [b"1e400", b"-1e400", b'{"a":[1,{"b":1e400}]}', b'"\xff"',
                                   b'"\xed\xa0\x80"'],
                         ids=["1e400", "-1e400", "nested-1e400", "invalid-utf8", "utf8-surrogate"])
def test_a_frame_orjson_refuses_is_refused_whatever_its_unknown_field(extra: bytes) -> None:
    """msgspec skips an unknown field without checking its number range or its UTF-8; orjson
    refuses the whole frame. With wirefast in front the frame is accepted as an ACK."""
    frame = _with_unknown(extra)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(frame)
    with pytest.raises(ProtocolError):
        decode_reply(frame)


@pytest.mark.parametrize("depth", [1000, 1020, 1100])
def test_a_deeply_nested_unknown_field_never_escapes_as_recursion_error(depth: int) -> None:
    """msgspec raises RecursionError (not a DecodeError, so not caught) on nesting near Python's
    recursion limit, less the caller's stack depth; orjson decodes up to depth 1024 and refuses
    deeper with JSONDecodeError. decode_reply must give a reply or a ProtocolError, never let a
    RecursionError out of frame_received (the reader)."""
    frame = _with_unknown(b"[" * depth + b"]" * depth)
    with contextlib.suppress(ProtocolError):
        decode_reply(frame)


def test_a_text_frame_with_a_lone_surrogate_is_a_protocol_error() -> None:
    """A str frame holding a raw lone surrogate: orjson raises JSONDecodeError (a ProtocolError);
    msgspec raises UnicodeEncodeError, which wirefast does not catch."""
    frame = BASE.decode().replace('"user_id":"u"', '"user_id":"\ud800"')
    with pytest.raises(ProtocolError):
        decode_reply(frame)
