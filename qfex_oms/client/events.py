"""Events a strategy receives from ``oms.events()``: the core's order events plus connection events."""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal

import trio
from attrs import define, field, frozen

from qfex_oms.core.account import Balance, Position
from qfex_oms.core.events import (
    CancelFinished,
    FillReceived,
    ModifyFinished,
    OrderUpdated,
    RequestErrored,
    StopRequestFinished,
    StopUpdated,
    TwapUpdated,
    Unmatched,
)
from qfex_oms.core.snapshot import SnapshotDiff
from qfex_oms.logs import get_logger

log = get_logger("qfex_oms.client.events")


@frozen
class Connected:
    url: str


@frozen
class Disconnected:
    reason: str


@frozen
class Reconnected:
    """Resync after a reconnect finished; ``diff`` says what the snapshot changed in the book."""

    diff: SnapshotDiff


@frozen
class HaltChanged:
    halted: bool
    reason: str


@frozen
class PositionUpdated:
    """The exchange reported a position (``positions`` channel): the latest figures, as reported."""

    position: Position


@frozen
class BalanceUpdated:
    balance: Balance


@frozen
class PositionMismatch:
    """The position the counted fills imply and the exchange's report have disagreed for longer
    than the grace period. Neither figure is overwritten; a resync usually heals it (a lost fill)."""

    symbol: str
    implied_by_fills: Decimal
    reported: Decimal


Event = (OrderUpdated | FillReceived | TwapUpdated | CancelFinished | ModifyFinished | RequestErrored
         | Unmatched | Connected | Disconnected | Reconnected | HaltChanged | PositionUpdated
         | BalanceUpdated | PositionMismatch | StopUpdated | StopRequestFinished)

RequestFailed = RequestErrored  # deprecated name of the core's event, kept for one release (CHANGELOG)

__all__ = [
    "BalanceUpdated",
    "CancelFinished",
    "Connected",
    "Disconnected",
    "Event",
    "EventStream",
    "FillReceived",
    "HaltChanged",
    "ModifyFinished",
    "OrderUpdated",
    "PositionMismatch",
    "PositionUpdated",
    "Reconnected",
    "RequestErrored",
    "RequestFailed",
    "StopRequestFinished",
    "StopUpdated",
    "TwapUpdated",
    "Unmatched",
]


@define(eq=False)
class EventStream:
    """One subscriber's unbounded buffer: the reader never blocks on it and no event is dropped.

    Past ``high_water`` buffered events a warning is logged once per crossing, so a stuck consumer
    is visible long before memory is a problem.
    """

    high_water: int
    _send: trio.MemorySendChannel[Event] = field(init=False)
    _recv: trio.MemoryReceiveChannel[Event] = field(init=False)
    _warned: bool = field(init=False, default=False)
    _owner: list[EventStream] | None = field(default=None)
    # Keeps only the events it returns True for (a strategy's view: its own orders' events).
    accept: Callable[[Event], bool] | None = field(default=None, kw_only=True)

    def __attrs_post_init__(self) -> None:
        self._send, self._recv = trio.open_memory_channel(math.inf)

    def push(self, event: Event) -> None:
        if self.accept is not None and not self.accept(event):
            return
        try:
            self._send.send_nowait(event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return
        used = self._send.statistics().current_buffer_used
        if used > self.high_water and not self._warned:
            self._warned = True
            log.warning("event consumer is falling behind", buffered=used, high_water=self.high_water)
        elif used <= self.high_water // 2:
            self._warned = False

    def close(self) -> None:
        self._send.close()
        if self._owner is not None and self in self._owner:
            self._owner.remove(self)

    def pending(self) -> list[Event]:
        """Every event buffered now, taken without waiting: what a consumer cancelled at its
        ``async for`` had not read yet (the runner's order log writes them on its way out)."""
        events: list[Event] = []
        while True:
            try:
                events.append(self._recv.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return events

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self._recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise StopAsyncIteration from None

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        self._recv.close()
