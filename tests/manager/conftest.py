"""Fixtures of the order manager's integration tests: a simulator on loopback and connected managers."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from managerkit import CREDS2, manager

from qfex_oms import OrderManager
from qfex_oms.sim import Venue, open_simulator

# 1000x: a TWAP's 30 s interval lasts 30 ms.
TIME_SCALE = 1000.0


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
