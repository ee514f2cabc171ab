"""Reference data for the manager: loaded from QFEX's REST ``GET /refdata`` at start and on a
schedule, and the check that refuses an order QFEX would refuse before anything is sent.

A failed or stale load never blocks trading silently: it is logged, visible (``error``,
``loaded_at``), and the check then defers to the exchange (an order goes out and QFEX's answer is
what the caller sees).
"""

from __future__ import annotations

import time
from decimal import Decimal

import trio

from qfex_oms.client.rest import RestClient
from qfex_oms.core.refdata import Instrument, Instruments
from qfex_oms.errors import InvalidArgument, QfexOmsError
from qfex_oms.logs import get_logger
from qfex_oms.protocol.enums import OrderType, TimeInForce

log = get_logger("qfex_oms.client.reference")

# The REST base of each QFEX trade host; any other host has no REST API unless one is given.
REST_OF_TRADE_HOST = {"trade.qfex.com": "https://api.qfex.com", "trade.qfex.io": "https://api.qfex.io"}


def rest_url_for(ws_url: str) -> str | None:
    """QFEX's REST base for one of its websocket URLs (``rest_url="auto"``), else None."""
    for host, rest in REST_OF_TRADE_HOST.items():
        if f"//{host}" in ws_url:
            return rest
    return None


class ReferenceData:
    """The instruments as last loaded, and when; ``check`` is ``validate_orders``."""

    def __init__(self, rest_url: str | None, *, refresh: float, timeout: float, validate: bool) -> None:
        self.rest_url = rest_url
        self.refresh = refresh
        self.timeout = timeout
        self.validate = validate
        self.instruments = Instruments()
        self.loaded_at: float | None = None  # wall-clock seconds of the last good load
        self.error: str | None = None  # why the last load failed, if it did

    @property
    def usable(self) -> bool:
        """Loaded, and not older than two refresh periods: only then does it refuse orders."""
        return (self.loaded_at is not None and len(self.instruments) > 0
                and time.time() - self.loaded_at < 2 * self.refresh)

    def instrument(self, symbol: str) -> Instrument | None:
        return self.instruments.get(symbol)

    def check(self, symbol: str, order_type: OrderType, tif: TimeInForce, quantity: Decimal,
              price: Decimal | None) -> None:
        """Raise ``InvalidArgument`` naming the rule QFEX would refuse the order by."""
        if not (self.validate and self.usable):
            return
        problem = self.instruments.check(symbol, order_type, tif, quantity, price)
        if problem is not None:
            raise InvalidArgument(f"{symbol}: {problem} (reference data; nothing was sent)")

    async def run(self, rest: RestClient | None,
                  task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Load once (bounded), report started, then refresh every ``refresh`` seconds. ``rest`` is
        the manager's REST client (None: no REST API, nothing to load)."""
        if rest is None:
            task_status.started()
            return
        await self._load(rest)
        task_status.started()
        while True:
            await trio.sleep(self.refresh)
            await self._load(rest)

    async def _load(self, rest: RestClient) -> None:
        try:
            instruments = await rest.instruments()
        except (QfexOmsError, OSError) as exc:
            self.error = f"{type(exc).__name__}: {exc}"
            log.warning("reference data could not be loaded; orders are not checked against it",
                        rest_url=self.rest_url, error=self.error, last_good=self.loaded_at)
            return
        self.instruments, self.loaded_at, self.error = instruments, time.time(), None
        log.info("reference data loaded", symbols=len(instruments))
