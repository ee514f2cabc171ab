"""Fixtures shared by every folder that talks to the simulator: a venue and two connected managers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from simkit import CREDS2, TIME_SCALE, manager

from qfex_oms import OrderManager
from qfex_oms.sim import Venue, open_simulator


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with open_simulator(time_scale=TIME_SCALE) as v:
        yield v


@pytest.fixture
async def oms(venue: Venue) -> AsyncIterator[OrderManager]:
    async with manager(venue) as m:
        yield m


@pytest.fixture
async def oms2(venue: Venue) -> AsyncIterator[OrderManager]:
    """A manager on the second demo account: the counterparty that makes real fills."""
    async with manager(venue, CREDS2) as m:
        yield m
