"""What a snapshot concluded is journaled as a ``note`` and replayed, not re-derived at every start.

An order filled or cancelled while the process was down is settled by the first resync from the
exchange's trades and open orders. No frame states that conclusion (the snapshot's own frames are
journaled but cannot be replayed safely), so before notes the journal replayed such orders as open
at every later start, ``qfex-oms orders --journal`` showed them live, and compaction never removed them.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from journalkit import open_journal, order_view, replayed
from simkit import CREDS2, manager

from qfex_oms import OrderState
from qfex_oms.core.snapshot import SETTLED_MISSING
from qfex_oms.journal.view import format_table, recovered_book
from qfex_oms.sim import open_simulator

ACCOUNT = "qfex_pub_demo"


async def test_orders_settled_by_a_resync_stay_settled_in_the_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    async with open_simulator(rate_limits=None, ping_interval=None) as venue:
        async with manager(venue, journal=str(path)) as oms:
            filled = await oms.place_order("AAPL-USD", "BUY", "2", "100", client_order_id="fills")
            gone = await oms.place_order("AAPL-USD", "BUY", "1", "90", client_order_id="gone")
            kept = await oms.place_order("AAPL-USD", "BUY", "1", "80", client_order_id="kept")
        # While the manager is away: another session of the account cancels one order, and a
        # counterparty fills another in full.
        async with manager(venue) as same_account:
            assert (await same_account.cancel(order_id=gone.order_id, symbol="AAPL-USD")).ok
        async with manager(venue, CREDS2) as other:
            await other.place_order("AAPL-USD", "SELL", "2", "100")

        async with manager(venue, journal=str(path)) as oms:  # the resync settles both
            assert oms.order(filled.order_id).state is OrderState.FILLED
            assert oms.order(gone.order_id).state is OrderState.CANCELLED
            live = {o.order_id: order_view(o) for o in oms.orders(open_only=False)}

        journal = open_journal(path, account=ACCOUNT, venue=venue.url)
        try:
            records = journal.records()
        finally:
            journal.close()
    assert any(r.direction == "note" for r in records)
    book = replayed(records)  # what the next start (or `orders --journal`) rebuilds, offline
    for order_id, state in ((filled.order_id, OrderState.FILLED), (gone.order_id, OrderState.CANCELLED)):
        again = book.tracker.by_order_id(order_id)
        assert again is not None and again.state is state
        # The end and the quantities are the live ones; the fill records themselves come back with
        # the next resync (a note carries only the end, see snapshot.settlement_note).
        assert (again.filled_quantity, again.remaining_quantity, again.last_status) == (
            live[order_id][6], live[order_id][7], oms.order(order_id).last_status)
    assert book.tracker.by_order_id(gone.order_id).last_status == SETTLED_MISSING
    assert book.tracker.by_order_id(filled.order_id).filled_quantity == Decimal(2)
    assert order_view(book.tracker.by_order_id(kept.order_id)) == live[kept.order_id]
    view = recovered_book(path)
    assert [row.client_id for row in view.rows] == ["kept"]  # the journal view agrees, offline
    assert f"{view.stats.notes} settlement notes" in format_table(view) and view.stats.notes >= 1

    # Compaction can now remove the settled orders (their notes with them), and only them.
    journal = open_journal(path, account=ACCOUNT, venue=venue.url)
    try:
        report = journal.compact(0.0, now=max(r.ts for r in records) + 1)
        compacted = journal.records()
    finally:
        journal.close()
    assert report.orders_removed == 2
    assert not any(r.direction == "note" for r in compacted)
    book = replayed(compacted)
    assert [o.client_order_id for o in book.tracker.orders()] == ["kept"]
    assert order_view(book.tracker.by_order_id(kept.order_id)) == live[kept.order_id]
