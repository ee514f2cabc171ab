"""Hand-written structuring for the two replies on the hot path: ``order_response`` and ``fill_response``.

cattrs' generated code spends most of its time dispatching ``Optional`` fields; these functions do
the same checks inline (same strictness as the converter's hooks: no coercion of wrong JSON types)
at a fraction of the cost, which keeps decode + apply within design.md's 5x-``orjson.loads`` budget.
Numbers go through a bounded cache per JSON number type (orjson gives floats for ``1.0`` and ints for
``1``, and the two must keep their own text): prices and sizes repeat, so most lookups hit, and orders
share their Decimal objects, which also keeps memory per tracked order down. Decimals are immutable, so
sharing is safe. Only numbers in the market number domain enter a cache (the structuring hook checks
them on a miss), and a fill's quantity must be a size. ``tests/protocol`` checks these against the
generic converter.
"""

from __future__ import annotations

from decimal import Decimal
from operator import itemgetter
from typing import Any, TypeVar

from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OpenStrEnum, OrderStatus, OrderType, Side, TimeInForce
from qfex_oms.protocol.numbers import size

_CACHE_LIMIT = 65_536
# Floats only: 200.0, 200 and Decimal("200") are equal keys, and one shared dict would hand back
# Decimal("200") for a wire 200.0 (same value, different text). Interning has its own dict.
_decimals: dict[float, Decimal] = {}
_integers: dict[int, Decimal] = {}  # kept apart from floats: 1 == 1.0, but Decimal("1") is not "1.0"
_interned: dict[Decimal, Decimal] = {}
# The cache for a JSON number's Python type; a bool, a string or null finds no table (KeyError).
_BY_TYPE: dict[type, dict[Any, Decimal]] = {float: _decimals, int: _integers}


def _number(value: Any, structure: Any) -> Decimal:
    table = _BY_TYPE.get(type(value))
    if table is not None:
        cached = table.get(value)
        if cached is None:
            cached = structure(value, Decimal)
            if len(table) >= _CACHE_LIMIT:
                table.clear()
            table[value] = cached
        return cached
    result: Decimal = structure(value, Decimal)  # strings, and the converter's errors
    return result


def number_tables() -> dict[type, dict[Any, Decimal]]:
    """The bounded caches of in-domain numbers by JSON type (float, int): the live dicts, cleared
    in place when full, so a reader may keep them. Never write to them: only ``_number`` admits."""
    return _BY_TYPE


def intern_decimal(value: Decimal | None) -> Decimal | None:
    """The shared Decimal equal to ``value``: strategies repeat their sizes and prices, so the book's
    orders can hold one object per distinct number instead of one per order (about 100 bytes each)."""
    if value is None:
        return None
    cached = _interned.get(value)
    if cached is None:
        if len(_interned) >= _CACHE_LIMIT:
            _interned.clear()
        _interned[value] = cached = value
    return cached


def _text(value: Any, name: str) -> str:
    if type(value) is not str:
        raise TypeError(f"{name}: expected str, got {type(value).__name__}")
    return value


def _opt_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _opt_float(value: Any, name: str) -> float | None:
    kind = type(value)
    if value is None or kind is float:
        same: float | None = value
        return same
    if kind is int:
        return float(value)
    raise TypeError(f"{name}: expected a number, got {kind.__name__}")


E = TypeVar("E", bound=OpenStrEnum)


def _member_table(kind: type[E]) -> dict[str, E]:
    return {member.value: member for member in kind}


_STATUS = _member_table(OrderStatus)
_SIDE = _member_table(Side)
_TYPE = _member_table(OrderType)
_TIF = _member_table(TimeInForce)


def _member(value: Any, table: dict[str, Any], kind: type[OpenStrEnum], name: str) -> Any:
    member = table.get(value) if type(value) is str else None
    if member is not None:
        return member
    return kind(_text(value, name))


def _opt_member(value: Any, table: dict[str, Any], kind: type[OpenStrEnum], name: str) -> Any:
    if value is None:
        return None
    member = table.get(value) if type(value) is str else None
    return member if member is not None else _member(value, table, kind, name)


# The fields of the fast path, in the order they are unpacked (every one but ``trade_id``).
_ORDER_FIELDS = itemgetter(
    "order_id", "symbol", "status", "side", "type", "time_in_force", "quantity", "price",
    "quantity_remaining", "client_order_id", "take_profit", "stop_loss", "user_id", "update_time")


def make_structurers(structure_decimal: Any) -> dict[type[Any], Any]:
    def dec(value: Any) -> Decimal:
        return _number(value, structure_decimal)

    def opt_dec(value: Any) -> Decimal | None:
        return None if value is None else _number(value, structure_decimal)

    def checked_order_response(p: Any) -> m.OrderResponse:
        """Any payload: optional fields missing or null, ints or strings for numbers, unknown enum
        words, and every wrong JSON type refused with the field's name."""
        if type(p) is not dict:
            raise TypeError("order_response must be an object")
        g = p.get
        # Positional, in field order (order_id, symbol, status, side, type, time_in_force, quantity,
        # price, quantity_remaining, client_order_id, take_profit, stop_loss, user_id, update_time,
        # trade_id); tests/protocol/test_fastpath.py compares every field with the converter's.
        v1, v2, v3 = g("quantity"), g("price"), g("quantity_remaining")
        v4, v5 = g("take_profit"), g("stop_loss")
        status = p["status"]
        order_id, symbol = p["order_id"], p["symbol"]
        if type(order_id) is not str or type(symbol) is not str:
            raise TypeError("order_id and symbol must be strings")
        cid, uid, tid = g("client_order_id"), g("user_id"), g("trade_id")
        if not (cid is None or type(cid) is str) or not (uid is None or type(uid) is str) \
                or not (tid is None or type(tid) is str):
            raise TypeError("client_order_id, user_id and trade_id must be strings or null")
        side, kind, tif, when = g("side"), g("type"), g("time_in_force"), g("update_time")
        return m.OrderResponse(
            order_id,
            symbol,
            _member(status, _STATUS, OrderStatus, "status"),
            _opt_member(side, _SIDE, Side, "side"),
            _opt_member(kind, _TYPE, OrderType, "type"),
            _opt_member(tif, _TIF, TimeInForce, "time_in_force"),
            opt_dec(v1), opt_dec(v2), opt_dec(v3),
            cid,
            opt_dec(v4), opt_dec(v5),
            uid,
            _opt_float(when, "update_time"),
            tid,
        )

    statuses, sides, kinds, tifs, num, floats = _STATUS, _SIDE, _TYPE, _TIF, _BY_TYPE, _decimals
    new, fields = m.OrderResponse, _ORDER_FIELDS

    def order_response(p: Any, _: type = m.OrderResponse) -> m.OrderResponse:
        """The shape QFEX sends by the thousand, in straight-line code: every field present, strings
        and numbers, known enum words, numbers already in the cache. A KeyError or TypeError on the way
        (a field missing, a number of the wrong JSON type or not yet cached, an unhashable value, not
        an object at all) or a failed type test means "not that shape": the checked path decides, with
        its exact errors. Trade ids may be null or absent (an ACK). The fields come out in one C call
        (``operator.itemgetter``), and five JSON floats (the usual case) skip the per-type table."""
        try:
            (order_id, symbol, status, side, kind, tif, q, px, left, cid, tp, sl, uid, when) = fields(p)
            tid = p.get("trade_id")
            if (type(order_id) is str and type(symbol) is str and type(cid) is str and type(uid) is str
                    and (tid is None or type(tid) is str) and type(when) is float):
                if type(q) is float and type(px) is float and type(left) is float and type(tp) is float \
                        and type(sl) is float:
                    return new(order_id, symbol, statuses[status], sides[side], kinds[kind], tifs[tif],
                               floats[q], floats[px], floats[left], cid, floats[tp], floats[sl], uid, when,
                               tid)
                return new(order_id, symbol, statuses[status], sides[side], kinds[kind], tifs[tif],
                           num[type(q)][q], num[type(px)][px], num[type(left)][left], cid,
                           num[type(tp)][tp], num[type(sl)][sl], uid, when, tid)
        except (KeyError, TypeError, AttributeError):
            pass
        return checked_order_response(p)

    def fill_response(p: Any, _: type = m.FillResponse) -> m.FillResponse:
        if type(p) is not dict:
            raise TypeError("fill_response must be an object")
        g = p.get
        return m.FillResponse(
            trade_id=_text(p["trade_id"], "trade_id"),
            order_id=_text(p["order_id"], "order_id"),
            symbol=_text(p["symbol"], "symbol"),
            price=dec(p["price"]),
            quantity=size(dec(p["quantity"])),
            side=_member(p["side"], _SIDE, Side, "side"),
            client_order_id=_opt_text(g("client_order_id"), "client_order_id"),
            remaining_quantity=opt_dec(g("remaining_quantity")),
            aggressor_side=_opt_member(g("aggressor_side"), _SIDE, Side, "aggressor_side"),
            fee=opt_dec(g("fee")),
            order_type=_opt_member(g("order_type"), _TYPE, OrderType, "order_type"),
            tif=_opt_member(g("tif"), _TIF, TimeInForce, "tif"),
            order_price=opt_dec(g("order_price")),
            take_profit=opt_dec(g("take_profit")),
            stop_loss=opt_dec(g("stop_loss")),
            execution_type=_opt_text(g("execution_type"), "execution_type"),
            timestamp=_opt_float(g("timestamp"), "timestamp"),
            realised_pnl=opt_dec(g("realised_pnl")),
            user_id=_opt_text(g("user_id"), "user_id"),
        )

    return {m.OrderResponse: order_response, m.FillResponse: fill_response}
