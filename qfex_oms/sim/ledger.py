"""The venue's ledger: positions, balances, mark prices, leverage and funding of every account.

Pure and synchronous, like the engine that drives it: the engine tells it about every fill and every
order that starts or stops resting, and asks it whether a new order passes the margin check. The
ledger keeps exact Decimals inside; what leaves it (``PositionView``, ``BalanceView`` and the wire
replies built from them) is rounded once, in ``wire``, so a test reading ``Venue.position`` sees the
very numbers a client reads on the wire.

It also remembers which (account, symbol) pairs changed since the server last asked
(``drain_changes``), so the server can push ``position_response`` / ``balance_response`` to
subscribers without the engine building replies nobody reads.

Formulas (QFEX's definitions page, qfex-api.md §15.3): unrealised P&L = q x (mark - entry);
available balance = equity - margin, equity = deposit + realised + unrealised + net funding - fees.
Margin = notional x initial-margin rate, the rate being 1 / leverage.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from attrs import define, field, frozen

from qfex_oms.protocol import Side
from qfex_oms.protocol.messages import BalanceResponse, LeverageLevel, PositionReport
from qfex_oms.sim import choices
from qfex_oms.sim.records import SimOrder
from qfex_oms.sim.settings import Account, SymbolSpec

ZERO = Decimal(0)
ONE = Decimal(1)
_AMOUNT = Decimal(1).scaleb(-choices.ACCOUNT_AMOUNT_PLACES)
_RATE = Decimal(1).scaleb(-choices.ACCOUNT_RATE_PLACES)
_ONE_PLACE = Decimal("0.1")
_MAINTENANCE = Decimal(choices.MAINTENANCE_MARGIN_FRACTION_TEXT)
_IDS = uuid.UUID("6f1d7c43-1f5e-4a8e-9a51-2b3f1e0c9d77")  # namespace of the ledger's stable ids


def wire(value: Decimal, quantum: Decimal = _AMOUNT) -> Decimal:
    """``value`` rounded for the outside world: at most ``quantum`` resolution, trailing zeros
    dropped but at least one decimal place (``20.0``, ``0.0``, as QFEX's examples print them).
    Rounding also keeps every number inside the codec's number domain (no 1e-26 residue)."""
    rounded = value.quantize(quantum).normalize()
    if rounded.is_zero():
        rounded = rounded.copy_abs()  # no "-0.0" on the wire
    exponent = rounded.as_tuple().exponent
    return rounded.quantize(_ONE_PLACE) if isinstance(exponent, int) and exponent >= 0 else rounded


def stable_id(*parts: str) -> str:
    return str(uuid.uuid5(_IDS, "/".join(parts)))


@define(slots=True, eq=False)
class PositionState:
    """One account's holding in one symbol; ``quantity`` is signed (negative = short, CHOICES C25)."""

    symbol: str
    leverage: Decimal
    quantity: Decimal = ZERO
    average_price: Decimal = ZERO
    realised_pnl: Decimal = ZERO
    net_funding: Decimal = ZERO
    open_orders: int = 0
    open_quantity: Decimal = ZERO
    open_notional: Decimal = ZERO


@define(slots=True, eq=False)
class AccountLedger:
    user_id: str
    deposit: Decimal
    positions: dict[str, PositionState]
    # order_id -> (remaining, remaining x price) as counted in its position's open_* tallies
    resting: dict[str, tuple[Decimal, Decimal]] = field(factory=dict)


@frozen
class PositionView:
    """A position as the venue reports it (wire-rounded). ``margin`` is the position margin."""

    symbol: str
    quantity: Decimal
    average_price: Decimal
    mark_price: Decimal | None
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    net_funding: Decimal
    margin: Decimal
    order_margin: Decimal
    leverage: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal
    open_orders: int
    open_quantity: Decimal


@frozen
class BalanceView:
    deposit: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    order_margin: Decimal
    position_margin: Decimal
    net_funding: Decimal
    fees: Decimal
    available_balance: Decimal


def apply_trade(pos: PositionState, signed: Decimal, price: Decimal) -> Decimal:
    """Apply one fill (``signed`` > 0 buys) to a position; returns the P&L it realised.

    Adding to a position (or opening one) moves the average entry price; reducing realises
    ``closed x (price - entry)`` (sign flipped for a short) and keeps the entry price; going
    through zero realises the whole old position and opens the remainder at the fill price.
    """
    q = pos.quantity
    if q == ZERO or (q > ZERO) == (signed > ZERO):
        new_q = q + signed
        pos.average_price = (abs(q) * pos.average_price + abs(signed) * price) / abs(new_q)
        pos.quantity = new_q
        return ZERO
    closed = min(abs(signed), abs(q))
    realised = closed * (price - pos.average_price) if q > ZERO else closed * (pos.average_price - price)
    pos.realised_pnl += realised
    new_q = q + signed
    if new_q == ZERO:
        pos.average_price = ZERO
    elif (new_q > ZERO) != (q > ZERO):
        pos.average_price = price
    pos.quantity = new_q
    return realised


class Ledger:
    def __init__(self, accounts: Iterable[Account], symbols: Iterable[SymbolSpec],
                 deposit: Decimal) -> None:
        self.symbols: dict[str, SymbolSpec] = {s.symbol: s for s in symbols}
        self.accounts: dict[str, AccountLedger] = {
            a.public_key: AccountLedger(
                a.user_id, a.deposit if a.deposit is not None else deposit,
                {s: PositionState(s, Decimal(spec.default_max_leverage))
                 for s, spec in self.symbols.items()})
            for a in accounts
        }
        self.last_trade: dict[str, Decimal] = {}
        self.pinned_marks: dict[str, Decimal] = {}
        self.holders: dict[str, set[str]] = {s: set() for s in self.symbols}
        self.changed: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ changes

    def _touch(self, account: str, symbol: str) -> None:
        self.changed.setdefault(account, set()).add(symbol)

    def _touch_holders(self, symbol: str) -> None:
        for account in self.holders.get(symbol, ()):
            self._touch(account, symbol)

    def drain_changes(self) -> dict[str, set[str]]:
        """The (account -> symbols) whose position or balance changed since the last call."""
        if not self.changed:
            return {}
        changed, self.changed = self.changed, {}
        return changed

    # ------------------------------------------------------------------ trading

    def fill(self, account: str, symbol: str, side: Side, price: Decimal, quantity: Decimal) -> Decimal:
        """Book one side of a trade; returns the (wire-rounded) P&L it realised."""
        pos = self.accounts[account].positions[symbol]
        realised = apply_trade(pos, quantity if side is Side.BUY else -quantity, price)
        holders = self.holders[symbol]
        if pos.quantity == ZERO:
            holders.discard(account)
        else:
            holders.add(account)
        self._touch(account, symbol)
        self._traded_at(symbol, price)
        return wire(realised)

    def _traded_at(self, symbol: str, price: Decimal) -> None:
        previous = self.mark(symbol)
        self.last_trade[symbol] = price
        if symbol not in self.pinned_marks and previous != price:
            self._touch_holders(symbol)

    def sync_order(self, order: SimOrder) -> None:
        """Recount a resting order's contribution to its position's open-order tallies (after it
        started resting, was partly filled, or left the book)."""
        book = self.accounts[order.account]
        pos = book.positions.get(order.symbol)
        if pos is None:
            return
        old = book.resting.pop(order.order_id, None)
        if old is not None:
            pos.open_orders -= 1
            pos.open_quantity -= old[0]
            pos.open_notional -= old[1]
        if order.is_open and order.remaining > ZERO:
            now = (order.remaining, order.remaining * order.price)
            book.resting[order.order_id] = now
            pos.open_orders += 1
            pos.open_quantity += now[0]
            pos.open_notional += now[1]
        if old is not None or order.is_open:
            self._touch(order.account, order.symbol)

    # ------------------------------------------------------------------ marks, funding, leverage

    def mark(self, symbol: str) -> Decimal | None:
        """The pinned mark if a test or the CLI set one, else the last trade price (CHOICES C26)."""
        pinned = self.pinned_marks.get(symbol)
        return pinned if pinned is not None else self.last_trade.get(symbol)

    def set_mark(self, symbol: str, price: Decimal | None) -> None:
        """Pin the mark of ``symbol`` (None releases it back to the last trade price)."""
        if price is None:
            self.pinned_marks.pop(symbol, None)
        else:
            self.pinned_marks[symbol] = price
        self._touch_holders(symbol)

    def apply_funding(self, symbol: str, rate: Decimal) -> None:
        """Settle one funding period at ``rate`` (a fraction of notional at mark): a positive rate
        makes longs pay and shorts receive (CHOICES C28)."""
        mark = self.mark(symbol)
        if mark is None:
            return
        for account in self.holders[symbol]:
            pos = self.accounts[account].positions[symbol]
            pos.net_funding -= pos.quantity * mark * rate
            self._touch(account, symbol)

    def set_leverage(self, account: str, symbol: str, leverage: Decimal) -> str | None:
        """Set the account's leverage on ``symbol``; the reason it is refused, or None."""
        spec = self.symbols.get(symbol)
        if spec is None:
            return f"unknown symbol {symbol!r}"
        if not any(leverage == level for level in spec.leverage_levels):
            return (f"leverage {leverage} is not an available level for {symbol} "
                    f"({', '.join(str(x) for x in spec.leverage_levels)})")
        self.accounts[account].positions[symbol].leverage = Decimal(leverage).normalize()
        self._touch(account, symbol)
        return None

    # ------------------------------------------------------------------ margin

    def _position_margin(self, pos: PositionState) -> Decimal:
        if pos.quantity == ZERO:
            return ZERO
        mark = self.mark(pos.symbol)
        price = mark if mark is not None else pos.average_price
        return abs(pos.quantity) * price / pos.leverage

    def _unrealised(self, pos: PositionState) -> Decimal:
        mark = self.mark(pos.symbol)
        if pos.quantity == ZERO or mark is None:
            return ZERO
        return pos.quantity * (mark - pos.average_price)

    def available(self, account: str) -> Decimal:
        book = self.accounts[account]
        total = book.deposit
        for pos in book.positions.values():
            total += (pos.realised_pnl + self._unrealised(pos) + pos.net_funding
                      - self._position_margin(pos) - pos.open_notional / pos.leverage)
        return total

    def margin_ok(self, account: str, symbol: str, side: Side, quantity: Decimal, price: Decimal,
                  freed: Decimal = ZERO) -> bool:
        """Whether an order may be accepted: the margin of the part that would increase the
        position (at ``price``) must fit in the available balance (plus ``freed``, the margin an
        order being modified already holds). A reducing order always passes (CHOICES C27)."""
        pos = self.accounts[account].positions.get(symbol)
        if pos is None:
            return True
        reducing = (pos.quantity > ZERO and side is Side.SELL) or (pos.quantity < ZERO and side is Side.BUY)
        increase = quantity - min(quantity, abs(pos.quantity)) if reducing else quantity
        required = increase * price / pos.leverage
        return required <= ZERO or required <= self.available(account) + freed

    def held_margin(self, order: SimOrder) -> Decimal:
        """The order margin a resting order holds now (released if it is modified)."""
        book = self.accounts[order.account]
        counted = book.resting.get(order.order_id)
        if counted is None:
            return ZERO
        return counted[1] / book.positions[order.symbol].leverage

    def close_price(self, symbol: str, side: Side) -> Decimal | None:
        """The limit price of a ``close_position`` order: the mark moved by the collar in the
        closing order's favour, rounded to the tick away from the mark and kept in the price band
        (CHOICES C29)."""
        spec = self.symbols[symbol]
        mark = self.mark(symbol)
        if mark is None:
            return None
        collar = Decimal(choices.CLOSE_POSITION_COLLAR_TEXT)
        if side is Side.SELL:
            raw, rounding = mark * (ONE - collar), ROUND_FLOOR
        else:
            raw, rounding = mark * (ONE + collar), ROUND_CEILING
        ticks = (raw / spec.tick_size).to_integral_value(rounding)
        return min(max(ticks * spec.tick_size, spec.min_price), spec.max_price)

    # ------------------------------------------------------------------ views and replies

    def position(self, account: str, symbol: str) -> PositionView:
        pos = self.accounts[account].positions[symbol]
        rate = ONE / pos.leverage
        mark = self.mark(symbol)
        return PositionView(
            symbol=symbol, quantity=wire(pos.quantity), average_price=wire(pos.average_price),
            mark_price=None if mark is None else wire(mark),
            realised_pnl=wire(pos.realised_pnl), unrealised_pnl=wire(self._unrealised(pos)),
            net_funding=wire(pos.net_funding), margin=wire(self._position_margin(pos)),
            order_margin=wire(pos.open_notional / pos.leverage), leverage=wire(pos.leverage),
            initial_margin=wire(rate, _RATE), maintenance_margin=wire(rate * _MAINTENANCE, _RATE),
            open_orders=pos.open_orders, open_quantity=wire(pos.open_quantity),
        )

    def balance(self, account: str) -> BalanceView:
        book = self.accounts[account]
        realised = unrealised = funding = position_margin = order_margin = ZERO
        for pos in book.positions.values():
            realised += pos.realised_pnl
            unrealised += self._unrealised(pos)
            funding += pos.net_funding
            position_margin += self._position_margin(pos)
            order_margin += pos.open_notional / pos.leverage
        available = book.deposit + realised + unrealised + funding - position_margin - order_margin
        return BalanceView(
            deposit=wire(book.deposit), realised_pnl=wire(realised), unrealised_pnl=wire(unrealised),
            order_margin=wire(order_margin), position_margin=wire(position_margin),
            net_funding=wire(funding), fees=wire(ZERO), available_balance=wire(available),
        )

    def position_response(self, account: str, symbol: str) -> PositionReport:
        view = self.position(account, symbol)
        return PositionReport(
            id=stable_id(self.accounts[account].user_id, symbol), symbol=symbol,
            position=view.quantity, margin_alloc=view.margin, realised_pnl=view.realised_pnl,
            unrealised_pnl=view.unrealised_pnl, net_funding=view.net_funding,
            open_orders=wire(Decimal(view.open_orders)), open_quantity=view.open_quantity,
            leverage=view.leverage, initial_margin=view.initial_margin,
            maintenance_margin=view.maintenance_margin, average_price=view.average_price,
        )

    def balance_response(self, account: str) -> BalanceResponse:
        view = self.balance(account)
        user_id = self.accounts[account].user_id
        return BalanceResponse(
            id=user_id, user_id=user_id, deposit=view.deposit, realised_pnl=view.realised_pnl,
            order_margin=view.order_margin, position_margin=view.position_margin,
            unrealised_pnl=view.unrealised_pnl, net_funding=view.net_funding,
            available_balance=view.available_balance,
        )

    def leverage_rows(self, account: str) -> list[LeverageLevel]:
        """The account's current leverage per symbol (``user_leverage_response`` rows)."""
        book = self.accounts[account]
        return [self._level(symbol, book.positions[symbol].leverage, stable_id(book.user_id, symbol))
                for symbol in self.symbols]

    def level_rows(self) -> list[LeverageLevel]:
        """Every allowed (symbol, leverage) pair (``available_leverage_levels_response`` rows)."""
        return [self._level(symbol, Decimal(level), stable_id(symbol, str(level)))
                for symbol, spec in self.symbols.items() for level in spec.leverage_levels]

    def _level(self, symbol: str, leverage: Decimal, row_id: str) -> LeverageLevel:
        spec = self.symbols[symbol]
        rate = ONE / leverage
        text = format(leverage.normalize(), "f")
        return LeverageLevel(
            id=row_id, symbol=symbol, initial_margin=wire(rate, _RATE),
            maintenance_margin=wire(rate * _MAINTENANCE, _RATE),
            max_notional=wire(spec.max_quantity * spec.max_price), leverage=text,
        )
