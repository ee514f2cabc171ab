"""`make bench`: every row as a figure beside a baseline measured in the same run.

Exits non-zero when a design.md target is missed. Writes bench/results/last.json for the record.
Options: --quick (smaller counts, for a smoke run), --rows 1,3,5 (only those rows).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench import gateway_row, loopback, mds_row, micro, risk_row
from bench.common import Row
from qfex_oms.logs import configure_logging


def collect(rows: set[str], quick: bool) -> list[Row]:
    n = 400 if quick else 2000
    out: list[Row] = []
    if "1" in rows:
        out.append(micro.row_decode_apply(n))
    if "2" in rows:
        out += micro.rows_cancel_resolution(1000 if quick else 5000)
    if "3" in rows or "4" in rows:
        out += loopback.rows_round_trips(500 if quick else 2000)
    if "5" in rows:
        out += loopback.rows_kill(2000 if quick else 10_000)
    if "6" in rows:
        out.append(micro.row_memory(20_000 if quick else 100_000))
    if "7" in rows:
        out.append(micro.row_journal(n))
    if "8" in rows:
        for book in (1_000, 10_000, 100_000):
            row = micro.row_decode_apply(n, book=book)
            row.name = f"8. row 1 with {book:,} orders already in the book"
            row.target, row.ok = "flat", None  # growth is judged across these rows, not each
            out.append(row)
        for count in ((1_000, 3_000) if quick else (1_000, 10_000, 100_000)):
            row = loopback.row_kill(count)
            row.name = f"8. row 5 at {count:,} orders (per order: {row.value * 1000 / count:.1f} us)"
            row.target, row.ok = "", None
            out.append(row)
    if "9" in rows:
        out += risk_row.rows_risk(400 if quick else 2000, 5_000 if quick else 20_000)
    if "10" in rows:
        out += mds_row.rows_mds(500 if quick else 2000)
    if "11" in rows:
        out.append(gateway_row.row_gateway(400 if quick else 2000))
    return out


def render(rows: list[Row], console: Console) -> None:
    table = Table(title="qfex_oms benchmarks (ratio = figure / baseline, same run)")
    for column in ("row", "figure", "baseline", "ratio", "target", "ok"):
        table.add_column(column, justify="left" if column in ("row", "target") else "right")
    for row in rows:
        ok = "" if row.ok is None else ("yes" if row.ok else "NO")
        table.add_row(row.name, f"{row.value:,.2f} {row.unit}", f"{row.baseline:,.2f} ({row.baseline_name})",
                      f"{row.ratio:.2f}x", row.target, ok)
    console.print(table)
    for row in rows:
        if row.note:
            console.print(f"note on {row.name}: {row.note}")


def profile(rows: set[str], quick: bool, report: Path, console: Console) -> int:
    """The rows' own process under a sampling profiler (loopback rows: the client side; the
    simulator runs in a process of its own). For finding where time goes, not for the figures."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        console.print("pyinstrument is not installed: make profile (or pip install -e '.[profile]')")
        return 2
    profiler = Profiler(interval=0.0002)
    with profiler:
        collect(rows, quick)
    report.write_text(profiler.output_text(unicode=False, color=False))
    console.print(f"profile of rows {', '.join(sorted(rows))} written to {report}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rows", default="1,2,3,4,5,6,7,8,9,10,11")
    parser.add_argument("--profile", action="store_true",
                        help="run the rows under pyinstrument (pip install -e '.[profile]'); the report "
                             "goes to bench/results/profile-<rows>.txt; figures taken so are not comparable")
    args = parser.parse_args()
    configure_logging("error")  # the manager's own log lines would bury the table
    console = Console(width=160)
    started = time.perf_counter()
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    if args.profile:
        report = out / f"profile-{args.rows.replace(',', '-')}.txt"
        return profile(set(args.rows.split(",")), args.quick, report, console)
    rows = collect(set(args.rows.split(",")), args.quick)
    render(rows, console)
    missed = [r.name for r in rows if r.ok is False]
    (out / "last.json").write_text(json.dumps({
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "python": platform.python_version(),
        "machine": platform.machine(), "seconds": time.perf_counter() - started,
        "rows": [r.as_dict() for r in rows]}, indent=2))
    console.print(f"{len(rows)} rows in {time.perf_counter() - started:.0f} s; "
                  + (f"[red]targets missed: {', '.join(missed)}[/red]" if missed else "every target met"))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
