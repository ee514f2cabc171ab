"""Helpers of the journal tests (imported by name: the tests folder has no packages).

Real SQLite files in ``tmp_path``, a real simulator on loopback, and real subprocesses for the kill
tests (which import ``simkit`` and ``waiting`` from tests/support, like the tests). Waits are
bounded by real time (``wait_until``), never by an autojump clock.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import trio
from simkit import PUB

from qfex_oms import Order, OrderManager
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.replay import replay
from qfex_oms.journal import Journal, Record
from qfex_oms.sim import Venue

HERE = Path(__file__).resolve().parent
STRATEGY = HERE / "crash_strategy.py"
SUPPORT = HERE.parent / "support"


def open_journal(path: Path, account: str = "acct", venue: str = "ws://venue:1", **kw: Any) -> Journal:
    return Journal.open(path, account=account, venue=venue, **kw)


def order_frame(i: int) -> bytes:
    """A plausible sent frame (an add_order), distinct per ``i``."""
    return json.dumps({"type": "add_order", "params": {
        "symbol": "AAPL-USD", "side": "BUY", "order_type": "LIMIT", "order_time_in_force": "GTC",
        "quantity": "1", "price": str(100 + i % 50), "client_order_id": f"c{i}"}}).encode()


def ack_frame(i: int) -> str:
    return json.dumps({"order_response": {
        "order_id": f"o{i}", "symbol": "AAPL-USD", "status": "ACK", "side": "BUY", "type": "LIMIT",
        "time_in_force": "GTC", "quantity": "1", "price": str(100 + i % 50), "quantity_remaining": "1",
        "client_order_id": f"c{i}", "update_time": 1.0}})


def write_records(path: Path, frames: Iterable[tuple[str, bytes]], **kw: Any) -> None:
    """Append frames synchronously and close (the writer task is not needed for a fixture)."""
    journal = open_journal(path, **kw)
    for direction, raw in frames:
        if direction == "out":
            journal.append_sent(raw)
        else:
            journal.append_received(raw)
    journal.close()


def sample_frames(n: int) -> list[tuple[str, bytes]]:
    frames: list[tuple[str, bytes]] = []
    for i in range(n):
        frames.append(("out", order_frame(i)))
        frames.append(("in", ack_frame(i).encode()))
    return frames


def wal_size(path: Path) -> int:
    return os.path.getsize(f"{path}-wal")


def sql(path: Path, statement: str, *args: Any) -> list[tuple[Any, ...]]:
    """Run one statement on the file with plain sqlite3 (to damage or inspect it behind the journal)."""
    db = sqlite3.connect(path, isolation_level=None)
    try:
        return db.execute(statement, args).fetchall()
    finally:
        db.close()


def replayed(records: Iterable[Record]) -> OmsCore:
    core = OmsCore()
    replay(core, ((r.direction, r.raw) for r in records))
    return core


def order_view(order: Order) -> tuple[Any, ...]:
    """Everything that must survive compaction and recovery for one order."""
    return (order.order_id, order.symbol, order.client_order_id, str(order.state), order.quantity,
            order.price, order.filled_quantity, order.remaining_quantity, order.fill_total,
            tuple(sorted(f.trade_id for f in order.fills or ())), order.twap_id)


# ---------------------------------------------------------------------- compaction


def by_identity(core: OmsCore) -> dict[tuple[object, ...], tuple[object, ...]]:
    """Orders by (symbol, client id, order id); orders never ACKed by their rank in their client-id
    group (compaction keeps or removes a group as a whole, so ranks survive it)."""
    views = {}
    unacked: dict[tuple[str, str], int] = {}
    for order in sorted(core.tracker.orders(), key=lambda o: o.local_id):
        group = (order.symbol, order.client_order_id)
        if order.order_id is None:
            unacked[group] = unacked.get(group, 0) + 1
        key = (*group, order.order_id or f"#{unacked[group]}")
        assert key not in views
        views[key] = order_view(order)
    return views


def compact_and_compare(path: Path, older_than: float, now: float, **identity: str) -> tuple[set, set]:
    """Compact; assert the survivors replay identically; return (removed, kept) order keys."""
    full = Journal.read(path).records()
    before = by_identity(replayed(full))
    journal = open_journal(path, **identity)
    report = journal.compact(older_than, now=now)
    kept_records = journal.read_records()
    journal.close()
    after_core = replayed(kept_records)
    after = by_identity(after_core)
    for key, view in after.items():
        assert before.get(key) == view, f"order {key} changed by compaction"
    open_before = {k for k, v in before.items() if v[3] in ("OPEN", "PENDING_CANCEL", "UNKNOWN",
                                                            "PENDING_NEW")}
    assert open_before <= set(after), "an open order was compacted away"
    assert report.records_before == len(full)
    assert report.records_deleted == len(full) - len(kept_records)
    assert report.orders_removed == len(set(before) - set(after))
    assert after_core.tracker.check_invariants() == []
    cutoff = now - older_than
    assert {r.seq for r in full if r.ts >= cutoff} <= {r.seq for r in kept_records}
    # a second pass finds nothing more to do
    journal = open_journal(path, **identity)
    assert journal.compact(older_than, now=now).records_deleted == 0
    journal.close()
    return set(before) - set(after), set(after)


# ---------------------------------------------------------------------- comparing with the simulator


def book_from_manager(oms: OrderManager) -> dict[str, Any]:
    """The same JSON-able view of a book ``crash_strategy.py recover`` prints."""
    return {
        "orders": [{"order_id": o.order_id, "client_order_id": o.client_order_id, "state": str(o.state),
                    "quantity": str(o.quantity), "remaining": str(o.remaining_quantity),
                    "filled": str(o.filled_quantity),
                    "fills": [[f.trade_id, str(f.quantity)] for f in o.fills or ()]}
                   for o in oms.orders(open_only=False)],
    }


def book_problems(book: dict[str, Any], venue: Venue, public_key: str = PUB) -> list[str]:
    """How a recovered book differs from the simulator's state of the account (empty: equal)."""
    problems: list[str] = []
    orders = book["orders"]
    live = [o for o in orders if o["state"] not in ("FILLED", "CANCELLED", "REJECTED")]
    not_open = [o for o in live if o["state"] != "OPEN" or o["order_id"] is None]
    if not_open:
        problems.append(f"live orders not settled to OPEN with an id: {not_open}")
    mine = {o["order_id"]: Decimal(o["remaining"]) for o in live}
    theirs = {o.order_id: o.remaining for o in venue.open_orders(public_key)}
    if mine != theirs:
        problems.append(f"open orders differ: book {mine}, simulator {theirs}")
    ids = [o["order_id"] for o in orders]
    if None in ids or len(ids) != len(set(ids)):
        problems.append(f"orders without an id or twice in the book: {ids}")
    every = {o.order_id: o for o in venue.orders(public_key)}
    if set(ids) != set(every):
        problems.append(f"orders differ: only in the book {set(ids) - set(every)}, "
                        f"only in the simulator {set(every) - set(ids)}")
    for o in orders:
        sim = every.get(o["order_id"])
        if sim is None:
            continue
        if Decimal(o["filled"]) != sim.filled:
            problems.append(f"filled of {o['order_id']}: book {o['filled']}, simulator {sim.filled}")
        state = "OPEN" if sim.is_open else "FILLED" if sim.remaining == 0 else "CANCELLED"
        if o["state"] != state:
            problems.append(f"state of {o['order_id']}: book {o['state']}, simulator {state}")
    fills = [(trade_id, Decimal(qty)) for o in orders for trade_id, qty in o["fills"]]
    trade_ids = [trade_id for trade_id, _ in fills]
    if len(trade_ids) != len(set(trade_ids)):
        problems.append(f"a fill counted twice: {sorted(trade_ids)}")
    trades = {t.trade_id: t.quantity for t in venue.trades(public_key)}
    if dict(fills) != trades:
        problems.append(f"fills differ: book {dict(fills)}, simulator trades {trades}")
    if sum((q for _, q in fills), Decimal(0)) != sum(trades.values(), Decimal(0)):
        problems.append("sum of fills differs from the simulator's trades")
    return problems


# ---------------------------------------------------------------------- subprocesses


class Child:
    """A subprocess whose stdout is read line by line; markers are lines starting with ``@@``."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""
        self.lines: list[str] = []

    async def read_line(self) -> str | None:
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        text = line.decode()
        self.lines.append(text)
        return text

    async def expect(self, marker: str, within: float = 10.0) -> str:
        """Read until a ``@@<marker> ...`` line; return what follows the marker."""
        with trio.fail_after(within):
            while True:
                line = await self.read_line()
                if line is None:
                    raise AssertionError(f"process ended before @@{marker}; stdout: {self.lines}; "
                                         f"exit {await self.process.wait()}")
                if line.startswith(f"@@{marker}"):
                    return line[len(marker) + 2:].strip()

    async def send(self, line: str) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(line.encode() + b"\n")

    async def kill(self) -> int:
        """SIGKILL, and reap it."""
        self.process.send_signal(signal.SIGKILL)
        return await self.process.wait()


@asynccontextmanager
async def child(*args: str) -> AsyncIterator[Child]:
    # The child imports simkit and waiting, as the tests do.
    pythonpath = os.pathsep.join(filter(None, [str(SUPPORT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath}
    process = await trio.lowlevel.open_process(
        [sys.executable, str(STRATEGY), *args], stdin=-1, stdout=-1, stderr=None, env=env)
    try:
        yield Child(process)
    finally:
        if process.returncode is None:
            process.kill()
        with trio.move_on_after(5):
            await process.wait()


async def run_recovery(url: str, journal: Path) -> dict[str, Any]:
    """A brand-new process recovers from the journal, resyncs, and prints its book as JSON."""
    async with child("recover", url, str(journal)) as proc:
        book = json.loads(await proc.expect("book", within=20))
        await proc.expect("closed", within=10)
        assert await proc.process.wait() == 0
    return book


# ---------------------------------------------------------------------- synthetic journals


class Script:
    """Journal content written by hand, with a clock the test controls (``at``)."""

    def __init__(self, symbol: str = "AAPL-USD") -> None:
        self.symbol = symbol
        self.now = 1_000.0
        self.items: list[tuple[float, str, bytes]] = []

    def at(self, ts: float) -> Script:
        self.now = ts
        return self

    def _out(self, type_: str, **params: Any) -> Script:
        self.items.append((self.now, "out", json.dumps({"type": type_, "params": params}).encode()))
        return self

    def _in(self, key: str, **payload: Any) -> Script:
        self.items.append((self.now, "in", json.dumps({key: payload}).encode()))
        return self

    def connect(self) -> Script:
        self._out("subscribe", channels=["order_responses"])
        return self._out("subscribe", channels=["fills"])

    def place(self, cid: str, qty: str = "3", price: str = "100") -> Script:
        return self._out("add_order", symbol=self.symbol, side="BUY", order_type="LIMIT",
                         order_time_in_force="GTC", quantity=qty, price=price, client_order_id=cid)

    def _response(self, cid: str, oid: str, status: str, qty: str, leaves: str, **extra: Any) -> Script:
        return self._in("order_response", order_id=oid, symbol=self.symbol, status=status, side="BUY",
                        type="LIMIT", time_in_force="GTC", quantity=qty, price="100",
                        quantity_remaining=leaves, client_order_id=cid, update_time=self.now, **extra)

    def ack(self, cid: str, oid: str, qty: str = "3") -> Script:
        return self._response(cid, oid, "ACK", qty, qty)

    def fill(self, cid: str, oid: str, trade: str, qty: str, leaves: str, total: str = "3") -> Script:
        self._response(cid, oid, "FILLED", total, leaves, trade_id=trade)
        return self._in("fill_response", trade_id=trade, order_id=oid, symbol=self.symbol, price="100",
                        quantity=qty, side="BUY", client_order_id=cid, remaining_quantity=leaves,
                        order_type="LIMIT", tif="GTC", order_price="100", timestamp=self.now)

    def cancel(self, oid: str) -> Script:
        return self._out("cancel_order", order_id=oid, symbol=self.symbol, cancel_order_id_type="order_id")

    def cancel_client(self, cid: str) -> Script:
        return self._out("cancel_order", order_id=cid, symbol=self.symbol,
                         cancel_order_id_type="client_order_id")

    def cancelled(self, cid: str, oid: str, qty: str = "3", leaves: str = "3") -> Script:
        return self._response(cid, oid, "CANCELLED", qty, leaves)

    def rejected(self, cid: str) -> Script:
        return self._response(cid, "", "REJECTED", "3", "0")

    def modify(self, oid: str, price: str) -> Script:
        return self._out("modify_order", order_id=oid, symbol=self.symbol, side="BUY", order_type="LIMIT",
                         price=price)

    def modified(self, cid: str, oid: str, price: str) -> Script:
        return self._in("order_response", order_id=oid, symbol=self.symbol, status="MODIFIED", side="BUY",
                        type="LIMIT", time_in_force="GTC", quantity="3", price=price,
                        quantity_remaining="3", client_order_id=cid, update_time=self.now)

    def raw(self, direction: str, raw: bytes) -> Script:
        self.items.append((self.now, direction, raw))
        return self

    def cancel_all(self) -> Script:
        return self._out("cancel_all_orders")

    def snapshot(self) -> Script:
        self._out("get_user_orders", limit=1000, offset=0)
        return self._in("all_orders_response", orders=[], twaps=[])

    def write(self, path: Path, **kw: Any) -> None:
        clock = [0.0]
        journal = open_journal(path, clock=lambda: clock[0], **kw)
        for ts, direction, raw in self.items:
            clock[0] = ts
            if direction == "out":
                journal.append_sent(raw)
            elif direction == "note":
                journal.append_note(raw)
            else:
                journal.append_received(raw)
        journal.close()

