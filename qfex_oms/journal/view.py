"""The book as a journal recovers it, without connecting: what ``qfex-oms orders --journal PATH`` shows.

``recovered_book(path)`` opens the journal read-only (no lock, nothing written, a damaged tail only
reported), replays it through a fresh ``OmsCore`` exactly as ``open_order_manager(journal=PATH)``
does on start, and returns the open orders and TWAPs as rows plus counts of closed orders.
``format_table(book)`` renders it as plain text. This is the book *before* the resync a real restart
performs: orders that were in flight when the journal ends show as UNKNOWN, and whatever happened on
the exchange after the last record (fills, cancels) is not known here.

Wiring for the CLI (qfex_oms/cli.py)::

    @main.command()
    @click.option("--journal", "journal_path", required=True,
                  type=click.Path(exists=True, dir_okay=False), help="Journal file to read.")
    @click.option("--account", default=None, help="Expected account (default: the journal's).")
    @click.option("--venue", default=None, help="Expected venue URL (default: the journal's).")
    def orders(journal_path: str, account: str | None, venue: str | None) -> None:
        \"\"\"Show the book recovered from a journal, without connecting.\"\"\"
        from qfex_oms.journal import JournalError
        from qfex_oms.journal.view import format_table, recovered_book
        try:
            click.echo(format_table(recovered_book(journal_path, account, venue)))
        except JournalError as exc:
            raise click.ClickException(str(exc)) from None
"""

from __future__ import annotations

import os
import time
from collections import Counter
from decimal import Decimal

from attrs import define, field, frozen

from qfex_oms.core.engine import OmsCore
from qfex_oms.core.replay import ReplayStats, replay
from qfex_oms.journal.store import Journal, RecoveryReport

__all__ = ["BookRow", "RecoveredBook", "format_table", "recovered_book"]


@frozen
class BookRow:
    """One open order or TWAP. Quantities are Decimals; ``None`` where the book does not know."""

    kind: str  # "order" or "twap"
    symbol: str
    side: str
    state: str
    exchange_id: str | None  # order_id / twap_id (None: never ACKed)
    client_id: str
    quantity: Decimal
    filled: Decimal
    remaining: Decimal
    price: Decimal | None = None
    last_status: str | None = None


@define
class RecoveredBook:
    path: str
    account: str
    venue: str
    report: RecoveryReport
    stats: ReplayStats
    records: int = 0
    first_ts: float | None = None
    last_ts: float | None = None
    rows: list[BookRow] = field(factory=list)
    closed_orders: dict[str, int] = field(factory=dict)  # terminal state -> count
    closed_twaps: dict[str, int] = field(factory=dict)
    fills: int = 0  # distinct trades in the book

    @property
    def open_orders(self) -> list[BookRow]:
        return [r for r in self.rows if r.kind == "order"]

    @property
    def open_twaps(self) -> list[BookRow]:
        return [r for r in self.rows if r.kind == "twap"]


def recovered_book(path: str | os.PathLike[str], account: str | None = None,
                   venue: str | None = None) -> RecoveredBook:
    """Load the journal at ``path`` without connecting and replay it into an ``OmsCore``.

    ``account``/``venue`` default to the identity stored in the journal's ``meta`` table; when given,
    a journal written for another account or venue raises ``JournalError`` (as does a file that is not
    a journal). Nothing in the file is modified, so it is safe on a journal a manager is writing.
    """
    journal = Journal.read(path, account=account, venue=venue)
    try:
        records = journal.records()
        book = RecoveredBook(str(path), journal.account, journal.venue, journal.report, ReplayStats(),
                             records=len(records))
    finally:
        journal.close()
    if records:
        book.first_ts, book.last_ts = records[0].ts, records[-1].ts
    core = OmsCore()
    book.stats = replay(core, ((r.direction, r.raw) for r in records))
    tracker = core.tracker
    for order in sorted(tracker.open_orders(), key=lambda o: (o.symbol, o.local_id)):
        book.rows.append(BookRow("order", order.symbol, str(order.side), str(order.state), order.order_id,
                                 order.client_order_id, order.quantity, order.filled_quantity,
                                 order.remaining_quantity, order.price, order.last_status))
    for twap in sorted(tracker.twaps(open_only=True), key=lambda t: (t.symbol, t.local_id)):
        book.rows.append(BookRow("twap", twap.symbol, str(twap.side), str(twap.state), twap.twap_id,
                                 twap.client_twap_id, twap.total_quantity, twap.filled_quantity,
                                 max(twap.total_quantity - twap.filled_quantity, Decimal(0)),
                                 None, twap.last_status))
    book.closed_orders = dict(Counter(str(o.state) for o in tracker.orders() if o.state.is_terminal))
    book.closed_twaps = dict(Counter(str(t.state) for t in tracker.twaps() if t.state.is_terminal))
    book.fills = len(tracker.trade_ids)
    return book


_COLUMNS = ("kind", "symbol", "side", "state", "id", "client id", "qty", "filled", "remaining", "price")


def format_table(book: RecoveredBook | list[BookRow]) -> str:
    """Plain text: a header (journal, identity, damage) when given a book, then one line per row."""
    rows = book.rows if isinstance(book, RecoveredBook) else list(book)
    lines: list[str] = []
    if isinstance(book, RecoveredBook):
        span = ""
        if book.first_ts is not None and book.last_ts is not None:
            span = f", {_when(book.first_ts)} .. {_when(book.last_ts)}"
        lines.append(f"journal {book.path}: account {book.account} on {book.venue}")
        notes = f", {book.stats.notes} settlement notes" if book.stats.notes else ""
        lines.append(f"{book.records} records{span}; replayed {book.stats.commands} sent and "
                     f"{book.stats.replies} received frames{notes}, {book.stats.skipped} skipped")
        if book.report.damaged:
            lost = "an unknown number of" if book.report.lost < 0 else str(book.report.lost)
            lines.append(f"DAMAGED: {lost} records lost from seq {book.report.first_lost_seq} "
                         f"({book.report.reason})")
        lines.append("as recovered, before any resync with the exchange")
        lines.append("")
    table = [_COLUMNS] + [(r.kind, r.symbol, r.side, r.state, r.exchange_id or "-", r.client_id,
                           _num(r.quantity), _num(r.filled), _num(r.remaining), _num(r.price))
                          for r in rows]
    if rows:
        widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
        for line in table:
            lines.append("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    else:
        lines.append("no open orders or TWAPs")
    if isinstance(book, RecoveredBook):
        closed = ", ".join(f"{n} {state}" for state, n in sorted(book.closed_orders.items())) or "none"
        lines.append("")
        lines.append(f"closed orders: {closed}")
        if book.closed_twaps:
            twaps = ", ".join(f"{n} {state}" for state, n in sorted(book.closed_twaps.items()))
            lines.append(f"closed TWAPs: {twaps}")
        lines.append(f"fills: {book.fills}")
    return "\n".join(lines) + "\n"


def _num(value: Decimal | None) -> str:
    return "-" if value is None else format(value.normalize(), "f")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ts))
