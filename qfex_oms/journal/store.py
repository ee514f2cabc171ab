"""Crash-safe SQLite journal of every frame the manager sends and receives.

Guarantees (README "Journal"):

* Every frame is appended to an in-memory batch *before* the core applies it (received frames) or
  before it reaches the wire (sent frames). Appending is O(1): a tuple on a list, no I/O.
* A writer task commits the batch to the SQLite file (WAL mode, ``synchronous=NORMAL``) as ONE
  transaction, a few milliseconds after its first frame, from a worker thread, so the reader never
  waits on the disk. A committed batch survives the death of the process (``kill -9``, OOM); a power
  loss may also take the last committed batches (NORMAL does not fsync each commit).
* A crash can therefore lose the frames of the last few milliseconds. That window is covered by the
  resync that follows every recovery, which re-learns open orders and trades from the exchange
  (trade ids keep fills from being counted twice).
* Each record carries a CRC32 of its timestamp, direction and bytes: a corrupted tail is detected,
  reported (``journal.report``), moved to the ``damaged`` table and cut off; recovery continues from
  the last good record. A file SQLite itself cannot read any more is salvaged: its readable records
  go to a fresh file and the damaged file is moved aside (``<name>.corrupt-<time>``).
* A journal written for another account or venue, or a file that is not a journal, is refused with
  ``JournalError``. One process at a time may write a journal (an advisory lock on ``<path>.lock``).
* A commit that fails keeps its frames in memory, in order, and is retried with backoff. The journal
  then reports itself unhealthy (``healthy``, ``on_health_change``) until a commit succeeds again, so
  the manager can apply its ``JournalFailurePolicy`` (by default: no new orders while it cannot write).
* ``compact()`` removes the records of orders that closed longer ago than a given age and never a
  record that an open order depends on (see ``plan_compaction``).
"""

from __future__ import annotations

import contextlib
import enum
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio
from attrs import define, field, frozen

from qfex_oms.errors import QfexOmsError
from qfex_oms.logs import get_logger

try:  # advisory single-writer lock; not available on Windows, where it is skipped
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None  # type: ignore[assignment]

log = get_logger("qfex_oms.journal")

# -2 added "note" records. A journal this build writes to is marked -2, so a build that knows only -1
# refuses it (naming the format) instead of taking a note for a corrupt record and cutting the tail.
FORMAT = "qfex_oms-journal-2"
_READABLE_FORMATS = frozenset(("qfex_oms-journal-1", FORMAT))
SQLITE_MAGIC = b"SQLite format 3\x00"
# "out": a frame sent; "in": a frame received; "note": a conclusion a snapshot reached that no frame
# states (qfex_oms.core.snapshot.settlement_note), replayed as such.
Direction = Literal["out", "in", "note"]
_DIRECTIONS = frozenset(("out", "in", "note"))
Row = tuple[float, str, bytes | str]


class JournalError(QfexOmsError):
    """The journal cannot be used: wrong account or venue, not a journal, damaged identity, in use."""


class JournalFailurePolicy(enum.StrEnum):
    """What trading does while the journal cannot write (a full disk, a read-only file).

    Frames are kept in memory and retried either way; what is at stake is crash safety: a crash while
    the journal cannot write loses what it promised to keep.
    """

    HALT_NEW_ORDERS = "halt_new_orders"  # refuse new orders and changes; cancels and the kill switch go on
    CONTINUE = "continue"  # trade on without crash safety (logged loudly)

    DEFAULT = HALT_NEW_ORDERS


HealthListener = Callable[[bool, str | None], None]


@frozen
class Record:
    seq: int
    ts: float
    direction: Direction
    raw: bytes


@define
class RecoveryReport:
    """What opening the journal found. ``lost`` is -1 when a damaged file hid how much was lost."""

    records: int = 0
    lost: int = 0
    first_lost_seq: int | None = None
    reason: str | None = None
    moved_to: str | None = None

    @property
    def damaged(self) -> bool:
        return self.lost != 0 or self.reason is not None

    def describe(self) -> dict[str, object]:
        return {"good_records": self.records, "lost_records": self.lost,
                "first_lost_seq": self.first_lost_seq, "reason": self.reason, "moved_to": self.moved_to}


@define
class CompactionReport:
    cutoff: float
    records_before: int = 0
    records_deleted: int = 0
    orders_removed: int = 0
    twaps_removed: int = 0

    def describe(self) -> dict[str, object]:
        return {"cutoff": self.cutoff, "records_before": self.records_before,
                "records_deleted": self.records_deleted, "orders_removed": self.orders_removed,
                "twaps_removed": self.twaps_removed}


def venue_key(url: str) -> str:
    """The venue identity stored in a journal: the URL without ``api_key``, default port or final ``/``."""
    try:
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return url.strip()
    if not scheme or not host:
        return url.strip()
    if ":" in host:
        host = f"[{host}]"
    if port is not None and (scheme, port) not in (("ws", 80), ("wss", 443), ("http", 80), ("https", 443)):
        host = f"{host}:{port}"
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query) if k != "api_key"))
    return urlunsplit((scheme, host, parts.path.rstrip("/"), query, ""))


def _fix_page_count(path: Path) -> None:
    """Make the header's page count match the whole pages in the file (SQLite refuses a file shorter
    than its header says, even for the pages still there)."""
    with open(path, "r+b") as f:
        header = f.read(100)
        if len(header) < 100 or not header.startswith(SQLITE_MAGIC):
            return
        page_size = int.from_bytes(header[16:18], "big")
        page_size = 65536 if page_size == 1 else page_size
        if page_size < 512:
            return
        pages = os.fstat(f.fileno()).st_size // page_size
        f.truncate(pages * page_size)
        f.seek(28)
        f.write(pages.to_bytes(4, "big"))


def _crc(ts: float, direction: str, raw: bytes) -> int:
    # float(): the REAL column gives back 100.0 for a clock that returned 100
    return zlib.crc32(raw, zlib.crc32(f"{float(ts)!r}|{direction}|".encode()))


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts REAL NOT NULL,
    dir TEXT NOT NULL,
    raw BLOB NOT NULL,
    crc INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS damaged (
    seq INTEGER PRIMARY KEY,
    ts REAL,
    dir TEXT,
    raw BLOB,
    crc INTEGER,
    found REAL NOT NULL,
    reason TEXT NOT NULL
);
"""
_OUR_TABLES = frozenset({"meta", "records", "damaged", "sqlite_sequence"})
_INSERT = "INSERT INTO records (ts, dir, raw, crc) VALUES (?, ?, ?, ?)"


class _Damaged(Exception):
    """SQLite could not read part of the file; ``good`` holds the records read before that."""

    def __init__(self, good: list[Record], error: sqlite3.DatabaseError) -> None:
        super().__init__(str(error))
        self.good = good
        self.error = error


def _is_corruption(exc: sqlite3.DatabaseError) -> bool:
    """A damaged file (salvage it), not a busy, read-only or full disk (refuse, change nothing)."""
    name: str | None = getattr(exc, "sqlite_errorname", None)
    if name is not None:
        return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB", "SQLITE_IOERR_SHORT_READ"))
    return type(exc) is sqlite3.DatabaseError


@define(eq=False)
class Journal:
    path: Path
    account: str
    venue: str
    report: RecoveryReport = field(factory=RecoveryReport)
    flush_interval: float = 0.005
    batch_max: int = 512
    read_only: bool = False
    clock: Callable[[], float] = time.time
    written: int = 0  # records committed
    batches: int = 0  # transactions committed
    failures: int = 0  # failed commits (the batch is kept and retried)
    dropped: int = 0  # frames appended after close (not journaled)
    healthy: bool = True  # False from a failed commit until a commit succeeds again
    last_error: str | None = None  # why the last commit failed, while unhealthy
    # Called in the trio thread on each change of ``healthy``, with the error when it turns False.
    on_health_change: HealthListener | None = field(default=None, repr=False)
    _failing: int = field(default=0, repr=False)  # consecutive failed commits (the retry backoff)
    _db: sqlite3.Connection | None = field(default=None, repr=False)
    _db_lock: threading.Lock = field(factory=threading.Lock, repr=False)
    _flush_lock: trio.Lock | None = field(default=None, repr=False)
    _lock_file: Any = field(default=None, repr=False)
    _cached: list[Record] | None = field(default=None, repr=False)
    _buffer: list[Row] = field(factory=list, repr=False)
    _wakeup: trio.Event | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    # ------------------------------------------------------------------ opening and recovery

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, account: str, venue: str,
             clock: Callable[[], float] = time.time, flush_interval: float = 0.005,
             batch_max: int = 512) -> Journal:
        """Open (or create) the journal for writing; check its identity; cut a damaged tail.

        ``venue`` is the exchange URL (stored as ``venue_key(venue)``). Raises ``JournalError``.
        """
        journal = cls(Path(path), account, venue_key(venue), clock=clock, flush_interval=flush_interval,
                      batch_max=batch_max)
        journal._open()
        return journal

    @classmethod
    def read(cls, path: str | os.PathLike[str], *, account: str | None = None,
             venue: str | None = None) -> Journal:
        """Open an existing journal read-only (no lock, nothing modified, damage only reported).

        ``account``/``venue`` default to the identity stored in the journal; when given they are checked.
        """
        journal = cls(Path(path), account or "", venue_key(venue) if venue else "", read_only=True)
        if not journal._has_content():
            raise JournalError(f"{journal.path} does not exist or is empty: no journal to read")
        journal._open()
        return journal

    def _has_content(self) -> bool:
        return any(Path(f"{self.path}{suffix}").exists() and Path(f"{self.path}{suffix}").stat().st_size > 0
                   for suffix in ("", "-wal"))

    def _open(self) -> None:
        if not self.read_only:
            self._take_lock()
        try:
            self._open_db()
        except BaseException:
            self._close_db()
            self._release_lock()
            raise

    def _open_db(self) -> None:
        existed = self._has_content()
        if existed:
            self._check_header()
        try:
            self._db = self._connect(self.path)
        except sqlite3.DatabaseError as exc:
            raise JournalError(f"{self.path} is not a usable journal: {exc}") from None
        if not existed:
            self._set_modes(self._db)
            self._init_schema()
            self.report = RecoveryReport(0)
            return
        good: list[Record] = []
        identity_checked = False
        try:
            self._check_identity(self._db)
            identity_checked = True
            if self._has_table("records"):
                good = self._scan()
            if not self.read_only:
                self._set_modes(self._db)
                self._init_schema()
            return
        except _Damaged as exc:
            error, good = exc.error, exc.good
        except sqlite3.DatabaseError as exc:
            error = exc
        if not _is_corruption(error):
            raise JournalError(f"cannot use journal {self.path}: {error}") from None
        # SQLite refuses the file (a truncated file is refused as a whole): read a repaired copy.
        copy_good, copy_last = self._read_repaired_copy(check_identity=not identity_checked)
        if len(copy_good) > len(good):
            good = copy_good
        self._damaged_file(good, str(error), copy_last)

    def _read_repaired_copy(self, *, check_identity: bool) -> tuple[list[Record], int | None]:
        """Copy the damaged file, fix the page count in its header to the pages really there, and
        read the identity and the records up to the first unreadable one. The original is untouched.

        Returns the records and the last seq SQLite says was ever assigned (None if unreadable).
        """
        with tempfile.TemporaryDirectory(prefix="qfex-journal-salvage-") as tmp:
            copy = Path(tmp) / "copy.sqlite"
            try:
                shutil.copyfile(self.path, copy)
                if Path(f"{self.path}-wal").exists():
                    shutil.copyfile(f"{self.path}-wal", f"{copy}-wal")
                _fix_page_count(copy)
            except OSError as exc:
                raise JournalError(f"{self.path} is damaged and cannot be copied for salvage: "
                                   f"{exc}") from None
            db = sqlite3.connect(copy, isolation_level=None)
            try:
                try:
                    if check_identity:
                        self._check_identity(db)
                except sqlite3.DatabaseError as exc:
                    raise JournalError(f"{self.path} is damaged and its identity (account, venue) cannot "
                                       f"be read ({exc}); move it aside to start a new journal") from None
                good: list[Record] = []
                try:
                    for item in self._iter_verified(db):
                        if isinstance(item, tuple):
                            break
                        good.append(item)
                except sqlite3.DatabaseError:
                    pass
                last: int | None = None
                for query in ("SELECT seq FROM sqlite_sequence WHERE name = 'records'",
                              "SELECT MAX(seq) FROM records"):
                    try:
                        row = db.execute(query).fetchone()
                    except sqlite3.DatabaseError:
                        continue
                    if row is not None and row[0] is not None:
                        last = int(row[0])
                        break
                return good, last
            finally:
                db.close()

    def _has_table(self, name: str) -> bool:
        assert self._db is not None
        return self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name=?",
                                (name,)).fetchone() is not None

    def _check_header(self) -> None:
        try:
            with open(self.path, "rb") as f:
                header = f.read(len(SQLITE_MAGIC))
        except FileNotFoundError:
            return  # only a -wal file: SQLite decides
        except OSError as exc:
            raise JournalError(f"{self.path} cannot be read: {exc}") from None
        if header and header != SQLITE_MAGIC:
            raise JournalError(f"{self.path} is not a qfex_oms journal (not an SQLite file)")

    def _connect(self, path: Path) -> sqlite3.Connection:
        if self.read_only:
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                 check_same_thread=False, isolation_level=None)
        else:
            db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=5000")
        except BaseException:
            db.close()
            raise
        return db

    @staticmethod
    def _set_modes(db: sqlite3.Connection) -> None:
        """WAL and NORMAL sync, set only once the file is known to be ours (never on a foreign file)."""
        mode = db.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode is None or str(mode[0]).lower() != "wal":
            raise sqlite3.OperationalError(f"cannot switch the journal to WAL mode (got {mode!r})")
        db.execute("PRAGMA synchronous=NORMAL")

    def _init_schema(self) -> None:
        assert self._db is not None
        self._db.executescript(_SCHEMA)
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        if meta.get("account") is None:
            self._write_identity()
        elif meta.get("format") != FORMAT:
            with self._transaction(self._db):
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))

    def _write_identity(self) -> None:
        assert self._db is not None
        with self._transaction(self._db):
            self._db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                 [("format", FORMAT), ("account", self.account), ("venue", self.venue),
                                  ("created", repr(self.clock()))])

    def _check_identity(self, db: sqlite3.Connection) -> None:
        """Refuse another account's or venue's journal, and any SQLite file that is not a journal."""
        tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        foreign = sorted(tables - _OUR_TABLES)
        if foreign:
            raise JournalError(f"{self.path} is not a qfex_oms journal (it has tables {foreign})")
        meta = dict(db.execute("SELECT key, value FROM meta")) if "meta" in tables else {}
        if not meta.get("account"):
            has_records = "records" in tables and db.execute(
                "SELECT 1 FROM records LIMIT 1").fetchone() is not None
            if has_records:
                raise JournalError(f"{self.path} has records but no identity (account, venue): "
                                   "refusing to guess whose book it is")
            if self.read_only and not (self.account and self.venue):
                raise JournalError(f"{self.path} has no identity yet (account, venue): pass them")
            return  # created but never written: ours to initialise
        if meta.get("format") not in _READABLE_FORMATS:
            raise JournalError(f"{self.path} is not a qfex_oms journal (format {meta.get('format')!r})")
        stored_account, stored_venue = meta.get("account", ""), venue_key(meta.get("venue", ""))
        if self.read_only:
            self.account = self.account or stored_account
            self.venue = self.venue or stored_venue
        if (stored_account, stored_venue) != (self.account, self.venue):
            wrong = [what for what, a, b in (("account", stored_account, self.account),
                                             ("venue", stored_venue, self.venue)) if a != b]
            raise JournalError(
                f"journal {self.path} was written for account {stored_account!r} on venue "
                f"{stored_venue!r}, but this is account {self.account!r} on venue {self.venue!r} "
                f"(different {' and '.join(wrong)}); refusing to mix books: use another journal path")

    def _iter_verified(self, db: sqlite3.Connection | None = None) -> Iterator[Record | tuple[int, str]]:
        """Every record in seq order; a record failing its check is yielded as ``(seq, reason)``."""
        db = db or self._db
        assert db is not None
        for seq, ts, direction, raw, crc in db.execute(
                "SELECT seq, ts, dir, raw, crc FROM records ORDER BY seq"):
            if not isinstance(raw, bytes | bytearray | memoryview) or not isinstance(ts, float | int):
                yield seq, "malformed record"
                continue
            raw = bytes(raw)
            if direction not in _DIRECTIONS or _crc(ts, direction, raw) != crc:
                yield seq, "checksum mismatch"
                continue
            yield Record(seq, ts, direction, raw)

    def _scan(self) -> list[Record]:
        """Read every record, verifying its CRC; cut the journal at the first bad one."""
        assert self._db is not None
        good: list[Record] = []
        bad: tuple[int, str] | None = None
        try:
            for item in self._iter_verified():
                if isinstance(item, tuple):
                    bad = item
                    break
                good.append(item)
        except sqlite3.DatabaseError as exc:
            raise _Damaged(good, exc) from None
        self._cached = good
        if bad is None:
            self.report = RecoveryReport(len(good))
            return good
        bad_seq, reason = bad
        (lost,) = self._db.execute("SELECT COUNT(*) FROM records WHERE seq >= ?", (bad_seq,)).fetchone()
        self.report = RecoveryReport(len(good), lost, bad_seq, f"{reason} at seq {bad_seq}")
        if not self.read_only:
            self._db.executescript(_SCHEMA)
            with self._transaction(self._db):
                self._db.execute(
                    "INSERT OR REPLACE INTO damaged SELECT seq, ts, dir, raw, crc, ?, ? FROM records "
                    "WHERE seq >= ?", (self.clock(), reason, bad_seq))
                self._db.execute("DELETE FROM records WHERE seq >= ?", (bad_seq,))
        log.warning("journal tail damaged; cut at the last good record", path=str(self.path),
                    **self.report.describe())
        return good

    def _damaged_file(self, good: list[Record], reason: str, last_seq: int | None) -> None:
        """SQLite cannot read the whole file: salvage (writer) or just report (read-only)."""
        last_good = good[-1].seq if good else 0
        lost = -1 if last_seq is None else max(last_seq - last_good, 0)
        first_lost = last_good + 1
        self._cached = good
        if self.read_only:
            self.report = RecoveryReport(len(good), lost, first_lost, f"damaged file ({reason})")
            log.warning("journal file damaged (read-only: not repaired)", path=str(self.path),
                        **self.report.describe())
            return
        self._close_db()
        aside = self._aside_name()
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.rename(Path(f"{aside}{suffix}"))
        self._db = self._connect(self.path)
        self._set_modes(self._db)
        self._db.executescript(_SCHEMA)
        self._write_identity()
        with self._transaction(self._db):
            self._db.executemany("INSERT INTO records (seq, ts, dir, raw, crc) VALUES (?, ?, ?, ?, ?)",
                                 [(r.seq, r.ts, r.direction, r.raw, _crc(r.ts, r.direction, r.raw))
                                  for r in good])
            if last_seq is not None and last_seq > last_good:  # never reuse a lost record's seq
                self._db.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'records'", (last_seq,))
        self.report = RecoveryReport(len(good), lost, first_lost,
                                     f"damaged file ({reason}); kept the {len(good)} readable records, "
                                     f"moved the damaged file to {aside.name}", str(aside))
        log.warning("journal file damaged; salvaged the readable records", path=str(self.path),
                    **self.report.describe())

    def _aside_name(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%S")
        for n in range(1000):
            candidate = self.path.with_name(f"{self.path.name}.corrupt-{stamp}" + (f"-{n}" if n else ""))
            if not any(Path(f"{candidate}{s}").exists() for s in ("", "-wal", "-shm")):
                return candidate
        raise JournalError(f"cannot find a free name to move the damaged {self.path} aside")

    @staticmethod
    @contextlib.contextmanager
    def _transaction(db: sqlite3.Connection) -> Iterator[None]:
        """One explicit transaction (the connection is in autocommit mode: no hidden BEGINs)."""
        db.execute("BEGIN IMMEDIATE")
        try:
            yield
            db.execute("COMMIT")  # inside: a COMMIT that fails (disk full) may leave the transaction open
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ single writer

    def _take_lock(self) -> None:
        if fcntl is None:
            return
        lock_path = Path(f"{self.path}.lock")
        try:
            handle = open(lock_path, "a+b")  # noqa: SIM115 - held until close()
        except OSError as exc:
            raise JournalError(f"cannot create the journal lock {lock_path}: {exc}") from None
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise JournalError(f"journal {self.path} is in use by another order manager "
                               f"(lock {lock_path.name} is held)") from None
        self._lock_file = handle

    def _release_lock(self) -> None:
        handle, self._lock_file = self._lock_file, None
        if handle is not None:
            handle.close()  # closing the descriptor drops the flock

    # ------------------------------------------------------------------ reading

    def records(self) -> list[Record]:
        """The good records. The list read at open is handed over once (and not kept), later calls read
        the file again."""
        if self._cached is not None:
            cached, self._cached = self._cached, None
            return cached
        return self.read_records()

    def read_records(self) -> list[Record]:
        """Every record now in the file (verified; a record failing its check ends the list)."""
        with self._db_lock:
            if self._db is None:
                raise JournalError(f"journal {self.path} is closed")
            good: list[Record] = []
            for item in self._iter_verified():
                if isinstance(item, tuple):
                    break
                good.append(item)
            return good

    def meta(self) -> dict[str, str]:
        with self._db_lock:
            if self._db is None:
                raise JournalError(f"journal {self.path} is closed")
            return dict(self._db.execute("SELECT key, value FROM meta"))

    # ------------------------------------------------------------------ appending (O(1), no I/O)

    def append_sent(self, raw: bytes) -> None:
        self._append("out", raw)

    def append_received(self, raw: bytes | str) -> None:
        self._append("in", raw)  # a str frame is encoded by the writer, off the reader's path

    def append_note(self, raw: bytes) -> None:
        self._append("note", raw)

    def _append(self, direction: str, raw: bytes | str) -> None:
        if self._closed:
            self.dropped += 1
            if self.dropped == 1:
                log.warning("frame after the journal was closed: not journaled", path=str(self.path))
            return
        buffer = self._buffer
        buffer.append((self.clock(), direction, raw))
        n = len(buffer)
        if n == 1 or n >= self.batch_max:
            wakeup = self._wakeup
            if wakeup is not None:
                wakeup.set()

    @property
    def pending(self) -> int:
        """Frames appended but not committed yet."""
        return len(self._buffer)

    # ------------------------------------------------------------------ writing (writer task)

    def _write(self, batch: list[Row]) -> None:
        """Commit one batch as one transaction (runs in a worker thread, which also does the CRCs)."""
        rows = []
        for ts, d, raw in batch:
            data = raw.encode() if isinstance(raw, str) else bytes(raw)
            rows.append((ts, d, data, _crc(ts, d, data)))
        with self._db_lock:
            db = self._db
            if db is None:
                raise JournalError(f"journal {self.path} is closed")
            with self._transaction(db):
                db.executemany(_INSERT, rows)
            self.written += len(rows)
            self.batches += 1

    def _lock(self) -> trio.Lock:
        if self._flush_lock is None:
            self._flush_lock = trio.Lock()
        return self._flush_lock

    async def flush(self) -> None:
        """Commit everything appended so far (batches are committed in append order)."""
        async with self._lock():
            if not self._buffer or self._db is None:
                return
            batch, self._buffer = self._buffer, []
            try:
                await trio.to_thread.run_sync(self._write, batch)
            except (sqlite3.Error, JournalError) as exc:
                self._buffer[:0] = batch  # keep them, in order, for the next attempt
                self.failures += 1
                self._failing += 1
                self._set_health(False, str(exc))
                raise
            self._failing = 0
            self._set_health(True, None)

    def _set_health(self, healthy: bool, error: str | None) -> None:
        """Record a commit's outcome; on a change, log it and tell the listener (in the trio thread:
        ``flush`` calls this after the worker thread returned)."""
        if healthy == self.healthy:
            self.last_error = error
            return
        self.healthy, self.last_error = healthy, error
        if healthy:
            log.warning("journal writes again: crash safety restored", path=str(self.path),
                        failures=self.failures)
        else:
            log.error("journal cannot write: frames kept in memory and retried; a crash now loses them",
                      path=str(self.path), error=error, pending=len(self._buffer))
        listener = self.on_health_change
        if listener is not None:
            try:
                listener(healthy, error)
            except Exception:  # the listener's bug must not stop the writer
                log.exception("journal health listener failed", healthy=healthy)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """The writer task: commit a batch ``flush_interval`` after its first frame, or when it is full.

        Idle, it sleeps until the next append. A failed commit is logged and retried with backoff (at
        most 1 s), the frames kept in memory in order (the manager is never taken down by its journal):
        while unhealthy the buffer is never empty, so the retries are what notices the disk is back.
        """
        task_status.started()
        try:
            while not self._closed:
                if not self._buffer:
                    self._wakeup = trio.Event()
                    await self._wakeup.wait()
                if len(self._buffer) < self.batch_max:
                    self._wakeup = trio.Event()
                    with trio.move_on_after(self.flush_interval):
                        await self._wakeup.wait()
                try:
                    await self.flush()
                except (sqlite3.Error, JournalError) as exc:
                    # The change of health was logged once, at error level; each retry is detail.
                    log.debug("journal write failed; will retry", path=str(self.path), error=str(exc),
                              pending=len(self._buffer), failures=self.failures)
                    await trio.sleep(min(1.0, 0.01 * 2 ** min(self._failing, 7)))
        finally:
            self._wakeup = None

    async def aclose(self) -> None:
        """Commit what is pending, then close the file and release the writer lock.

        Frames appended after this started are dropped (and counted in ``dropped``).
        """
        if self._closed:
            return
        with trio.CancelScope(shield=True):
            self._closed = True
            if self._wakeup is not None:
                self._wakeup.set()  # let the writer task see it and return
            async with self._lock():  # after any commit in progress, so the order is kept
                if self._buffer and self._db is not None:
                    batch, self._buffer = self._buffer, []
                    try:
                        await trio.to_thread.run_sync(self._write, batch)
                    except (sqlite3.Error, JournalError) as exc:
                        log.error("journal: final write failed; frames lost", path=str(self.path),
                                  error=str(exc), lost=len(batch))
                await trio.to_thread.run_sync(self._close_db)
        self._release_lock()

    def close(self) -> None:
        """Synchronous close for tools that never ran the writer (and for the read-only view)."""
        if self._closed:
            return
        if self._buffer and self._db is not None:
            batch, self._buffer = self._buffer, []
            self._write(batch)
        self._closed = True
        self._close_db()
        self._release_lock()

    def _close_db(self) -> None:
        with self._db_lock:
            db, self._db = self._db, None
            if db is not None:
                db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ retention

    def compact(self, older_than_seconds: float, now: float | None = None, *,
                vacuum: bool = False) -> CompactionReport:
        """Delete the records that only concern orders (and TWAPs) closed more than the age ago.

        Open orders are never touched: replaying the compacted journal gives every remaining order,
        open or closed, exactly as before (state, quantities, fills). See ``plan_compaction``. This is
        blocking I/O: from trio, ``await journal.compact_async(...)`` (or run it before the writer).
        """
        if self.read_only:
            raise JournalError(f"journal {self.path} is open read-only: cannot compact it")
        if older_than_seconds < 0:
            raise ValueError("older_than_seconds must be >= 0")
        cutoff = (self.clock() if now is None else now) - older_than_seconds
        with self._db_lock:
            db = self._db
            if db is None:
                raise JournalError(f"journal {self.path} is closed")
            records: list[Record] = []
            for item in self._iter_verified():
                if isinstance(item, tuple):
                    break
                records.append(item)
            from qfex_oms.journal.compaction import plan_compaction  # it replays through the core

            plan = plan_compaction(records, cutoff)
            if plan.delete:
                with self._transaction(db):
                    db.executemany("DELETE FROM records WHERE seq = ?", ((s,) for s in sorted(plan.delete)))
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('compacted_before', ?)", (repr(cutoff),))
            if vacuum:
                db.execute("VACUUM")
                db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        self._cached = None
        report = CompactionReport(cutoff, len(records), len(plan.delete), plan.orders_removed,
                                  plan.twaps_removed)
        log.info("journal compacted", path=str(self.path), **report.describe())
        return report

    async def compact_async(self, older_than_seconds: float, now: float | None = None, *,
                            vacuum: bool = False) -> CompactionReport:
        """``compact`` from a trio task while the writer runs: pending frames are committed first."""
        async with self._lock():
            if self._buffer and self._db is not None:
                batch, self._buffer = self._buffer, []
                await trio.to_thread.run_sync(self._write, batch)
            return await trio.to_thread.run_sync(
                lambda: self.compact(older_than_seconds, now, vacuum=vacuum))
