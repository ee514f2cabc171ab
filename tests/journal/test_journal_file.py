"""The journal file: round trip, batching, a writer that never blocks, damage, identity, locking."""

from __future__ import annotations

import itertools
import os
import sqlite3
import threading
import time
from pathlib import Path

import pytest
import trio
from journalkit import ack_frame, open_journal, order_frame, sample_frames, sql, wal_size, write_records
from waiting import wait_until

from qfex_oms.journal import FORMAT, Journal, JournalError, venue_key

# ---------------------------------------------------------------------- round trip and batching


async def test_round_trip_in_order_through_the_writer_task(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = open_journal(path)
    assert journal.report.records == 0 and not journal.report.damaged
    sent = []
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for i in range(300):
            journal.append_sent(order_frame(i))
            journal.append_received(ack_frame(i))  # str frames are stored as their UTF-8 bytes
            sent += [("out", order_frame(i)), ("in", ack_frame(i).encode())]
            if i % 7 == 0:
                await trio.lowlevel.checkpoint()
        await journal.aclose()
        nursery.cancel_scope.cancel()
    assert journal.written == 600
    reopened = open_journal(path)
    records = reopened.records()
    assert [(r.direction, r.raw) for r in records] == sent
    assert [r.seq for r in records] == sorted(r.seq for r in records)
    assert all(a.ts <= b.ts for a, b in itertools.pairwise(records))
    assert reopened.report.records == 600 and not reopened.report.damaged
    assert reopened.records() == records  # after the hand-over, read again from the file
    reopened.close()


async def test_a_burst_is_one_transaction(tmp_path: Path) -> None:
    """The connection is in autocommit mode: without an explicit BEGIN every row was its own commit."""
    path = tmp_path / "j.sqlite"
    journal = open_journal(path)
    before = wal_size(path)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for i in range(2000):  # no checkpoint in the loop: the writer sees one batch
            journal.append_received(ack_frame(i))
        await journal.flush()
        nursery.cancel_scope.cancel()
    assert (journal.written, journal.batches) == (2000, 1)
    # one commit of ~0.5 MB of rows, not 2000 commits of a 4 KiB page each
    assert wal_size(path) - before < 2000 * 4096 // 4
    await journal.aclose()


async def test_steady_traffic_is_batched(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "j.sqlite", flush_interval=0.02)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        start = trio.current_time()
        n = 400
        for i in range(n):
            journal.append_received(ack_frame(i))
            await trio.sleep(0.0005)
        elapsed = trio.current_time() - start
        await journal.aclose()
        nursery.cancel_scope.cancel()
    assert journal.written == n
    # One transaction per flush_interval at most (a batch waits that long after its first frame), not
    # one per frame. A bound on the count for the time it took, so a slow machine cannot break it.
    assert journal.batches <= elapsed / 0.02 + 2 < n


async def test_the_writer_never_blocks_the_caller(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = open_journal(tmp_path / "j.sqlite")
    original = Journal._write
    disk = threading.Event()  # the disk answers when the test says so (no race with a 0.3 s sleep)

    def slow_disk(self: Journal, batch: list[tuple[float, str, bytes | str]]) -> None:
        disk.wait(10)  # a hang guard: an event loop blocked by this wait fails the asserts below
        original(self, batch)

    monkeypatch.setattr(Journal, "_write", slow_disk)
    worst = 0.0
    ticks = 20
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.append_sent(order_frame(0))
        # The writer took the frame and is now stuck in its commit, in a thread.
        await wait_until(lambda: journal.pending == 0, what="the writer to take the first frame")
        for _ in range(ticks):
            t0 = time.perf_counter()
            for i in range(50):
                journal.append_received(ack_frame(i))
            worst = max(worst, time.perf_counter() - t0)
            await trio.sleep(0.005)  # the event loop kept running during the commit (blocked: 10 s)
        assert journal.written == 0 and journal.pending == 50 * ticks
        disk.set()
        await journal.aclose()
        nursery.cancel_scope.cancel()
    assert worst < 1.0  # 50 appends never waited for the disk (that would take the 10 s guard)
    assert journal.written == 1 + 50 * ticks


async def test_a_failed_commit_is_retried_in_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = open_journal(tmp_path / "j.sqlite")
    original = Journal._write
    failures = [sqlite3.OperationalError("disk I/O error"), sqlite3.OperationalError("database is locked")]

    def flaky_disk(self: Journal, batch: list[tuple[float, str, bytes | str]]) -> None:
        if failures:
            raise failures.pop(0)
        original(self, batch)

    monkeypatch.setattr(Journal, "_write", flaky_disk)
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        for i in range(3):
            journal.append_sent(order_frame(i))
            await trio.sleep(0.02)  # each append meets a failing, then a working, disk
        with trio.fail_after(5):
            while journal.written < 3:  # noqa: ASYNC110 - the writer retries with backoff
                await trio.sleep(0.01)
        await journal.aclose()
    assert journal.failures == 2
    records = Journal.read(tmp_path / "j.sqlite").records()
    assert [r.raw for r in records] == [order_frame(i) for i in range(3)]


async def test_the_writer_task_ends_after_aclose(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "j.sqlite")
    with trio.fail_after(10):  # a hang guard: two commits and a close in worker threads
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            journal.append_sent(order_frame(1))
            await trio.sleep(0.02)
            await journal.aclose()  # the nursery exits: run() returned by itself
    assert journal.written == 1


async def test_appends_after_close_are_dropped_and_counted(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "j.sqlite")
    journal.append_sent(order_frame(1))
    await journal.aclose()
    journal.append_received(ack_frame(1))
    assert (journal.written, journal.dropped) == (1, 1)
    await journal.aclose()  # idempotent


def test_sync_close_writes_the_buffer(tmp_path: Path) -> None:
    write_records(tmp_path / "j.sqlite", sample_frames(5))
    journal = open_journal(tmp_path / "j.sqlite")
    assert len(journal.records()) == 10
    journal.close()


# ---------------------------------------------------------------------- a damaged tail


def _flip(blob: bytes, at: int) -> bytes:
    return blob[:at] + bytes([blob[at] ^ 0x40]) + blob[at + 1:]


@pytest.mark.parametrize("damage", ["raw", "crc", "ts", "direction"])
def test_a_corrupt_last_record_is_cut_reported_and_kept_aside(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "j.sqlite"
    write_records(path, sample_frames(10))
    (last,) = sql(path, "SELECT MAX(seq) FROM records")[0]
    (raw,) = sql(path, "SELECT raw FROM records WHERE seq = ?", last)[0]
    if damage == "raw":
        sql(path, "UPDATE records SET raw = ? WHERE seq = ?", _flip(raw, len(raw) // 2), last)
    elif damage == "crc":
        sql(path, "UPDATE records SET crc = (crc | 1) - (crc & 1) WHERE seq = ?", last)
    elif damage == "ts":
        sql(path, "UPDATE records SET ts = ts + 1e-3 WHERE seq = ?", last)
    else:
        sql(path, "UPDATE records SET dir = 'xx' WHERE seq = ?", last)

    journal = open_journal(path)
    report = journal.report
    assert (report.records, report.lost, report.first_lost_seq) == (19, 1, last)
    assert report.damaged and "checksum mismatch" in (report.reason or "")
    records = journal.records()
    assert len(records) == 19 and records[-1].seq == last - 1
    journal.append_sent(order_frame(99))  # recovery continues from the last good record
    journal.close()

    again = open_journal(path)
    assert not again.report.damaged
    records = again.records()
    assert len(records) == 20 and records[-1].raw == order_frame(99) and records[-1].seq > last
    again.close()
    assert sql(path, "SELECT seq, reason FROM damaged") == [(last, "checksum mismatch")]


def test_corruption_in_the_middle_cuts_everything_after_it(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    write_records(path, sample_frames(10))
    seqs = [s for (s,) in sql(path, "SELECT seq FROM records ORDER BY seq")]
    sql(path, "UPDATE records SET crc = crc + 1 WHERE seq = ?", seqs[12])
    journal = open_journal(path)
    assert (journal.report.records, journal.report.lost, journal.report.first_lost_seq) == (12, 8, seqs[12])
    assert [r.seq for r in journal.records()] == seqs[:12]
    journal.close()


def test_the_read_only_view_reports_damage_without_repairing(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    write_records(path, sample_frames(3))
    sql(path, "UPDATE records SET crc = crc + 1 WHERE seq = (SELECT MAX(seq) FROM records)")
    view = Journal.read(path)
    assert (view.report.records, view.report.lost) == (5, 1)
    assert (view.account, view.venue) == ("acct", "ws://venue:1")
    view.close()
    assert sql(path, "SELECT COUNT(*) FROM records") == [(6,)]  # untouched
    assert sql(path, "SELECT COUNT(*) FROM damaged") == [(0,)]


@pytest.mark.parametrize("cut", [3 * 4096 + 100, 40 * 4096])
def test_a_truncated_file_is_salvaged_and_moved_aside(tmp_path: Path, cut: int) -> None:
    path = tmp_path / "j.sqlite"
    frames = [(d, raw + b" " * 300) if d == "in" else (d, raw) for d, raw in sample_frames(600)]
    write_records(path, frames)
    assert not Path(f"{path}-wal").exists()  # closed: everything checkpointed into the main file
    original = Journal.read(path).records()
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - cut)  # a crash of the disk, not of SQLite: pages are missing

    journal = open_journal(path)
    report = journal.report
    assert report.damaged and "damaged file" in (report.reason or "")
    assert report.moved_to is not None and Path(report.moved_to).exists()
    assert Path(report.moved_to).stat().st_size == size - cut  # the damaged file, as it was
    kept = journal.records()
    assert 0 < len(kept) < len(original)
    assert [(r.seq, r.raw) for r in kept] == [(r.seq, r.raw) for r in original[:len(kept)]]
    assert report.records == len(kept) and report.first_lost_seq == kept[-1].seq + 1
    assert report.lost == len(original) - len(kept)
    journal.append_sent(order_frame(1234))
    journal.close()

    again = open_journal(path)  # the salvaged file is a healthy journal
    assert not again.report.damaged
    records = again.records()
    assert [r.raw for r in records] == [r.raw for r in kept] + [order_frame(1234)]
    assert records[-1].seq > original[-1].seq  # a lost record's seq is never reused
    again.close()


def test_a_torn_last_page_is_caught_by_the_checksums(tmp_path: Path) -> None:
    """SQLite reads a short last page as zeros without complaint; the records' CRCs notice."""
    path = tmp_path / "j.sqlite"
    frames = [(d, raw + b" " * 300) if d == "in" else (d, raw) for d, raw in sample_frames(600)]
    write_records(path, frames)
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size - 100)
    journal = open_journal(path)
    assert journal.report.lost > 0 and "checksum mismatch" in (journal.report.reason or "")
    assert journal.report.records + journal.report.lost == 1200
    journal.close()


def test_a_file_that_is_not_sqlite_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(JournalError, match="not a qfex_oms journal"):
        open_journal(path)
    path.write_text("order log\nBUY 1 AAPL\n")
    with pytest.raises(JournalError, match="not a qfex_oms journal"):
        open_journal(path)
    with pytest.raises(JournalError, match="not a qfex_oms journal"):
        Journal.read(path)
    assert path.read_text() == "order log\nBUY 1 AAPL\n"  # left alone
    assert not list(tmp_path.glob("*.corrupt-*"))


def test_another_sqlite_database_is_refused_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE positions (symbol TEXT, qty TEXT)")
    db.commit()
    db.close()
    with pytest.raises(JournalError, match="not a qfex_oms journal"):
        open_journal(path)
    assert sql(path, "SELECT name FROM sqlite_master") == [("positions",)]
    assert sql(path, "PRAGMA journal_mode") == [("delete",)]


def test_a_journal_of_another_format_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    write_records(path, sample_frames(1))
    sql(path, "UPDATE meta SET value = 'something-else-7' WHERE key = 'format'")
    with pytest.raises(JournalError, match="format 'something-else-7'"):
        open_journal(path)
    assert FORMAT != "something-else-7"


def test_an_empty_file_becomes_a_new_journal(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    path.touch()
    journal = open_journal(path)
    assert journal.records() == [] and not journal.report.damaged
    journal.close()
    assert dict(sql(path, "SELECT key, value FROM meta"))["account"] == "acct"


# ---------------------------------------------------------------------- identity


def test_a_journal_of_another_account_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    write_records(path, sample_frames(2), account="alice", venue="wss://api.qfex.com")
    with pytest.raises(JournalError) as info:
        open_journal(path, account="bob", venue="wss://api.qfex.com")
    message = str(info.value)
    assert "'alice'" in message and "'bob'" in message and "account" in message
    assert "refusing to mix books" in message
    assert len(Journal.read(path).records()) == 4  # nothing was cut or rewritten


def test_a_journal_of_another_venue_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    write_records(path, sample_frames(2), account="alice", venue="wss://api.qfex.com")
    with pytest.raises(JournalError) as info:
        open_journal(path, account="alice", venue="ws://127.0.0.1:8765")
    message = str(info.value)
    assert "wss://api.qfex.com" in message and "ws://127.0.0.1:8765" in message
    assert "different venue" in message
    with pytest.raises(JournalError, match="different account and venue"):
        open_journal(path, account="bob", venue="ws://127.0.0.1:8765")
    with pytest.raises(JournalError, match="'bob'"):
        Journal.read(path, account="bob")


def test_the_same_venue_spelled_differently_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    write_records(path, sample_frames(1), account="alice", venue="wss://API.qfex.com:443/")
    journal = open_journal(path, account="alice", venue="wss://api.qfex.com?api_key=alice")
    assert len(journal.records()) == 2
    journal.close()
    assert venue_key("ws://127.0.0.1:8765/") == venue_key("ws://127.0.0.1:8765") != venue_key(
        "ws://127.0.0.1:8766")


def test_one_writer_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    first = open_journal(path)
    with pytest.raises(JournalError, match="in use by another order manager"):
        open_journal(path)
    reader = Journal.read(path)  # the read-only view needs no lock
    reader.close()
    first.close()
    open_journal(path).close()


def test_compact_refuses_a_read_only_journal(tmp_path: Path) -> None:
    write_records(tmp_path / "j.sqlite", sample_frames(1))
    view = Journal.read(tmp_path / "j.sqlite")
    with pytest.raises(JournalError, match="read-only"):
        view.compact(0)
    view.close()


def test_a_format_1_journal_is_read_as_is_and_marked_format_2_when_written(tmp_path: Path) -> None:
    """Format 2 added "note" records, which a build that knows only format 1 would take for a corrupt
    tail. Writing to an old journal marks it format 2, so such a build refuses it cleanly instead."""
    path = tmp_path / "j.sqlite"
    write_records(path, sample_frames(3))
    sql(path, "UPDATE meta SET value = 'qfex_oms-journal-1' WHERE key = 'format'")
    reader = Journal.read(path)
    try:
        assert len(reader.records()) == 6  # three orders, each sent and answered
    finally:
        reader.close()
    assert sql(path, "SELECT value FROM meta WHERE key = 'format'") == [("qfex_oms-journal-1",)]
    writer = open_journal(path)
    try:
        assert len(writer.records()) == 6
    finally:
        writer.close()
    assert sql(path, "SELECT value FROM meta WHERE key = 'format'") == [("qfex_oms-journal-2",)]
    sql(path, "UPDATE meta SET value = 'qfex_oms-journal-3' WHERE key = 'format'")
    with pytest.raises(JournalError, match="format 'qfex_oms-journal-3'"):
        open_journal(path)
