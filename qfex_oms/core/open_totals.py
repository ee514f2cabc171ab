"""Per symbol, the remaining quantity of the open orders on each side, kept as orders change.

Pre-trade risk (``core.risk``, issue 15) asks, on every order, how much is still open on the order's
symbol; summing the open orders each time made its cost grow with the book (45 % of a place round
trip's client CPU at 200 orders). These totals answer in constant time instead.

They cost about 0.6 us on every order's end and every report that changes an open order's size
(exact Decimal arithmetic and the calls around it: a third of such a reply's apply), so the tracker
keeps them only from the first time someone asks (``OrderTracker.keep_open_totals``, which
``open_quantity`` calls): a manager without pre-trade risk never pays. Each live order that is not a
TWAP's child counts for its ``remaining_quantity`` (a child is inside its TWAP's remainder, which
the risk check adds from the TWAP). The tracker moves an order in or out as it goes live or ends;
every change of an open order's size, fills or leaves is bracketed where it happens
(``OrderTracker.open_share`` / ``reshare``, ``OpenTotals.lower_floor``); and ``problems`` recomputes
the totals from the orders, which the property tests do after every step. Every figure here is
computed in a context wide enough that it never rounds (``_EXACT``), never in the calling task's: a
strategy inside ``decimal.localcontext(prec=4)`` must not put in a total what the reader task, in
another context, takes out.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Context, Decimal

from qfex_oms.core.model import Order, remaining_of
from qfex_oms.protocol import numbers
from qfex_oms.protocol.enums import Side

# Every digit a market number can have (its leading digit from 1e15 down to 1e-18, 34 digits from
# there), and 24 more for the count of orders: a sum of them never rounds.
_EXACT = Context(prec=numbers.MAX_MAGNITUDE_EXPONENT - numbers.MIN_MAGNITUDE_EXPONENT
                 + numbers.MAX_SIGNIFICANT_DIGITS + 24)
_ZERO = Decimal(0)
_BUY = Side.BUY


class OpenTotals:
    __slots__ = ("_by_symbol",)

    def __init__(self, open_orders: Iterable[Order] = ()) -> None:
        self._by_symbol: dict[str, list[Decimal]] = {}  # symbol -> [buys, sells]
        for order in open_orders:
            share = self.share(order)
            if share is not None:
                self.add(order, share)

    @staticmethod
    def share(order: Order) -> Decimal | None:
        """What the order counts for now: its remaining quantity while it is live and not a TWAP's
        child, else None."""
        if order.twap_id is None and order.state.is_live:
            return remaining_of(order.quantity, order.fill_total, order.leaves_floor, _EXACT)
        return None

    def add(self, order: Order, delta: Decimal) -> None:
        totals = self._by_symbol.get(order.symbol)
        if totals is None:
            totals = self._by_symbol[order.symbol] = [_ZERO, _ZERO]
        side = order.side is not _BUY
        totals[side] = _EXACT.add(totals[side], delta)

    def moved(self, order: Order, live: bool) -> None:
        """The order went live (``live``) or ended: in or out with what it has left."""
        if order.twap_id is None:
            left = remaining_of(order.quantity, order.fill_total, order.leaves_floor, _EXACT)
            if left:
                self.add(order, left if live else _EXACT.minus(left))

    def reshare(self, order: Order, before: Decimal | None) -> None:
        """Move the order's total by what its share became since it was ``before``."""
        after = self.share(order)
        if after != before:
            self.add(order, _EXACT.subtract(after or _ZERO, before or _ZERO))

    def lower_floor(self, order: Order, leaves: Decimal) -> None:
        """Lower the order's leaves floor to a report's ``leaves`` (the caller checked they are
        lower), and its total by what that cuts off its remaining quantity."""
        floor = order.leaves_floor
        lowered = order.leaves_floor = leaves if leaves >= _ZERO else _ZERO
        if order.twap_id is None and order.state.is_live:
            quantity, fill_total = order.quantity, order.fill_total
            fallen = _EXACT.subtract(remaining_of(quantity, fill_total, floor, _EXACT),
                                     remaining_of(quantity, fill_total, lowered, _EXACT))
            if fallen:
                self.add(order, _EXACT.minus(fallen))

    def quantity(self, symbol: str) -> tuple[Decimal, Decimal]:
        totals = self._by_symbol.get(symbol)
        return (_ZERO, _ZERO) if totals is None else (totals[0], totals[1])

    def quantities(self) -> dict[str, tuple[Decimal, Decimal]]:
        return {symbol: (t[0], t[1]) for symbol, t in self._by_symbol.items() if t[0] or t[1]}

    def problems(self, open_orders: Iterable[Order]) -> list[str]:
        """Where these totals differ from the open orders' (empty when they agree)."""
        expected = OpenTotals(open_orders)
        return [f"open totals of {symbol} are {self.quantity(symbol)}, not {expected.quantity(symbol)}"
                for symbol in sorted(expected._by_symbol.keys() | self._by_symbol.keys())
                if expected.quantity(symbol) != self.quantity(symbol)]
