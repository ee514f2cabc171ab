"""PositionCheck (core/account.py), synchronously: the first report is the baseline, a disagreement
is told once and only after the grace period, and a fill that arrives late heals it."""

from __future__ import annotations

from decimal import Decimal

from qfex_oms.core.account import PositionCheck
from qfex_oms.protocol.enums import Side

S = "AAPL-USD"


def test_the_first_report_is_the_baseline_whatever_the_account_held_before() -> None:
    check = PositionCheck(grace=1.0)
    check.on_fill(S, Side.BUY, Decimal(1))  # a fill from before the first report
    check.on_report(S, Decimal(5))
    assert check.expected(S) == 5 and check.due(now=100.0) == []


def test_a_report_racing_its_fill_is_not_a_mismatch_within_the_grace() -> None:
    check = PositionCheck(grace=1.0)
    check.on_report(S, Decimal(0))
    check.on_report(S, Decimal(2))  # the position moved; its fill is still on the way
    assert check.due(now=10.0) == [] and check.due(now=10.5) == []
    check.on_fill(S, Side.BUY, Decimal(2))
    assert check.due(now=12.0) == []


def test_a_lasting_disagreement_is_told_once_then_heals_when_the_fill_comes() -> None:
    check = PositionCheck(grace=1.0)
    check.on_report(S, Decimal(0))
    check.on_report(S, Decimal(-1))  # a sell whose fill was lost
    assert check.due(now=0.0) == []
    assert check.due(now=1.5) == [(S, Decimal(0), Decimal(-1))]
    assert check.due(now=3.0) == []  # once per episode
    check.on_fill(S, Side.SELL, Decimal(1))  # the resync recovered it
    assert check.due(now=4.0) == []
    check.on_report(S, Decimal(-3))  # a new episode is told again
    check.due(now=5.0)
    assert check.due(now=6.5) == [(S, Decimal(-1), Decimal(-3))]
