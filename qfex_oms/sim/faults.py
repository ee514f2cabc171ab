"""Fault injection: settable at runtime through ``venue.faults``, per account or globally.

A fault targets either one account (``public_key=...``: every connection of that account) or
every connection (``public_key=None``). Counted faults ("the next N frames") are consumed by the
frames they hit, whichever of the target's connections carries them. ``kind`` restricts a fault to
one reply kind, named by its top-level key (``"order_response"``, ``"fill_response"``, ``"ack"``...).
The ``{"authenticated": ...}`` reply is never faulted, so a test can always log in.

A disconnect is either a clean one (a close frame, code 1011) or a silent one: the TCP connection
is closed without a close frame, as when a network path dies, so the client learns of it only from
the end of its stream (code 1006 on its side) or from a write that fails. ``lose_requests`` loses
requests on their way in (the venue never sees them) and, by default, the connection with them: a
cancel written just before a silent drop is lost that way.

The decisions are pure; the server's per-connection writer applies them.
"""

from __future__ import annotations

from enum import Enum

from attrs import define, field


class Action(Enum):
    DROP = "drop"
    DUPLICATE = "duplicate"
    REORDER = "reorder"


class Disconnect(Enum):
    """How an injected disconnect ends a connection (both members are truthy)."""

    CLOSE = "close"  # a close frame with FAULT_DISCONNECT_CODE
    SILENT = "silent"  # the TCP stream closed under the websocket: no close frame at all


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
    disconnect_how: Disconnect = Disconnect.CLOSE
    fill_races_cancel: int = 0
    lost_requests: _Counted | None = None
    drop_with_lost: bool = True
    refused_stop_cancels: set[str] = field(factory=set)
    rate_limited: _Counted | None = None

    def is_empty(self) -> bool:
        return (
            self.latency <= 0 and self.disconnect_after is None and self.fill_races_cancel <= 0
            and all(c.remaining <= 0 for c in self.counted.values())
            and (self.lost_requests is None or self.lost_requests.remaining <= 0)
            and (self.rate_limited is None or self.rate_limited.remaining <= 0)
            and not self.refused_stop_cancels
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

    def disconnect_after(self, frames: int, public_key: str | None = None, *,
                         silent: bool = False) -> None:
        """Close the connection (code 1011) after ``frames`` more frames were sent to it.

        ``silent=True`` closes the TCP stream instead, without a close frame.
        """
        plan = self._plan(public_key)
        plan.disconnect_after = frames
        plan.disconnect_how = Disconnect.SILENT if silent else Disconnect.CLOSE

    def lose_requests(self, n: int = 1, request_type: str | None = None,
                      public_key: str | None = None, *, then_drop: bool = True) -> None:
        """The next ``n`` requests (of ``request_type``, e.g. ``"cancel_order"``) never reach the venue.

        With ``then_drop`` the connection that carried the last of them dies silently right after,
        the way a request written into a connection that is already dead is lost.
        """
        plan = self._plan(public_key)
        plan.lost_requests = _Counted(n, request_type)
        plan.drop_with_lost = then_drop

    def rate_limit_next(self, n: int = 1, request_type: str | None = None,
                        public_key: str | None = None) -> None:
        """The next ``n`` requests (of ``request_type``) are refused with QFEX's rate-limit ``err``, as
        if the account's budget were spent (an ``err`` the client can provoke on demand)."""
        self._plan(public_key).rate_limited = _Counted(n, request_type)

    def fill_races_cancel(self, n: int = 1, public_key: str | None = None) -> None:
        """The next ``n`` cancels that hit a resting order find it filled first (NO_SUCH_ORDER)."""
        self._plan(public_key).fill_races_cancel = n

    def refuse_stop_cancel(self, stop_order_id: str, public_key: str | None = None) -> None:
        """The venue refuses to cancel this stop until cleared: ``cancel_stop_order`` answers a refusal
        and ``cancel_all_orders`` leaves it live (CHOICES C47), so a kill switch cannot clear it."""
        self._plan(public_key).refused_stop_cancels.add(stop_order_id)

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

    def disconnect_due(self, account: str) -> Disconnect | None:
        """Before sending: how to disconnect if a ``disconnect_after(0)`` is pending (do not send)."""
        for plan in self._targets(account):
            if plan.disconnect_after is not None and plan.disconnect_after <= 0:
                plan.disconnect_after = None
                return plan.disconnect_how
        return None

    def count_frame(self, account: str) -> Disconnect | None:
        """After sending one frame: how to disconnect if that was the last one before it."""
        for plan in self._targets(account):
            if plan.disconnect_after is not None:
                plan.disconnect_after -= 1
                if plan.disconnect_after <= 0:
                    plan.disconnect_after = None
                    return plan.disconnect_how
        return None

    def lose_request(self, account: str, request_type: str) -> tuple[bool, bool]:
        """On a request's arrival: (is it lost, must its connection now drop silently)."""
        for plan in self._targets(account):
            if plan.lost_requests is not None and plan.lost_requests.take(request_type):
                return True, plan.lost_requests.remaining <= 0 and plan.drop_with_lost
        return False, False

    def rate_limit(self, account: str, request_type: str) -> bool:
        """On a request's arrival: must it be refused as rate-limited (the fault)?"""
        return any(p.rate_limited is not None and p.rate_limited.take(request_type)
                   for p in self._targets(account))

    def refused_stop_cancels(self, account: str) -> frozenset[str]:
        """The stop ids the venue will not cancel for ``account`` (empty without the fault)."""
        if not self.active:
            return frozenset()
        return frozenset(i for p in self._targets(account) for i in p.refused_stop_cancels)

    def fill_race_armed(self, account: str) -> bool:
        return any(p.fill_races_cancel > 0 for p in self._targets(account))

    def consume_fill_race(self, account: str) -> None:
        for plan in self._targets(account):
            if plan.fill_races_cancel > 0:
                plan.fill_races_cancel -= 1
                return
