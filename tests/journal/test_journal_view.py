"""``recovered_book(path)``: the book as a journal recovers it, without connecting (``qfex-oms orders``)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from journalkit import Script, open_journal, sql

from qfex_oms.journal import JournalError
from qfex_oms.journal.view import BookRow, format_table, recovered_book


def sample(path: Path) -> None:
    s = Script()
    s.at(1_700_000_000).connect()
    s.place("a").ack("a", "A").fill("a", "A", "t1", "1", "2")  # open, partly filled
    s.place("b", qty="3", price="99").ack("b", "B").cancel("B").cancelled("b", "B")
    s.place("c").ack("c", "C").fill("c", "C", "t2", "3", "0")
    s.place("d")  # sent, never answered: UNKNOWN once recovered
    s.write(path, account="alice", venue="wss://api.qfex.com")


def test_the_recovered_book_without_connecting(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    sample(path)
    book = recovered_book(path)
    assert (book.account, book.venue) == ("alice", "wss://api.qfex.com")
    assert book.records == 15 and not book.report.damaged
    assert book.rows == [
        BookRow("order", "AAPL-USD", "BUY", "OPEN", "A", "a", Decimal(3), Decimal(1), Decimal(2),
                Decimal(100), "FILLED"),
        BookRow("order", "AAPL-USD", "BUY", "UNKNOWN", None, "d", Decimal(3), Decimal(0), Decimal(3),
                Decimal(100), "DISCONNECTED"),
    ]
    assert book.closed_orders == {"CANCELLED": 1, "FILLED": 1} and book.fills == 2
    text = format_table(book)
    assert "account alice on wss://api.qfex.com" in text
    assert "15 records" in text and "before any resync" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("kind"))
    assert lines[header].split() == ["kind", "symbol", "side", "state", "id", "client", "id", "qty",
                                     "filled", "remaining", "price"]
    assert lines[header + 1].split() == ["order", "AAPL-USD", "BUY", "OPEN", "A", "a", "3", "1", "2", "100"]
    assert lines[header + 2].split() == ["order", "AAPL-USD", "BUY", "UNKNOWN", "-", "d", "3", "0", "3",
                                         "100"]
    assert "closed orders: 1 CANCELLED, 1 FILLED" in text
    assert format_table(book.rows).splitlines()[0].startswith("kind")
    assert format_table([]) == "no open orders or TWAPs\n"


def test_the_identity_given_must_match(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    sample(path)
    assert recovered_book(path, "alice", "wss://api.qfex.com/").account == "alice"
    with pytest.raises(JournalError, match=r"'alice'.*'bob'"):
        recovered_book(path, account="bob")
    with pytest.raises(JournalError, match="different venue"):
        recovered_book(path, venue="ws://127.0.0.1:8765")


def test_the_view_reads_a_journal_in_use_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    sample(path)
    sql(path, "UPDATE records SET crc = crc + 1 WHERE seq = (SELECT MAX(seq) FROM records)")
    writer_lock = open_journal(tmp_path / "other.sqlite")  # unrelated; the view never locks
    book = recovered_book(path)
    assert book.report.damaged and (book.report.lost, book.records) == (1, 14)
    assert "DAMAGED: 1 records lost from seq 15" in format_table(book)
    assert [r.client_id for r in book.rows] == ["a"]  # "d" was in the lost record
    assert sql(path, "SELECT COUNT(*) FROM records") == [(15,)]
    writer = open_journal(path, account="alice", venue="wss://api.qfex.com")  # the writer cuts it
    assert recovered_book(path).records == 14  # and the view still reads while it holds the lock
    writer.close()
    writer_lock.close()


def test_no_journal_no_book(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="does not exist"):
        recovered_book(tmp_path / "missing.sqlite")
    assert not (tmp_path / "missing.sqlite").exists()
