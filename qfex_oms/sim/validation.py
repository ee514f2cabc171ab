"""Pure request validation against reference data (qfex-api.md §3.1, §3.5, §5.3, §6).

Returns the QFEX status to reject with, or None. No state, no I/O: the engine calls these before
touching the book, and unit tests call them directly.
"""

from __future__ import annotations

from decimal import Context, Decimal

from qfex_oms.protocol import OrderStatus, OrderType, TimeInForce, numbers
from qfex_oms.protocol.messages import AddTwap
from qfex_oms.sim import choices
from qfex_oms.sim.settings import SymbolSpec

# qfex-api.md §5.3: which time-in-force each order type accepts.
ALLOWED_TIF: dict[OrderType, frozenset[TimeInForce]] = {
    OrderType.LIMIT: frozenset({TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}),
    OrderType.MARKET: frozenset({TimeInForce.IOC}),
    OrderType.ALO: frozenset({TimeInForce.GTC}),
}
PRICED_TYPES = frozenset({OrderType.LIMIT, OrderType.ALO})
_ZERO = Decimal(0)
# Requests reach validation only with numbers in the market number domain (the request decoder
# refuses the rest as InvalidParameter, echoing the text as sent). Over that domain a quotient by a
# tick or lot has at most twice its digit limit, so this context divides exactly where the default
# one (28 digits) raises DivisionImpossible, e.g. 9999999999999999 by a tick of 1e-18.
_EXACT = Context(prec=2 * numbers.MAX_SIGNIFICANT_DIGITS + 2)


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    return _EXACT.remainder(value, step) == _ZERO


def check_quantity(spec: SymbolSpec, quantity: Decimal) -> OrderStatus | None:
    if quantity < spec.min_quantity:
        return OrderStatus.QUANTITY_LESS_THAN_MIN_QUANTITY
    if not _is_multiple(quantity, spec.lot_size):
        return OrderStatus.INVALID_TICK_SIZE_PRECISION_QUANTITY
    if quantity > spec.max_quantity:
        return OrderStatus.QUANTITY_GREATER_THAN_MAX_QUANTITY
    return None


def check_price(spec: SymbolSpec, price: Decimal) -> OrderStatus | None:
    if price < spec.min_price:
        return OrderStatus.PRICE_LESS_THAN_MIN_PRICE
    if price > spec.max_price:
        return OrderStatus.PRICE_GREATER_THAN_MAX_PRICE
    if not _is_multiple(price, spec.tick_size):
        return OrderStatus.INVALID_TICK_SIZE_PRECISION_PRICE
    return None


def check_new_order(
    spec: SymbolSpec | None,
    order_type: OrderType,
    tif: TimeInForce,
    quantity: Decimal,
    price: Decimal | None,
) -> OrderStatus | None:
    """Checks in the order QFEX's status list suggests: symbol, type, TIF, quantity, price."""
    if spec is None:
        return OrderStatus.BAD_SYMBOL
    allowed = ALLOWED_TIF.get(order_type)
    if allowed is None:
        # Unknown types and STOP_MARKET (CHOICES C10); the stop types are staged by sim/stops.py (C39).
        return choices.UNSUPPORTED_ORDER_TYPE_STATUS
    if tif not in allowed:
        return OrderStatus.INVALID_TIME_IN_FORCE
    status = check_quantity(spec, quantity)
    if status is not None:
        return status
    if order_type in PRICED_TYPES:
        if price is None:
            return choices.MISSING_PRICE_STATUS
        return check_price(spec, price)
    return None


def twap_child_quantities(spec: SymbolSpec, total: Decimal, num_orders: int) -> list[Decimal]:
    """Split a TWAP into lot-aligned children; the last child takes the rounding remainder."""
    child = (total / num_orders // spec.lot_size) * spec.lot_size
    last = total - child * (num_orders - 1)
    return [child] * (num_orders - 1) + [last]


def check_twap(spec: SymbolSpec | None, request: AddTwap) -> str | None:
    """The add_twap rules of qfex-api.md §3.5; returns a message for an InvalidParameter error."""
    if spec is None:
        return f"unknown symbol {request.symbol!r}"
    if request.num_orders < 2:
        return "num_orders must be >= 2"
    if request.order_interval_secs < 30:
        return "order_interval_secs must be >= 30"
    total = scale_twap_total(spec, request.total_quantity)
    if total <= _ZERO or total / request.num_orders < spec.min_quantity:
        return "total_quantity / num_orders must be >= the symbol's min_quantity"
    children = twap_child_quantities(spec, total, request.num_orders)
    if max(children) > spec.max_quantity:
        return "total_quantity / num_orders must be <= the symbol's max_quantity"
    if children[0] < spec.min_quantity:
        return "total_quantity / num_orders must be >= the symbol's min_quantity"
    return None


def scale_twap_total(spec: SymbolSpec, total: Decimal) -> Decimal:
    """QFEX: "total_quantity is scaled using the symbol quantity precision before validation"."""
    return (total // spec.lot_size) * spec.lot_size
