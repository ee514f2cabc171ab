"""The algo runner: loads a strategy file, connects, runs it beside the guard, shuts down cleanly.

A strategy is a Python file exposing ``async def run(oms, ctx)``; ``ctx.params`` holds the config's
[strategy] table and ``ctx.guard.tripped`` tells it the kill switch fired. SIGINT and SIGTERM cancel
the strategy; then the exit policy runs shielded and bounded by ``runner.shutdown_timeout``:
``cancel_all`` pulls the kill switch, ``leave_gtc`` leaves resting orders on the book (and only
cancels TWAPs, which would otherwise keep trading with nobody watching).
"""

from __future__ import annotations

import importlib.util
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
import trio
from attrs import define, field

from qfex_oms.config import Config
from qfex_oms.errors import QfexOmsError
from qfex_oms.guard import KillSwitchGuard
from qfex_oms.manager import OrderManager, open_order_manager
from qfex_oms.results import KillReport

log = structlog.get_logger("qfex_oms.runner")

Strategy = Callable[[OrderManager, "StrategyContext"], Awaitable[Any]]


class StrategyError(QfexOmsError):
    pass


@define(eq=False)
class StrategyContext:
    params: dict[str, Any]
    guard: KillSwitchGuard
    log: Any = field(factory=lambda: structlog.get_logger("strategy"))

    @property
    def halted(self) -> bool:
        return self.guard.tripped.is_set()


@define
class RunResult:
    stopped_by: str  # "finished", "SIGINT", "SIGTERM", "guard", "error"
    guard_reason: str | None = None
    exit_report: KillReport | None = None
    strategy_result: Any = None


def load_strategy(path: str | Path) -> Strategy:
    file = Path(path)
    if not file.is_file():
        raise StrategyError(f"no strategy file at {file}")
    spec = importlib.util.spec_from_file_location(f"qfex_strategy_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise StrategyError(f"cannot load {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    entry = getattr(module, "run", None)
    if entry is None or not callable(entry):
        raise StrategyError(f"{file} has no `async def run(oms, ctx)` entry point")
    return entry  # type: ignore[no-any-return]


@asynccontextmanager
async def connect(config: Config) -> AsyncIterator[OrderManager]:
    """A manager for the config's venue; for "embedded", a simulator is started in-process first."""
    if config.embedded:
        from qfex_oms.sim import open_simulator

        async with open_simulator(port=0, time_scale=config.sim_time_scale) as venue, \
                open_order_manager(venue.url, config.credentials(), **config.manager) as oms:
            yield oms
    else:
        async with open_order_manager(config.url, config.credentials(), **config.manager) as oms:
            yield oms


async def run_strategy(strategy: Strategy, config: Config, oms: OrderManager) -> RunResult:
    result = RunResult("finished")
    async with trio.open_nursery() as nursery:
        guard = KillSwitchGuard(oms, config.guard)
        await nursery.start(guard.run)
        strategy_scope = trio.CancelScope()

        async def watch_signals() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                async for signum in signals:
                    result.stopped_by = signal.Signals(signum).name
                    log.warning("signal received; stopping the strategy", signal=result.stopped_by)
                    strategy_scope.cancel()

        async def watch_guard() -> None:
            await guard.tripped.wait()
            result.guard_reason = guard.reason

        nursery.start_soon(watch_signals)
        nursery.start_soon(watch_guard)
        ctx = StrategyContext(dict(config.strategy), guard)
        with strategy_scope:
            try:
                result.strategy_result = await strategy(oms, ctx)
            except QfexOmsError as exc:
                result.stopped_by = "error"
                log.error("strategy failed", error=str(exc), kind=type(exc).__name__)
        if guard.tripped.is_set() and result.stopped_by == "finished":
            result.stopped_by = "guard"
            result.guard_reason = guard.reason
        result.exit_report = await shutdown(oms, config)
        nursery.cancel_scope.cancel()
    return result


async def shutdown(oms: OrderManager, config: Config) -> KillReport | None:
    """The exit policy, shielded from the cancellation that brought us here and bounded in time."""
    with trio.CancelScope(shield=True), trio.move_on_after(config.shutdown_timeout):
        if config.on_exit == "cancel_all":
            report = await oms.cancel_all()
            log.info("exit policy: cancelled everything", cancelled=len(report.cancelled_orders),
                     clean=report.clean)
            return report
        for twap in oms.twaps(open_only=True):
            await oms.cancel(twap)
        log.info("exit policy: GTC orders left resting", open_orders=len(oms.orders()))
    return None


async def run_file(path: str | Path, config: Config) -> RunResult:
    strategy = load_strategy(path)
    async with connect(config) as oms:
        return await run_strategy(strategy, config, oms)


__all__ = ["RunResult", "StrategyContext", "StrategyError", "connect", "load_strategy",
           "run_file", "run_strategy", "shutdown"]
