"""What every test that talks to the simulator shares: the demo keys and a manager factory.

On pytest's ``pythonpath`` (pyproject), so test folders import it by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from qfex_oms import Credentials, OrderManager, open_order_manager
from qfex_oms.sim import Venue

PUB, SECRET = "qfex_pub_demo", "qfex_secret_demo"
PUB2, SECRET2 = "qfex_pub_demo2", "qfex_secret_demo2"
CREDS = Credentials(PUB, SECRET)
CREDS2 = Credentials(PUB2, SECRET2)
# Short enough that a hung test fails fast, long enough for a loaded CI machine.
OPTIONS: dict[str, Any] = {"request_timeout": 5.0, "handshake_timeout": 5.0, "kill_timeout": 5.0}
# 1000x: a TWAP's 30 s interval lasts 30 ms.
TIME_SCALE = 1000.0


@asynccontextmanager
async def manager_at(
    url: str, credentials: Credentials = CREDS, **options: Any
) -> AsyncIterator[OrderManager]:
    """A manager with the tests' short deadlines on the venue at ``url`` (a simulator process, say)."""
    async with open_order_manager(url, credentials, **{**OPTIONS, **options}) as oms:
        yield oms


@asynccontextmanager
async def manager(
    venue: Venue, credentials: Credentials = CREDS, **options: Any
) -> AsyncIterator[OrderManager]:
    """A manager with the tests' short deadlines on an in-process simulator."""
    async with manager_at(venue.url, credentials, **options) as oms:
        yield oms
