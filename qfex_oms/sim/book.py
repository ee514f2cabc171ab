"""Price-time priority depth for one symbol: sorted price levels, FIFO within a level.

Each level is an ``OrderedDict`` keyed by order id, so adding, removing (cancel, modify) and taking
the oldest order are all O(1); the sorted list of prices is searched with ``bisect``. Pure and
synchronous: the engine decides what a match means, this only keeps the queue.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Iterator
from decimal import Decimal

from qfex_oms.protocol import Side
from qfex_oms.sim.records import SimOrder


class BookSide:
    """One side. Prices are kept ascending; bids are consumed from the top of the list."""

    __slots__ = ("is_bid", "levels", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.prices: list[Decimal] = []
        self.levels: dict[Decimal, OrderedDict[str, SimOrder]] = {}

    def __bool__(self) -> bool:
        return bool(self.prices)

    def best_price(self) -> Decimal | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def add(self, order: SimOrder) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = OrderedDict()
            insort(self.prices, order.price)
        level[order.order_id] = order

    def remove(self, order: SimOrder) -> None:
        level = self.levels.get(order.price)
        if level is None or level.pop(order.order_id, None) is None:
            return
        if not level:
            self._drop_level(order.price)

    def _drop_level(self, price: Decimal) -> None:
        del self.levels[price]
        index = bisect_left(self.prices, price)
        del self.prices[index]

    def first_at_best(self) -> SimOrder | None:
        """The oldest order at the best price (the next one to trade)."""
        price = self.best_price()
        if price is None:
            return None
        return next(iter(self.levels[price].values()))

    def iter_priority(self) -> Iterator[SimOrder]:
        """Orders in priority order (best price first, oldest first). Do not mutate while iterating."""
        prices = reversed(self.prices) if self.is_bid else iter(self.prices)
        for price in prices:
            yield from self.levels[price].values()

    def depth(self) -> list[tuple[Decimal, Decimal]]:
        prices = reversed(self.prices) if self.is_bid else iter(self.prices)
        return [(p, sum((o.remaining for o in self.levels[p].values()), Decimal(0))) for p in prices]


class Book:
    __slots__ = ("asks", "bids", "symbol")

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)

    def side(self, side: Side) -> BookSide:
        return self.bids if side is Side.BUY else self.asks


def crosses(side: Side, limit: Decimal, resting_price: Decimal) -> bool:
    """Would an order on ``side`` at ``limit`` trade against a resting order at ``resting_price``?"""
    return resting_price <= limit if side is Side.BUY else resting_price >= limit
