"""The algo runner: loads a strategy file, connects, runs it beside the guard, shuts down cleanly.

A strategy is a Python file exposing ``async def run(oms, ctx)``; ``ctx.params`` holds the config's
[strategy] table and ``ctx.halted`` / ``ctx.guard.tripped`` tell it the kill switch fired. SIGINT
and SIGTERM cancel the strategy; then the exit policy runs shielded and bounded by
``runner.shutdown_timeout``: ``cancel_all`` pulls the kill switch, ``leave_gtc`` leaves resting
orders on the book (and only cancels TWAPs, which would otherwise keep trading with nobody
watching), ``flatten`` pulls the kill switch and then closes every non-zero position with
``close_position`` until the exchange reports it flat. ``cancel_all()`` shields itself, so the kill
switch is bounded by ``manager.kill_timeout`` rather than by shutdown_timeout. Whatever the
exchange still reports held afterwards is logged and returned (``RunResult.positions_held``).
The exit policy also runs when the strategy returns or raises. When the guard trips, the strategy
is told (``ctx.halted``) and cancelled if it is still running ``GUARD_GRACE_SECONDS`` later.
Every order, fill, TWAP and cancel answer is logged with its identity (symbol, order_id,
client_order_id / twap ids).

Several strategies in one process (issue 18, ``[[strategy]]`` tables, ``run_config``): one
manager (one connection, one pacer, one journal) and the account's guard (``[guard]``, whose trip
pulls the account's kill switch and stops every strategy); each strategy runs on its own view
(``oms.for_strategy(name)``: its orders in its namespace) beside a guard of its own limits, whose
trip cancels only its orders and stops only it, and its exit policy (``cancel_all`` or
``leave_gtc``) acts through its view only. A signal stops them all; each runs its own policy.
Positions are the account's: a strategy's ``max_position`` reads the account's, and ``flatten``
(``runner.on_exit``) runs once, after every strategy's own policy.
"""

from __future__ import annotations

import decimal
import importlib.util
import inspect
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import trio
from attrs import define, field

from qfex_oms.app.bundled import example_names, existing_or_bundled
from qfex_oms.app.config import Config, StrategyTable, unbounded_pause
from qfex_oms.app.guard import KillSwitchGuard, plain
from qfex_oms.client.events import PositionUpdated
from qfex_oms.client.manager import OrderManager, open_order_manager
from qfex_oms.client.results import KillReport
from qfex_oms.core.events import CancelFinished, FillReceived, OrderUpdated, TwapUpdated
from qfex_oms.core.model import Order, Twap
from qfex_oms.core.states import OrderState, TwapState
from qfex_oms.errors import (
    Halted,
    NotConnected,
    OrderRejected,
    OrderStatusUnknown,
    QfexOmsError,
    TwapRejected,
)
from qfex_oms.logs import get_logger

if TYPE_CHECKING:
    from qfex_oms.client.events import Event, EventStream
    from qfex_oms.client.strategy_view import StrategyView
    from qfex_oms.core.account import Position
    from qfex_oms.core.model import Order, Twap

log = get_logger("qfex_oms.app.runner")
order_log = get_logger("qfex_oms.orders")

Strategy = Callable[[OrderManager, "StrategyContext"], Awaitable[Any]]
# Started beside the strategy with ``nursery.start(observer, oms, guard)`` and cancelled once the
# exit policy has run: ``qfex-oms run --live`` draws its view with one, --metrics-port serves metrics.
Observer = Callable[..., Awaitable[None]]


class StrategyError(QfexOmsError):
    pass


@define(eq=False)
class StrategyContext:
    params: dict[str, Any]
    guard: KillSwitchGuard
    log: Any = field(factory=lambda: get_logger("qfex_oms.strategy"))

    @property
    def halted(self) -> bool:
        """The guard fired (its kill switch may still be running): stop trading."""
        return self.guard.fired

    async def wait_connected(self) -> None:
        """Return once the manager has a connection again (at once when it has one).

        Raises ``Halted`` when the guard trips first: with ``guard.max_disconnect_seconds`` set, a
        disconnect longer than that trips it, so this wait is bounded by the guard's limit. The
        usual use: ``except NotConnected: await ctx.wait_connected()`` around one cycle of work.
        """
        oms = self.guard.oms
        if not oms.connected and not self.guard.fired:
            async with trio.open_nursery() as nursery:

                async def until_tripped() -> None:
                    await self.guard.tripped.wait()
                    nursery.cancel_scope.cancel()

                nursery.start_soon(until_tripped)
                await oms.wait_connected()
                nursery.cancel_scope.cancel()
        if self.guard.fired:
            raise Halted(f"the guard tripped: {self.guard.reason}")


_UNSETTLED = (OrderState.UNKNOWN, OrderState.PENDING_NEW, TwapState.UNKNOWN, TwapState.PENDING_NEW)

# The manager's calls that need a connection: under runner.pause_while_disconnected they wait for one.
PAUSING_CALLS = frozenset({"place_order", "modify_order", "cancel", "place_twap", "close_position",
                           "reconcile", "fetch_open_orders", "fetch_trades", "leverage", "leverage_levels",
                           "set_leverage"})


class PausingManager:
    """The manager as a strategy sees it under ``runner.pause_while_disconnected``.

    A call that needs the exchange (``PAUSING_CALLS``) first waits for a connection
    (``ctx.wait_connected``), and one that meets ``NotConnected`` waits and is made again: the manager
    raises ``NotConnected`` only before anything was sent, so the retry cannot duplicate an order.
    The guard's disconnect limit bounds the pause (past it the call raises ``Halted``). Everything
    else (``orders()``, ``positions()``, ``events()``...) is the manager's own attribute.
    """

    def __init__(self, oms: OrderManager, ctx: StrategyContext) -> None:
        self._oms, self._ctx = oms, ctx

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._oms, name)
        if name not in PAUSING_CALLS:
            return value

        async def paused(*args: Any, **kwargs: Any) -> Any:
            while True:
                await self._ctx.wait_connected()
                try:
                    return await value(*args, **kwargs)
                except NotConnected:
                    if self._oms.closing:
                        raise
                    log.warning("paused: not connected; the call waits for the connection", call=name)
                except OrderStatusUnknown as lost:
                    if name not in ("place_order", "place_twap") or self._oms.closing:
                        raise
                    return await self._settled(lost)

        return paused

    async def _settled(self, lost: OrderStatusUnknown) -> Any:
        """A placement whose answer the disconnect took: never sent again (it may be on the book).
        Wait for the connection and the resync that settles it, then answer as the call would have:
        the order (resting, filled or ended), or its rejection. Bounded: unsettled, the original
        ``OrderStatusUnknown`` stands."""
        subject = lost.order
        log.warning("paused: the answer was lost with the connection; waiting for the resync",
                    **subject.describe())
        await self._ctx.wait_connected()
        with trio.move_on_after(self._oms.settings.request_timeout * 3):
            while subject.state in _UNSETTLED and not self._oms.closing:
                await self._oms.waiters.next_change(subject)
        if subject.state in _UNSETTLED:
            raise lost
        if isinstance(subject, Order) and subject.state is OrderState.REJECTED:
            raise OrderRejected(subject, subject.last_status)
        if isinstance(subject, Twap) and subject.state is TwapState.REJECTED:
            raise TwapRejected(subject, subject.last_status)
        return subject


@define
class RunResult:
    stopped_by: str  # "finished", "SIGINT", "SIGTERM", "guard", "error"
    guard_reason: str | None = None
    exit_report: KillReport | None = None
    strategy_result: Any = None
    error: str | None = None  # what the strategy raised, when stopped_by == "error"
    exit_clean: bool = True  # the exit policy completed (cancel_all: the snapshot showed nothing open;
    # flatten: that, and every position reported flat)
    positions_held: dict[str, Decimal] = field(factory=dict)  # non-zero positions after the exit policy


def load_strategy(path: str | Path) -> Strategy:
    """The ``run`` of a strategy file. ``strategies/NAME.py`` that does not exist here is the bundled
    example of that name (``qfex_oms.app.bundled``), so the README's commands work anywhere."""
    file = existing_or_bundled(path)
    if not file.is_file():
        raise StrategyError(f"no strategy file at {file} (the bundled examples: "
                            f"{', '.join(f'strategies/{n}.py' for n in example_names())})")
    spec = importlib.util.spec_from_file_location(f"qfex_strategy_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise StrategyError(f"cannot load {file} as a Python module")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise StrategyError(f"cannot import {file}: {type(exc).__name__}: {exc}") from exc
    entry = getattr(module, "run", None)
    if entry is None or not callable(entry):
        raise StrategyError(f"{file} has no `async def run(oms, ctx)` entry point")
    _check_entry(file, entry)
    return entry  # type: ignore[no-any-return]


def _check_entry(file: Path, entry: Any) -> None:
    """Refuse, before anything connects, a ``run`` the runner could not call as ``await run(oms, ctx)``."""
    if not inspect.iscoroutinefunction(entry):
        kind = "a generator" if inspect.isgeneratorfunction(entry) else "a plain `def`"
        raise StrategyError(f"{file}: run must be `async def run(oms, ctx)`; it is {kind}")
    try:
        inspect.signature(entry).bind(None, None)
    except TypeError:
        shown = f"run{inspect.signature(entry)}"
        raise StrategyError(f"{file}: run must take two parameters, (oms, ctx); it is `{shown}`") from None


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


# After the guard trips, a strategy that does not stop by itself is cancelled after this long.
GUARD_GRACE_SECONDS = 2.0


async def _start_watchers(nursery: trio.Nursery, oms: OrderManager, guard: KillSwitchGuard,
                          observers: Sequence[Observer]) -> None:
    """What runs beside every run's strategies, started in order: the order log, the account's
    guard, then the observers (a live view, a metrics endpoint), which see that guard."""
    await nursery.start(log_order_events, oms)
    await nursery.start(guard.run)
    for observer in observers:
        await nursery.start(observer, oms, guard)


async def run_strategy(strategy: Strategy, config: Config, oms: OrderManager,
                       observers: Sequence[Observer] = ()) -> RunResult:
    result = RunResult("finished")
    async with trio.open_nursery() as nursery:
        guard = KillSwitchGuard(oms, config.guard)
        await _start_watchers(nursery, oms, guard, observers)
        strategy_scope = trio.CancelScope()

        async def watch_signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            # Installed before the strategy starts: no window where SIGTERM kills the process outright.
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for signum in signals:
                    if result.stopped_by not in ("SIGINT", "SIGTERM"):
                        result.stopped_by = signal.Signals(signum).name
                    log.warning("signal received; stopping the strategy", signal=signal.Signals(signum).name)
                    strategy_scope.cancel()

        async def watch_guard() -> None:
            await guard.tripped.wait()
            result.guard_reason = guard.reason
            # The strategy was told (ctx.halted, a GuardTripped event); give it a moment to stop.
            await trio.sleep(GUARD_GRACE_SECONDS)
            if not strategy_scope.cancel_called:
                log.warning("strategy still running after the guard tripped; cancelling it",
                            grace=GUARD_GRACE_SECONDS)
                strategy_scope.cancel()

        await nursery.start(watch_signals)
        nursery.start_soon(watch_guard)
        ctx = StrategyContext(dict(config.strategy), guard)
        seen: Any = PausingManager(oms, ctx) if config.pause_while_disconnected else oms
        with strategy_scope:
            try:
                result.strategy_result = await strategy(seen, ctx)
            except Exception as exc:
                # Any failure, not only ours: the exit policy below must still run.
                result.stopped_by = "error"
                result.error = f"{type(exc).__name__}: {exc}{_parameter_hint(exc, ctx.params)}"
                if isinstance(exc, QfexOmsError):
                    log.error("strategy failed", error=str(exc), kind=type(exc).__name__)
                else:
                    log.exception("strategy crashed", error=str(exc), kind=type(exc).__name__)
        if guard.fired:
            await guard.tripped.wait()  # its kill switch is bounded by manager.kill_timeout
            if result.stopped_by in ("finished", "error"):
                # A strategy that hits Halted after the guard fired stopped because of the guard.
                result.stopped_by = "guard"
            result.guard_reason = guard.reason
        result.exit_report = await shutdown(oms, config)
        result.positions_held = held(oms)
        killed = result.exit_report is not None and result.exit_report.clean
        if config.on_exit == "cancel_all":
            result.exit_clean = killed
        elif config.on_exit == "flatten":
            result.exit_clean = killed and not result.positions_held
        else:
            result.exit_clean = not oms.twaps(open_only=True)
        nursery.cancel_scope.cancel()
    return result


def _parameter_hint(exc: Exception, params: dict[str, Any]) -> str:
    """For a strategy that failed converting a value: the parameters that are not numbers, by name
    (``-p mid=abc`` makes ``Decimal(ctx.params["mid"])`` raise a bare ``InvalidOperation``)."""
    if not isinstance(exc, decimal.InvalidOperation | ValueError | TypeError):
        return ""
    suspects = [f"{key}={value!r}" for key, value in params.items()
                if isinstance(value, str) and not _is_number(value)]
    if not suspects:
        return ""
    return (f" (strategy parameters that are not numbers: {', '.join(suspects)}: check the -p values "
            "and the config's strategy table)")


def _is_number(text: str) -> bool:
    try:
        decimal.Decimal(text)
    except decimal.InvalidOperation:
        return False
    return True


async def log_order_events(oms: OrderManager,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """One log line per order, fill and TWAP change, each carrying the order's identity. Cancelled
    (the run is over), it still writes the events already published: the last order changes of a
    run (the exit policy's cancels) come right before the end, and are the ones worth reading."""
    with oms.events() as stream:
        task_status.started()
        try:
            async for event in stream:
                _log_order_event(event)
        finally:
            for event in stream.pending():
                _log_order_event(event)


def _log_order_event(event: object) -> None:
    if isinstance(event, OrderUpdated):
        # The event's state, not the order's current one (a later event may have moved it).
        order_log.info("order updated", **{**event.order.describe(), "state": str(event.state)},
                       previous=str(event.previous), status=event.status)
    elif isinstance(event, FillReceived):
        f = event.fill
        order_log.info("order filled", **event.order.describe(), trade_id=f.trade_id,
                       side=str(f.side), price=str(f.price), quantity=str(f.quantity),
                       filled=str(event.order.filled_quantity))
    elif isinstance(event, TwapUpdated):
        order_log.info("twap updated", **event.twap.describe(), previous=str(event.previous),
                       status=event.status, filled=str(event.twap.filled_quantity))
    elif isinstance(event, CancelFinished):
        r = event.request
        order_log.info("cancel answered", symbol=r.symbol, cancel_mode=str(r.mode),
                       cancel_value=r.value, status=r.status, cancelled=len(r.cancelled))


async def shutdown(oms: OrderManager, config: Config) -> KillReport | None:
    """The exit policy, shielded from the cancellation that brought us here and bounded in time."""
    report: KillReport | None = None
    with trio.CancelScope(shield=True), trio.move_on_after(config.shutdown_timeout) as scope:
        if config.on_exit in ("cancel_all", "flatten"):
            report = await oms.cancel_all()
            log.info("exit policy: cancelled everything", cancelled=len(report.cancelled_orders),
                     clean=report.clean)
        if config.on_exit == "flatten":
            await flatten(oms)
        elif config.on_exit == "leave_gtc":
            for twap in oms.twaps(open_only=True):
                try:
                    result = await oms.cancel(twap)
                except QfexOmsError as exc:
                    log.error("exit policy: could not cancel a TWAP", **twap.describe(), error=str(exc))
                    continue
                if not result.ok:
                    log.error("exit policy: TWAP cancel refused", **twap.describe(), status=result.status)
            log.info("exit policy: GTC orders left resting", open_orders=len(oms.orders()),
                     open_twaps=len(oms.twaps(open_only=True)))
    if scope.cancelled_caught:
        log.error("exit policy did not finish in time", policy=config.on_exit,
                  shutdown_timeout=config.shutdown_timeout)
    if config.on_exit == "flatten":
        still = held(oms)
        if still:
            log.error("exit policy: positions still held",
                      positions={symbol: plain(q) for symbol, q in still.items()})
        else:
            log.info("exit policy: every position is flat")
    return report


def held(oms: OrderManager) -> dict[str, Decimal]:
    """Every non-zero position, as the exchange last reported it (signed: negative = short)."""
    return {symbol: p.quantity for symbol, p in sorted(oms.positions().items()) if not p.flat}


# After a round of closes has ended, how long to wait for the exchange to report the positions flat
# before closing again. Only an upper bound: the wait ends on the report. ``close_position`` is
# reduce-only, so closing again on a report that merely lagged cannot overshoot.
FLATTEN_SETTLE_SECONDS = 1.0


async def flatten(oms: OrderManager) -> None:
    """Close every non-zero position, round after round (a close IOC may fill only in part), until
    the exchange reports each one flat. Unbounded: the caller's scope bounds it."""
    with oms.events() as stream:
        while positions := held(oms):
            closing = []
            for symbol, quantity in positions.items():
                try:
                    order = await oms.close_position(symbol)
                except QfexOmsError as exc:
                    log.error("exit policy: close_position failed", symbol=symbol, position=plain(quantity),
                              error=str(exc), kind=type(exc).__name__)
                    continue
                if order is not None:
                    log.info("exit policy: closing a position", **order.describe(), position=plain(quantity))
                    closing.append(order)
            await oms.wait_ended(*closing)
            with trio.move_on_after(FLATTEN_SETTLE_SECONDS):
                if held(oms):
                    async for event in stream:
                        if isinstance(event, PositionUpdated) and not held(oms):
                            break


async def run_file(path: str | Path | None, config: Config,
                   observers: Sequence[Observer] = ()) -> RunResult | MultiRunResult:
    """Run one strategy file; with ``path`` None, the config's ``[[strategy]]`` tables (``run_config``)."""
    if config.strategies:
        if path is not None:
            raise StrategyError(f"{config.path} has [[strategy]] tables: they name the strategy files "
                                "(run the config without a strategy path)")
        return await run_config(config, observers)
    if path is None:
        raise StrategyError("no strategy: give a strategy file, or a config with [[strategy]] tables")
    strategy = load_strategy(path)
    if config.pause_while_disconnected:
        unbounded_pause(config.path, config.guard)  # before connecting
    async with connect(config) as oms:
        return await run_strategy(strategy, config, oms, observers)


# ====================================================================== several strategies


class _OwnOrders:
    """``core.tracker.open_count()`` as a strategy's guard reads it: its own open orders."""

    def __init__(self, view: StrategyView) -> None:
        self.tracker = self
        self._view = view

    def open_count(self) -> int:
        return len(self._view.orders())


class StrategyScope:
    """What a ``KillSwitchGuard`` reads and pulls, narrowed to one strategy: its own orders, TWAPs
    and events, its own ``cancel_all`` (never the account's); the account's positions and
    connection. The guard is written against the manager; this gives it the same names."""

    def __init__(self, view: StrategyView) -> None:
        self.view = view
        self.core = _OwnOrders(view)

    @property
    def connected(self) -> bool:
        return self.view.connected

    async def wait_connected(self) -> None:
        await self.view.wait_connected()

    def events(self) -> EventStream:
        return self.view.events()

    def positions(self) -> dict[str, Position]:
        return self.view.positions()

    def orders(self, symbol: str | None = None) -> list[Order]:
        return self.view.orders(symbol)

    def twaps(self, open_only: bool = False) -> list[Twap]:
        return self.view.twaps(open_only)

    async def cancel_all(self) -> KillReport:
        return await self.view.cancel_all()

    def publish(self, event: Event) -> None:
        self.view.manager.publish(event)


@define
class MultiRunResult:
    """``run_config``'s result: one ``RunResult`` per strategy, and the run's as a whole in the
    fields a single run has (so the CLI's exit code reads it the same way)."""

    results: dict[str, RunResult]
    stopped_by: str = "finished"  # a signal, "guard" (the account's), or "finished"
    guard_reason: str | None = None  # the account guard's
    exit_report: KillReport | None = None  # the account's kill switch, when its guard tripped
    positions_held: dict[str, Decimal] = field(factory=dict)
    flatten_clean: bool = True

    @property
    def exit_clean(self) -> bool:
        return self.flatten_clean and all(r.exit_clean for r in self.results.values())

    @property
    def strategy_result(self) -> dict[str, Any]:
        return {name: r.strategy_result for name, r in self.results.items()}

    @property
    def error(self) -> str | None:
        return next((f"{n}: {r.error}" for n, r in self.results.items() if r.error), None)


async def run_config(config: Config, observers: Sequence[Observer] = ()) -> MultiRunResult:
    """Run the config's ``[[strategy]]`` tables on one manager; every file loads before connecting."""
    loaded = [(table, load_strategy(table.path)) for table in config.strategies]
    if config.pause_while_disconnected:
        unbounded_pause(config.path, config.guard)
    async with connect(config) as oms:
        return await run_strategies(loaded, config, oms, observers)


async def run_strategies(strategies: Sequence[tuple[StrategyTable, Strategy]], config: Config,
                         oms: OrderManager, observers: Sequence[Observer] = ()) -> MultiRunResult:
    """See the module's docstring: one account guard, one guard and one exit policy per strategy."""
    result = MultiRunResult({table.name: RunResult("finished") for table, _ in strategies})
    scopes = {table.name: trio.CancelScope() for table, _ in strategies}
    async with trio.open_nursery() as nursery:
        account_guard = KillSwitchGuard(oms, config.guard)
        await _start_watchers(nursery, oms, account_guard, observers)

        async def watch_signals(task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                task_status.started()
                async for signum in signals:
                    if result.stopped_by == "finished":
                        result.stopped_by = signal.Signals(signum).name
                    log.warning("signal received; stopping every strategy",
                                signal=signal.Signals(signum).name)
                    for scope in scopes.values():
                        scope.cancel()

        async def watch_account_guard() -> None:
            await account_guard.tripped.wait()
            result.stopped_by, result.guard_reason = "guard", account_guard.reason
            await trio.sleep(GUARD_GRACE_SECONDS)
            for scope in scopes.values():
                scope.cancel()

        await nursery.start(watch_signals)
        nursery.start_soon(watch_account_guard)
        async with trio.open_nursery() as runs:
            for table, strategy in strategies:
                runs.start_soon(_run_one, table, strategy, config, oms, scopes[table.name],
                                result.results[table.name])
        if account_guard.fired:
            await account_guard.tripped.wait()
            result.stopped_by, result.guard_reason = "guard", account_guard.reason
            result.exit_report = account_guard.report
        if config.on_exit == "flatten":
            with trio.CancelScope(shield=True), trio.move_on_after(config.shutdown_timeout):
                await flatten(oms)
        result.positions_held = held(oms)
        result.flatten_clean = config.on_exit != "flatten" or not result.positions_held
        nursery.cancel_scope.cancel()
    return result


async def _run_one(table: StrategyTable, strategy: Strategy, config: Config, oms: OrderManager,
                   scope: trio.CancelScope, result: RunResult) -> None:
    """One strategy on its view, beside its own guard; its exit policy through its view."""
    view = oms.for_strategy(table.name)
    async with trio.open_nursery() as nursery:
        guard = KillSwitchGuard(cast(Any, StrategyScope(view)), table.guard)
        await nursery.start(guard.run)

        async def watch_guard() -> None:
            await guard.tripped.wait()
            result.guard_reason = guard.reason
            await trio.sleep(GUARD_GRACE_SECONDS)
            scope.cancel()

        nursery.start_soon(watch_guard)
        ctx = StrategyContext(dict(table.params), guard, get_logger(f"qfex_oms.strategy.{table.name}"))
        seen: Any = PausingManager(cast(Any, view), ctx) if config.pause_while_disconnected else view
        with scope:
            try:
                result.strategy_result = await strategy(seen, ctx)
            except Exception as exc:
                result.stopped_by = "error"
                result.error = f"{type(exc).__name__}: {exc}{_parameter_hint(exc, ctx.params)}"
                log.error("strategy failed", strategy=table.name, error=str(exc), kind=type(exc).__name__)
        if scope.cancelled_caught and result.stopped_by == "finished":
            result.stopped_by = "stopped"  # by a signal or the account's guard (MultiRunResult says)
        if guard.fired:
            await guard.tripped.wait()
            if result.stopped_by in ("finished", "error", "stopped"):
                result.stopped_by = "guard"
            result.guard_reason = guard.reason
        result.exit_report = await shutdown_strategy(view, table.on_exit, config.shutdown_timeout)
        if table.on_exit == "cancel_all":
            result.exit_clean = result.exit_report is not None and result.exit_report.clean
        else:
            result.exit_clean = not view.twaps(open_only=True)
        nursery.cancel_scope.cancel()


async def shutdown_strategy(view: StrategyView, on_exit: str, shutdown_timeout: float) -> KillReport | None:
    """A strategy's exit policy, through its view only: its own orders, never the others'."""
    report: KillReport | None = None
    with trio.CancelScope(shield=True), trio.move_on_after(shutdown_timeout) as scope:
        if on_exit == "cancel_all":
            report = await view.cancel_all()
            log.info("exit policy: cancelled the strategy's orders", strategy=view.name,
                     cancelled=len(report.cancelled_orders), clean=report.clean)
        else:
            for twap in view.twaps(open_only=True):
                try:
                    await view.cancel(twap)
                except QfexOmsError as exc:
                    log.error("exit policy: could not cancel a TWAP", strategy=view.name, error=str(exc))
            log.info("exit policy: GTC orders left resting", strategy=view.name,
                     open_orders=len(view.orders()))
    if scope.cancelled_caught:
        log.error("exit policy did not finish in time", strategy=view.name, policy=on_exit)
    return report


__all__ = ["FLATTEN_SETTLE_SECONDS", "GUARD_GRACE_SECONDS", "PAUSING_CALLS", "MultiRunResult", "Observer",
           "PausingManager", "RunResult", "StrategyContext", "StrategyError", "StrategyScope", "connect",
           "flatten", "held", "load_strategy", "log_order_events", "run_config", "run_file", "run_strategies",
           "run_strategy", "shutdown", "shutdown_strategy"]
