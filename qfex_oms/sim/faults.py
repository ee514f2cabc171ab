"""Fault injection: settable at runtime through ``venue.faults``, per account or globally.

A fault targets either one account (``public_key=...``: every connection of that account) or
every connection (``public_key=None``). Counted faults ("the next N frames") are consumed by the
frames they hit, whichever of the target's connections carries them. ``kind`` restricts a fault to
one reply kind, named by its top-level key (``"order_response"``, ``"fill_response"``, ``"ack"``...).
The ``{"authenticated": ...}`` reply is never faulted, so a test can always log in.

The decisions are pure; the server's per-connection writer applies them.
"""

from __future__ import annotations

from enum import Enum

from attrs import define, field


class Action(Enum):
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"


@define(slots=True)
class _Counted:
    remaining: int
    kind: str | None

    def take(self, kind: str) -> bool:
        if self.remaining > 0 and (self.kind is None or self.kind == kind):
            self.remaining -= 1
            return True
        return False


@define(slots=True)
class FaultPlan:
    latency: float = 0.0
    counted: dict[Action, _Counted] = field(factory=dict)
    disconnect_after: int | None = None
    fill_races_cancel: int = 0

    def is_empty(self) -> bool:
        return (
            self.latency <= 0 and self.disconnect_after is None and self.fill_races_cancel <= 0
            and all(c.remaining <= 0 for c in self.counted.values())
        )


class Faults:
    """The fault-injection control handed out as ``venue.faults``."""

    def __init__(self) -> None:
        self._plans: dict[str | None, FaultPlan] = {}
        self.active = False  # fast path for the writer: no plan, nothing to check

    def _plan(self, public_key: str | None) -> FaultPlan:
        plan = self._plans.get(public_key)
        if plan is None:
            plan = self._plans[public_key] = FaultPlan()
        self.active = True
        return plan

    def _targets(self, account: str) -> list[FaultPlan]:
        return [p for p in (self._plans.get(account), self._plans.get(None)) if p is not None]

    def _refresh(self) -> None:
        self._plans = {k: p for k, p in self._plans.items() if not p.is_empty()}
        self.active = bool(self._plans)

    # ------------------------------------------------------------------ control (tests call these)

    def set_latency(self, seconds: float, public_key: str | None = None) -> None:
        """Deliver every frame ``seconds`` after it was produced (a constant-delay pipe)."""
        self._plan(public_key).latency = seconds
        self._refresh()

    def drop_next(self, n: int = 1, kind: str | None = None, public_key: str | None = None) -> None:
        self._plan(public_key).counted[Action.DROP] = _Counted(n, kind)

    def duplicate_next(self, n: int = 1, kind: str | None = None, public_key: str | None = None) -> None:
        self._plan(public_key).counted[Action.DUPLICATE] = _Counted(n, kind)

    def reorder_next(self, n: int = 1, kind: str | None = None, public_key: str | None = None) -> None:
        """Hold the next matching frame and deliver it right after the frame that follows it."""
        self._plan(public_key).counted[Action.REORDER] = _Counted(n, kind)

    def disconnect_after(self, frames: int, public_key: str | None = None) -> None:
        """Close the connection (code 1011) after ``frames`` more frames were sent to it."""
        self._plan(public_key).disconnect_after = frames

    def fill_races_cancel(self, n: int = 1, public_key: str | None = None) -> None:
        """The next ``n`` cancels that hit a resting order find it filled first (NO_SUCH_ORDER)."""
        self._plan(public_key).fill_races_cancel = n

    def clear(self, public_key: str | None = None) -> None:
        self._plans.pop(public_key, None)
        self._refresh()

    def clear_all(self) -> None:
        self._plans.clear()
        self.active = False

    # ------------------------------------------------------------------ decisions (server calls)

    def latency_for(self, account: str) -> float:
        return sum(p.latency for p in self._targets(account))

    def take(self, account: str, action: Action, kind: str) -> bool:
        for plan in self._targets(account):
            counted = plan.counted.get(action)
            if counted is not None and counted.take(kind):
                return True
        return False

    def disconnect_due(self, account: str) -> bool:
        """Before sending: True if a ``disconnect_after(0)`` is pending (close, do not send)."""
        for plan in self._targets(account):
            if plan.disconnect_after is not None and plan.disconnect_after <= 0:
                plan.disconnect_after = None
                return True
        return False

    def count_frame(self, account: str) -> bool:
        """After sending one frame: True if that was the last one before the disconnect."""
        for plan in self._targets(account):
            if plan.disconnect_after is not None:
                plan.disconnect_after -= 1
                if plan.disconnect_after <= 0:
                    plan.disconnect_after = None
                    return True
        return False

    def fill_race_armed(self, account: str) -> bool:
        return any(p.fill_races_cancel > 0 for p in self._targets(account))

    def consume_fill_race(self, account: str) -> None:
        for plan in self._targets(account):
            if plan.fill_races_cancel > 0:
                plan.fill_races_cancel -= 1
                return
