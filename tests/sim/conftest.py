"""Shared fixtures for simulator tests: a running venue (no rate limits, no pings)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from qfex_oms.sim import Venue, open_simulator


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with open_simulator(rate_limits=None, ping_interval=None) as v:
        yield v
