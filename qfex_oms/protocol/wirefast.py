"""The commonest frame, ``{"order_response": {...}}``, decoded from its bytes in one C pass.

``decode_reply`` used to build a dict of the whole frame with ``orjson.loads`` and then pick the
fields out of it (``fastpath.order_response``); half of decode + apply's budget (bench row 1, issue
19) went to the dict and its float objects, only to be thrown away. msgspec reads the JSON straight
into a slotted struct of QFEX's fifteen fields, and the struct becomes an ``OrderResponse`` with the
same members and numbers as the dict path gives: msgspec reads the enum words into members itself
(an unknown word through the enum's own ``_missing_``, as the dict path does), and the numbers come
from the same bounded cache (``fastpath``), sharing their Decimals.

Like ``fastpath.order_response``, this path only takes the usual shape and never decides an error:
``None`` means "not that shape" (another frame, a field of an unexpected JSON type, a number not yet
in the cache, another key beside ``order_response`` or any field beside QFEX's fifteen, text that
does not encode, anything msgspec raises) and the caller takes the dict path, which gives the exact
answer or the exact error. JSON integers keep their own type (``3`` and ``3.0`` are different
texts), and only numbers already admitted to the cache are used, so the market number domain is
enforced as before.
"""

from __future__ import annotations

from typing import Any

import msgspec

from qfex_oms.protocol import fastpath
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus, OrderType, Side, TimeInForce

_PREFIX = b'{"order_response":'
_TEXT_PREFIX = _PREFIX.decode()
Number = float | int | None


class _Fields(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    """The fields of an ``order_response`` payload as JSON types: QFEX's fifteen. A payload with any
    other field takes the dict path, which reads every byte of it: msgspec would skip an unknown
    field without checking it (a number out of range, bytes that are not UTF-8, nesting deep enough
    to exhaust the stack), and the frame must be refused or accepted the same way on both paths."""

    order_id: str
    symbol: str
    status: OrderStatus  # msgspec reads the words into members itself, unknown ones through the
    side: Side | None = None  # enums' own _missing_ as the dict path does (OpenStrEnum)
    type: OrderType | None = None
    time_in_force: TimeInForce | None = None
    quantity: Number = None
    price: Number = None
    quantity_remaining: Number = None
    client_order_id: str | None = None
    take_profit: Number = None
    stop_loss: Number = None
    user_id: str | None = None
    update_time: float | None = None
    trade_id: str | None = None


class _Frame(msgspec.Struct, gc=False, forbid_unknown_fields=True):
    order_response: _Fields


_decode = msgspec.json.Decoder(_Frame).decode
# The numbers' tables also map None (a missing or null field) to None: one lookup a field.
_NUMBERS: dict[type, dict[Any, Any]] = {**fastpath.number_tables(), type(None): {None: None}}


def order_response(raw: bytes | str) -> m.OrderResponse | None:
    """The frame's ``OrderResponse`` if it is the usual ``order_response``, else None (see above)."""
    if not raw.startswith(_PREFIX if type(raw) is bytes else _TEXT_PREFIX):  # type: ignore[arg-type]
        return None
    try:
        p = _decode(raw).order_response
        q, px, left, tp, sl = p.quantity, p.price, p.quantity_remaining, p.take_profit, p.stop_loss
        n = _NUMBERS
        return m.OrderResponse(
            p.order_id, p.symbol, p.status, p.side, p.type, p.time_in_force, n[type(q)][q],
            n[type(px)][px], n[type(left)][left], p.client_order_id, n[type(tp)][tp], n[type(sl)][sl],
            p.user_id, p.update_time, p.trade_id)
    except Exception:  # any failure means "not the usual shape": the dict path decides
        return None
