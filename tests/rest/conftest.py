"""REST fixtures: a simulator with its REST side, and a client signed for the first demo account."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from simkit import CREDS

from qfex_oms.client.rest import RestClient
from qfex_oms.sim import Venue, open_simulator


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with open_simulator(rate_limits=None, ping_interval=None) as v:
        yield v


@pytest.fixture
async def rest(venue: Venue) -> AsyncIterator[RestClient]:
    assert venue.rest_url is not None
    async with RestClient(venue.rest_url, CREDS, timeout=5.0) as client:
        yield client
