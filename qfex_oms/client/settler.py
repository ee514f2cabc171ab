"""When to reconcile in the background: orders marked for settlement, or fills a FILLED report
named that never came.

The manager marks what needs settling (``want``, ``fill_gap``); ``run`` (one task per connection)
reconciles soon after. Fill gaps get a grace period first: a FILLED report's ``fill_response`` is
usually a frame behind, and fetching trades for it every time would double the traffic.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import trio

from qfex_oms.core.model import Order
from qfex_oms.errors import NotConnected, RequestFailed, RequestTimeout
from qfex_oms.logs import get_logger

log = get_logger("qfex_oms.manager")

FILL_GAP_GRACE = 0.25  # seconds a FILLED report's fill_response may lag before its trade is fetched
SETTLE_DELAY = 0.05  # gather what a burst of replies marks into one reconcile


class Settler:
    def __init__(self) -> None:
        self._wanted = trio.Event()
        self._needed = False
        self._fill_gaps: set[Order] = set()

    def want(self) -> None:
        """Something is UNKNOWN or owed: reconcile soon."""
        self._needed = True
        self._wanted.set()

    def fill_gap(self, order: Order) -> None:
        """``order``'s FILLED report names more than its fills: fetch the trade if it never comes."""
        self._fill_gaps.add(order)
        self._wanted.set()

    async def run(self, reconcile: Callable[[], Awaitable[object]]) -> None:
        """Reconcile, soon after something was marked, for as long as the connection lives."""
        while True:
            await self._wanted.wait()
            await trio.sleep(SETTLE_DELAY)
            self._wanted = trio.Event()
            if not self._needed:
                await trio.sleep(FILL_GAP_GRACE)
                self._fill_gaps = {o for o in self._fill_gaps if o.fill_total < o.filled_quantity}
                if not self._fill_gaps:
                    continue
            self._needed = False
            self._fill_gaps = set()
            try:
                await reconcile()
            except (RequestTimeout, RequestFailed, NotConnected) as exc:
                log.warning("settlement failed; will retry on the next trigger", error=str(exc))
