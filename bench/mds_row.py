"""Row 10: market data (issue 16). ``python -m bench.mds_row`` or ``python -m bench --rows 10``.

What a strategy pays per market-data message, as ratios to ``orjson.loads`` of the same bytes (the
least any client must spend to read the frame), and the local book's memory per price level:

- decode + apply of one ``level2`` image (20 levels a side, QFEX's pulsed image);
- apply of one increment (a single level changed) to books of 100, 1,000 and 10,000 levels a side,
  each against a 10-level book in the same run: flat, so a deep book costs no more per update;
- reading the BBO (``book.bbo()``) after each image;
- memory per price level at 10, 1,000 and 10,000 levels a side (flat).
"""

from __future__ import annotations

import time
import tracemalloc
from decimal import Decimal

import orjson

from bench.common import Row, best_of_pair
from qfex_oms.core.marketbook import MarketBook
from qfex_oms.protocol import mds

SYMBOL = "AAPL-USD"
# design.md's target is flatness (10 to 10,000 levels), judged below; the image row is reported.
FLAT = 2.0  # the deepest book's per-update cost may be at most this many times the shallowest's


def _image(seq: int, levels: int = 20, base: Decimal = Decimal("200")) -> bytes:
    """A level2 frame shaped as the simulator publishes it (flat, numbers as strings, §13.5)."""
    tick = Decimal("0.01")
    shift = (seq % 7) * tick
    bid = [[str(base - shift - i * tick), str(1 + (i + seq) % 5)] for i in range(levels)]
    ask = [[str(base + tick - shift + i * tick), str(1 + (i + seq) % 3)] for i in range(levels)]
    return orjson.dumps({"type": "level2", "symbol": SYMBOL, "bid": bid, "ask": ask,
                         "time": "2026-12-03T12:00:00.000000001Z", "sequence": seq})


def _images(count: int) -> list[bytes]:
    return [_image(seq) for seq in range(1, count + 1)]


def _loads_seconds(frames: list[bytes]) -> float:
    loads = orjson.loads
    start = time.perf_counter()
    for raw in frames:
        loads(raw)
    return time.perf_counter() - start


def _decode_apply_seconds(frames: list[bytes]) -> float:
    book = MarketBook(SYMBOL)
    decode = mds.decode
    start = time.perf_counter()
    for n, raw in enumerate(frames):
        for message in decode(raw):
            book.apply(message, float(n))
    return time.perf_counter() - start


def _bbo_seconds(frames: list[bytes]) -> float:
    book = MarketBook(SYMBOL)
    for n, raw in enumerate(frames[:1]):
        for message in mds.decode(raw):
            book.apply(message, float(n))
    start = time.perf_counter()
    for _ in frames:
        book.bbo()
    return time.perf_counter() - start


def _deep_book(levels: int) -> MarketBook:
    book = MarketBook(SYMBOL)
    tick = Decimal("0.01")
    for i in range(levels):
        book.apply_increment(True, Decimal("200") - i * tick, Decimal(1), 0.0)
        book.apply_increment(False, Decimal("200.01") + i * tick, Decimal(1), 0.0)
    return book


def _increment_seconds(levels: int, count: int) -> float:
    book = _deep_book(levels)
    tick = Decimal("0.01")
    prices = [Decimal("200") - (i % levels) * tick for i in range(count)]
    sizes = [Decimal(1 + i % 4) for i in range(count)]
    start = time.perf_counter()
    for price, size in zip(prices, sizes, strict=True):
        book.apply_increment(True, price, size, 1.0)
    return time.perf_counter() - start


def _bytes_per_level(levels: int) -> float:
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    book = _deep_book(levels)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    used = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(book.depth()[0]) == levels
    return used / (2 * levels)


def rows_mds(count: int = 2000) -> list[Row]:
    frames = _images(count)
    image, loads = best_of_pair(lambda: _decode_apply_seconds(frames), lambda: _loads_seconds(frames))
    bbo, _ = best_of_pair(lambda: _bbo_seconds(frames), lambda: _loads_seconds(frames[:1] * count))
    small = orjson.dumps({"type": "bbo", "symbol": SYMBOL, "bid": [["200", "1"]], "ask": [["200.01", "2"]]})
    one_loads, _ = best_of_pair(lambda: _loads_seconds([small] * count), lambda: _loads_seconds([small]))
    per = 1e6 / count
    rows = [Row("10. market data: decode + apply one level2 image (20 levels a side)", image * per,
                loads * per, "us", "orjson.loads of the same bytes"),
            Row("10. market data: BBO read after an image (book.bbo())", bbo * per, one_loads * per, "us",
                "orjson.loads of a one-level bbo frame")]
    for levels in (100, 1_000, 10_000):  # each against a 10-level book, interleaved in one run
        cost, shallow = best_of_pair(lambda n=levels: _increment_seconds(n, count),
                                     lambda: _increment_seconds(10, count))
        rows.append(Row(f"10. market data: apply one increment to a book of {levels:,} levels a side",
                        cost * per, shallow * per, "us", "the same at 10 levels",
                        f"flat (<= {FLAT:.0f}x)", cost / shallow <= FLAT))
    first = None
    for levels in (10, 1_000, 10_000):
        size = _bytes_per_level(levels)
        first = first or size
        rows.append(Row(f"10. market data: memory per price level ({levels:,} levels a side)", size, first,
                        "bytes", "the same at 10 levels", f"flat (<= {FLAT:.0f}x)", size / first <= FLAT))
    return rows


if __name__ == "__main__":
    from rich.console import Console

    from bench.__main__ import render

    render(rows_mds(), Console())
