"""Fixtures of the runner and guard tests: an in-process simulator and managers (helpers: runnerkit)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from runnerkit import CREDS2, manager

from qfex_oms import OrderManager
from qfex_oms.sim import Venue, open_simulator


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with open_simulator(time_scale=1000.0) as v:
        yield v


@pytest.fixture
async def oms(venue: Venue) -> AsyncIterator[OrderManager]:
    async with manager(venue) as m:
        yield m


@pytest.fixture
async def oms2(venue: Venue) -> AsyncIterator[OrderManager]:
    """The second demo account: the counterparty that makes real fills."""
    async with manager(venue, CREDS2) as m:
        yield m
