"""Pre-trade risk: refuse an order, a modify or a TWAP before its frame exists (issue 15).

Pure: the shell hands in an ``AccountView`` (positions as the exchange reported them, the open
orders' and TWAPs' remaining quantity per side, a reference price, the available balance) and a
monotonic clock value; nothing here reads a clock or does I/O. The kill-switch guard
(``app/guard.py``) trips *after* fills; this refuses *before* anything is sent, so the two agree on
one meaning of a position's worst case (the position plus everything still open on one side).

Rules every check follows:

- **The boundary is inclusive**: a figure exactly at its limit passes, one past it is refused.
  All figures are Decimal in a context wide enough that a product of two market numbers never
  rounds (``_EXACT``); ratios are compared cross-multiplied, never divided, so ``5 %`` is exactly
  ``5 %``.
- **An order that does not make things worse is never refused by an exposure limit** (position,
  gross notional, margin): a sell that brings a long closer to flat passes even if the account is
  already past the limit (the guard, not this check, deals with a breach that already exists); one
  that flips the position past the limit on the other side is refused.
- **What cannot be valued is skipped, and said so**: with no reference price (no mark, no last
  trade) the price band is skipped; a MARKET order with neither a price nor a reference skips the
  notional, gross and margin checks unless ``refuse_unpriced``; with no balance reported yet the
  margin check is skipped; a symbol held with no price at all is left out of the gross notional.
- **The rate limit is checked last and consumes only when everything else passed**: a refused
  order changes nothing (tested as a property).
- Cancels and the kill switch are never checked: nothing here is called on their paths.

Choices where nothing says otherwise (README "Where QFEX's docs are silent"):

- ``MARGIN_LEVERAGE``: the margin an order needs is its opening notional / leverage, the leverage
  being the one QFEX reports on the symbol's position (``position_response.leverage``), else
  ``RiskLimits.default_leverage`` (1 by default: the full notional, the most conservative, since the
  leverage in force for a symbol never traded is not known locally). Only the part of an order that
  opens or extends a position needs margin; a reduce-only order needs none.
- ``TWAP_SLICE``: a TWAP's order quantity and notional limits apply to one slice
  (``total / num_orders``: each child is the order QFEX places); its *total* counts for the
  position, the gross notional and the margin; it has no price, so it is valued at the reference.
- ``RATE_COUNTS_MODIFY``: a modify takes a token like a new order and a TWAP start (each is a frame
  that places or changes an order); the bucket holds ``max_orders_per_second`` tokens and refills at
  that rate, so a burst of that many at one instant passes and the next waits for a refill.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Context, Decimal
from typing import Any, NamedTuple, Protocol

from attrs import define, field, frozen

from qfex_oms.errors import InvalidArgument, RiskRefused
from qfex_oms.protocol import numbers
from qfex_oms.protocol.enums import OrderType, Side

MARGIN_LEVERAGE = "position leverage, else RiskLimits.default_leverage"
TWAP_SLICE = True
RATE_COUNTS_MODIFY = True
# Types whose price is a limit price the band applies to (a stop's price is its trigger).
BANDED_TYPES = frozenset({OrderType.LIMIT, OrderType.ALO})
_EXACT = Context(prec=2 * numbers.MAX_SIGNIFICANT_DIGITS + 8)
_ZERO = Decimal(0)
_HUNDRED = Decimal(100)
_BUY = Side.BUY


# ---------------------------------------------------------------------- limits


def _limit(value: Any, name: str, integer: bool = False) -> Any:
    """None, or a positive finite number as Decimal (int for ``integer``); anything else refused
    with the field's name."""
    if value is None:
        return None
    kind = "a positive integer" if integer else "a positive number"
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str | float) or \
            (integer and not isinstance(value, int)):
        raise InvalidArgument(f"{name}: expected {kind}, got {value!r}")
    if integer:
        number: Any = value
    else:
        try:
            number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        except ArithmeticError:
            raise InvalidArgument(f"{name}: expected {kind}, got {value!r}") from None
        if not number.is_finite():
            raise InvalidArgument(f"{name}: expected {kind}, got {value!r}")
    if number <= 0:
        raise InvalidArgument(f"{name}: expected {kind} (a zero or negative limit would refuse "
                              f"everything; leave it unset for no limit), got {value!r}")
    return number


@frozen(slots=True)
class SymbolLimits:
    """One symbol's overrides; a field left None inherits the account-wide limit."""

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    price_band_pct: Decimal | None = None

    def __attrs_post_init__(self) -> None:
        for name in ("max_order_quantity", "max_order_notional", "max_position", "price_band_pct"):
            object.__setattr__(self, name, _limit(getattr(self, name), f"SymbolLimits.{name}"))


def _symbol_limits(value: Any) -> Mapping[str, SymbolLimits]:
    if not isinstance(value, Mapping):
        raise InvalidArgument(f"RiskLimits.per_symbol: expected a mapping symbol -> limits, got {value!r}")
    out: dict[str, SymbolLimits] = {}
    for symbol, limits in value.items():
        if not isinstance(symbol, str) or not symbol:
            raise InvalidArgument(f"RiskLimits.per_symbol: a symbol must be a non-empty string, "
                                  f"got {symbol!r}")
        if isinstance(limits, Mapping):
            try:
                limits = SymbolLimits(**limits)
            except TypeError as exc:
                raise InvalidArgument(f"RiskLimits.per_symbol[{symbol!r}]: {exc}") from None
            except InvalidArgument as exc:
                raise InvalidArgument(f"RiskLimits.per_symbol[{symbol!r}]: {exc}") from None
        if not isinstance(limits, SymbolLimits):
            raise InvalidArgument(f"RiskLimits.per_symbol[{symbol!r}]: expected SymbolLimits, got {limits!r}")
        out[symbol] = limits
    return out


@frozen(slots=True)
class RiskLimits:
    """The pre-trade limits; every one optional (None: not checked). Positive when given.

    ``max_order_quantity`` / ``max_order_notional``: one order (a TWAP: one slice).
    ``max_position``: per symbol, |position| after the order, counting the exchange-reported
    position, every open order's and TWAP's remaining quantity on the order's side, and the order.
    ``max_gross_notional``: the sum over symbols of that worst-case |position| x price.
    ``price_band_pct``: a LIMIT/ALO price at most this many percent from the reference price.
    ``max_orders_per_second``: new orders, modifies and TWAP starts (a token bucket of that size).
    ``check_margin``: refuse an order whose margin (opening notional / leverage) exceeds the
    available balance. ``per_symbol``: overrides of the per-order and per-symbol limits.
    """

    max_order_quantity: Decimal | None = None
    max_order_notional: Decimal | None = None
    max_position: Decimal | None = None
    max_gross_notional: Decimal | None = None
    price_band_pct: Decimal | None = None
    max_orders_per_second: int | None = None
    check_margin: bool = False
    default_leverage: Decimal = Decimal(1)
    refuse_unpriced: bool = False
    per_symbol: Mapping[str, SymbolLimits] = field(factory=dict)

    def __attrs_post_init__(self) -> None:
        for name in ("max_order_quantity", "max_order_notional", "max_position", "max_gross_notional",
                     "price_band_pct", "default_leverage"):
            object.__setattr__(self, name, _limit(getattr(self, name), f"RiskLimits.{name}"))
        object.__setattr__(self, "max_orders_per_second",
                           _limit(self.max_orders_per_second, "RiskLimits.max_orders_per_second", True))
        if self.default_leverage is None:
            raise InvalidArgument("RiskLimits.default_leverage: expected a positive number, got None")
        object.__setattr__(self, "per_symbol", _symbol_limits(self.per_symbol))

    def for_symbol(self, symbol: str) -> SymbolLimits:
        """The per-symbol limits in force for ``symbol``: its overrides, else the account's."""
        own = self.per_symbol.get(symbol)
        if own is None:
            return SymbolLimits(self.max_order_quantity, self.max_order_notional, self.max_position,
                                self.price_band_pct)
        return SymbolLimits(
            self.max_order_quantity if own.max_order_quantity is None else own.max_order_quantity,
            self.max_order_notional if own.max_order_notional is None else own.max_order_notional,
            self.max_position if own.max_position is None else own.max_position,
            self.price_band_pct if own.price_band_pct is None else own.price_band_pct)


# ---------------------------------------------------------------------- inputs and answers


class Exposure(NamedTuple):
    """One symbol: the signed position as reported (negative short) and what the open orders and
    TWAPs would still buy and sell."""

    position: Decimal
    buys: Decimal
    sells: Decimal


_FLAT = Exposure(_ZERO, _ZERO, _ZERO)


class AccountView(Protocol):
    """What the checks read; asked lazily, only for the limits that are set."""

    def exposure(self, symbol: str) -> Exposure: ...

    def exposures(self) -> Mapping[str, Exposure]:
        """Every symbol with a position or anything open (for the gross notional; when that limit
        is set, the order's own symbol is read from here too, so the shell makes one pass)."""
        ...

    def reference_price(self, symbol: str) -> Decimal | None:
        """The mark, else the last trade, else None."""
        ...

    def valuation_price(self, symbol: str) -> Decimal | None:
        """The price a held symbol is valued at: the reference, else the position's entry price."""
        ...

    def leverage(self, symbol: str) -> Decimal | None: ...

    def available_balance(self) -> Decimal | None: ...


@define
class AccountState:
    """A plain ``AccountView`` (tests, the benchmark, a shell that keeps its own copy)."""

    positions: dict[str, Decimal] = field(factory=dict)
    open_buys: dict[str, Decimal] = field(factory=dict)
    open_sells: dict[str, Decimal] = field(factory=dict)
    prices: dict[str, Decimal] = field(factory=dict)  # reference prices (mark, else last trade)
    entry_prices: dict[str, Decimal] = field(factory=dict)
    leverages: dict[str, Decimal] = field(factory=dict)
    available: Decimal | None = None

    def exposure(self, symbol: str) -> Exposure:
        return Exposure(self.positions.get(symbol, _ZERO), self.open_buys.get(symbol, _ZERO),
                        self.open_sells.get(symbol, _ZERO))

    def exposures(self) -> Mapping[str, Exposure]:
        return {symbol: self.exposure(symbol) for symbol in {*self.positions, *self.open_buys,
                                                             *self.open_sells}}

    def reference_price(self, symbol: str) -> Decimal | None:
        return self.prices.get(symbol)

    def valuation_price(self, symbol: str) -> Decimal | None:
        price = self.prices.get(symbol)
        return self.entry_prices.get(symbol) if price is None else price

    def leverage(self, symbol: str) -> Decimal | None:
        return self.leverages.get(symbol)

    def available_balance(self) -> Decimal | None:
        return self.available


@frozen(slots=True)
class Refusal:
    """Which limit refused, on what figure: ``value`` is past ``limit`` (``value > limit``)."""

    limit: str
    value: Decimal
    bound: Decimal
    symbol: str
    detail: str

    @property
    def message(self) -> str:
        return f"risk limit {self.limit} refused {self.symbol}: {self.detail}"

    def error(self) -> RiskRefused:
        return RiskRefused(self.limit, self.message, self)


def plain(value: Decimal) -> str:
    """``2``, not ``2.000000``: the figures are read by people."""
    return format(value.normalize(), "f") if value else "0"


# ---------------------------------------------------------------------- the check


@define
class RiskCheck:
    """The limits and the one piece of state they need (the rate bucket).

    Each ``check_*`` returns None (pass) or the first ``Refusal`` in this order: order quantity,
    price band, order notional, position, gross notional, margin, rate. Only a passing call takes a
    token from the bucket; nothing else is ever written.
    """

    limits: RiskLimits
    _resolved: dict[str, SymbolLimits] = field(factory=dict, init=False)
    _tokens: float = field(default=0.0, init=False)
    _stamp: float | None = field(default=None, init=False)  # the clock value of the last token taken

    def __attrs_post_init__(self) -> None:
        self._tokens = float(self.limits.max_orders_per_second or 0)

    def limits_for(self, symbol: str) -> SymbolLimits:
        resolved = self._resolved.get(symbol)
        if resolved is None:
            resolved = self._resolved[symbol] = self.limits.for_symbol(symbol)
        return resolved

    # ------------------------------------------------------------------ the three entry points

    def check_order(self, view: AccountView, now: float, symbol: str, side: Side, quantity: Decimal,
                    price: Decimal | None = None, order_type: OrderType = OrderType.LIMIT,
                    reduce_only: bool | None = None) -> Refusal | None:
        """A new order of ``quantity`` at ``price`` (None for MARKET)."""
        own = self.limits_for(symbol)
        limit = own.max_order_quantity
        if limit is not None and quantity > limit:
            return Refusal("max_order_quantity", quantity, limit, symbol,
                           f"quantity {plain(quantity)} > max_order_quantity {plain(limit)}")
        found, value_price = self._priced(view, own, symbol, quantity, price, order_type)
        if found is None:
            found = self._exposure(view, symbol, side, quantity, value_price, bool(reduce_only))
        return found or self._take(now, symbol)

    def check_modify(self, view: AccountView, now: float, symbol: str, side: Side,
                     order_type: OrderType, quantity: Decimal, filled: Decimal, price: Decimal | None,
                     new_quantity: Decimal | None, new_price: Decimal | None,
                     reduce_only: bool | None = None) -> Refusal | None:
        """A modify of an order of ``quantity`` (``filled`` of it done) at ``price``. The order as it
        would be is checked as a new one; its exposure only by what it adds (a smaller order, or a
        price change alone, adds nothing and passes the exposure limits)."""
        own = self.limits_for(symbol)
        total = quantity if new_quantity is None else new_quantity
        limit = own.max_order_quantity
        if limit is not None and total > limit:
            return Refusal("max_order_quantity", total, limit, symbol,
                           f"modified quantity {plain(total)} > max_order_quantity {plain(limit)}")
        after_price = price if new_price is None else new_price
        banded = order_type if new_price is not None else OrderType.MARKET  # band only a new price
        found, value_price = self._priced(view, own, symbol, total, after_price, banded)
        if found is None:
            added = max(_ZERO, total - filled) - max(_ZERO, quantity - filled)
            if added > 0:
                found = self._exposure(view, symbol, side, added, value_price, bool(reduce_only))
        return found or self._take(now, symbol)

    def check_twap(self, view: AccountView, now: float, symbol: str, side: Side,
                   total_quantity: Decimal, num_orders: int, reduce_only: bool = False) -> Refusal | None:
        """A TWAP: its slice (``total / num_orders``) against the per-order limits, its total
        against the position, gross and margin limits, valued at the reference price (TWAP_SLICE)."""
        own = self.limits_for(symbol)
        slices = Decimal(num_orders)
        limit = own.max_order_quantity
        if limit is not None and total_quantity > _EXACT.multiply(limit, slices):
            size = _EXACT.divide(total_quantity, slices)
            return Refusal("max_order_quantity", size, limit, symbol,
                           f"TWAP slice {plain(size)} ({plain(total_quantity)} / {num_orders}) > "
                           f"max_order_quantity {plain(limit)}")
        reference = None
        if own.max_order_notional is not None or self._values_exposure():
            reference = view.reference_price(symbol)
            if reference is None and self.limits.refuse_unpriced:
                return _unpriced(symbol, "TWAP")
        limit = own.max_order_notional
        if limit is not None and reference is not None:
            notional = _EXACT.multiply(total_quantity, reference)
            if notional > _EXACT.multiply(limit, slices):
                size = _EXACT.divide(notional, slices)
                return Refusal("max_order_notional", size, limit, symbol,
                               f"TWAP slice notional {plain(size)} at reference {plain(reference)} > "
                               f"max_order_notional {plain(limit)}")
        found = self._exposure(view, symbol, side, total_quantity, reference, reduce_only)
        return found or self._take(now, symbol)

    # ------------------------------------------------------------------ the limits

    def _values_exposure(self) -> bool:
        return self.limits.max_gross_notional is not None or self.limits.check_margin

    def _priced(self, view: AccountView, own: SymbolLimits, symbol: str, quantity: Decimal,
                price: Decimal | None, order_type: OrderType) -> tuple[Refusal | None, Decimal | None]:
        """The price band and the order notional; also the price the order is valued at (its own
        price, else the reference price), for the exposure limits."""
        band = own.price_band_pct
        reference = None
        if band is not None and price is not None and order_type in BANDED_TYPES:
            reference = view.reference_price(symbol)
            if reference is not None:  # no mark and no last trade: the band is skipped
                distance = abs(price - reference)
                if _EXACT.multiply(distance, _HUNDRED) > _EXACT.multiply(band, reference):
                    pct = _EXACT.divide(_EXACT.multiply(distance, _HUNDRED), reference)
                    return Refusal("price_band_pct", pct, band, symbol,
                                   f"price {plain(price)} is {plain(pct.quantize(Decimal('0.0001')))} % "
                                   f"from reference {plain(reference)} > price_band_pct {plain(band)}"), None
        limit = own.max_order_notional
        if price is None and (limit is not None or self._values_exposure()):
            price = view.reference_price(symbol)
            if price is None and self.limits.refuse_unpriced:
                return _unpriced(symbol, "order"), None
        if limit is not None and price is not None:
            notional = _EXACT.multiply(quantity, price)
            if notional > limit:
                return Refusal("max_order_notional", notional, limit, symbol,
                               f"notional {plain(notional)} ({plain(quantity)} x {plain(price)}) > "
                               f"max_order_notional {plain(limit)}"), None
        return None, price

    def _exposure(self, view: AccountView, symbol: str, side: Side, added: Decimal,
                  price: Decimal | None, reduce_only: bool) -> Refusal | None:
        """Position, gross notional and margin, for ``added`` more on ``side`` of ``symbol``.
        Each refuses only an order that makes its figure worse and leaves it past the limit."""
        limits = self.limits
        position_limit = self.limits_for(symbol).max_position
        if reduce_only or (position_limit is None and limits.max_gross_notional is None
                           and not limits.check_margin):
            return None
        every = None if limits.max_gross_notional is None else view.exposures()
        held, buys, sells = view.exposure(symbol) if every is None else every.get(symbol, _FLAT)
        buying = side is _BUY
        before = held + buys if buying else held - sells  # the worst case on the order's side, signed
        after = before + added if buying else before - added
        if position_limit is not None and abs(after) > position_limit and \
                (abs(after) > abs(before) or (after < 0) != (before < 0)):  # worse, or flipped past it
            return Refusal("max_position", abs(after), position_limit, symbol,
                           f"position after the order {plain(after)} (reported {plain(held)}, open buys "
                           f"{plain(buys)}, open sells {plain(sells)}, this {side} {plain(added)}) > "
                           f"max_position {plain(position_limit)}")
        if every is not None and limits.max_gross_notional is not None:
            other = abs(held - sells if buying else held + buys)  # the worst case on the other side
            worst_before, worst_after = abs(before), abs(after)
            if worst_after > other and worst_after > worst_before:  # this order raises the worst case
                found = self._gross(view, every, symbol, worst_after, price, limits.max_gross_notional)
                if found is not None:
                    return found
        if limits.check_margin and price is not None:
            reducible = -before if buying else before  # what the order closes before it opens
            opening = added if reducible <= 0 else (added - reducible if added > reducible else _ZERO)
            if opening > 0:
                return self._margin(view, symbol, opening, price)
        return None

    def _gross(self, view: AccountView, every: Mapping[str, Exposure], symbol: str, worst_after: Decimal,
               price: Decimal | None, limit: Decimal) -> Refusal | None:
        reference = view.reference_price(symbol)
        own_price = price if reference is None else reference
        if own_price is None:
            return None  # unpriced: nothing to value this symbol at
        multiply, add = _EXACT.multiply, _EXACT.add
        gross = multiply(worst_after, own_price)
        for other, (held, buys, sells) in every.items():
            if other != symbol:
                value = view.valuation_price(other)
                if value is not None:  # a symbol with no price at all is left out
                    long, short = abs(held + buys), abs(held - sells)
                    gross = add(gross, multiply(long if long > short else short, value))
        if gross > limit:
            return Refusal("max_gross_notional", gross, limit, symbol,
                           f"gross notional after the order {plain(gross)} > "
                           f"max_gross_notional {plain(limit)}")
        return None

    def _margin(self, view: AccountView, symbol: str, opening: Decimal, price: Decimal) -> Refusal | None:
        available = view.available_balance()
        if available is None:
            return None  # no balance reported yet: the exchange decides
        leverage = view.leverage(symbol)
        if leverage is None or leverage <= 0:
            leverage = self.limits.default_leverage
        notional = _EXACT.multiply(opening, price)
        if notional > _EXACT.multiply(available, leverage):
            margin = _EXACT.divide(notional, leverage)
            return Refusal("check_margin", margin, available, symbol,
                           f"margin {plain(margin)} ({plain(opening)} opening x {plain(price)} / leverage "
                           f"{plain(leverage)}) > available balance {plain(available)}")
        return None

    def _take(self, now: float, symbol: str) -> Refusal | None:
        """Take a token from the bucket if one is there; a refusal leaves the bucket as it was."""
        rate = self.limits.max_orders_per_second
        if rate is None:
            return None
        tokens, stamp = self._tokens, self._stamp
        if stamp is not None and now > stamp:
            tokens = min(float(rate), tokens + (now - stamp) * rate)
        if tokens < 1.0:
            wait = (1.0 - tokens) / rate
            return Refusal("max_orders_per_second", Decimal(1), Decimal(str(round(tokens, 6))), symbol,
                           f"more than {rate} orders per second: the next is allowed in {wait:.3f} s")
        self._tokens = tokens - 1.0
        if stamp is None or now > stamp:
            self._stamp = now
        return None

    @property
    def bucket(self) -> tuple[float, float | None]:
        """The bucket's raw state (tokens at the last take, the clock value of that take)."""
        return self._tokens, self._stamp

    def tokens(self, now: float) -> float:
        """What the bucket holds at ``now`` (read-only: for tests and reports)."""
        rate = self.limits.max_orders_per_second
        if rate is None:
            return float("inf")
        if self._stamp is None or now <= self._stamp:
            return self._tokens
        return min(float(rate), self._tokens + (now - self._stamp) * rate)


def _unpriced(symbol: str, what: str) -> Refusal:
    return Refusal("refuse_unpriced", _ZERO, _ZERO, symbol,
                   f"the {what} has no price and {symbol} has no reference price (mark or last trade) "
                   "to value it at; refuse_unpriced is set")
