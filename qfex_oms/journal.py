"""Crash-safe SQLite journal of every frame the manager sends and receives.

Guarantees (README "Journal"): each frame is appended to an in-memory batch *before* the core applies
it, and batches reach the SQLite file (WAL mode, one transaction per batch) every few milliseconds
from a writer task running the I/O in a worker thread, so the reader never waits on the disk. A
crash can lose the last unflushed batch; that window is covered by the resync that follows every
recovery, which re-learns open orders and trades from the exchange (trade ids keep fills from being
counted twice). Each record carries a CRC32 so a torn or corrupted tail is detected, reported and cut
off; recovery continues from the last good record. A journal written for another account or venue
is refused.
"""

from __future__ import annotations

import os
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Literal

import structlog
import trio
from attrs import define, field, frozen

from qfex_oms.errors import QfexOmsError

log = structlog.get_logger("qfex_oms.journal")

FORMAT = "qfex_oms-journal-1"
Direction = Literal["out", "in"]


class JournalError(QfexOmsError):
    """The journal cannot be used: wrong account or venue, or not a journal at all."""


@frozen
class Record:
    seq: int
    ts: float
    direction: Direction
    raw: bytes


@define
class RecoveryReport:
    records: int = 0
    lost: int = 0
    first_lost_seq: int | None = None
    reason: str | None = None

    def describe(self) -> dict[str, object]:
        return {"good_records": self.records, "lost_records": self.lost,
                "first_lost_seq": self.first_lost_seq, "reason": self.reason}


def _crc(ts: float, direction: str, raw: bytes) -> int:
    return zlib.crc32(raw, zlib.crc32(f"{ts!r}|{direction}|".encode()))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    dir TEXT NOT NULL,
    raw BLOB NOT NULL,
    crc INTEGER NOT NULL
);
"""


@define(eq=False)
class Journal:
    path: Path
    account: str
    venue: str
    report: RecoveryReport = field(factory=RecoveryReport)
    flush_interval: float = 0.005
    batch_max: int = 512
    _db: sqlite3.Connection | None = field(default=None, repr=False)
    _good: list[Record] = field(factory=list, repr=False)
    _buffer: list[tuple[float, str, bytes]] = field(factory=list, repr=False)
    _wakeup: trio.Event | None = field(default=None, repr=False)
    written: int = 0

    # ------------------------------------------------------------------ opening and recovery

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, account: str, venue: str) -> Journal:
        journal = cls(Path(path), account, venue)
        journal._open()
        return journal

    def _open(self) -> None:
        existed = self.path.exists() and self.path.stat().st_size > 0
        try:
            self._db = self._connect()
            if existed:
                self._check_identity()
            else:
                self._write_identity()
            self._scan()
        except sqlite3.DatabaseError as exc:
            if self._db is None or not existed:
                raise JournalError(f"{self.path} is not a usable journal: {exc}") from None
            self._salvage(str(exc))

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(_SCHEMA)
        return db

    def _write_identity(self) -> None:
        assert self._db is not None
        with self._db:
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 [("format", FORMAT), ("account", self.account), ("venue", self.venue),
                                  ("created", repr(time.time()))])

    def _check_identity(self) -> None:
        assert self._db is not None
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if not meta:
            self._write_identity()
            return
        if meta.get("format") != FORMAT:
            raise JournalError(f"{self.path} is not a qfex_oms journal (format {meta.get('format')!r})")
        for key, expected in (("account", self.account), ("venue", self.venue)):
            if meta.get(key) != expected:
                raise JournalError(f"{self.path} belongs to {key} {meta.get(key)!r}, not {expected!r}; "
                                   "refusing to mix books")

    def _scan(self) -> None:
        """Read every record, verifying its CRC; cut the journal at the first bad one."""
        assert self._db is not None
        good: list[Record] = []
        bad_seq: int | None = None
        reason: str | None = None
        try:
            for seq, ts, direction, raw, crc in self._db.execute(
                    "SELECT seq, ts, dir, raw, crc FROM records ORDER BY seq"):
                raw = bytes(raw)
                if direction not in ("out", "in") or _crc(ts, direction, raw) != crc:
                    bad_seq, reason = seq, "checksum mismatch"
                    break
                good.append(Record(seq, ts, direction, raw))
        except sqlite3.DatabaseError as exc:
            self._good = good
            raise exc
        self._good = good
        if bad_seq is not None:
            (lost,) = self._db.execute("SELECT COUNT(*) FROM records WHERE seq >= ?", (bad_seq,)).fetchone()
            with self._db:
                self._db.execute("DELETE FROM records WHERE seq >= ?", (bad_seq,))
            self.report = RecoveryReport(len(good), lost, bad_seq, reason)
        else:
            self.report = RecoveryReport(len(good))

    def _salvage(self, reason: str) -> None:
        """The file itself is damaged: keep what was readable in a fresh file, set the rest aside."""
        good = self._good
        if self._db is not None:
            self._db.close()
        aside = self.path.with_name(f"{self.path.name}.corrupt-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.rename(Path(f"{aside}{suffix}"))
        self._db = self._connect()
        self._write_identity()
        with self._db:
            self._db.executemany("INSERT INTO records (seq, ts, dir, raw, crc) VALUES (?, ?, ?, ?, ?)",
                                 [(r.seq, r.ts, r.direction, r.raw, _crc(r.ts, r.direction, r.raw))
                                  for r in good])
        self._good = good
        last = good[-1].seq if good else 0
        self.report = RecoveryReport(len(good), -1, last + 1, f"damaged file ({reason}); "
                                     f"the unreadable part was moved to {aside.name}")
        log.warning("journal file damaged; salvaged the readable records", **self.report.describe())

    def records(self) -> list[Record]:
        return list(self._good)

    # ------------------------------------------------------------------ appending

    def append_sent(self, raw: bytes) -> None:
        self._append("out", raw)

    def append_received(self, raw: bytes | str) -> None:
        self._append("in", raw.encode() if isinstance(raw, str) else raw)

    def _append(self, direction: str, raw: bytes) -> None:
        self._buffer.append((time.time(), direction, raw))
        if len(self._buffer) >= self.batch_max and self._wakeup is not None:
            self._wakeup.set()

    def _write(self, batch: list[tuple[float, str, bytes]]) -> None:
        assert self._db is not None
        rows = [(ts, d, raw, _crc(ts, d, raw)) for ts, d, raw in batch]
        with self._db:
            self._db.executemany("INSERT INTO records (ts, dir, raw, crc) VALUES (?, ?, ?, ?)", rows)
        self.written += len(rows)

    async def flush(self) -> None:
        if self._buffer:
            batch, self._buffer = self._buffer, []
            await trio.to_thread.run_sync(self._write, batch)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task: flush the batch every ``flush_interval`` or when it grows large."""
        task_status.started()
        while True:
            self._wakeup = trio.Event()
            with trio.move_on_after(self.flush_interval):
                await self._wakeup.wait()
            await self.flush()

    async def aclose(self) -> None:
        await self.flush()
        db, self._db = self._db, None
        if db is not None:
            await trio.to_thread.run_sync(db.close)

    def close(self) -> None:
        """Synchronous close for tools that never ran the writer (e.g. ``qfex-oms orders``)."""
        if self._buffer:
            batch, self._buffer = self._buffer, []
            self._write(batch)
        if self._db is not None:
            self._db.close()
            self._db = None
