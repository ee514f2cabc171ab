"""Rate-limit weights and buckets (qfex-api.md §7)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qfex_oms.protocol import messages as m
from qfex_oms.protocol.limits import UNITS_PER_SECOND, WEIGHTS, Bucket, weight_of


@pytest.mark.parametrize("cls", m.REQUEST_TYPES, ids=lambda c: c.TYPE)
def test_every_request_type_has_a_weight(cls):
    assert cls.TYPE in WEIGHTS
    bucket, weight = WEIGHTS[cls.TYPE]
    assert isinstance(bucket, Bucket)
    assert isinstance(weight, Decimal)
    assert weight >= 0


def test_no_weight_for_a_request_type_that_does_not_exist():
    assert set(WEIGHTS) == {cls.TYPE for cls in m.REQUEST_TYPES}


@pytest.mark.parametrize("request_type", ["cancel_order", "cancel_all_orders"])
def test_cancels_use_the_cancel_bucket(request_type):
    assert WEIGHTS[request_type][0] is Bucket.CANCEL
    assert weight_of(request_type)[0] is Bucket.CANCEL


def test_only_cancels_use_the_cancel_bucket():
    cancel = {name for name, (bucket, _) in WEIGHTS.items() if bucket is Bucket.CANCEL}
    assert cancel == {"cancel_order", "cancel_all_orders", "cancel_stop_order"}


# The current rate page's weights (qfex-api.md §7, left column).
DOCUMENTED = {
    "add_order": "1.0",
    "cancel_order": "1.0",
    "modify_order": "1.0",
    "get_order": "2.0",
    "get_user_orders": "5.0",
    "cancel_all_orders": "2.0",
    "get_user_trades": "0.5",
    "subscribe": "0.1",
    "unsubscribe": "0.1",
    "cancel_on_disconnect": "0.1",
    "cancel_stop_order": "1.0",
    "modify_stop_order": "1.0",
}


@pytest.mark.parametrize(("request_type", "weight"), DOCUMENTED.items())
def test_weights_match_the_current_docs(request_type, weight):
    assert WEIGHTS[request_type][1] == Decimal(weight)
    assert weight_of(request_type)[1] == pytest.approx(float(weight))


def test_undocumented_weights_are_the_stated_choices():
    assert WEIGHTS["add_twap"] == (Bucket.GENERAL, Decimal("1.0"))
    assert WEIGHTS["auth"] == (Bucket.GENERAL, Decimal("0"))


def test_budget_is_12000_units_per_minute():
    assert UNITS_PER_SECOND * 60 == 12_000


def test_unknown_type_costs_one_general_unit():
    assert weight_of("close_position") == (Bucket.GENERAL, 1.0)
