"""Rows measured inside one process: codec + tracker, cancel resolution, memory, journal, growth."""

from __future__ import annotations

import tempfile
import tracemalloc
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
import trio

from bench.common import Row, best_of, paired_median, timed
from qfex_oms.core import CancelIntent, OmsCore
from qfex_oms.journal import Journal
from qfex_oms.protocol import decode_reply, encode
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, OrderStatus, OrderType, Side, TimeInForce

SYMBOLS = ("AAPL-USD", "TSLA-USD", "US500-USD")
USER = "0020ce8e-eaee-480e-8d7f-b9241d756ee5"


def _oid(i: int) -> str:
    return f"5b309929-206f-40ec-804d-{i:012d}"


def _response(i: int, status: OrderStatus, remaining: str, trade: str | None = None) -> bytes:
    return encode(m.OrderResponse(
        _oid(i), SYMBOLS[i % 3], status, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal("3.0"),
        Decimal("200.5"), Decimal(remaining), f"c{i}", Decimal("0.0"), Decimal("0.0"), USER,
        1758208770.5512846, trade))


def order_response_mix(start: int, count: int) -> list[bytes]:
    """ACK, partial FILLED, CANCELLED for each order: the lifecycle of a resting quote."""
    frames = []
    for i in range(start, start + count):
        frames += [_response(i, OrderStatus.ACK, "3.0"), _response(i, OrderStatus.FILLED, "1.0", f"t{i}"),
                   _response(i, OrderStatus.CANCELLED, "1.0")]
    return frames


def populated_core(start: int, count: int, acked: int = 0) -> OmsCore:
    """A core with ``count`` orders pending from ``start``, the first ``acked`` of them already open."""
    core = OmsCore()
    for i in range(start, start + count):
        core.place_order(SYMBOLS[i % 3], Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(3),
                         Decimal("200.5"), f"c{i}")
    core.take_frames()
    for i in range(start, start + acked):
        core.on_reply(decode_reply(_response(i, OrderStatus.ACK, "3.0")))
    core.take_events()
    return core


def _decode_apply_run(frames: list[bytes], book: int, orders: int) -> Callable[[], float]:
    def run() -> float:
        core = populated_core(0, book + orders, acked=book)
        on_reply, take_events, decode = core.on_reply, core.take_events, decode_reply

        def loop() -> None:
            for raw in frames:
                on_reply(decode(raw))
                take_events()

        return timed(loop)

    return run


def _loads_run(frames: list[bytes]) -> Callable[[], float]:
    loads = orjson.loads

    def loop() -> None:
        for raw in frames:
            loads(raw)

    return lambda: timed(loop)


def _decode_apply_seconds(frames: list[bytes], book: int, orders: int) -> float:
    return best_of(_decode_apply_run(frames, book, orders), 5)


def row_decode_apply(orders: int = 2000, book: int = 0) -> Row:
    frames = order_response_mix(book, orders)
    # 21 pairs of runs back to back (about 1 s), the median pair's figures (common.paired_median): the
    # fastest run of each side, the old estimator, mixed quiet and busy moments and swung by +-0.5x
    subject, baseline = paired_median(_decode_apply_run(frames, book, orders), _loads_run(frames), 21)
    subject, baseline = subject / len(frames), baseline / len(frames)
    name = "1. decode + apply one order_response" + (f" (book of {book:,})" if book else "")
    return Row(name, subject * 1e6, baseline * 1e6, "us/msg", "orjson.loads", "<= 3x (design.md)",
               subject / baseline <= 3)


def rows_cancel_resolution(count: int = 5000) -> list[Row]:
    rows = []
    modes = {
        CancelIdType.ORDER_ID: lambda i: CancelIntent(order_id=_oid(i), symbol="AAPL-USD"),
        CancelIdType.CLIENT_ORDER_ID: lambda i: CancelIntent(client_order_id=f"c{i}", symbol="AAPL-USD"),
        CancelIdType.TWAP_ID: lambda i: CancelIntent(twap_id=_oid(i), symbol="AAPL-USD"),
        CancelIdType.CLIENT_TWAP_ID: lambda i: CancelIntent(client_twap_id=f"tw{i}", symbol="AAPL-USD"),
    }
    for mode, make in modes.items():
        intents = [make(i) for i in range(count)]
        dicts = [{"type": "cancel_order", "params": {"order_id": _oid(i), "symbol": "AAPL-USD",
                                                     "cancel_order_id_type": str(mode)}}
                 for i in range(count)]

        def subject(intents: list[CancelIntent] = intents) -> float:
            core = OmsCore()

            def loop() -> None:
                for intent in intents:
                    core.cancel(intent)
                    for frame in core.take_frames():
                        encode(frame)
                core.take_events()

            return timed(loop)

        def baseline(dicts: list[dict[str, object]] = dicts) -> float:
            dumps = orjson.dumps
            return timed(lambda: [dumps(d) for d in dicts])

        s, b = best_of(subject, 5) / count, best_of(baseline, 5) / count
        rows.append(Row(f"2. cancel intent -> frame bytes ({mode})", s * 1e6, b * 1e6, "us/cancel",
                        "orjson.dumps of the frame"))
    return rows


# design.md asks for under 1 KiB; issue 19 holds the figure to what it was before issue 17/18 added
# the metrics stamps and the attribution fields (664 bytes at 100,000 orders).
MEMORY_TARGET = 664


def row_memory(count: int = 100_000) -> Row:
    frames = [_response(i, OrderStatus.ACK, "3.0") for i in range(count)]
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    core = populated_core(0, count)
    for raw in frames:
        core.on_reply(decode_reply(raw))
    core.take_events()
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    per_order = used / count
    raw_size = sum(len(f) for f in frames) / count
    assert len(core.tracker) == count
    return Row(f"6. memory per tracked order ({count:,} open orders)", per_order, raw_size, "bytes",
               "its ACK frame's size", f"<= {MEMORY_TARGET} bytes", per_order <= MEMORY_TARGET)


def row_journal(orders: int = 2000) -> Row:
    frames = order_response_mix(0, orders)
    off = _decode_apply_seconds(frames, 0, orders)

    async def with_journal(path: Path) -> float:
        journal = Journal.open(path, account="bench", venue="bench")
        core = populated_core(0, orders)
        async with trio.open_nursery() as nursery:
            await nursery.start(journal.run)
            start = trio.current_time()
            append = journal.append_received
            for raw in frames:
                append(raw)
                core.on_reply(decode_reply(raw))
                core.take_events()
            await journal.flush()
            elapsed = trio.current_time() - start
            nursery.cancel_scope.cancel()
        await journal.aclose()
        return elapsed

    def run() -> float:
        with tempfile.TemporaryDirectory() as tmp:
            return trio.run(with_journal, Path(tmp) / "bench.sqlite")

    on = best_of(run, 5)
    return Row("7. row 1 with the journal on (incl. its final flush)", len(frames) / on, len(frames) / off,
               "msg/s", "journal off", note="throughput: higher is better; ratio = on/off")
