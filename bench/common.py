"""Shared pieces of the benchmarks: timing that resists noise, and the result table.

Every figure is a ratio against a baseline measured in the same run, on the same data, with the
same loop shape, so a busy shared machine moves both sides together. Each side is run several
times, garbage collection paused while a side runs, and either the fastest run of each is kept
(``best_of``, ``best_of_pair``: the least disturbed one) or, where the two sides' runs differ in
length, the back-to-back pair with the median ratio (``paired_median``).
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from typing import Any

from attrs import define


@define
class Row:
    name: str
    value: float
    baseline: float
    unit: str
    baseline_name: str
    target: str = ""
    ok: bool | None = None  # None: no target for this row
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "baseline": self.baseline, "unit": self.unit,
                "baseline_name": self.baseline_name, "ratio": self.ratio, "target": self.target,
                "ok": self.ok, "note": self.note}


def best_of(fn: Callable[[], float], repeats: int = 7) -> float:
    """Fastest of ``repeats`` runs of ``fn``, which returns its own elapsed seconds."""
    results = []
    for _ in range(repeats):
        gc.collect()
        gc.disable()
        try:
            results.append(fn())
        finally:
            gc.enable()
    return min(results)


def best_of_pair(subject: Callable[[], float], baseline: Callable[[], float],
                 repeats: int = 9) -> tuple[float, float]:
    """Fastest run of each, alternating them so a burst of machine noise lands on both sides."""
    best_s = best_b = float("inf")
    for _ in range(repeats):
        best_s = min(best_s, best_of(subject, 1))
        best_b = min(best_b, best_of(baseline, 1))
    return best_s, best_b


def paired_median(subject: Callable[[], float], baseline: Callable[[], float],
                  repeats: int = 21) -> tuple[float, float]:
    """The (subject, baseline) pair, run back to back, whose ratio is the median of all pairs'.

    Each side's fastest run (``best_of_pair``) may come from different moments: on this shared
    machine other tenants slow everything by up to 70 % for seconds at a time, and the baseline's
    short runs catch a quiet moment the subject's longer ones miss, so min/min read 3.35x where
    every pair read 2.4-2.9x. A pair shares its moment, and the median pair ignores the few that
    straddle a change of load. The sides alternate which goes first, so a drift lands on both."""
    pairs = []
    for i in range(repeats):
        if i % 2:
            b = best_of(baseline, 1)
            s = best_of(subject, 1)
        else:
            s = best_of(subject, 1)
            b = best_of(baseline, 1)
        pairs.append((s / b, s, b))
    pairs.sort()
    _, s, b = pairs[len(pairs) // 2]
    return s, b


def timed(loop: Callable[[], None]) -> float:
    start = time.perf_counter()
    loop()
    return time.perf_counter() - start


def median_p99(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
