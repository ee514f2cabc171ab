"""How callers wait for the reader: per-object wake-ups and replies awaited by kind.

Both are woken from the reader (which never awaits) and, on close, all at once, so no caller waits
for a deadline after the answer can no longer come (the trio-websocket ``ping()`` pattern: a
pending request matched by a one-shot event, failed when the socket dies).
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio
from attrs import define, field

from qfex_oms.errors import NotConnected


class Waiters:
    """Wake-ups per object (an order, a TWAP, a request): the reader reports a change, callers
    re-check what they wait for. No deadline here: callers bound their own waits."""

    def __init__(self) -> None:
        self._events: dict[int, trio.Event] = {}

    async def next_change(self, subject: object) -> None:
        """Until the reader next reports on ``subject`` (or everyone is woken)."""
        event = self._events.get(id(subject))
        if event is None:
            event = self._events[id(subject)] = trio.Event()
        await event.wait()

    def wake(self, subject: object) -> None:
        event = self._events.pop(id(subject), None)
        if event is not None:
            event.set()

    def wake_all(self) -> None:
        for event in self._events.values():
            event.set()
        self._events.clear()


@define(eq=False)
class Slot:
    """One reply awaited by kind (QFEX has no request ids: replies of one kind come back in order)."""

    event: trio.Event = field(factory=trio.Event)
    value: Any = None
    error: Exception | None = None

    @property
    def answered(self) -> bool:
        return self.event.is_set() and self.error is None


class ReplySlots:
    """Callers awaiting a reply of a kind, oldest first; the reader resolves them in order."""

    def __init__(self) -> None:
        self._queues: dict[str, deque[Slot]] = {}

    def expect(self, key: str) -> Slot:
        slot = Slot()
        self._queues.setdefault(key, deque()).append(slot)
        return slot

    def withdraw(self, key: str, slot: Slot) -> None:
        """The request was never sent: no answer will come for it, keep the queue aligned."""
        queue = self._queues.get(key)
        if queue is not None and slot in queue:
            queue.remove(slot)

    def resolve(self, key: str, value: Any = None, error: Exception | None = None) -> bool:
        queue = self._queues.get(key)
        if not queue:
            return False
        slot = queue.popleft()
        slot.value, slot.error = value, error
        slot.event.set()
        return True

    def fail_all(self, reason: str) -> None:
        for key, queue in self._queues.items():
            while queue:
                self.resolve(key, error=NotConnected(f"connection lost ({reason})"))
