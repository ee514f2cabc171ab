"""A strategy run as a real subprocess by the kill tests, and the process that recovers after it.

    python crash_strategy.py SCENARIO URL JOURNAL   -- trade, printing @@markers; the test SIGKILLs it
    python crash_strategy.py recover URL JOURNAL    -- recover from the journal, resync, print @@book

Markers go to stdout (flushed), logs to stderr. The test drives the scenario through stdin lines
("go") so it can set simulator faults (latency) at the right moment; the simulator runs inside the
test process, since its faults are set in-process.

``hang_journal_on(...)`` makes the journal's writer block forever on a batch holding one of the
given byte strings: the frame was applied (or sent) but never reaches the file, which is exactly a
crash "between a frame and its journal write", made deterministic.
"""

from __future__ import annotations

import json
import sys
import threading
from decimal import Decimal
from functools import partial
from typing import Any

import structlog
import trio
from simkit import CREDS, manager_at  # tests/support: journalkit.child puts it on PYTHONPATH
from waiting import wait_until

from qfex_oms import OrderManager, OrderState
from qfex_oms.journal import Journal

structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))

SYMBOL = "AAPL-USD"

_HANG_ON: list[bytes] = []
_original_write = Journal._write


def _write(self: Journal, batch: list[tuple[float, str, bytes | str]]) -> None:
    frames = [raw.encode() if isinstance(raw, str) else raw for _, _, raw in batch]
    if _HANG_ON and any(marker in raw for raw in frames for marker in _HANG_ON):
        threading.Event().wait()  # the disk never answers: these frames are never journaled
    _original_write(self, batch)


Journal._write = _write  # type: ignore[method-assign]


def hang_journal_on(*markers: bytes) -> None:
    _HANG_ON.extend(markers)


def say(marker: str, payload: object = "") -> None:
    print(f"@@{marker} {payload}".rstrip(), flush=True)


async def wait_for_line(expected: str) -> None:
    """Block on the test's next stdin line: a handshake with the test, not a poll, so not wait_until."""
    line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
    assert line.strip() == expected, f"expected {expected!r} on stdin, got {line!r}"


async def place_quietly(oms: OrderManager, *args: Any, **kwargs: Any) -> None:
    try:
        await oms.place_order(*args, **kwargs)
    except Exception as exc:  # the test SIGKILLs us long before; report anything odd
        print(f"place failed: {exc!r}", file=sys.stderr, flush=True)


async def cancel_quietly(oms: OrderManager, order: Any) -> None:
    try:
        await oms.cancel(order)
    except Exception as exc:
        print(f"cancel failed: {exc!r}", file=sys.stderr, flush=True)


async def journaled(oms: OrderManager) -> None:
    """Commit what was just sent or received before telling the test (no sleeping on the writer).

    Once ``hang_journal_on`` has caught a batch the writer is stuck for good and batches commit in
    order, so nothing appended later can reach the file: there is nothing left to wait for.
    """
    if _HANG_ON:
        return
    assert oms.journal is not None
    await oms.journal.flush()


# ---------------------------------------------------------------------- scenarios


async def scenario_ack(oms: OrderManager, nursery: trio.Nursery, *, journal_it: bool) -> None:
    """Kill after an order went out and before its ACK (journaled or not)."""
    await oms.place_order(SYMBOL, "BUY", "1", "100", client_order_id="rest1")
    await oms.place_order(SYMBOL, "SELL", "2", "300", client_order_id="rest2")
    await journaled(oms)
    say("ready")
    await wait_for_line("go")  # the test has set a long reply latency
    if not journal_it:
        hang_journal_on(b'"inflight"')
    nursery.start_soon(partial(place_quietly, oms, SYMBOL, "BUY", "2", "150", client_order_id="inflight"))
    await wait_until(lambda: any(o.client_order_id == "inflight" for o in oms.orders()), within=5)
    await journaled(oms)
    assert all(o.state is OrderState.PENDING_NEW for o in oms.orders() if o.client_order_id == "inflight")
    say("sent")


async def scenario_fill(oms: OrderManager, nursery: trio.Nursery) -> None:
    """Kill after a fill was applied to the book and before it reached the journal."""
    rest = await oms.place_order(SYMBOL, "BUY", "3", "100", client_order_id="rest")
    await oms.place_order(SYMBOL, "SELL", "1", "400", client_order_id="other")
    await journaled(oms)
    hang_journal_on(b"fill_response", b'"FILLED"')
    say("ready")  # the test's second account now sells 2 at 100
    await wait_until(lambda: rest.filled_quantity == Decimal(2) and rest.fill_total == Decimal(2), within=5)
    say("filled", json.dumps({"order_id": rest.order_id}))


async def scenario_cancel_all(oms: OrderManager, nursery: trio.Nursery) -> None:
    """Kill in the middle of the kill switch: cancel_all_orders sent, its answers still on the way."""
    orders = [await oms.place_order(SYMBOL, "BUY", "2", str(100 + i), client_order_id=f"k{i}")
              for i in range(12)]
    await journaled(oms)
    say("ready")  # the test partially fills the best bid, then sets a long latency
    await wait_for_line("go")
    nursery.start_soon(oms.cancel_all)
    await wait_until(lambda: all(o.state is OrderState.PENDING_CANCEL for o in orders
                            if o.state is not OrderState.FILLED), within=5)
    await journaled(oms)
    say("cancelling")


async def scenario_cancel_loop(oms: OrderManager, nursery: trio.Nursery) -> None:
    """Kill while a strategy cancels its orders one by one: half done, the rest in flight."""
    orders = [await oms.place_order(SYMBOL, "SELL", "1", str(300 + i), client_order_id=f"s{i}")
              for i in range(12)]
    await journaled(oms)
    say("ready")
    await wait_for_line("go")
    for order in orders[:6]:
        await oms.cancel(order)
    say("half")
    await wait_for_line("go")  # the test has set a long latency
    for order in orders[6:]:
        nursery.start_soon(cancel_quietly, oms, order)
    await wait_until(lambda: all(o.state is OrderState.PENDING_CANCEL for o in orders[6:]), within=5)
    await journaled(oms)
    say("inflight")


SCENARIOS = {
    "ack": lambda oms, n: scenario_ack(oms, n, journal_it=True),
    "ack-unjournaled": lambda oms, n: scenario_ack(oms, n, journal_it=False),
    "fill": scenario_fill,
    "cancel-all": scenario_cancel_all,
    "cancel-loop": scenario_cancel_loop,
}


async def trade(scenario: str, url: str, journal: str) -> None:
    async with manager_at(url, CREDS, journal=journal) as oms, \
            trio.open_nursery() as nursery:
        await SCENARIOS[scenario](oms, nursery)
        await trio.sleep_forever()  # until SIGKILL


# ---------------------------------------------------------------------- recovery


async def recover(url: str, journal: str) -> None:
    async with manager_at(url, CREDS, journal=journal) as oms:
        # The resync ran before open_order_manager yielded; give the settler a moment for anything
        # it marked (it must not be needed, but it must not be raced either).
        with trio.move_on_after(10):
            while any(o.state is not OrderState.OPEN for o in oms.orders()):  # noqa: ASYNC110
                await trio.sleep(0.01)
        book = {"orders": [{"order_id": o.order_id, "client_order_id": o.client_order_id,
                            "state": str(o.state), "quantity": str(o.quantity),
                            "remaining": str(o.remaining_quantity), "filled": str(o.filled_quantity),
                            "fills": [[f.trade_id, str(f.quantity)] for f in o.fills or ()]}
                           for o in oms.orders(open_only=False)]}
        say("book", json.dumps(book))
    say("closed")


def main() -> None:
    mode, url, journal = sys.argv[1:4]
    if mode == "recover":
        trio.run(recover, url, journal)
    else:
        trio.run(trade, mode, url, journal)


if __name__ == "__main__":
    main()
