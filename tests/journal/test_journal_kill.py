"""Issue 5's kill tests: a real strategy process is SIGKILLed at chosen points, a new process recovers.

The simulator runs in the test process (its fault injection is in-process); the strategy and the
recovering manager are separate Python processes (``crash_strategy.py``). After the kill, a new
process opens a manager on the same journal, lets it replay and resync, and prints its book. The
book must equal the simulator's state exactly: the same open orders (by order_id, with the same
remaining quantity), every order's filled quantity, and one fill per simulator trade of the
account (none lost, none counted twice). Recovery runs twice: the second one replays a journal that
already holds a recovery and a resync, and must still count every fill once.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from journalkit import book_problems, child, run_recovery
from simkit import CREDS2, PUB, manager
from waiting import wait_until

from qfex_oms.journal import Journal
from qfex_oms.journal.view import recovered_book
from qfex_oms.sim import Venue, open_simulator


def journal_frames(path: Path) -> list[tuple[str, dict[str, object]]]:
    journal = Journal.read(path)
    try:
        return [(r.direction, json.loads(r.raw)) for r in journal.records()]
    finally:
        journal.close()


async def recover_and_check(venue: Venue, journal: Path) -> dict[str, object]:
    venue.faults.clear_all()
    first = await run_recovery(venue.url, journal)
    assert book_problems(first, venue) == []
    second = await run_recovery(venue.url, journal)
    assert book_problems(second, venue) == []
    return second


async def test_kill_after_sending_an_order_before_its_ack(tmp_path: Path) -> None:
    journal = tmp_path / "strategy.sqlite"
    async with open_simulator(rate_limits=None, ping_interval=None) as venue:
        async with child("ack", venue.url, str(journal)) as proc:
            await proc.expect("ready")
            venue.faults.set_latency(30.0, public_key=PUB)  # the ACK will not arrive in time
            await proc.send("go")
            await proc.expect("sent")
            await wait_until(lambda: [o.client_order_id for o in venue.open_orders(PUB)] == [
                "rest1", "rest2", "inflight"], what="the exchange to rest the order")
            assert await proc.kill() != 0
        frames = journal_frames(journal)
        sent = [f for d, f in frames if d == "out" and f.get("type") == "add_order"]
        assert [f["params"]["client_order_id"] for f in sent] == ["rest1", "rest2", "inflight"]
        assert not any("inflight" in json.dumps(f) for d, f in frames if d == "in")
        offline = recovered_book(journal)
        assert {r.client_id: r.state for r in offline.open_orders} == {
            "rest1": "OPEN", "rest2": "OPEN", "inflight": "UNKNOWN"}
        book = await recover_and_check(venue, journal)
        assert {o["client_order_id"]: o["state"] for o in book["orders"]} == {
            "rest1": "OPEN", "rest2": "OPEN", "inflight": "OPEN"}


async def test_kill_after_sending_an_order_before_it_was_journaled(tmp_path: Path) -> None:
    journal = tmp_path / "strategy.sqlite"
    async with open_simulator(rate_limits=None, ping_interval=None) as venue:
        async with child("ack-unjournaled", venue.url, str(journal)) as proc:
            await proc.expect("ready")
            venue.faults.set_latency(30.0, public_key=PUB)
            await proc.send("go")
            await proc.expect("sent")
            await wait_until(lambda: len(venue.open_orders(PUB)) == 3, what="the order on the exchange")
            await proc.kill()
        frames = journal_frames(journal)
        assert not any("inflight" in json.dumps(f) for _, f in frames)  # on the wire, not in the file
        book = await recover_and_check(venue, journal)
        inflight = [o for o in book["orders"] if o["client_order_id"] == "inflight"]
        assert len(inflight) == 1 and inflight[0]["state"] == "OPEN"  # adopted by the resync


async def test_kill_between_a_fill_and_its_journal_write(tmp_path: Path) -> None:
    journal = tmp_path / "strategy.sqlite"
    async with open_simulator(rate_limits=None, ping_interval=None) as venue:
        async with manager(venue, CREDS2) as taker, child("fill", venue.url, str(journal)) as proc:
            await proc.expect("ready")
            await taker.place_order("AAPL-USD", "SELL", "2", "100", client_order_id="taker")
            filled = json.loads(await proc.expect("filled"))
            await proc.kill()
        frames = journal_frames(journal)
        assert not any("fill_response" in f or f.get("order_response", {}).get("status") == "FILLED"
                       for _, f in frames)  # the fill was in the book, never in the journal
        assert [t.quantity for t in venue.trades(PUB)] == [Decimal(2)]
        offline = recovered_book(journal)
        assert {r.client_id: r.filled for r in offline.open_orders}["rest"] == 0  # not journaled
        book = await recover_and_check(venue, journal)
        rest = next(o for o in book["orders"] if o["order_id"] == filled["order_id"])
        assert (rest["state"], rest["filled"], rest["remaining"]) == ("OPEN", "2", "1")
        assert len(rest["fills"]) == 1


async def test_kill_in_the_middle_of_cancel_all(tmp_path: Path) -> None:
    journal = tmp_path / "strategy.sqlite"
    async with open_simulator(rate_limits=None, ping_interval=None) as venue:
        async with manager(venue, CREDS2) as taker, child("cancel-all", venue.url, str(journal)) as proc:
            await proc.expect("ready")
            await taker.place_order("AAPL-USD", "SELL", "1", "111", client_order_id="taker")
            venue.faults.set_latency(30.0, public_key=PUB)
            await proc.send("go")
            await proc.expect("cancelling")
            # the exchange cancelled everything; the strategy never heard
            await wait_until(lambda: venue.open_orders(PUB) == [], what="the exchange to cancel all")
            await proc.kill()
        frames = journal_frames(journal)
        assert any(d == "out" and f.get("type") == "cancel_all_orders" for d, f in frames)
        book = await recover_and_check(venue, journal)
        states = {o["client_order_id"]: o["state"] for o in book["orders"]}
        assert set(states.values()) == {"CANCELLED"} and len(states) == 12
        best = next(o for o in book["orders"] if o["client_order_id"] == "k11")
        assert (best["filled"], len(best["fills"])) == ("1", 1)


async def test_kill_in_the_middle_of_a_cancel_loop(tmp_path: Path) -> None:
    journal = tmp_path / "strategy.sqlite"
    async with open_simulator(rate_limits=None, ping_interval=None) as venue:
        async with child("cancel-loop", venue.url, str(journal)) as proc:
            await proc.expect("ready")
            await proc.send("go")
            await proc.expect("half")
            venue.faults.set_latency(30.0, public_key=PUB)
            await proc.send("go")
            await proc.expect("inflight")
            await proc.kill()
        await wait_until(lambda: venue.open_orders(PUB) == [], what="the exchange to cancel the rest")
        book = await recover_and_check(venue, journal)
        assert sorted(o["state"] for o in book["orders"]) == ["CANCELLED"] * 12
