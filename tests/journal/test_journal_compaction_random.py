"""Compaction against many random histories: whatever the cut-off, the survivors replay identically.

The histories are plausible rather than realistic: client ids are reused, answers come late or
never, cancels cross fills, connections drop, cancel-all runs, all at random times. The property is
the one ``compact`` promises: every order left replays exactly as before, and no order that is
open (or in flight) at the end is removed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from journalkit import Script, compact_and_compare


def random_history(rng: random.Random) -> Script:
    s = Script()
    t = 1_000.0
    s.at(t).connect()
    pending: list[str] = []  # client ids sent, not answered yet (in order)
    live: dict[str, tuple[str, int, int]] = {}  # order_id -> (client id, quantity, filled)
    n = 0
    trade = 0
    for _ in range(rng.randint(5, 60)):
        t += rng.choice([0.1, 1, 5, 30])
        s.at(t)
        roll = rng.random()
        if roll < 0.25 or not (pending or live):
            cid = rng.choice("abcdefghijkl")
            s.place(cid, qty="4")
            pending.append(cid)
        elif roll < 0.40 and pending:
            cid = pending.pop(0)
            n += 1
            oid = f"O{n}"
            if rng.random() < 0.15:
                s.rejected(cid)
            else:
                s.ack(cid, oid, qty="4")
                live[oid] = (cid, 4, 0)
        elif roll < 0.55 and live:
            oid = rng.choice(sorted(live))
            cid, qty, filled = live[oid]
            q = rng.randint(1, qty - filled)
            trade += 1
            filled += q
            s.fill(cid, oid, f"T{trade}", str(q), str(qty - filled), total=str(qty))
            if filled == qty:
                del live[oid]
            else:
                live[oid] = (cid, qty, filled)
        elif roll < 0.70 and live:
            oid = rng.choice(sorted(live))
            cid, qty, filled = live[oid]
            s.cancel(oid)
            if rng.random() < 0.8:
                s.cancelled(cid, oid, qty=str(qty), leaves=str(qty - filled))
                del live[oid]
        elif roll < 0.75 and live:
            cid = rng.choice(sorted({c for c, _, _ in live.values()}))
            s.cancel_client(cid)
            for oid, (c, qty, filled) in sorted(live.items()):
                if c == cid and rng.random() < 0.9:
                    s.cancelled(c, oid, qty=str(qty), leaves=str(qty - filled))
                    del live[oid]
        elif roll < 0.80:
            s.cancel_all()
            for oid, (c, qty, filled) in sorted(live.items()):
                if rng.random() < 0.9:
                    s.cancelled(c, oid, qty=str(qty), leaves=str(qty - filled))
                    del live[oid]
        elif roll < 0.90:
            s.connect()
            pending.clear()  # answers in flight are lost with the connection
        else:
            s.snapshot()
    return s


@pytest.mark.parametrize("seed", range(60))
def test_compaction_of_random_histories(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    script = random_history(rng)
    path = tmp_path / "j.sqlite"
    script.write(path)
    times = sorted({ts for ts, _, _ in script.items})
    for _ in range(3):
        cutoff = rng.choice(times) + rng.choice([-0.05, 0.05])
        compact_and_compare(path, older_than=10, now=cutoff + 10)
    compact_and_compare(path, older_than=10, now=times[-1] + 1e6)
