"""Row 9: what the pre-trade risk check costs per ``place_order`` (issue 15; design.md target: under
10 % of row 4's client CPU per place round trip).

``python -m bench.risk_row [--quick]``. Three figures, each beside row 4's client CPU measured in
the same run the way row 4 measures it (``time.process_time`` around blocks of ``await
oms.place_order(...)`` against the reference venue, ``bench/refvenue.py``, in its own process):

- the core alone: ``RiskCheck.check_order`` with every limit set, on a plain ``AccountState`` of
  three symbols (positions, open quantities, prices, balance);
- the hook the manager calls: ``PreTradeRisk.check_order`` on the live manager, which reads its
  open totals, TWAPs, positions and balance, with 0, ``RESTING`` and ``BIG_BOOK`` orders resting on
  the order's symbol (each judged: the tracker keeps the open totals, so the cost must not grow
  with the book; it read every open order until the totals came, 45 % of row 4 at 200 orders);
- the place round trip with the hook called before each ``place_order``, against the same loop
  without it, in alternating blocks (the difference is the hook's cost inside a real round trip).

Every limit is set so every check runs, and loose enough that every call passes (a passing call is
the one that runs every check; the rate bucket is sized so it never empties).
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from decimal import Decimal
from functools import partial

import trio

from bench.common import Row, best_of
from bench.loopback import CREDS, Samples, _price, oms_place_and_cancel, reference_venue
from qfex_oms import OrderManager, open_order_manager
from qfex_oms.client.risk import PreTradeRisk
from qfex_oms.core.risk import AccountState, RiskCheck, RiskLimits, SymbolLimits
from qfex_oms.protocol.enums import OrderType, Side

TARGET = 0.10  # of row 4's client CPU per place round trip
RESTING = 20
BIG_BOOK = 2000
SYMBOL = "AAPL-USD"
BASELINE = "row 4: client CPU per place round trip"


def every_limit() -> RiskLimits:
    """Every limit on, none reached by the benchmark's orders."""
    return RiskLimits(max_order_quantity=Decimal(1000), max_order_notional=Decimal(10**9),
                      max_position=Decimal(10**6), max_gross_notional=Decimal(10**12),
                      price_band_pct=Decimal(50), max_orders_per_second=10**9, check_margin=True,
                      per_symbol={"TSLA-USD": SymbolLimits(max_order_quantity=Decimal(10))})


def core_cost(calls: int) -> float:
    """Seconds per ``RiskCheck.check_order`` call, every check run (fastest of several runs)."""
    view = AccountState(
        positions={SYMBOL: Decimal(3), "TSLA-USD": Decimal(-2), "US500-USD": Decimal(1)},
        open_buys={SYMBOL: Decimal(20)}, open_sells={SYMBOL: Decimal(5), "TSLA-USD": Decimal(1)},
        prices={SYMBOL: Decimal("1020.5"), "TSLA-USD": Decimal(250), "US500-USD": Decimal(5000)},
        leverages={SYMBOL: Decimal(10)}, available=Decimal(10**8))
    check = RiskCheck(every_limit())
    quantity, price, buy, limit = Decimal(1), Decimal("1010.2"), Side.BUY, OrderType.LIMIT
    assert check.check_order(view, 0.0, SYMBOL, buy, quantity, price, limit) is None

    def run() -> float:
        start = time.perf_counter()
        for i in range(calls):
            check.check_order(view, i * 1e-9, SYMBOL, buy, quantity, price, limit)
        return time.perf_counter() - start
    return best_of(run) / calls


async def _hook_cost(oms: OrderManager, hook: PreTradeRisk, calls: int) -> float:
    quantity, price, buy, limit = Decimal(1), _price(1), Side.BUY, OrderType.LIMIT
    hook.check_order(SYMBOL, buy, quantity, price, limit)
    best = float("inf")
    for _ in range(7):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            for _ in range(calls):
                hook.check_order(SYMBOL, buy, quantity, price, limit)
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best / calls


async def _hooked_place_and_cancel(oms: OrderManager, hook: PreTradeRisk, first: int, count: int,
                                   places: Samples) -> None:
    """``oms_place_and_cancel`` with the hook called where the manager will call it."""
    orders = []
    cpu = time.process_time()
    for i in range(first, first + count):
        start = time.perf_counter()
        price = _price(i)
        hook.check_order(SYMBOL, Side.BUY, Decimal(1), price, OrderType.LIMIT)
        orders.append(await oms.place_order(SYMBOL, "BUY", 1, price, client_order_id=f"bench-risk-{i}"))
        places.wall.append(time.perf_counter() - start)
    places.cpu += time.process_time() - cpu
    for order in orders:
        await oms.cancel(order)


async def _measure(url: str, count: int, block: int, calls: int) -> tuple[dict[int, float], float, float]:
    """(hook seconds per call at each book size, place CPU per trip without the hook, with it)."""
    per_call: dict[int, float] = {}
    async with open_order_manager(url, CREDS, pacer=None) as oms:
        counter = [0.0]

        def clock() -> float:
            counter[0] += 1e-9
            return counter[0]
        hook = PreTradeRisk(oms, every_limit(), prices=lambda symbol: Decimal("1020.5"), clock=clock)
        per_call[0] = await _hook_cost(oms, hook, calls)
        for i in range(RESTING):  # resting orders the hook reads on every call
            await oms.place_order(SYMBOL, "BUY", 1, _price(i), client_order_id=f"bench-rest-{i}")
        plain, hooked, ignored = Samples(), Samples(), Samples()
        await oms_place_and_cancel(oms, 10_000, 200, ignored, Samples())  # warm-up, not counted
        await _hooked_place_and_cancel(oms, hook, 20_000, 200, ignored)
        for round_no, first in enumerate(range(100_000, 100_000 + count, block)):
            n = min(block, 100_000 + count - first)
            sides = [partial(oms_place_and_cancel, oms, first, n, plain, Samples()),
                     partial(_hooked_place_and_cancel, oms, hook, first + 1_000_000, n, hooked)]
            for side in sides[round_no % 2:] + sides[:round_no % 2]:
                await side()
        per_call[RESTING] = await _hook_cost(oms, hook, calls)
        for i in range(RESTING, BIG_BOOK):
            await oms.place_order(SYMBOL, "BUY", 1, _price(i), client_order_id=f"bench-rest-{i}")
        per_call[BIG_BOOK] = await _hook_cost(oms, hook, calls // 4)
    return per_call, plain.cpu_per_trip(), hooked.cpu_per_trip()


def rows_risk(count: int = 2000, calls: int = 20_000, block: int = 100) -> list[Row]:
    """Row 9: the core check, the hook on a live manager, and a place round trip with the hook."""
    core = core_cost(calls)
    with reference_venue() as (url, _tcp):
        hook, plain, hooked = trio.run(_measure, url, count, block, calls)
    target = f"< {TARGET:.0%} of row 4's client CPU"
    rows = [Row("9. pre-trade risk: RiskCheck.check_order, every limit (core alone)", core * 1e6,
                plain * 1e6, "us", BASELINE, target, core / plain < TARGET)]
    for book, cost in hook.items():
        rows.append(Row(f"9. pre-trade risk: PreTradeRisk.check_order on a live manager, {book:,} open "
                        "orders", cost * 1e6, plain * 1e6, "us", BASELINE, target, cost / plain < TARGET))
    rows.append(Row(f"9. place round trip with the hook ({RESTING}-{RESTING + block} open), client CPU",
                    hooked * 1e6, plain * 1e6, "us", BASELINE, "", None,
                    f"the hook's share inside a round trip: {(hooked - plain) / plain:+.1%} (noisy)"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.risk_row", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller counts, a smoke run")
    quick = parser.parse_args(argv).quick
    rows = rows_risk(400 if quick else 2000, 5_000 if quick else 20_000)
    for row in rows:
        ok = "" if row.ok is None else (" ok" if row.ok else " MISSED")
        target = f" (target {row.target})" if row.target else ""
        print(f"{row.name}: {row.value:,.2f} {row.unit} / {row.baseline:,.2f} {row.unit} "
              f"({row.baseline_name}) = {row.ratio:.1%}{target}{ok}")
        if row.note:
            print(f"  {row.note}")
    return 0 if all(row.ok is not False for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
