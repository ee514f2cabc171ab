"""A journal that cannot write says so, once, from the trio side, and says so again when it can.

The failure is real: ``PRAGMA max_page_count`` caps the database at the pages it has, and SQLite then
fails the next commit with ``SQLITE_FULL``, the very error a full disk gives. Root cannot bypass it
(tests run as root, so a read-only chmod would not fail anything), it needs no mount or quota, and it
is lifted by raising the cap, which is how a disk that was cleaned up behaves. The pragma is set on
the journal's own connection (a per-connection setting), the one place the test reaches inside.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import trio
from journalkit import open_journal, order_frame
from waiting import wait_until

from qfex_oms.journal import Journal, JournalFailurePolicy

BIG = b'{"type":"add_order","params":{"pad":"' + b"x" * 20_000 + b'"}}'  # needs new pages


def set_max_pages(journal: Journal, pages: int | None) -> None:
    """Cap the file at its current size (``None``), or lift the cap."""
    with journal._db_lock:
        db = journal._db
        assert db is not None
        if pages is None:
            (pages,) = db.execute("PRAGMA page_count").fetchone()
        db.execute(f"PRAGMA max_page_count={int(pages)}")


async def test_a_full_journal_is_unhealthy_once_and_healthy_when_a_write_succeeds(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    journal = open_journal(path)
    changes: list[tuple[bool, str | None]] = []

    def on_health_change(healthy: bool, error: str | None) -> None:
        trio.lowlevel.current_task()  # raises outside trio: never called from the worker thread
        changes.append((healthy, error))

    journal.on_health_change = on_health_change
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        journal.append_sent(order_frame(0))
        await wait_until(lambda: journal.written == 1, within=10, what="the first commit")
        assert journal.healthy and changes == []

        set_max_pages(journal, None)  # the disk is full
        journal.append_sent(BIG)
        journal.append_received(order_frame(1))
        # retried, and reported once
        await wait_until(lambda: journal.failures >= 3, within=10, what="three failed commits")
        assert not journal.healthy and journal.last_error == "database or disk is full"
        assert changes == [(False, "database or disk is full")]
        assert journal.pending == 2 and journal.written == 1  # kept in memory, in order

        set_max_pages(journal, 1_000_000)  # space again: the next retry succeeds
        await wait_until(lambda: journal.healthy, within=10, what="the journal to recover")
        assert changes == [(False, "database or disk is full"), (True, None)]
        assert journal.last_error is None and journal.pending == 0
        await journal.aclose()
    records = Journal.read(path).records()
    assert [r.raw for r in records] == [order_frame(0), BIG, order_frame(1)]


async def test_a_failing_health_callback_does_not_stop_the_writer(tmp_path: Path) -> None:
    journal = open_journal(tmp_path / "j.sqlite")

    def broken(healthy: bool, error: str | None) -> None:
        raise RuntimeError("a bug in the listener")

    journal.on_health_change = broken
    async with trio.open_nursery() as nursery:
        await nursery.start(journal.run)
        set_max_pages(journal, None)
        journal.append_sent(BIG)
        await wait_until(lambda: not journal.healthy, within=10, what="the journal to fail")
        set_max_pages(journal, 1_000_000)
        await wait_until(lambda: journal.healthy, within=10, what="the journal to recover")
        await journal.aclose()
    assert journal.written == 1


def test_a_failed_commit_leaves_no_transaction_open(tmp_path: Path) -> None:
    """A disk that fills at COMMIT (WAL writes its frames then) must not leave the connection inside the
    transaction, or every retry fails with "cannot start a transaction within a transaction" and the
    journal never recovers. A deferred foreign key is a real COMMIT-time failure SQLite keeps open."""
    db = sqlite3.connect(tmp_path / "fk.sqlite", isolation_level=None)
    db.executescript("PRAGMA foreign_keys=ON; CREATE TABLE p (id INTEGER PRIMARY KEY);"
                     "CREATE TABLE c (p INTEGER REFERENCES p(id) DEFERRABLE INITIALLY DEFERRED);")
    with pytest.raises(sqlite3.IntegrityError), Journal._transaction(db):
        db.execute("INSERT INTO c VALUES (1)")
    assert not db.in_transaction
    with Journal._transaction(db):  # the next transaction starts
        db.execute("INSERT INTO p VALUES (1)")
    db.close()


def test_the_failure_policy_is_a_setting_value() -> None:
    assert JournalFailurePolicy("halt_new_orders") is JournalFailurePolicy.HALT_NEW_ORDERS
    assert JournalFailurePolicy("continue") is JournalFailurePolicy.CONTINUE
    assert JournalFailurePolicy.DEFAULT is JournalFailurePolicy.HALT_NEW_ORDERS
