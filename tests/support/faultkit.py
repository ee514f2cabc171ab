"""Helpers for fault-injection and reconnect tests (on pytest's ``pythonpath``, imported by name).

Nothing here reaches into the simulator beyond its public ``Venue`` API; the one liberty taken with
the manager is ``oms.credentials``, swapped for a wrong secret to keep it away for a while (the same
trick as ``test_manager_session``): every reconnect attempt is then refused by the venue with
``{"authenticated": false}``, which is deterministic where racing a reconnect timer is not.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import orjson
import trio
from waiting import wait_until

from qfex_oms import Credentials, OrderManager, ReconnectPolicy
from qfex_oms.client.events import Disconnected, EventStream, Reconnected
from qfex_oms.sim import Venue

E = TypeVar("E")

# Reconnect at once (20-100 ms), with a little jitter: tests wait for reconnects, never for backoff.
FAST = ReconnectPolicy(initial=0.02, maximum=0.1, jitter=0.1)
# A deadline short enough that a dropped reply costs a test a fraction of a second.
SHORT = 0.3


async def next_event(stream: EventStream, kind: type[E], within: float = 3.0) -> tuple[E, list[Any]]:
    """Read ``stream`` until an event of ``kind``; returns it and every event read up to it."""
    seen: list[Any] = []
    with trio.fail_after(within):
        async for event in stream:
            seen.append(event)
            if isinstance(event, kind):
                return event, seen
    raise AssertionError(f"the stream ended before a {kind.__name__} event; saw {seen}")


class ReceivedLog:
    """Every frame a manager receives, decoded; install with ``oms.on_frame_received = log``.

    Lets a test check that an injected fault really hit the frame it meant to hit.
    """

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def __call__(self, raw: bytes | str) -> None:
        self.frames.append(orjson.loads(raw))

    def count(self, key: str, status: str | None = None) -> int:
        """How many ``{key: ...}`` frames arrived (``order_response`` ones of ``status`` if given)."""
        return sum(1 for f in self.frames if key in f
                   and (status is None or f[key].get("status") == status))


class Away:
    """What happened while a manager was kept away: the resync's ``Reconnected`` event, and all events."""

    reconnected: Reconnected
    events: list[Any]


@asynccontextmanager
async def kept_away(oms: OrderManager, venue: Venue, within: float = 5.0) -> AsyncIterator[Away]:
    """Drop the manager's connection and refuse it until the block ends; then wait for its resync.

    Inside the block the account's other connections (another manager on the same key, say) act
    while this one is away. On leaving, the real secret is restored, the next attempt gets in, and
    ``Away.reconnected`` is the ``Reconnected`` event carrying the resync's ``SnapshotDiff``.
    """
    away = Away()
    stream = oms.events()
    good = oms.credentials
    oms.credentials = Credentials(good.public_key, "not-the-secret", good.account_id)
    try:
        await venue.drop_connections(good.public_key)
        await wait_until(lambda: not oms.connected, what="the manager to see the drop")
        yield away
    finally:
        oms.credentials = good
    try:
        away.reconnected, away.events = await next_event(stream, Reconnected, within)
    finally:
        stream.close()


async def wait_refused(stream: EventStream, attempts: int = 2, within: float = 5.0) -> None:
    """Wait until the venue has refused ``attempts`` reconnect attempts: each failed attempt is a
    ``Disconnected`` event naming the AuthenticationError (``kept_away``'s wrong secret does that)."""
    seen = 0
    with trio.fail_after(within):
        async for event in stream:
            if isinstance(event, Disconnected) and "AuthenticationError" in event.reason:
                seen += 1
                if seen >= attempts:
                    return
    raise AssertionError(f"the stream ended after {seen} refused attempts")
