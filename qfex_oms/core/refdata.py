"""Reference data as the order checks need it: one ``Instrument`` per symbol (qfex-api.md §6, §15.6).

Pure: built from QFEX's ``RefdataSymbol`` rows, no clock, no I/O. ``check`` names the first rule an
order breaks, in the order QFEX's statuses suggest (status, type, time in force, quantity, price), so
the manager can refuse before any frame exists; ``round_price`` / ``round_quantity`` turn a wish into
an order QFEX accepts. What the reference data leaves unsaid is not refused: an empty list of order
types or times in force restricts nothing, and a status other than the two known closed ones
(``INACTIVE``, ``DELISTED``) defers to the exchange. ``market_hours`` are funding hours (§15.6), not
trading hours, so they are kept but never checked.

Decimal arithmetic throughout, in a context wide enough that a quotient by a tick never rounds
(the same bound as the simulator's validation: twice the market number domain's digits).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Context, Decimal
from typing import Any

from attrs import field, frozen

from qfex_oms.protocol import numbers
from qfex_oms.protocol.enums import OrderType, Side, TimeInForce
from qfex_oms.protocol.rest import RefdataSymbol

ACTIVE = "ACTIVE"
CLOSED_STATUSES = frozenset({"INACTIVE", "DELISTED"})
# Types whose price is a limit QFEX checks against tick and band (a stop's price is its trigger).
PRICED_TYPES = frozenset({OrderType.LIMIT, OrderType.ALO})
_EXACT = Context(prec=2 * numbers.MAX_SIGNIFICANT_DIGITS + 2)
_ZERO = Decimal(0)


def _steps(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    """``value`` rounded to a whole number of ``step`` in the direction ``rounding``."""
    count = _EXACT.divide(value, step).to_integral_value(rounding=rounding)
    return _EXACT.multiply(count, step)


def _is_multiple(value: Decimal, step: Decimal) -> bool:
    return _EXACT.remainder(value, step) == _ZERO


@frozen
class Instrument:
    """One symbol's trading rules. ``order_types`` / ``time_in_force`` empty: not restricted."""

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal
    max_quantity: Decimal
    min_price: Decimal
    max_price: Decimal
    order_types: frozenset[OrderType] = frozenset()
    time_in_force: frozenset[TimeInForce] = frozenset()
    status: str = ACTIVE
    market_hours: Mapping[str, Any] = field(factory=dict, eq=False, hash=False)
    default_max_leverage: int | None = None

    @classmethod
    def from_refdata(cls, row: RefdataSymbol) -> Instrument:
        return cls(
            symbol=row.symbol, tick_size=row.tick_size, lot_size=row.lot_size,
            min_quantity=row.min_quantity, max_quantity=row.max_quantity,
            min_price=row.min_price, max_price=row.max_price,
            order_types=frozenset(OrderType(t) for t in row.order_types if t),
            time_in_force=frozenset(TimeInForce(t) for t in row.order_time_in_force if t),
            status=row.status or ACTIVE, market_hours=row.market_hours,
            default_max_leverage=row.default_max_leverage,
        )

    @property
    def tradable(self) -> bool:
        return self.status not in CLOSED_STATUSES

    def round_price(self, price: Decimal, side: Side) -> Decimal:
        """``price`` on the tick grid toward the passive side: a BUY rounds down, a SELL up, so
        rounding never makes an order more aggressive than asked."""
        return _steps(price, self.tick_size, ROUND_FLOOR if side is Side.BUY else ROUND_CEILING)

    def round_quantity(self, quantity: Decimal) -> Decimal:
        """``quantity`` down to a whole number of lots (never more than asked; may become 0)."""
        return _steps(quantity, self.lot_size, ROUND_FLOOR)

    def check(
        self,
        order_type: OrderType,
        time_in_force: TimeInForce,
        quantity: Decimal,
        price: Decimal | None = None,
    ) -> str | None:
        """The rule the order breaks, named by its reference data field, or None if it passes."""
        found = self._check_kind(order_type, time_in_force)
        if found is None:
            found = self.check_quantity(quantity)
        if found is None and order_type in PRICED_TYPES:
            found = (f"price: a {order_type} order on {self.symbol} needs a price" if price is None
                     else self.check_price(price))
        return found

    def _check_kind(self, order_type: OrderType, time_in_force: TimeInForce) -> str | None:
        if not self.tradable:
            return f"status: {self.symbol} is {self.status}, not {ACTIVE}"
        if self.order_types and order_type not in self.order_types:
            return (f"order_types: {self.symbol} does not accept {order_type} orders "
                    f"(accepted: {_listed(self.order_types)})")
        if self.time_in_force and time_in_force not in self.time_in_force:
            return (f"order_time_in_force: {self.symbol} does not accept {time_in_force} "
                    f"(accepted: {_listed(self.time_in_force)})")
        return None

    def check_quantity(self, quantity: Decimal) -> str | None:
        if quantity < self.min_quantity:
            return f"min_quantity: quantity {quantity} is below {self.symbol}'s minimum {self.min_quantity}"
        if not _is_multiple(quantity, self.lot_size):
            return f"lot_size: quantity {quantity} is not a multiple of {self.symbol}'s lot {self.lot_size}"
        if quantity > self.max_quantity:
            return f"max_quantity: quantity {quantity} is above {self.symbol}'s maximum {self.max_quantity}"
        return None

    def check_price(self, price: Decimal) -> str | None:
        if price < self.min_price:
            return f"min_price: price {price} is below {self.symbol}'s minimum {self.min_price}"
        if price > self.max_price:
            return f"max_price: price {price} is above {self.symbol}'s maximum {self.max_price}"
        if not _is_multiple(price, self.tick_size):
            return f"tick_size: price {price} is not a multiple of {self.symbol}'s tick {self.tick_size}"
        return None


def _listed(values: Iterable[str]) -> str:
    return ", ".join(sorted(values))


@frozen
class Instruments:
    """Every symbol's ``Instrument``, as one load of ``GET /refdata`` gave them."""

    by_symbol: Mapping[str, Instrument] = field(factory=dict)

    @classmethod
    def from_refdata(cls, rows: Iterable[RefdataSymbol]) -> Instruments:
        return cls({row.symbol: Instrument.from_refdata(row) for row in rows})

    def get(self, symbol: str) -> Instrument | None:
        return self.by_symbol.get(symbol)

    def __len__(self) -> int:
        return len(self.by_symbol)

    def check(
        self,
        symbol: str,
        order_type: OrderType,
        time_in_force: TimeInForce,
        quantity: Decimal,
        price: Decimal | None = None,
    ) -> str | None:
        """As ``Instrument.check``; an unknown symbol names the known ones."""
        instrument = self.by_symbol.get(symbol)
        if instrument is None:
            return f"symbol: unknown symbol {symbol!r} (known: {_listed(self.by_symbol) or 'none'})"
        return instrument.check(order_type, time_in_force, quantity, price)
