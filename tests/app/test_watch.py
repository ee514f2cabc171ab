"""``qfex-oms watch`` and ``qfex-oms run --live`` on a real pseudo-terminal, against a simulator.

The simulator runs in the test process (its URL given with ``--url``); orders are placed and filled
by managers of the test on the same demo account (and the second one as the counterparty), and the
test asserts on what the command's terminal shows.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path
from typing import Any

import orjson
from ptykit import PtyProcess
from simkit import CREDS2, manager

from qfex_oms.sim import Venue

SYMBOL = "AAPL-USD"
CLEAR_SCREEN = b"\x1b[2J"


def records(text: str) -> list[dict[str, Any]]:
    """Every JSON line so far (a line still being written is not one yet)."""
    lines = text.split("\n")[:-1]
    return [orjson.loads(line) for line in lines if line.strip()]


def seen(text: str, **want: Any) -> bool:
    return any(all(r.get(k) == v for k, v in want.items()) for r in records(text))


async def test_watch_json_prints_one_parseable_line_per_event(venue: Venue, tmp_path: Path) -> None:
    term = PtyProcess("watch", "all", "--json", "--url", venue.url, stderr_path=tmp_path / "stderr")
    try:
        await term.expect(lambda t: seen(t, event="ready", account="qfex_pub_demo"), "the ready line")
        async with manager(venue) as oms, manager(venue, CREDS2) as counter:
            await oms.place_order(SYMBOL, "BUY", "2", "150", client_order_id="watched")
            # Placed by another process of the account: the watcher learns it from the ACK.
            await term.expect(lambda t: seen(t, event="order", client_order_id="watched", state="OPEN"),
                              "the order's ACK")
            await counter.place_order(SYMBOL, "SELL", "2", "150")
            await term.expect(lambda t: seen(t, event="fill", client_order_id="watched", quantity="2",
                                             price="150"), "the fill")
            await term.expect(lambda t: seen(t, event="position", symbol=SYMBOL, quantity="2"),
                              "the position the exchange reported")
        code = await term.finish(signal.SIGINT)
    finally:
        term.close()
    assert code == 0
    lines = records(term.text)
    assert lines[0]["event"] == "ready"  # first, so a script knows when the watch is on
    assert {r["event"] for r in lines} >= {"ready", "order", "fill", "position"}


async def test_watch_orders_only_shows_order_events(venue: Venue, tmp_path: Path) -> None:
    term = PtyProcess("watch", "orders", "--json", "--url", venue.url, stderr_path=tmp_path / "stderr")
    try:
        await term.expect(lambda t: seen(t, event="ready"), "the ready line")
        async with manager(venue) as oms, manager(venue, CREDS2) as counter:
            await oms.place_order(SYMBOL, "BUY", "1", "150", client_order_id="only-orders")
            await counter.place_order(SYMBOL, "SELL", "1", "150")
            await term.expect(lambda t: seen(t, event="order", client_order_id="only-orders", state="FILLED"),
                              "the order FILLED")
        code = await term.finish(signal.SIGTERM)
    finally:
        term.close()
    assert code == 0
    assert {r["event"] for r in records(term.text)} <= {"ready", "order", "twap", "cancel", "connection"}


async def test_watch_table_redraws_in_place(venue: Venue, tmp_path: Path) -> None:
    term = PtyProcess("watch", "--url", venue.url, stderr_path=tmp_path / "stderr")
    try:
        await term.expect(lambda t: "open orders (0)" in t and "connected" in t, "the empty table")
        async with manager(venue) as oms, manager(venue, CREDS2) as counter:
            await oms.place_order(SYMBOL, "BUY", "3", "140", client_order_id="on-screen")
            await term.expect(lambda t: "open orders (1)" in t and "on-screen" in t, "the open order")
            await counter.place_order(SYMBOL, "SELL", "3", "140")
            await term.expect(lambda t: re.search(r"AAPL-USD\s*│\s*BUY\s*│\s*3\s*│\s*140\s*│.*on-screen",
                                                  t.split("recent fills")[-1]), "the fill's row")
            await term.expect(lambda t: re.search(r"AAPL-USD\s*│\s*3\s*│", t.split("positions")[-1]),
                              "the position's row")
        code = await term.finish()
    finally:
        term.close()
    assert code == 0
    assert CLEAR_SCREEN not in term.raw  # redrawn by moving the cursor: no flicker


STRATEGY = '''
import trio

async def run(oms, ctx):
    await oms.place_order("AAPL-USD", "BUY", "2", "145", client_order_id="live-bid")
    await trio.sleep_forever()
'''


async def test_run_live_shows_orders_fills_positions_guard_and_connection(venue: Venue,
                                                                          tmp_path: Path) -> None:
    strategy = tmp_path / "live_strategy.py"
    strategy.write_text(STRATEGY)
    term = PtyProcess("run", str(strategy), "--live", "--url", venue.url, stderr_path=tmp_path / "stderr")
    try:
        await term.expect(lambda t: "live-bid" in t and "open orders (1)" in t, "the strategy's order")
        await term.expect(lambda t: "guard armed" in t and "connected" in t, "guard and connection state")
        async with manager(venue, CREDS2) as counter:
            await counter.place_order(SYMBOL, "SELL", "2", "145")
        await term.expect(lambda t: re.search(r"AAPL-USD\s*│\s*BUY\s*│\s*2\s*│\s*145\s*│.*live-bid",
                                              t.split("recent fills")[-1]), "the fill")
        await term.expect(lambda t: re.search(r"AAPL-USD\s*│\s*2\s*│\s*145", t.split("positions")[-1]),
                          "the position with its entry price")
        code = await term.finish(signal.SIGINT)
    finally:
        term.close()
    assert code == 130, term.text[-2000:]
    assert "stopped by SIGINT" in term.text
    assert CLEAR_SCREEN not in term.raw
