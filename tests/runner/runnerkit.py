"""Helpers of the runner and guard tests (imported by name: tests have no packages; never conftest).

They run against an in-process simulator over loopback websockets, so waits are bounded by real
time (``waiting.wait_until``), never by an autojump clock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from simkit import OPTIONS

from qfex_oms import OrderManager
from qfex_oms.app.config import Config, GuardLimits
from qfex_oms.app.guard import KillSwitchGuard
from qfex_oms.sim import Venue

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESTING = HERE / "resting_strategy.py"
POSITION = HERE / "position_strategy.py"


@asynccontextmanager
async def guarded(oms: OrderManager, **limits: Any) -> AsyncIterator[KillSwitchGuard]:
    """A KillSwitchGuard with these limits watching ``oms`` for the duration of the block."""
    async with trio.open_nursery() as nursery:
        guard = KillSwitchGuard(oms, GuardLimits(**limits))
        await nursery.start(guard.run)
        yield guard
        nursery.cancel_scope.cancel()


async def tripped(guard: KillSwitchGuard, within: float = 5.0) -> str:
    """Wait for the guard to trip (its cancel_all finished); return why."""
    with trio.fail_after(within):
        await guard.tripped.wait()
    assert guard.reason is not None
    return guard.reason


def config_for(venue: Venue, **fields: Any) -> Config:
    """A Config for the in-process venue; ``guard`` may be given as a dict of limits."""
    guard = fields.pop("guard", {})
    manager_options = {**OPTIONS, **fields.pop("manager", {})}
    return Config(None, venue.url, manager=manager_options, guard=GuardLimits(**guard), **fields)
