"""The kill-switch guard: watches the manager's events and pulls ``cancel_all()`` on a breach.

Limits (all optional, from the config's [guard] table): open orders, absolute position per symbol,
notional (sum of |position| x last fill price), rejects per minute, and time without a connection.
The checks are plain synchronous methods on ``GuardState`` so each limit is unit-testable; the trio
part only feeds events in and acts on the first breach: cancel everything, keep trading halted,
log why, and tell the strategy through ``guard.tripped`` and a ``GuardTripped`` event.
"""

from __future__ import annotations

from collections import deque
from decimal import Decimal
from typing import TYPE_CHECKING

import structlog
import trio
from attrs import define, field, frozen

from qfex_oms.app.config import GuardLimits
from qfex_oms.client.events import Connected, Disconnected
from qfex_oms.client.results import KillReport
from qfex_oms.core.events import FillReceived, OrderUpdated
from qfex_oms.core.states import OrderState
from qfex_oms.protocol.enums import Side

if TYPE_CHECKING:
    from qfex_oms.client.manager import OrderManager

log = structlog.get_logger("qfex_oms.app.guard")
ZERO = Decimal(0)


@frozen
class GuardTripped:
    reason: str
    report: KillReport | None


@define
class GuardState:
    limits: GuardLimits
    positions: dict[str, Decimal] = field(factory=dict)
    last_price: dict[str, Decimal] = field(factory=dict)
    rejects: deque[float] = field(factory=deque)
    disconnected_since: float | None = None

    def on_fill(self, symbol: str, side: Side, quantity: Decimal, price: Decimal) -> str | None:
        signed = quantity if side is Side.BUY else -quantity
        self.positions[symbol] = self.positions.get(symbol, ZERO) + signed
        self.last_price[symbol] = price
        limit = self.limits.max_position
        if limit is not None and abs(self.positions[symbol]) > limit:
            return f"position {self.positions[symbol]} on {symbol} exceeds max_position {limit}"
        limit = self.limits.max_notional
        notional = sum((abs(q) * self.last_price.get(s, ZERO) for s, q in self.positions.items()), ZERO)
        if limit is not None and notional > limit:
            return f"notional {notional} exceeds max_notional {limit}"
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
                task_status.started()
                async for event in stream:
                    reason = self._evaluate(event)
                    if reason is not None:
                        await self.trip(reason)

    def _evaluate(self, event: object) -> str | None:
        now = trio.current_time()
        if isinstance(event, FillReceived):
            f = event.fill
            return self.state.on_fill(f.symbol, f.side, f.quantity, f.price)
        if isinstance(event, OrderUpdated):
            if event.state is OrderState.REJECTED and event.previous is not OrderState.REJECTED:
                return self.state.on_reject(now)
            return self.state.on_open_orders(self.oms.core.tracker.open_count())
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
