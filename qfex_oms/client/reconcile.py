"""Reconciliation: settle the book against what the exchange shows.

The manager asks for a reconcile after a reconnect, when the settler wants one (an answer lost, a
fill's details missing) and before the kill switch decides. The sources, in the order used:
``get_user_orders`` (every open order and TWAP, paged), ``get_user_trades`` (fills by trade id) and,
when a REST URL is configured, QFEX's history (``GET /user/historic-orders``) for what the other two
cannot prove: an order whose answer never came and that is no longer open.

Nothing here is assumed. An order missing from a paged snapshot is asked about again on its own
symbol; an order the exchange never named is settled only from a history row that names it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import trio

from qfex_oms.client.rest import RestClient
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.history import HISTORY_SOURCE, mark, settle_from_history, settle_twaps_from_history
from qfex_oms.core.model import Order
from qfex_oms.core.snapshot import (
    SnapshotDiff,
    settle_from_order_query,
    settlement_note,
)
from qfex_oms.core.stop_snapshot import settle_snapshot, stop_settlement_note
from qfex_oms.errors import QfexOmsError
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.rest import HistoricOrder, HistoricTwap

log = get_logger("qfex_oms.client.reconcile")

PAGE = 1000  # rows per get_user_orders / get_user_trades page (QFEX's maximum)
HISTORY_PAGE = 100  # history rows asked per client id: more orders sharing one is beyond any use
MAX_HISTORY_LOOKUPS = 20  # client ids looked up one by one; more, and whole symbols are read
MAX_PAGE = 1000  # QFEX's largest history page
HISTORY_MAX_PAGES = 10  # per symbol; an order past them is settled from its fills
HISTORY_BUDGET = 10.0  # seconds for all of one reconcile's history lookups (REST retries included)

Query = Callable[[m.Request], Awaitable[Any]]


def unique_rows(rows: list[m.OrderResponse]) -> list[m.OrderResponse]:
    """A row seen on two pages (the open set shifted between them) counts once, the later one."""
    by_id = {row.order_id: row for row in rows}
    return list(by_id.values()) if len(by_id) < len(rows) else rows


class Reconciler:
    """Fetches the exchange's picture and applies it to the core, journaling what it concluded.

    ``query`` sends one request and returns its answer (the manager's paced, bounded query);
    ``flush`` publishes what the core queued; ``note`` journals a settlement (replay cannot
    re-derive a snapshot's conclusions from its frames: they do not say whether it was complete).
    """

    def __init__(self, core: OmsCore, query: Query, flush: Callable[[], None],
                 note: Callable[[bytes], None], *, trades_since: int) -> None:
        self.core = core
        self._query = query
        self._flush = flush
        self._note = note
        self.trades_since = trades_since  # epoch seconds: how far back get_user_trades looks
        self.rest: RestClient | None = None  # QFEX's REST API, for the order history (when known)

    async def reconcile(self) -> SnapshotDiff:
        """Fetch open orders and recent trades and settle the book against them now.

        A snapshot of several pages proves only what it shows (offset paging shifts when an order
        leaves between pages): the orders it misses are asked about again, one symbol at a time,
        and settled only from a symbol's answer that fits on one page (design.md)."""
        fence = self.core.seq
        snapshot, complete = await self.fetch_open_orders_paged()
        trades = await self.fetch_trades()
        diff = self.settle(fence, snapshot, trades, complete)
        if diff.unconfirmed:
            await self._confirm_by_symbol(diff)
        if diff.missing:
            await self._settle_missing(fence, diff)
        if diff.twaps_missing:
            await self._settle_missing_twaps(fence, diff)
        return diff

    def settle(self, fence: int, snapshot: m.AllOrdersResponse, trades: list[m.Trade],
               complete: bool = True) -> SnapshotDiff:
        """Apply a snapshot, and journal what it concluded. With a REST API, the orders a complete
        snapshot does not show are left to ``_settle_missing`` (QFEX's history says how they ended)."""
        diff, stops = settle_snapshot(self.core, fence, snapshot, trades, complete=complete,
                                      defer_missing=self.rest is not None)
        self.journal(diff)
        note = stop_settlement_note(stops)
        if note is not None:
            self._note(note)
        self._flush()
        return diff

    async def _settle_missing(self, fence: int, diff: SnapshotDiff) -> None:
        """Ask QFEX's order history how each order missing from a complete snapshot ended, and settle
        it from the answer. Without an answer (REST down or slow) each is settled from its fills, as
        a missing order always was, and its status says so (``MISSING_FROM_SNAPSHOT``)."""
        rows: list[HistoricOrder] = []
        marks = {o.local_id: mark(o) for o in diff.missing}  # replies may change them meanwhile
        error = "no answer in time"
        with trio.move_on_after(HISTORY_BUDGET):
            try:
                rows = await self._history_of(diff.missing)
                error = ""
            except (QfexOmsError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error:
            log.warning("order history unavailable; orders missing from the snapshot are settled "
                        "from their fills", error=error, count=len(diff.missing))
        found = settle_from_history(self.core, fence, diff.missing, rows, marks)
        self.journal(found, HISTORY_SOURCE if not error else None)
        self._flush()
        diff.settled += found.settled
        diff.ended += found.ended
        diff.unresolved += found.unresolved
        diff.missing = [o for o in diff.missing if o.state.is_live]

    async def _settle_missing_twaps(self, fence: int, diff: SnapshotDiff) -> None:
        """As ``_settle_missing``, for TWAPs: ``GET /user/historic-twaps`` per symbol says whether
        each completed or was cancelled, and names one whose every report was lost."""
        assert self.rest is not None
        rows: list[HistoricTwap] = []
        error = "no answer in time"
        with trio.move_on_after(HISTORY_BUDGET):
            try:
                for symbol in sorted({t.symbol for t in diff.twaps_missing}):
                    rows += (await self.rest.historic_twaps(symbol=symbol, limit=MAX_PAGE)).data
                error = ""
            except (QfexOmsError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
        if error:
            log.warning("TWAP history unavailable; TWAPs missing from the snapshot are settled from "
                        "what the book knows", error=error, count=len(diff.twaps_missing))
        found = settle_twaps_from_history(self.core, fence, diff.twaps_missing, rows)
        self._flush()
        diff.twaps_settled += found.twaps_settled
        diff.twaps_missing = [t for t in diff.twaps_missing if not t.state.is_terminal]

    async def _history_of(self, orders: list[Order]) -> list[HistoricOrder]:
        """The history rows that can name these orders: by client id when they are few, else every
        closed order of their symbols since the trades lookback (a few pages at most)."""
        assert self.rest is not None
        start = datetime.fromtimestamp(self.trades_since, UTC)
        keys = sorted({(o.symbol, o.client_order_id) for o in orders})
        rows: list[HistoricOrder] = []
        if len(keys) <= MAX_HISTORY_LOOKUPS:
            for symbol, client_order_id in keys:
                page = await self.rest.historic_orders(symbol=symbol, client_order_id=client_order_id,
                                                       start=start, limit=HISTORY_PAGE)
                rows += page.data
            return rows
        for symbol in sorted({symbol for symbol, _ in keys}):
            for offset in range(0, HISTORY_MAX_PAGES * MAX_PAGE, MAX_PAGE):
                page = await self.rest.historic_orders(symbol=symbol, start=start, limit=MAX_PAGE,
                                                       offset=offset)
                rows += page.data
                if len(page.data) < MAX_PAGE:
                    break
        return rows

    def journal(self, diff: SnapshotDiff, source: str | None = None) -> None:
        note = settlement_note(diff, source)
        if note is not None:
            self._note(note)

    async def _confirm_by_symbol(self, diff: SnapshotDiff) -> None:
        """Settle the orders a paged snapshot did not show from a one-page snapshot of their symbol;
        a symbol with a page or more of open orders is left for a later snapshot (nothing guessed)."""
        for symbol in sorted({o.symbol for o in diff.unconfirmed}):
            fence = self.core.seq
            page = await self._query(m.GetUserOrders(limit=PAGE, offset=0, symbol=symbol))
            waiting = [o for o in diff.unconfirmed if o.symbol == symbol]
            if len(page.orders) >= PAGE:
                log.warning("orders missing from a paged snapshot stay unconfirmed: their symbol has "
                            "a page or more of open orders", symbol=symbol, count=len(waiting))
                continue
            trades = await self.fetch_trades()
            for order in waiting:
                found = settle_from_order_query(self.core, fence, order, page, trades)
                self.journal(found)
                diff.unconfirmed.remove(order)
                diff.settled += found.settled
                diff.confirmed_open += found.confirmed_open
                diff.ended += found.ended
                diff.fills_added += found.fills_added
                diff.unconfirmed += found.unconfirmed
            self._flush()

    async def fetch_open_orders_paged(self, symbol: str | None = None
                                      ) -> tuple[m.AllOrdersResponse, bool]:
        """Every open order and active TWAP, all pages merged, and whether it was one page (only
        then is it a complete picture)."""
        orders: list[m.OrderResponse] = []
        twaps: dict[str, m.TwapResponse] = {}
        stops: dict[str, m.StopOrderResponse] = {}
        offset = 0
        while True:
            page = await self._query(m.GetUserOrders(limit=PAGE, offset=offset, symbol=symbol))
            orders.extend(page.orders)
            twaps.update((t.twap_id, t) for t in page.twaps)
            stops.update((s.stop_order_id, s) for s in page.stop_orders)
            if len(page.orders) < PAGE:
                merged = m.AllOrdersResponse(tuple(unique_rows(orders)), tuple(twaps.values()),
                                             tuple(stops.values()))
                return merged, offset == 0
            offset += PAGE
            await trio.lowlevel.checkpoint()

    async def fetch_trades(self) -> list[m.Trade]:
        trades: list[m.Trade] = []
        offset = 0
        while True:
            page = await self._query(m.GetUserTrades(limit=PAGE, offset=offset,
                                                     start_ts=self.trades_since))
            trades.extend(page.trades)
            if len(page.trades) < PAGE:
                return trades
            offset += PAGE
