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
from typing import Any

import trio

from qfex_oms.core.engine import OmsCore
from qfex_oms.core.snapshot import SnapshotDiff, apply_snapshot, settle_from_order_query, settlement_note
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m

log = get_logger("qfex_oms.client.reconcile")

PAGE = 1000  # rows per get_user_orders / get_user_trades page (QFEX's maximum)

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
        return diff

    def settle(self, fence: int, snapshot: m.AllOrdersResponse, trades: list[m.Trade],
               complete: bool = True) -> SnapshotDiff:
        """Apply a snapshot, and journal what it concluded."""
        diff = apply_snapshot(self.core, fence, snapshot, trades, complete=complete)
        self.journal(diff)
        self._flush()
        return diff

    def journal(self, diff: SnapshotDiff) -> None:
        note = settlement_note(diff)
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
        offset = 0
        while True:
            page = await self._query(m.GetUserOrders(limit=PAGE, offset=offset, symbol=symbol))
            orders.extend(page.orders)
            twaps.update((t.twap_id, t) for t in page.twaps)
            if len(page.orders) < PAGE:
                merged = m.AllOrdersResponse(tuple(unique_rows(orders)), tuple(twaps.values()))
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
