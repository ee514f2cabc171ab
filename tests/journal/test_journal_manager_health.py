"""Issue 11, item 13: while the journal cannot write, new orders halt; cancels and the kill switch
go on; trading resumes by itself when writes succeed again. Real simulator, real SQLite file, a
real SQLITE_FULL (see ``test_journal_health`` for why ``max_page_count`` is the way to make one)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
from simkit import CREDS, OPTIONS
from test_journal_health import set_max_pages
from waiting import drain, wait_until

from qfex_oms import Halted, JournalUnavailable, OrderState, open_order_manager
from qfex_oms.client.events import HaltChanged
from qfex_oms.sim import Venue

S = "AAPL-USD"
PAD = "x" * 30  # client ids long enough that a few frames need a new page


async def test_new_orders_halt_while_the_journal_cannot_write_and_resume_after(
        venue: Venue, tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite")
    async with open_order_manager(venue.url, CREDS, journal=path, **OPTIONS) as oms:
        resting = await oms.place_order(S, "BUY", "1", "100")
        stream = oms.events()
        assert oms.journal is not None
        set_max_pages(oms.journal, None)  # the disk is full from now on
        # Frames keep coming (pages of them) until a commit fails.
        for i in range(40):
            if oms.journal_halted:
                break
            try:
                await oms.place_order(S, "BUY", "1", str(90 - i), client_order_id=f"{PAD}{i}")
            except JournalUnavailable:
                break
            await trio.sleep(0.02)
        await wait_until(lambda: oms.journal_halted, within=5, what="the journal to report failure")
        with pytest.raises(JournalUnavailable, match="journal cannot write") as caught:
            await oms.place_order(S, "BUY", "1", "50")
        assert isinstance(caught.value, Halted)  # old `except Halted` handlers still catch it
        oms.resume()  # the kill switch's resume does not lift the journal's halt
        assert oms.journal_halted
        result = await oms.cancel(resting)  # cancels still go
        assert result.ok and resting.state is OrderState.CANCELLED
        set_max_pages(oms.journal, 10_000_000)  # the disk was cleaned up
        await wait_until(lambda: not oms.journal_halted, within=10, what="the journal to recover")
        again = await oms.place_order(S, "BUY", "1", "60")
        assert again.state is OrderState.OPEN
        halts = [e for e in await drain(stream) if isinstance(e, HaltChanged)]
        assert [h.halted for h in halts] == [True, False]
        assert halts[0].reason.startswith("journal_unavailable: database or disk is full")
        assert halts[1].reason == "journal_writes_again"


async def test_the_continue_policy_trades_on(venue: Venue, tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite")
    async with open_order_manager(venue.url, CREDS, journal=path, journal_failure="continue",
                                  **OPTIONS) as oms:
        assert oms.journal is not None
        set_max_pages(oms.journal, None)
        for i in range(20):
            await oms.place_order(S, "BUY", "1", str(90 - i), client_order_id=f"{PAD}{i}")
        await wait_until(lambda: not oms.journal.healthy, within=5,  # type: ignore[union-attr]
                         what="the journal to fail")
        order = await oms.place_order(S, "BUY", "1", "50")
        assert order.state is OrderState.OPEN and not oms.journal_halted
