"""Fixtures of the pure-core tests."""

from __future__ import annotations

import pytest

from qfex_oms.core import OmsCore


@pytest.fixture
def core() -> OmsCore:
    return OmsCore()
