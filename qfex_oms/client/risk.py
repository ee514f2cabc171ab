"""The shell's side of pre-trade risk: reads a manager's public state for ``core.risk.RiskCheck`` and
raises ``RiskRefused`` before the core builds a frame (issue 15).

``PreTradeRisk`` is what the manager calls once in ``place_order``, ``modify_order`` and
``place_twap``, right before ``self.core.place_order`` / ``modify_order`` / ``place_twap`` (after the
argument, halt and connection checks, so a refused call is the only thing that costs a rate token;
and with no ``await`` between the check and the core, so the next check already counts this order
as open). Cancels and the kill switch never pass through it.

Everything is read from the manager's public API: ``oms.open_quantity(symbol)`` (the open orders'
remaining quantity per side, kept up to date by the core's tracker, so a check costs the same with
2 or 2,000 orders resting) and ``oms.twaps(open_only=True)`` for what is still open (a TWAP's
children are counted through the TWAP's remainder, not twice, as the guard counts them),
``oms.position(symbol)`` / ``oms.positions()`` for the exchange's
positions and leverage, ``oms.balance()`` for the available balance. Reference prices come from
``prices``, a callable ``symbol -> Decimal | None``: ``market_data_prices(md)`` reads an
``open_market_data`` feed (the mark, else the last public trade); without one, every check that
needs a reference price is skipped as ``core.risk`` documents. The rate bucket's clock is
``trio.current_time`` unless another is given (tests may pass an autojump clock's).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

import trio

from qfex_oms.core.model import Order
from qfex_oms.core.risk import Exposure, Refusal, RiskCheck, RiskLimits
from qfex_oms.errors import RiskRefused
from qfex_oms.logs import get_logger
from qfex_oms.protocol.enums import OrderType, Side

if TYPE_CHECKING:
    from qfex_oms.client.manager import OrderManager
    from qfex_oms.client.marketdata import MarketData

__all__ = ["PreTradeRisk", "RiskRefused", "market_data_prices"]

log = get_logger("qfex_oms.client.risk")
PriceSource = Callable[[str], Decimal | None]
_ZERO = Decimal(0)
_BUY = Side.BUY


def market_data_prices(md: MarketData, max_age: float | None = None) -> PriceSource:
    """Reference prices from a market-data feed: the mark, else the last public trade, else None.

    ``max_age`` (seconds): a symbol whose feed is stale (``md.stale``: nothing for that long, the
    feed down, a refused frame awaiting its resync) refuses the order (``RiskRefused``, limit
    ``max_price_age``) rather than check it against an old price or skip the check."""
    def price(symbol: str) -> Decimal | None:
        if max_age is not None and md.stale(symbol, max_age):
            raise RiskRefused("max_price_age", f"max_price_age refused {symbol}: the market data it is "
                              f"checked against is older than {max_age} s (or the feed is down)")
        book = md.book(symbol)
        if book.mark is not None:
            return book.mark.price
        return book.trades[-1].price if book.trades else None
    return price


class ManagerView:
    """``core.risk.AccountView`` over an ``OrderManager``'s public state, read when asked."""

    def __init__(self, oms: OrderManager, prices: PriceSource | None = None) -> None:
        self.oms = oms
        self.prices = prices

    def exposure(self, symbol: str) -> Exposure:
        buys, sells = self.oms.open_quantity(symbol)  # TWAP children left out: inside the TWAPs below
        for twap in self.oms.twaps(open_only=True):
            if twap.symbol == symbol:
                left = twap.total_quantity - twap.filled_quantity
                if left > 0:
                    if twap.side is _BUY:
                        buys += left
                    else:
                        sells += left
        position = self.oms.position(symbol)
        return Exposure(_ZERO if position is None else position.quantity, buys, sells)

    def exposures(self) -> dict[str, Exposure]:
        """Every symbol's open totals, the open TWAPs, then the positions."""
        buys: dict[str, Decimal] = {}
        sells: dict[str, Decimal] = {}
        for symbol, (bought, sold) in self.oms.open_quantities().items():
            buys[symbol], sells[symbol] = bought, sold
        for twap in self.oms.twaps(open_only=True):
            left = twap.total_quantity - twap.filled_quantity
            if left > 0:
                book = buys if twap.side is _BUY else sells
                book[twap.symbol] = book.get(twap.symbol, _ZERO) + left
        positions = self.oms.positions()
        out = {}
        for symbol in positions.keys() | buys.keys() | sells.keys():
            position = positions.get(symbol)
            out[symbol] = Exposure(_ZERO if position is None else position.quantity,
                                   buys.get(symbol, _ZERO), sells.get(symbol, _ZERO))
        return out

    def reference_price(self, symbol: str) -> Decimal | None:
        return None if self.prices is None else self.prices(symbol)

    def valuation_price(self, symbol: str) -> Decimal | None:
        price = self.reference_price(symbol)
        if price is None:
            position = self.oms.position(symbol)
            price = None if position is None else position.average_price
        return price

    def leverage(self, symbol: str) -> Decimal | None:
        position = self.oms.position(symbol)
        return None if position is None else position.leverage

    def available_balance(self) -> Decimal | None:
        balance = self.oms.balance()
        return None if balance is None else balance.available


class PreTradeRisk:
    """One manager's pre-trade check: ``check_order`` / ``check_modify`` / ``check_twap`` return
    nothing or raise ``RiskRefused`` (an ``InvalidArgument``) naming the limit and the figures."""

    def __init__(self, oms: OrderManager, limits: RiskLimits, prices: PriceSource | None = None,
                 clock: Callable[[], float] = trio.current_time) -> None:
        self.check = RiskCheck(limits)
        self.view = ManagerView(oms, prices)
        self.clock = clock

    @property
    def limits(self) -> RiskLimits:
        return self.check.limits

    def use_prices(self, prices: PriceSource | None) -> None:
        """Where reference prices come from from now on (``market_data_prices(md)``, say)."""
        self.view.prices = prices

    def check_order(self, symbol: str, side: Side, quantity: Decimal, price: Decimal | None,
                    order_type: OrderType = OrderType.LIMIT, reduce_only: bool | None = None) -> None:
        _raise(self.check.check_order(self.view, self.clock(), symbol, side, quantity, price, order_type,
                                      reduce_only), "order")

    def check_modify(self, order: Order, price: Decimal | None, quantity: Decimal | None) -> None:
        _raise(self.check.check_modify(self.view, self.clock(), order.symbol, order.side, order.order_type,
                                       order.quantity, order.filled_quantity, order.price, quantity, price,
                                       order.reduce_only), "modify")

    def check_twap(self, symbol: str, side: Side, total_quantity: Decimal, num_orders: int,
                   reduce_only: bool = False) -> None:
        _raise(self.check.check_twap(self.view, self.clock(), symbol, side, total_quantity, num_orders,
                                     reduce_only), "TWAP")


def _raise(refusal: Refusal | None, what: str) -> None:
    if refusal is not None:
        log.info("refused by pre-trade risk", what=what, limit=refusal.limit, symbol=refusal.symbol,
                 value=str(refusal.value), bound=str(refusal.bound))
        raise refusal.error()
