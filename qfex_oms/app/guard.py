"""The kill-switch guard: watches the manager's events and pulls ``cancel_all()`` on a breach.

Limits (all optional, from the config's [guard] table): open orders, absolute position per symbol,
exposure per symbol (the position plus every open order and TWAP remainder on one side, as if all
of it filled), notional (sum of |position| x last price), rejects per minute, and time without a
connection. Positions are the exchange's (``PositionUpdated``, seeded from ``oms.positions()`` when
the guard starts), never a tally of the fills this process saw: a restarted strategy inherits what
the account already holds, and the guard trips on it. Fills only update the price the notional uses
(before the first fill of a symbol, the position's average entry price).

The checks are plain synchronous methods on ``GuardState`` so each limit is unit-testable; the trio
part only feeds events in and acts on the first breach: cancel everything, keep trading halted,
log why, and tell the strategy through ``guard.tripped`` and a ``GuardTripped`` event.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING

import trio
from attrs import define, field, frozen

from qfex_oms.app.config import GuardLimits
from qfex_oms.client.events import Connected, Disconnected, PositionUpdated
from qfex_oms.client.results import KillReport
from qfex_oms.core.account import Position
from qfex_oms.core.events import FillReceived, OrderUpdated, TwapUpdated
from qfex_oms.core.states import OrderState
from qfex_oms.logs import get_logger
from qfex_oms.protocol.enums import Side

if TYPE_CHECKING:
    from qfex_oms.client.manager import OrderManager

log = get_logger("qfex_oms.app.guard")
ZERO = Decimal(0)


def plain(value: Decimal) -> str:
    """``2``, not ``2.000000``: reports carry the exchange's precision, reasons are read by people."""
    return format(value.normalize(), "f") if value else "0"


@frozen
class GuardTripped:
    reason: str
    report: KillReport | None


@define
class GuardState:
    limits: GuardLimits
    positions: dict[str, Decimal] = field(factory=dict)  # signed, as the exchange last reported
    last_price: dict[str, Decimal] = field(factory=dict)
    open_buys: dict[str, Decimal] = field(factory=dict)  # open order + TWAP quantity per symbol
    open_sells: dict[str, Decimal] = field(factory=dict)
    rejects: deque[float] = field(factory=deque)
    disconnected_since: float | None = None

    def on_position(self, symbol: str, quantity: Decimal, entry_price: Decimal | None = None) -> str | None:
        """The exchange reported ``symbol``'s position: it replaces whatever the guard held."""
        self.positions[symbol] = quantity
        if entry_price and symbol not in self.last_price:
            self.last_price[symbol] = entry_price
        limit = self.limits.max_position
        if limit is not None and abs(quantity) > limit:
            return f"position {plain(quantity)} on {symbol} exceeds max_position {limit}"
        return self._notional() or self._exposure(symbol)

    def on_price(self, symbol: str, price: Decimal) -> str | None:
        """A fill's price: the notional is priced at the last one."""
        self.last_price[symbol] = price
        return self._notional()

    def on_open_quantity(self, symbol: str, buys: Decimal, sells: Decimal) -> str | None:
        """What the open orders and TWAPs on ``symbol`` would still buy and sell."""
        self.open_buys[symbol], self.open_sells[symbol] = buys, sells
        return self._exposure(symbol)

    def _notional(self) -> str | None:
        limit = self.limits.max_notional
        notional = sum((abs(q) * self.last_price.get(s, ZERO) for s, q in self.positions.items()), ZERO)
        if limit is not None and notional > limit:
            return f"notional {plain(notional)} exceeds max_notional {limit}"
        return None

    def _exposure(self, symbol: str) -> str | None:
        limit = self.limits.max_exposure
        if limit is None:
            return None
        position = self.positions.get(symbol, ZERO)
        buys, sells = self.open_buys.get(symbol, ZERO), self.open_sells.get(symbol, ZERO)
        worst = max(abs(position + buys), abs(position - sells))
        if worst > limit:
            return (f"exposure {plain(worst)} on {symbol} (position {plain(position)}, open buys "
                    f"{plain(buys)}, open sells {plain(sells)}) exceeds max_exposure {limit}")
        return None

    def on_open_orders(self, count: int) -> str | None:
        limit = self.limits.max_open_orders
        if limit is not None and count > limit:
            return f"{count} open orders exceed max_open_orders {limit}"
        return None

    def on_reject(self, now: float) -> str | None:
        self.rejects.append(now)
        while self.rejects and self.rejects[0] < now - 60:
            self.rejects.popleft()
        limit = self.limits.max_rejects_per_minute
        if limit is not None and len(self.rejects) > limit:
            return f"{len(self.rejects)} rejects in the last minute exceed max_rejects_per_minute {limit}"
        return None

    def on_clock(self, now: float) -> str | None:
        limit = self.limits.max_disconnect_seconds
        if limit is not None and self.disconnected_since is not None and \
                now - self.disconnected_since > limit:
            return f"disconnected for {now - self.disconnected_since:.1f} s (max_disconnect_seconds {limit})"
        return None


def open_quantity(oms: OrderManager, symbol: str) -> tuple[Decimal, Decimal]:
    """(buys, sells) the manager's open orders and TWAPs on ``symbol`` may still trade. A TWAP's
    child is part of its TWAP's remainder, so children are not counted twice."""
    totals = {Side.BUY: ZERO, Side.SELL: ZERO}
    for order in oms.orders(symbol):
        if order.twap_id is None:
            totals[order.side] += order.remaining_quantity
    for twap in oms.twaps(open_only=True):
        if twap.symbol == symbol:
            totals[twap.side] += max(twap.total_quantity - twap.filled_quantity, ZERO)
    return totals[Side.BUY], totals[Side.SELL]


@define(eq=False)
class KillSwitchGuard:
    oms: OrderManager
    limits: GuardLimits
    state: GuardState = field(init=False)
    tripped: trio.Event = field(factory=trio.Event)
    reason: str | None = None
    report: KillReport | None = None

    def __attrs_post_init__(self) -> None:
        self.state = GuardState(self.limits)

    @property
    def fired(self) -> bool:
        """A limit was breached: the kill switch is running (``tripped`` is set once it finished)."""
        return self.reason is not None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        with self.oms.events() as stream:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._clock)
                # What the account held before this process started counts from the first moment.
                seeded = [self._position(p) for p in self.oms.positions().values()]
                task_status.started()
                reason = next((r for r in seeded if r is not None), None)
                if reason is not None:
                    await self.trip(reason)
                async for event in stream:
                    reason = self._evaluate(event)
                    if reason is not None:
                        await self.trip(reason)

    def _position(self, position: Position) -> str | None:
        return self.state.on_position(position.symbol, position.quantity, position.average_price) or \
            self.state.on_open_quantity(position.symbol, *open_quantity(self.oms, position.symbol))

    def _evaluate(self, event: object) -> str | None:
        now = trio.current_time()
        if isinstance(event, PositionUpdated):
            return self._position(event.position)
        if isinstance(event, FillReceived):
            return self.state.on_price(event.fill.symbol, event.fill.price)
        if isinstance(event, OrderUpdated):
            if event.state is OrderState.REJECTED and event.previous is not OrderState.REJECTED:
                return self.state.on_reject(now)
            symbol = event.order.symbol
            return self.state.on_open_orders(self.oms.core.tracker.open_count()) or \
                self.state.on_open_quantity(symbol, *open_quantity(self.oms, symbol))
        if isinstance(event, TwapUpdated):
            symbol = event.twap.symbol
            return self.state.on_open_quantity(symbol, *open_quantity(self.oms, symbol))
        if isinstance(event, Disconnected):
            if self.state.disconnected_since is None:
                self.state.disconnected_since = now
        elif isinstance(event, Connected):
            self.state.disconnected_since = None
        return None

    async def _clock(self) -> None:
        while True:
            await trio.sleep(0.1)
            reason = self.state.on_clock(trio.current_time())
            if reason is not None:
                await self.trip(reason)

    async def trip(self, reason: str) -> None:
        # ``reason`` is set before the (slow) cancel_all: a second breach meanwhile (the clock task and
        # the event loop both check) must not pull the kill switch twice.
        if self.reason is not None:
            return
        self.reason = reason
        log.error("kill-switch guard tripped", reason=reason)
        self.report = await self.oms.cancel_all()
        self.tripped.set()
        self.oms.publish(GuardTripped(reason, self.report))  # type: ignore[arg-type]
