"""Per-account rate limiting with QFEX's weights (qfex-api.md §7, ``qfex_oms.protocol.limits``).

A token bucket per account and per bucket (general, cancel), shared by all of the account's
connections. QFEX uses an EMA whose constants it does not publish; see ``RateLimitSettings``.
"""

from __future__ import annotations

from qfex_oms.protocol.limits import Bucket, weight_of
from qfex_oms.sim.settings import RateLimitSettings


class _TokenBucket:
    __slots__ = ("stamp", "tokens")

    def __init__(self, tokens: float, stamp: float) -> None:
        self.tokens = tokens
        self.stamp = stamp


class RateLimiter:
    def __init__(self, settings: RateLimitSettings) -> None:
        self.settings = settings
        self._buckets: dict[tuple[str, Bucket], _TokenBucket] = {}

    def charge(self, account: str, request_type: str, now: float) -> float | None:
        """Charge one request. Returns None if allowed, else seconds until it would be allowed."""
        bucket_kind, weight = weight_of(request_type)
        if weight <= 0:
            return None
        rate, capacity = self.settings.units_per_second, self.settings.capacity
        key = (account, bucket_kind)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _TokenBucket(capacity, now)
        else:
            bucket.tokens = min(capacity, bucket.tokens + (now - bucket.stamp) * rate)
            bucket.stamp = now
        if bucket.tokens >= weight:
            bucket.tokens -= weight
            return None
        return (weight - bucket.tokens) / rate if rate > 0 else float("inf")
