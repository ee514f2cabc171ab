"""The one way tests wait: for a condition, bounded, never sleep-then-assert.

On pytest's ``pythonpath`` (pyproject), so every test folder imports it by name. The state polled is
the manager's or the simulator's, changed by their own tasks; the bound is a hang guard, not a
measurement. Tests that only need time to pass in a pure trio program use ``autojump_clock`` instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import trio


async def wait_until(predicate: Callable[[], object], within: float = 3.0,
                     what: str | Callable[[], str] = "condition") -> None:
    """Poll ``predicate`` until it holds; fail naming ``what`` if it does not within ``within`` s.

    ``what`` may be a callable, evaluated only on failure, so the message can show the state at the
    deadline (the problems still left, the state an order is stuck in) rather than at the call.
    """
    with trio.move_on_after(within):
        while not predicate():  # noqa: ASYNC110 - the state is the manager's or the simulator's
            await trio.sleep(0.002)
    if not predicate():
        raise AssertionError(f"timed out after {within} s waiting for {what() if callable(what) else what}")


async def drain(stream: AsyncIterator[Any], idle: float = 0.1) -> list[Any]:
    """Everything buffered in ``stream`` plus whatever arrives until it has been quiet ``idle`` s."""
    events: list[Any] = []
    while True:
        with trio.move_on_after(idle) as scope:
            try:
                events.append(await stream.__anext__())
            except StopAsyncIteration:
                return events
        if scope.cancelled_caught:
            return events
