"""The commonest frame, ``{"order_response": {...}}``, decoded from its bytes in one C pass.

``decode_reply`` used to build a dict of the whole frame with ``orjson.loads`` and then pick the
fields out of it (``fastpath.order_response``); half of decode + apply's budget (bench row 1, issue
19) went to the dict and its float objects, only to be thrown away. msgspec reads the JSON straight
into a struct laid out as ``OrderResponse`` (``_Wire``), which then becomes one in place, with the
same members and numbers as the dict path gives: msgspec reads the enum words into members itself
(an unknown word through the enum's own ``_missing_``, as the dict path does), and the numbers come
from the same bounded cache (``fastpath``), sharing their Decimals.

Like ``fastpath.order_response``, this path only takes the usual shape and never decides an error:
it steps aside (``order_response`` gives None; ``ahead_of``'s decoder calls its fallback) for
another frame, a field of an unexpected JSON type, a number not yet in the cache, another key
beside ``order_response`` or any field beside QFEX's fifteen, text that does not encode, anything
msgspec raises; the dict path then gives the exact answer or the exact error. JSON integers keep
their own type (``3`` and ``3.0`` are different texts), and only numbers already admitted to the
cache are used, so the market number domain is enforced as before.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import msgspec

from qfex_oms.protocol import fastpath
from qfex_oms.protocol import messages as m

Number = float | int | None
R = TypeVar("R")


class _Wire(m.OrderResponse, gc=False, forbid_unknown_fields=True):
    """An ``OrderResponse`` as it comes off the wire: the same fifteen fields in the same slots, the
    numbers still JSON numbers. ``order_response`` swaps them for the cached Decimals in place and
    then makes the object an ``OrderResponse`` (``__class__`` assignment: the two layouts are the
    same, which ``test_wirefast`` checks), so no second struct is built and freed for every frame:
    the 15-argument constructor and its free cost about 1,100 instructions, the assignment about
    500 (callgrind; bench row 1 is about 29,000 a frame).

    Any field beside QFEX's fifteen sends the frame down the dict path, which reads every byte of
    it: msgspec would skip an unknown field without checking it (a number out of range, bytes that
    are not UTF-8, nesting deep enough to exhaust the stack), and the frame must be refused or
    accepted the same way on both paths. msgspec reads the enum words into members itself, unknown
    ones through the enums' own ``_missing_`` (OpenStrEnum), as the dict path does."""

    quantity: Number = None  # type: ignore[assignment]
    price: Number = None  # type: ignore[assignment]
    quantity_remaining: Number = None  # type: ignore[assignment]
    take_profit: Number = None  # type: ignore[assignment]
    stop_loss: Number = None  # type: ignore[assignment]


class _Frame(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    order_response: _Wire


_decode = msgspec.json.Decoder(_Frame).decode
# The numbers' tables also map None (a missing or null field) to None: one lookup a field.
_NUMBERS: dict[type, dict[Any, Any]] = {**fastpath.number_tables(), type(None): {None: None}}
_FLOATS = _NUMBERS[float]
_ORDER_RESPONSE = m.OrderResponse
# '{"o': only an order_response frame starts so (QFEX writes no space there); whatever else does
# fails in msgspec and takes the dict path. Indexing is cheaper than startswith's argument parsing.
_THIRD = frozenset((ord("o"), "o"))


def ahead_of(slow: Callable[[bytes | str], R], name: str,
             doc: str) -> Callable[[bytes | str], m.OrderResponse | R]:
    """A decoder that reads the usual ``order_response`` itself and hands every other frame to
    ``slow``, whose answer (or exception) is then the decoder's. ``codec.decode_reply`` is built
    this way rather than calling ``order_response``: a Python call is about 440 instructions, a
    seventieth of bench row 1's budget, and this path is the reader's, once a frame."""

    def decode(raw: bytes | str) -> m.OrderResponse | R:
        try:
            if raw[2] in _THIRD:
                p = _decode(raw).order_response
                q, px, left, tp, sl = p.quantity, p.price, p.quantity_remaining, p.take_profit, p.stop_loss
                if type(q) is type(px) is type(left) is type(tp) is type(sl) is float:  # the usual
                    f = _FLOATS  # one table for all five: ~320 instructions fewer (callgrind)
                    p.quantity = f[q]
                    p.price = f[px]
                    p.quantity_remaining = f[left]
                    p.take_profit = f[tp]
                    p.stop_loss = f[sl]
                else:
                    n = _NUMBERS
                    p.quantity = n[type(q)][q]
                    p.price = n[type(px)][px]
                    p.quantity_remaining = n[type(left)][left]
                    p.take_profit = n[type(tp)][tp]
                    p.stop_loss = n[type(sl)][sl]
                p.__class__ = _ORDER_RESPONSE  # type: ignore[assignment]
                return p
        except Exception:  # any failure means "not the usual shape": ``slow`` decides
            pass
        return slow(raw)

    decode.__name__ = decode.__qualname__ = name
    decode.__doc__ = doc
    return decode


def _not_taken(raw: bytes | str) -> None:
    return None


order_response: Callable[[bytes | str], m.OrderResponse | None] = ahead_of(
    _not_taken, "order_response",
    "The frame's ``OrderResponse`` if it is the usual ``order_response``, else None (see above).")
