"""Fixtures of the CLI tests: a simulator process per test (helpers live in clikit)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from clikit import SimProcess


@pytest.fixture
def sim_url() -> Iterator[str]:
    sim = SimProcess()
    try:
        yield sim.url
    finally:
        sim.stop()
