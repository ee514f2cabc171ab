"""`make demo`: the whole product in one run against the embedded simulator.

Two accounts: ``qfex_pub_demo`` runs the strategies, ``qfex_pub_demo2`` is the other side of the
trades (resting liquidity and an aggressive taker). The run: the quoter re-quotes while the taker
lifts its offers; the rebalancer works a TWAP into the counterparty's offers and stops it by
client_twap_id; one cancel in each of QFEX's four modes; on TSLA-USD, a background market moves
(a liquidity provider around a seeded random walk, a third account) and the quoter pegs to its live
mid from the simulator's market-data feed while the momentum strategy follows its tape; the kill
switch over three symbols; then the manager's book is compared with the simulator's own records,
which must show zero differences.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import trio
from attrs import define, field
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from qfex_oms.app.config import GuardLimits
from qfex_oms.app.guard import KillSwitchGuard
from qfex_oms.app.runner import StrategyContext, load_strategy
from qfex_oms.app.verify import BookDiff, compare_with_venue
from qfex_oms.client.manager import OrderManager, open_order_manager
from qfex_oms.client.results import KillReport
from qfex_oms.client.session import Credentials
from qfex_oms.core.events import CancelFinished, FillReceived
from qfex_oms.sim import MarketSettings, MarketSymbol, open_simulator

SYMBOL = "AAPL-USD"
MAIN = Credentials("qfex_pub_demo", "qfex_secret_demo")
COUNTER = Credentials("qfex_pub_demo2", "qfex_secret_demo2")


@define
class DemoSummary:
    placed: int = 0
    filled_orders: int = 0
    fills: int = 0
    filled_quantity: Decimal = Decimal(0)
    cancelled_by_mode: Counter[str] = field(factory=Counter)
    twaps: list[dict[str, Any]] = field(factory=list)
    kill: KillReport | None = None
    diff: BookDiff | None = None
    counter_diff: BookDiff | None = None
    elapsed: float = 0.0
    market: dict[str, Any] = field(factory=dict)  # the live-market phase: quotes, fills, P&L

    @property
    def ok(self) -> bool:
        return bool(self.kill and self.kill.clean and self.diff and self.diff.clean
                    and self.counter_diff and self.counter_diff.clean
                    and all(self.cancelled_by_mode[m] for m in
                            ("order_id", "client_order_id", "twap_id", "client_twap_id")))


async def _count(oms: OrderManager, summary: DemoSummary, task_status: trio.TaskStatus[None]) -> None:
    with oms.events() as stream:
        task_status.started()
        async for event in stream:
            if isinstance(event, CancelFinished) and event.request.status == "CANCELLED":
                # A TWAP cancel ends the TWAP itself: count it as one.
                ended = len(event.request.cancelled) or (1 if event.request.twap is not None else 0)
                summary.cancelled_by_mode[str(event.request.mode)] += ended
            elif isinstance(event, FillReceived):
                summary.fills += 1
                summary.filled_quantity += event.fill.quantity


async def _taker(counter: OrderManager, oms: OrderManager) -> None:
    """The counterparty lifts the quoter's offers now and then, so the quoter gets filled."""
    while True:
        await trio.sleep(0.03)
        asks = [o for o in oms.orders(SYMBOL) if o.side == "SELL" and o.order_id and o.price]
        if asks:
            ask = min(asks, key=lambda o: o.price or 0)
            await counter.place_order(SYMBOL, "BUY", "1", ask.price, time_in_force="IOC")


async def _four_cancel_modes(oms: OrderManager) -> None:
    one = await oms.place_order(SYMBOL, "BUY", "1", "190")
    await oms.cancel(order_id=one.order_id, symbol=SYMBOL)
    for price in ("189", "188", "187"):
        await oms.place_order(SYMBOL, "BUY", "1", price, client_order_id="demo-group")
    await oms.cancel(client_order_id="demo-group", symbol=SYMBOL)
    twap = await oms.place_twap(SYMBOL, "BUY", total_quantity="4", num_orders=4, order_interval_secs=60,
                                client_twap_id="demo-twap-a")
    await oms.cancel(twap)
    await oms.place_twap(SYMBOL, "SELL", total_quantity="4", num_orders=4, order_interval_secs=60,
                         client_twap_id="demo-twap-b")
    await oms.cancel(client_twap_id="demo-twap-b", symbol=SYMBOL)


async def _kill(oms: OrderManager) -> KillReport:
    for symbol, price in (("AAPL-USD", 180), ("TSLA-USD", 150), ("US500-USD", 4000)):
        for i in range(4):
            await oms.place_order(symbol, "BUY", "1", price - i)
    return await oms.cancel_all()


MARKET_SYMBOL = "TSLA-USD"
MARKET = MarketSettings(seed=7, step=0.25, symbols=(MarketSymbol(MARKET_SYMBOL, Decimal("250"),
                                                                   volatility=0.002),))


async def _live_market(oms: OrderManager, guard: KillSwitchGuard, mds_url: str) -> dict[str, Any]:
    """The quoter pegged to the background market's live mid and the momentum taker side by side on
    one symbol, fed by the simulator's MDS; returns what they did and the position's P&L."""
    placed_before = len(oms.orders(MARKET_SYMBOL, open_only=False))
    async with trio.open_nursery() as both:
        both.start_soon(load_strategy("strategies/quoter.py"), oms, StrategyContext(
            {"symbol": MARKET_SYMBOL, "mds_url": mds_url, "cycles": 8, "interval": 0.3,
             "half_spread": "0.1", "requote_threshold": "0.05"}, guard))
        both.start_soon(load_strategy("strategies/momentum.py"), oms, StrategyContext(
            {"symbol": MARKET_SYMBOL, "mds_url": mds_url, "duration": 2.5, "interval": 0.2,
             "window": 2, "threshold": "1", "size": "1", "max_position": "3"}, guard))
    book = oms.orders(MARKET_SYMBOL, open_only=False)
    await oms.fetch_open_orders()  # a round trip: the position pushes of its fills are in
    position = oms.position(MARKET_SYMBOL)
    return {"orders": len(book) - placed_before,
            "filled": sum((o.filled_quantity for o in book), Decimal(0)),
            "position": position.quantity if position else Decimal(0),
            "realised": (position.realised_pnl if position else None) or Decimal(0),
            "unrealised": (position.unrealised_pnl if position else None) or Decimal(0)}


async def run_demo(console: Console | None = None, time_scale: float = 1000.0) -> DemoSummary:
    console = console or Console()
    summary = DemoSummary()
    started = trio.current_time()
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                        console=console, transient=False)
    steps = ["counterparty posts liquidity", "quoter re-quotes while the taker lifts it",
             "rebalancer works a TWAP", "one cancel in each of the four modes",
             "quoter pegs to a moving market; momentum follows the tape",
             "kill switch over three symbols", "reconcile the book with the exchange"]
    with progress:
        task = progress.add_task(steps[0], total=len(steps))
        async with open_simulator(port=0, time_scale=time_scale, market=MARKET) as venue, \
                open_order_manager(venue.url, MAIN) as oms, \
                open_order_manager(venue.url, COUNTER) as counter, \
                trio.open_nursery() as nursery:
            await nursery.start(_count, oms, summary)
            guard = KillSwitchGuard(oms, GuardLimits(max_open_orders=100))
            await nursery.start(guard.run)
            for i in range(8):
                await counter.place_order(SYMBOL, "SELL", "2", Decimal("201") + i)

            progress.update(task, advance=1, description=steps[1])
            async with trio.open_nursery() as taking:
                taking.start_soon(_taker, counter, oms)
                quoter = load_strategy("strategies/quoter.py")
                await quoter(oms, StrategyContext({"symbol": SYMBOL, "cycles": 12, "interval": 0.04}, guard))
                taking.cancel_scope.cancel()

            progress.update(task, advance=1, description=steps[2])
            rebalancer = load_strategy("strategies/rebalancer.py")
            await rebalancer(oms, StrategyContext(
                {"symbol": SYMBOL, "total_quantity": "10", "num_orders": 5, "stop_after": "6",
                 "client_twap_id": "rebalance-1"}, guard))

            progress.update(task, advance=1, description=steps[3])
            await _four_cancel_modes(oms)

            progress.update(task, advance=1, description=steps[4])
            summary.market = await _live_market(oms, guard, venue.mds_url or "")

            progress.update(task, advance=1, description=steps[5])
            summary.kill = await _kill(oms)
            await counter.cancel_all()

            progress.update(task, advance=1, description=steps[6])
            await trio.sleep(0.05)
            summary.diff = compare_with_venue(oms, venue)
            summary.counter_diff = compare_with_venue(counter, venue)
            book = oms.orders(open_only=False)
            summary.placed = sum(1 for o in book if not o.adopted)
            summary.filled_orders = sum(1 for o in book if o.filled_quantity > 0)
            summary.twaps = [{"client_twap_id": t.client_twap_id, "state": str(t.state),
                              "filled": t.filled_quantity, "of": t.total_quantity,
                              "children": len(t.children)} for t in oms.twaps()]
            progress.update(task, advance=1, description="done")
            nursery.cancel_scope.cancel()
    summary.elapsed = trio.current_time() - started
    _print_summary(console, summary)
    return summary


def _num(value: Decimal) -> str:
    return format(value.normalize(), "f")


def _print_summary(console: Console, s: DemoSummary) -> None:
    table = Table(title="qfex_oms demo", show_header=False)
    table.add_row("orders placed", str(s.placed))
    table.add_row("orders with fills / fills / quantity",
                  f"{s.filled_orders} / {s.fills} / {_num(s.filled_quantity)}")
    for mode in ("order_id", "client_order_id", "twap_id", "client_twap_id"):
        table.add_row(f"cancelled by {mode}", str(s.cancelled_by_mode[mode]))
    for twap in s.twaps:
        table.add_row(f"TWAP {twap['client_twap_id']}",
                      f"{twap['state']}: {_num(twap['filled'])} of {_num(twap['of'])} "
                      f"in {twap['children']} child orders")
    if s.market:
        m = s.market
        table.add_row(f"live market ({MARKET_SYMBOL})",
                      f"{m['orders']} orders, {_num(m['filled'])} filled; position {_num(m['position'])}, "
                      f"P&L realised {_num(m['realised'])}, unrealised {_num(m['unrealised'])}")
    if s.kill is not None:
        table.add_row("kill switch", f"{len(s.kill.cancelled_orders)} orders cancelled in "
                      f"{s.kill.elapsed * 1000:.1f} ms, still open {len(s.kill.still_open)}, "
                      f"snapshot {'clean' if s.kill.clean else 'NOT clean'}")
    for name, diff in (("manager", s.diff), ("counterparty", s.counter_diff)):
        if diff is not None:
            table.add_row(f"reconciliation ({name})",
                          f"{len(diff.differences)} differences over {diff.orders_compared} orders; "
                          f"fills {_num(diff.fills_book)} here, "
                          f"{_num(diff.fills_exchange)} on the exchange")
    table.add_row("elapsed", f"{s.elapsed:.2f} s")
    console.print(table)
    if s.diff is not None:
        for line in s.diff.differences:
            console.print(f"[red]difference:[/red] {line}")
    console.print("[bold green]demo OK[/bold green]" if s.ok else "[bold red]demo FAILED[/bold red]")
