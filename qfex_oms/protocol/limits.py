"""QFEX rate-limit weights and buckets (qfex-api.md §7), shared by the client pacer and the simulator.

The current docs page and the older one disagree on weights; the current page's figures are used.
Weights for ``add_twap`` and ``auth`` are not documented: ``add_twap`` is charged like ``add_order``
and ``auth`` is free (it happens before the limits apply). Change them here and nowhere else.
"""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum


class Bucket(StrEnum):
    GENERAL = "general"
    CANCEL = "cancel"


# 12,000 weight units per 60 s per user, per bucket.
UNITS_PER_SECOND = Decimal(200)

WEIGHTS: dict[str, tuple[Bucket, Decimal]] = {
    "add_order": (Bucket.GENERAL, Decimal("1.0")),
    "modify_order": (Bucket.GENERAL, Decimal("1.0")),
    "add_twap": (Bucket.GENERAL, Decimal("1.0")),
    "get_order": (Bucket.GENERAL, Decimal("2.0")),
    "get_user_orders": (Bucket.GENERAL, Decimal("5.0")),
    "get_user_trades": (Bucket.GENERAL, Decimal("0.5")),
    "subscribe": (Bucket.GENERAL, Decimal("0.1")),
    "unsubscribe": (Bucket.GENERAL, Decimal("0.1")),
    "cancel_on_disconnect": (Bucket.GENERAL, Decimal("0.1")),
    # §7: the three leverage requests weigh 0.1; close_position is not documented: charged like add_order.
    "get_user_leverage": (Bucket.GENERAL, Decimal("0.1")),
    "set_user_leverage": (Bucket.GENERAL, Decimal("0.1")),
    "get_available_leverage_levels": (Bucket.GENERAL, Decimal("0.1")),
    "close_position": (Bucket.GENERAL, Decimal("1.0")),
    "cancel_order": (Bucket.CANCEL, Decimal("1.0")),
    "cancel_all_orders": (Bucket.CANCEL, Decimal("2.0")),
    # §7: both stop requests weigh 1.0 (current page); the bucket is not documented: a stop cancel is a
    # cancel, a stop modify is charged like modify_order.
    "cancel_stop_order": (Bucket.CANCEL, Decimal("1.0")),
    "modify_stop_order": (Bucket.GENERAL, Decimal("1.0")),
    "auth": (Bucket.GENERAL, Decimal("0")),
}


def weight_of(request_type: str) -> tuple[Bucket, float]:
    """Bucket and weight of a request type; unknown types cost 1 general unit."""
    bucket, weight = WEIGHTS.get(request_type, (Bucket.GENERAL, Decimal(1)))
    return bucket, float(weight)
