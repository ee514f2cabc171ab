"""Token buckets for pacing outgoing frames under QFEX's weighted limits (qfex-api.md §7).

QFEX smooths with an EMA whose constants are not published; a token bucket refilled at a little
under the documented 200 units/s with a modest burst stays inside any EMA with that mean rate. The
bucket is pure arithmetic on a caller-supplied clock; the session does the sleeping.
"""

from __future__ import annotations

from attrs import define, field

from qfex_oms.protocol.limits import Bucket


@define(slots=True)
class PacerSettings:
    units_per_second: float = 180.0  # 90% of QFEX's 200/s, per bucket
    burst: float = 40.0


@define(slots=True)
class TokenBucket:
    rate: float
    capacity: float
    tokens: float = field(default=-1.0)
    stamp: float = 0.0

    def __attrs_post_init__(self) -> None:
        if self.tokens < 0:
            self.tokens = self.capacity

    def delay(self, now: float, weight: float) -> float:
        """Seconds to wait before ``weight`` units are available (0 when they are now)."""
        self._refill(now)
        missing = min(weight, self.capacity) - self.tokens
        return 0.0 if missing <= 0 else missing / self.rate

    def try_take(self, now: float, weight: float) -> bool:
        """Take ``weight`` units if they are there now (True), else take nothing (False). The
        session's fast path: a request whose bucket is free and has the tokens goes out without
        a scheduler pass for the pacer's lock."""
        self._refill(now)
        if self.tokens < min(weight, self.capacity):
            return False
        self.tokens -= weight
        return True

    def take(self, now: float, weight: float) -> None:
        self._refill(now)
        self.tokens -= weight

    def _refill(self, now: float) -> None:
        if now > self.stamp:
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now


def buckets_for(settings: PacerSettings, start: float) -> dict[Bucket, TokenBucket]:
    return {b: TokenBucket(settings.units_per_second, settings.burst, stamp=start) for b in Bucket}
