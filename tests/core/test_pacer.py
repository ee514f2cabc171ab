"""The token bucket the session paces with, including the fast path's ``try_take``."""

from __future__ import annotations

from qfex_oms.core.pacer import TokenBucket


def test_try_take_takes_what_is_there_and_nothing_when_it_is_not() -> None:
    bucket = TokenBucket(rate=10.0, capacity=2.0, stamp=0.0)
    assert bucket.try_take(0.0, 1.0)
    assert bucket.try_take(0.0, 1.0)
    assert not bucket.try_take(0.0, 1.0)  # empty: the caller takes the slow path and sleeps
    assert bucket.tokens == 0.0  # a refusal takes nothing
    assert bucket.delay(0.0, 1.0) == 0.1
    assert bucket.try_take(0.1, 1.0)  # refilled at the rate


def test_a_weight_above_the_burst_needs_a_full_bucket_as_delay_says() -> None:
    bucket = TokenBucket(rate=10.0, capacity=2.0, stamp=0.0)
    assert bucket.delay(0.0, 5.0) == 0.0
    assert bucket.try_take(0.0, 5.0)  # as take() after a zero delay: the bucket goes negative
    assert bucket.tokens == -3.0
    assert not bucket.try_take(0.2, 1.0)
