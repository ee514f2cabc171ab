"""Fixtures shared by every folder that talks to the simulator: a venue and two connected managers.

Hypothesis runs the suite's property tests and state machines derandomized (profile ``suite``): the
same examples on every run and machine, so ``make test`` passes or fails for a reason, not by luck.
Exploring for new failures is a separate, on-demand run with fresh random examples and the example
database: ``QFEX_HYPOTHESIS=explore QFEX_STATEFUL_EXAMPLES=2000 .venv/bin/pytest tests/core``.
"""

from __future__ import annotations

import compileall
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import settings
from simkit import CREDS2, TIME_SCALE, manager

from qfex_oms import OrderManager
from qfex_oms.sim import Venue, open_simulator

settings.register_profile("suite", derandomize=True, database=None, print_blob=True)
settings.register_profile("explore", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("QFEX_HYPOTHESIS", "suite"))

REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    if "PYTEST_XDIST_WORKER" not in os.environ:  # once, in the process that starts the workers
        for folder in ("qfex_oms", "strategies"):
            compileall.compile_dir(REPO / folder, quiet=1)


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
