"""Validation of a strategy's arguments, done before the core tracks anything or a frame is sent.

Numbers may be ``str``, ``int``, ``Decimal`` or ``float`` (a float goes through its shortest repr,
so ``0.1`` is ``Decimal("0.1")``), and must lie in the market number domain the codec shares with
the simulator (``qfex_oms.protocol.numbers``). Order type / time-in-force combinations follow QFEX's table
(qfex-api.md §5.3): MARKET is IOC only, ALO is GTC only, LIMIT takes all three.
"""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import TypeVar

from qfex_oms.errors import InvalidArgument
from qfex_oms.protocol import numbers
from qfex_oms.protocol.enums import OrderType, Side, TimeInForce

Number = str | int | Decimal | float
E = TypeVar("E", Side, OrderType, TimeInForce)
PLACEABLE_TYPES = (OrderType.LIMIT, OrderType.MARKET, OrderType.ALO)
ALLOWED_TIF: dict[OrderType, tuple[TimeInForce, ...]] = {
    OrderType.LIMIT: (TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK),
    OrderType.MARKET: (TimeInForce.IOC,),
    OrderType.ALO: (TimeInForce.GTC,),
}
# QFEX does not publish its client id limits (qfex-api.md §3.1); this is a conservative guess.
MAX_CLIENT_ID_LENGTH = 64
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_.:\-]+$")


def decimal_arg(name: str, value: object, *, positive: bool = True) -> Decimal:
    """``value`` as a Decimal in the market number domain (``protocol.numbers``: bounded magnitude and
    digits), checked before anything is tracked or encoded: a number the codec would refuse to write,
    or that no market uses, is the strategy's mistake, not a frame to half-send."""
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal | float):
        raise InvalidArgument(f"{name} must be a number (str, int, Decimal or float), "
                              f"got {numbers.preview(value)}")
    try:
        result = numbers.parse(value)
    except (numbers.NumberError, TypeError) as exc:
        raise InvalidArgument(f"{name}: {exc}") from None
    if positive and result <= 0:
        raise InvalidArgument(f"{name} must be greater than zero, got {numbers.preview(value)}")
    return result


def enum_arg(name: str, value: object, kind: type[E]) -> E:
    if isinstance(value, str):
        try:
            member = kind(value.upper())
        except ValueError:
            member = None
        if member is not None and member.known:
            return member
    choices = ", ".join(kind.__members__)
    raise InvalidArgument(f"{name} must be one of {choices}, got {value!r}")


def symbol_arg(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or value != value.strip():
        raise InvalidArgument(f"symbol must be a non-empty string like 'AAPL-USD', got {value!r}")
    return value


def client_id_arg(name: str, value: object | None, prefix: str = "") -> str:
    if value is None:
        return f"{prefix}{uuid.uuid4().hex}"
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{name} must be a non-empty string, got {value!r}")
    if len(value) > MAX_CLIENT_ID_LENGTH or not _CLIENT_ID.match(value):
        raise InvalidArgument(f"{name} must be 1-{MAX_CLIENT_ID_LENGTH} characters of letters, digits "
                              f"and _ . : -, got {value!r}")
    return value


def order_type_and_tif(order_type: object, time_in_force: object | None) -> tuple[OrderType, TimeInForce]:
    kind = enum_arg("order_type", order_type, OrderType)
    if kind not in PLACEABLE_TYPES:
        raise InvalidArgument(f"order_type must be LIMIT, MARKET or ALO, got {order_type!r}")
    allowed = ALLOWED_TIF[kind]
    tif = allowed[0] if time_in_force is None else enum_arg("time_in_force", time_in_force, TimeInForce)
    if tif not in allowed:
        names = ", ".join(allowed)
        raise InvalidArgument(f"{kind} orders take time_in_force {names}, got {time_in_force!r}")
    return kind, tif


def int_arg(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidArgument(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value
