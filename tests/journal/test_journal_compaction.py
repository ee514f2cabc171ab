"""Retention: ``Journal.compact`` drops closed orders older than an age and never touches open ones.

The property every test checks: replaying the compacted journal gives every remaining order exactly
as replaying the full journal did (state, quantities, fills, ids), the open ones included, and the
removed orders are exactly the ones closed before the cut-off.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import trio
from journalkit import Script, compact_and_compare, open_journal, replayed, sql
from simkit import CREDS2, PUB, manager
from waiting import wait_until

from qfex_oms import OrderRejected, OrderState, TwapState
from qfex_oms.journal import Journal
from qfex_oms.sim import open_simulator


def test_closed_orders_older_than_the_age_go_and_open_ones_stay(tmp_path: Path) -> None:
    s = Script()
    s.at(100).connect().place("a").ack("a", "A").cancel("A").cancelled("a", "A")  # closed, old
    s.at(110).place("b").ack("b", "B").fill("b", "B", "t1", "3", "0")  # filled, old
    s.at(120).place("c").ack("c", "C").fill("c", "C", "t2", "1", "2")  # open, old, partly filled
    s.at(130).place("r").rejected("r")  # rejected, old
    s.at(140).snapshot()  # a query, old
    s.at(500).place("d").ack("d", "D").cancel("D").cancelled("d", "D")  # closed, recent
    s.at(510).place("e").ack("e", "E")  # open, recent
    path = tmp_path / "j.sqlite"
    s.write(path)
    removed, kept = compact_and_compare(path, older_than=100, now=400)
    assert {k[1] for k in removed} == {"a", "b", "r"}
    assert {k[1] for k in kept} == {"c", "d", "e"}
    c = next(o for o in replayed(Journal.read(path).records()).tracker.orders() if o.client_order_id == "c")
    assert (c.state, c.filled_quantity, c.remaining_quantity, c.fill_total) == (OrderState.OPEN, 1, 2, 1)
    assert dict(sql(path, "SELECT key, value FROM meta"))["compacted_before"] == "300"


def test_an_order_open_for_ages_is_never_compacted(tmp_path: Path) -> None:
    s = Script()
    s.at(1).connect().place("old").ack("old", "O").fill("old", "O", "t1", "1", "2")
    s.at(2).place("x").ack("x", "X").cancel("X").cancelled("x", "X")
    s.at(3).connect()  # a reconnect while "old" rests: this boundary stays with it
    path = tmp_path / "j.sqlite"
    s.write(path)
    removed, kept = compact_and_compare(path, older_than=10, now=1e9)
    assert {k[1] for k in kept} == {"old"} and {k[1] for k in removed} == {"x"}
    records = Journal.read(path).records()
    # the first connection began with nothing live (its boundary changes nothing), the second
    # began while "old" rested: its boundary made "old"'s in-flight requests lost, it stays
    assert [r.ts for r in records if b'"subscribe"' in r.raw] == [3, 3]


def test_a_client_id_shared_with_an_open_order_keeps_the_whole_group(tmp_path: Path) -> None:
    s = Script()
    s.at(1).connect().place("dup").ack("dup", "D1").cancel("D1").cancelled("dup", "D1")
    s.at(2).place("dup").ack("dup", "D2")  # the same client id, still open
    s.at(3).place("dup2").place("dup2").cancel_client("dup2")  # a group cancelled by client id...
    s.cancelled("dup2", "E1").cancelled("dup2", "E2")  # ...answered before the ACKs
    path = tmp_path / "j.sqlite"
    s.write(path)
    removed, kept = compact_and_compare(path, older_than=10, now=1e9)
    assert {k[2] for k in kept} == {"D1", "D2"}
    assert {k[1] for k in removed} == {"dup2"}


def test_a_cancel_all_stays_while_an_order_it_covered_is_kept(tmp_path: Path) -> None:
    s = Script()
    s.at(1).connect().place("a").ack("a", "A").place("b").ack("b", "B")
    s.at(2).cancel_all().cancelled("a", "A")  # b's answer was lost: b stays PENDING_CANCEL
    path = tmp_path / "j.sqlite"
    s.write(path)
    removed, kept = compact_and_compare(path, older_than=10, now=1e9)
    assert {k[1] for k in kept} == {"b"} and {k[1] for k in removed} == {"a"}
    b = next(iter(replayed(Journal.read(path).records()).tracker.orders()))
    assert b.state is OrderState.PENDING_CANCEL


def test_nothing_is_removed_before_its_time(tmp_path: Path) -> None:
    s = Script()
    s.at(100).connect().place("a").ack("a", "A").cancel("A").cancelled("a", "A")
    path = tmp_path / "j.sqlite"
    s.write(path)
    removed, _ = compact_and_compare(path, older_than=1000, now=1050)
    assert removed == set()
    assert len(Journal.read(path).records()) == 6


async def test_compact_while_the_writer_runs(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    s = Script()
    s.at(1).connect().place("a").ack("a", "A").cancel("A").cancelled("a", "A")
    s.write(path)
    journal = open_journal(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.append_sent(b'{"type": "get_user_orders", "params": {}}')
        report = await journal.compact_async(10)
        journal.append_sent(b'{"type": "get_user_orders", "params": {}}')
        await journal.aclose()
        nursery.cancel_scope.cancel()
    assert report.records_deleted == 6 and report.orders_removed == 1
    assert [r.raw for r in Journal.read(path).records()] == [b'{"type": "get_user_orders", "params": {}}'] * 2


async def test_compacting_a_real_session_then_recovering_from_it(tmp_path: Path) -> None:
    """A live history (fills, a partial fill, a rejection, a modify, a TWAP, a reused client id),
    compacted at a cut-off between an old and a new phase, then recovered against the simulator."""
    path = tmp_path / "j.sqlite"
    async with open_simulator(time_scale=1000, rate_limits=None, ping_interval=None) as venue:
        async with manager(venue, journal=str(path)) as oms, manager(venue, CREDS2) as taker:
            a = await oms.place_order("AAPL-USD", "BUY", "1", "100", client_order_id="a")
            await oms.cancel(a)
            b = await oms.place_order("AAPL-USD", "BUY", "2", "101", client_order_id="b")
            await taker.place_order("AAPL-USD", "SELL", "2", "101", client_order_id="tb")
            await wait_until(lambda: b.state is OrderState.FILLED, what="b filled")
            c = await oms.place_order("AAPL-USD", "BUY", "3", "102", client_order_id="c")
            await taker.place_order("AAPL-USD", "SELL", "1", "102", client_order_id="tc")
            await wait_until(lambda: c.filled_quantity == 1, what="c partly filled")
            with pytest.raises(OrderRejected):
                await oms.place_order("AAPL-USD", "BUY", "1", "0.5", client_order_id="r")
            e1 = await oms.place_order("AAPL-USD", "BUY", "1", "90", client_order_id="dup")
            await oms.cancel(e1)
            m = await oms.place_order("AAPL-USD", "BUY", "1", "80", client_order_id="m")
            await oms.modify_order(m, price="81")
            await oms.cancel(m)
            await taker.place_order("TSLA-USD", "BUY", "10", "50", client_order_id="bid")
            twap = await oms.place_twap("TSLA-USD", "SELL", total_quantity="2", num_orders=2,
                                        order_interval_secs=30, client_twap_id="tw")
            await wait_until(lambda: twap.state is TwapState.COMPLETED and len(twap.children) == 2
                             and all(ch.state is OrderState.FILLED for ch in twap.children),
                             what="TWAP done")
            await trio.sleep(0.05)
            cutoff = time.time()  # the journal's clock is the wall clock
            await trio.sleep(0.05)
            f = await oms.place_order("AAPL-USD", "BUY", "1", "95", client_order_id="f")
            await oms.cancel(f)
            await oms.place_order("AAPL-USD", "BUY", "1", "91", client_order_id="dup")
            await oms.place_order("AAPL-USD", "BUY", "1", "96", client_order_id="g")
        removed, kept = compact_and_compare(path, older_than=3600, now=cutoff + 3600,
                                            account=PUB, venue=venue.url)
        assert sorted(k[1] for k in removed) == sorted(["a", "b", "r", "m"] + [
            ch.client_order_id for ch in twap.children])
        assert sorted(k[1] for k in kept) == ["c", "dup", "dup", "f", "g"]
        assert replayed(Journal.read(path).records()).tracker.twaps() == []

        async with manager(venue, journal=str(path)) as recovered:
            mine = {o.order_id: o.remaining_quantity for o in recovered.orders()}
            assert mine == {o.order_id: o.remaining for o in venue.open_orders(PUB)}
            assert all(o.state is OrderState.OPEN for o in recovered.orders())
            again_c = recovered.order(c.order_id)
            assert again_c is not None and (again_c.filled_quantity, again_c.fill_total) == (1, 1)


def test_vacuum_gives_the_space_back(tmp_path: Path) -> None:
    s = Script()
    s.at(1).connect()
    for i in range(400):
        s.place(f"x{i}").ack(f"x{i}", f"X{i}").cancel(f"X{i}").cancelled(f"x{i}", f"X{i}")
    s.place("open").ack("open", "OPEN1")
    path = tmp_path / "j.sqlite"
    s.write(path)
    before = path.stat().st_size
    journal = open_journal(path)
    report = journal.compact(10, now=1e9, vacuum=True)
    journal.append_sent(b'{"type": "get_user_orders", "params": {}}')
    journal.close()
    assert (report.orders_removed, report.records_deleted) == (400, 1600 + 2)
    assert path.stat().st_size < before / 4
    records = Journal.read(path).records()
    assert [r.raw.count(b"OPEN1") + r.raw.count(b'"open"') > 0 for r in records] == [True, True, False]


def test_a_live_stop_order_keeps_its_records(tmp_path: Path) -> None:
    """Issue 14: records naming a stop (its add_order, its ACK under the stop's id, its push) name
    no order; they must still stay while the stop lives, or a restart forgets a stop that can fire."""
    s = Script()
    s.at(1).connect()
    s._out("add_order", symbol=s.symbol, side="SELL", order_type="STOP_LOSS", order_time_in_force="GTC",
           quantity="1", price="90", client_order_id="sl-1")
    s._in("order_response", order_id="S1", symbol=s.symbol, status="ACK", side="SELL", type="STOP_LOSS",
          time_in_force="GTC", quantity="1", price="90", quantity_remaining="1", client_order_id="sl-1")
    s._in("stop_order_response", stop_order_id="S1", symbol=s.symbol, price="90", quantity="1",
          direction="SELL", stop_order_type="STOP_LOSS", client_order_id="sl-1")
    s.at(2).place("x").ack("x", "X").cancel("X").cancelled("x", "X")
    path = tmp_path / "j.sqlite"
    s.write(path)
    before = replayed(Journal.read(path).records()).stops.stops()
    assert [st.stop_order_id for st in before] == ["S1"]
    compact_and_compare(path, older_than=10, now=1e9)
    after = replayed(Journal.read(path).records()).stops.stops()
    assert [(st.stop_order_id, st.state) for st in after] == [(st.stop_order_id, st.state) for st in before]
    assert not any(o.client_order_id == "x" for o in replayed(Journal.read(path).records()).tracker.orders())


def test_the_tags_of_a_long_lived_order_survive_compaction(tmp_path: Path) -> None:
    """Issue 18: a strategy's tags travel in an attribution note before the order's frame; the note
    names the order's client id, so it stays while the order lives (its strategy is in its id)."""
    from qfex_oms.core.replay import attribution_note

    s = Script()
    s.at(1).connect()
    s.raw("note", attribution_note("order", s.symbol, "mm:bid", frozenset({"quote"})))
    s.place("mm:bid").ack("mm:bid", "B")
    s.at(2).place("x").ack("x", "X").cancel("X").cancelled("x", "X")
    path = tmp_path / "j.sqlite"
    s.write(path)
    compact_and_compare(path, older_than=10, now=1e9)
    (order,) = replayed(Journal.read(path).records()).tracker.orders()
    assert (order.client_order_id, order.strategy, order.tags) == ("mm:bid", "mm", frozenset({"quote"}))
