"""The journal floor: a crash-safe SQLite record of every frame, its recovery, compaction and view.

May import ``protocol``, ``core``, ``errors`` and ``logs``; never the client or the app. ``store``
writes and reads the file (and salvages a damaged one), ``compaction`` plans what may be dropped by
replaying through the core, ``view`` renders a journal for ``qfex-oms orders --journal``.
"""

from qfex_oms.journal.store import (
    FORMAT,
    CompactionReport,
    Direction,
    HealthListener,
    Journal,
    JournalError,
    JournalFailurePolicy,
    Record,
    RecoveryReport,
    venue_key,
)

__all__ = [
    "FORMAT",
    "CompactionReport",
    "Direction",
    "HealthListener",
    "Journal",
    "JournalError",
    "JournalFailurePolicy",
    "Record",
    "RecoveryReport",
    "venue_key",
]
