"""The commands about orders: ``run``, ``orders``, ``cancel`` and ``kill``."""

from __future__ import annotations

import signal
import sys
import tomllib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import attrs
import click
import trio
from rich.markup import escape

from qfex_oms.app.commands.common import (
    EXIT_ERROR,
    EXIT_NOTHING_TO_CANCEL,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_UNSAFE,
    EXIT_USAGE,
    configure_logging,
    connect_options,
    echo_json,
    embedded_note,
    exit_codes,
    json_option,
    kill_dict,
    load,
    num,
    one_shot,
    order_dict,
    orders_table,
    print_table,
    stdout_console,
    stop_dict,
    stops_table,
    twap_dict,
    twaps_table,
)

# ====================================================================== run


def parse_params(params: Iterable[str]) -> dict[str, Any]:
    from qfex_oms.errors import InvalidArgument

    parsed: dict[str, Any] = {}
    for item in params:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidArgument(f"--param: expected KEY=VALUE, got {item!r}")
        try:
            parsed[key] = tomllib.loads(f"v = {text}")["v"]
        except tomllib.TOMLDecodeError:
            parsed[key] = text  # not a TOML value: take it as a plain string
    return parsed


def run_exit_code(result: Any) -> int:
    """RunResult -> exit code: an incomplete exit policy or a tripped guard outranks the signal."""
    if not result.exit_clean or result.stopped_by == "guard":
        return EXIT_UNSAFE
    return {"finished": EXIT_OK, "SIGINT": EXIT_SIGINT, "SIGTERM": EXIT_SIGTERM,
            "error": EXIT_ERROR}.get(result.stopped_by, EXIT_ERROR)


@click.command()
@click.argument("strategy", type=click.Path(dir_okay=False), required=False)
@connect_options
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="Strategy parameter, overriding the config's [strategy] table; repeatable. VALUE is "
                   "read as TOML (5, 0.5, true, [\"a\", \"b\"]) or else taken as a string.")
@click.option("--pause-while-disconnected", "pause", is_flag=True, default=None,
              help="While disconnected, the strategy's calls wait for the connection instead of raising "
                   "NotConnected, for at most guard.max_disconnect_seconds (then the guard trips). "
                   "Overrides runner.pause_while_disconnected.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, metavar="PORT",
              help="Serve Prometheus metrics (orders, cancels by mode, rejects by status, fills, "
                   "reconnects, place->ACK and cancel->CANCELLED latency) at "
                   "http://127.0.0.1:PORT/metrics while the strategy runs.")
@click.option("--live", is_flag=True,
              help="Show open orders, recent fills, positions with P&L, guard and connection state in a "
                   "table redrawn in place while the strategy runs (log lines print above it).")
@json_option
@exit_codes
def run(strategy: str | None, config_path: str | None, url: str | None, params: tuple[str, ...],
        pause: bool | None, metrics_port: int | None, live: bool, as_json: bool) -> None:
    """Run a strategy file (async def run(oms, ctx)) beside the kill-switch guard until it returns;
    without STRATEGY, the config's [[strategy]] tables, all on one connection, each with its own
    guard and exit policy.

    SIGINT/SIGTERM stop it; the config's runner.on_exit policy (cancel_all, leave_gtc, or flatten:
    cancel_all then close every position) then runs, shielded (the kill switch is bounded by
    manager.kill_timeout, leave_gtc's TWAP cancels and flatten's closes by runner.shutdown_timeout).
    Exit 0 when it finished, 4 when the guard tripped or the exit policy did not complete (flatten:
    a position is still held), 130/143 after a signal, 1 if the strategy raised.
    """
    from qfex_oms.app.runner import run_file

    config = load(config_path, url)
    config = attrs.evolve(config, strategy={**config.strategy, **parse_params(params)})
    if pause:
        config = attrs.evolve(config, pause_while_disconnected=True)
    config.credentials()  # missing key variables fail here (exit 2), before anything connects
    configure_logging(config)
    observers: list[Any] = []
    if metrics_port is not None:
        from qfex_oms.client.metrics import open_metrics

        async def serve_metrics(oms: Any, guard: Any,
                                task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            async with open_metrics(oms, port=metrics_port):
                task_status.started()
                await trio.sleep_forever()

        observers.append(serve_metrics)
    if live:
        from qfex_oms.app.live import LiveView, show_live

        console = stdout_console()

        async def observer(oms: Any, guard: Any,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            view = LiveView(oms, guard=guard, title=f"{strategy or 'strategies'} on {oms.url}")
            await show_live(view, console, task_status=task_status)

        observers.append(observer)
    result = trio.run(run_file, strategy, config, observers)
    code = run_exit_code(result)
    if as_json:
        echo_json({
            "strategy": strategy, "stopped_by": result.stopped_by, "guard_reason": result.guard_reason,
            "error": result.error, "on_exit": config.on_exit, "exit_clean": result.exit_clean,
            "exit_report": None if result.exit_report is None else kill_dict(result.exit_report),
            "positions_held": {symbol: num(q) for symbol, q in result.positions_held.items()},
            "result": result.strategy_result, "exit_code": code,
        })
    else:
        console = stdout_console()
        how = "finished" if result.stopped_by == "finished" else f"stopped by {result.stopped_by}"
        line = f"[bold]{strategy or ', '.join(s.name for s in config.strategies)}[/bold]: {how}"
        if result.guard_reason:
            line += f" (guard: {result.guard_reason})"
        if result.error:
            line += f" ({escape(result.error)})"
        if result.exit_report is not None:
            r = result.exit_report
            line += (f"; exit policy {config.on_exit}: {len(r.cancelled_orders)} orders cancelled, "
                     f"{len(r.still_open)} still open, {'clean' if r.clean else 'NOT clean'}")
        else:
            line += f"; exit policy {config.on_exit}: {'done' if result.exit_clean else 'NOT complete'}"
        if config.on_exit == "flatten":
            still = ", ".join(f"{s} {num(q)}" for s, q in result.positions_held.items())
            line += f"; positions still held: {still}" if still else "; every position flat"
        console.print(line, highlight=False)
        if result.strategy_result is not None:
            console.print(f"result: {result.strategy_result}", highlight=False)
        console.print(f"exit code {code}", style="green" if code in (0, 130, 143) else "red")
    raise SystemExit(code)


# ====================================================================== orders


async def _fetch_book(config: Any, show_all: bool) -> dict[str, Any]:
    from qfex_oms.app.runner import connect

    async with connect(config) as oms:
        await oms.reconcile()
        orders = sorted(oms.orders(open_only=not show_all),
                        key=lambda o: (o.symbol, str(o.side), o.price or Decimal(0), o.local_id))
        twaps = sorted(oms.twaps(open_only=not show_all), key=lambda t: (t.symbol, t.local_id))
        stops = sorted(oms.stops(open_only=not show_all), key=lambda s: (s.symbol, s.local_id))
        return {"url": oms.url, "account": oms.credentials.public_key,
                "orders": [_attributed(order_dict(o), o) for o in orders],
                "twaps": [_attributed(twap_dict(t), t) for t in twaps],
                "stops": [_attributed(stop_dict(s), s) for s in stops]}


def _attributed(row: dict[str, Any], subject: Any) -> dict[str, Any]:
    """A row with its strategy (the namespace of its client id: ``mm:bid-1`` is mm's; None for an
    order of no strategy) and tags (known to the process that placed it)."""
    return {**row, "strategy": subject.strategy, "tags": sorted(subject.tags)}


NO_STRATEGY = "(no strategy)"


def _by_strategy(rows: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(row.get("strategy") or NO_STRATEGY, []).append(row)
    return dict(sorted(groups.items(), key=lambda item: (item[0] == NO_STRATEGY, item[0])))


def _journal_book(path: str, account: str | None, venue: str | None) -> dict[str, Any]:
    from qfex_oms.journal.view import recovered_book

    book = recovered_book(path, account=account, venue=venue)
    orders = [{"symbol": r.symbol, "side": r.side, "quantity": num(r.quantity), "price": num(r.price),
               "filled": num(r.filled), "remaining": num(r.remaining), "state": r.state,
               "last_status": r.last_status, "order_id": r.exchange_id, "client_order_id": r.client_id}
              for r in book.open_orders]
    twaps = [{"symbol": r.symbol, "side": r.side, "total_quantity": num(r.quantity),
              "filled": num(r.filled), "state": r.state, "last_status": r.last_status,
              "twap_id": r.exchange_id, "client_twap_id": r.client_id} for r in book.open_twaps]
    report = book.report
    return {"journal": book.path, "account": book.account, "url": book.venue, "records": book.records,
            "first_ts": book.first_ts, "last_ts": book.last_ts,
            "damaged": bool(report.damaged), "damage": report.describe() if report.damaged else None,
            "orders": orders, "twaps": twaps, "closed_orders": book.closed_orders,
            "closed_twaps": book.closed_twaps, "fills": book.fills}


@click.command()
@connect_options
@click.option("--all", "show_all", is_flag=True,
              help="Also closed orders and TWAPs the snapshot revealed (orders that filled recently).")
@click.option("--journal", "journal_path", default=None, metavar="PATH",
              type=click.Path(exists=True, dir_okay=False),
              help="Show the book as recovered from this journal, without connecting.")
@click.option("--account", default=None, help="With --journal: the account it must belong to.")
@click.option("--venue", default=None, help="With --journal: the venue URL it must belong to.")
@click.option("--by-strategy", is_flag=True,
              help="Group orders and TWAPs by strategy (the namespace of their client id, "
                   "strategy:id; orders of no strategy last).")
@json_option
@exit_codes
def orders(config_path: str | None, url: str | None, show_all: bool, journal_path: str | None,
           account: str | None, venue: str | None, by_strategy: bool, as_json: bool) -> None:
    """Show open orders and TWAPs: the exchange's snapshot, or a journal's recovered book."""
    if journal_path is not None:
        book = _journal_book(journal_path, account, venue)
        title = f"journal {book['journal']}: account {book['account']} on {book['url']}"
    else:
        if account is not None or venue is not None:
            raise click.UsageError("--account and --venue only apply with --journal")
        config = one_shot(load(config_path, url))
        config.credentials()  # missing key variables: exit 2 before any log file is opened
        configure_logging(config)
        book = trio.run(_fetch_book, config, show_all)
        title = f"account {book['account']} on {book['url']}"
    if by_strategy:
        if journal_path is not None:
            from qfex_oms.core.model import strategy_of

            for rows, key in ((book["orders"], "client_order_id"), (book["twaps"], "client_twap_id")):
                for row in rows:
                    row["strategy"] = strategy_of(row.get(key))
        book["by_strategy"] = {name: {"orders": rows, "twaps": []}
                               for name, rows in _by_strategy(book["orders"]).items()}
        for name, rows in _by_strategy(book["twaps"]).items():
            book["by_strategy"].setdefault(name, {"orders": [], "twaps": []})["twaps"] = rows
    if as_json:
        echo_json(book)
        return
    console = stdout_console()
    which = "orders" if show_all and journal_path is None else "open orders"
    twaps = "TWAPs" if show_all and journal_path is None else "open TWAPs"
    if by_strategy:
        console.print(f"{title}: {len(book['orders'])} {which}, {len(book['twaps'])} {twaps}",
                      highlight=False)
        for name, group in book["by_strategy"].items():
            print_table(console, orders_table(f"{name}: {len(group['orders'])} {which}", group["orders"]))
            if group["twaps"]:
                print_table(console, twaps_table(f"{name}: {len(group['twaps'])} {twaps}", group["twaps"]))
    else:
        print_table(console, orders_table(f"{title}: {len(book['orders'])} {which}", book["orders"]))
        print_table(console, twaps_table(f"{len(book['twaps'])} {twaps}", book["twaps"]))
        if book.get("stops"):
            print_table(console, stops_table(f"{len(book['stops'])} stop orders", book["stops"]))
    if journal_path is not None:
        if book["damaged"]:
            console.print(f"[red]journal damaged:[/red] {book['damage']}")
        closed = ", ".join(f"{n} {s}" for s, n in sorted(book["closed_orders"].items())) or "none"
        console.print(f"{book['records']} records; closed orders: {closed}; fills: {book['fills']}; "
                      "as recovered, before any resync with the exchange", highlight=False)
    else:
        embedded_note(config, console)


# ====================================================================== cancel


def cancel_exit_code(status: str) -> int:
    if status == "CANCELLED":
        return EXIT_OK
    if status in ("NO_SUCH_ORDER", "ALREADY_CLOSED"):
        return EXIT_NOTHING_TO_CANCEL
    return EXIT_UNSAFE


async def _cancel(config: Any, selector: dict[str, str], symbol: str) -> Any:
    from qfex_oms.app.runner import connect
    from qfex_oms.errors import RequestFailed, RequestTimeout
    from qfex_oms.logs import get_logger

    log = get_logger("qfex_oms.app.cli")
    async with connect(config) as oms:
        try:
            await oms.reconcile()  # learn the book first, so the answer names every order it ended
        except (RequestTimeout, RequestFailed) as exc:
            log.warning("snapshot before the cancel failed; cancelling anyway", error=str(exc))
        return await oms.cancel(None, symbol=symbol, **selector)


@click.command()
@click.option("--symbol", required=True, help="Symbol, e.g. AAPL-USD (QFEX needs it for every cancel).")
@click.option("--order-id", default=None, help="Cancel the order with this exchange order_id.")
@click.option("--client-order-id", default=None, help="Cancel every open order with this client id.")
@click.option("--twap-id", default=None, help="Cancel the TWAP with this twap_id.")
@click.option("--client-twap-id", default=None, help="Cancel the TWAP with this client_twap_id.")
@connect_options
@json_option
@exit_codes
def cancel(symbol: str, order_id: str | None, client_order_id: str | None, twap_id: str | None,
           client_twap_id: str | None, config_path: str | None, url: str | None, as_json: bool) -> None:
    """Cancel by exactly one of the four id kinds and print QFEX's answer.

    Exit 0 on CANCELLED; 5 on NO_SUCH_ORDER (nothing by that id is open: it filled, was cancelled,
    or never existed: a normal answer for scripts); 4 on any other answer (REJECTED, RateLimited,
    TIMEOUT, DISCONNECTED): the order may still be live.
    """
    given = {name: value for name, value in (("order_id", order_id), ("client_order_id", client_order_id),
                                             ("twap_id", twap_id), ("client_twap_id", client_twap_id))
             if value is not None}
    if len(given) != 1:
        raise click.UsageError("give exactly one of --order-id, --client-order-id, --twap-id, "
                               "--client-twap-id")
    config = one_shot(load(config_path, url))
    config.credentials()  # missing key variables: exit 2 before any log file is opened
    configure_logging(config)
    result = trio.run(_cancel, config, given, symbol)
    code = cancel_exit_code(result.status)
    if as_json:
        echo_json({"status": result.status, "ok": result.ok, "mode": result.mode, "value": result.value,
                    "symbol": result.symbol, "cancelled": [order_dict(o) for o in result.cancelled],
                    "twap": None if result.twap is None else twap_dict(result.twap), "exit_code": code})
    else:
        console = stdout_console()
        style = "green" if code == EXIT_OK else "yellow" if code == EXIT_NOTHING_TO_CANCEL else "red"
        what = "1 TWAP" if result.twap is not None and not result.cancelled else \
            f"{len(result.cancelled)} order(s)"
        console.print(f"[{style}]{result.status}[/{style}]: cancel by {result.mode}={result.value} on "
                      f"{result.symbol} ended {what}", highlight=False)
        if result.cancelled:
            console.print(orders_table("cancelled", [order_dict(o) for o in result.cancelled]))
        if result.twap is not None:
            console.print(twaps_table("TWAP", [twap_dict(result.twap)]))
    raise SystemExit(code)


# ====================================================================== kill


async def _kill(config: Any, strategy: str | None = None) -> Any:
    from qfex_oms.app.runner import connect
    from qfex_oms.errors import RequestFailed, RequestTimeout
    from qfex_oms.logs import get_logger

    log = get_logger("qfex_oms.app.cli")
    async with connect(config) as oms:
        try:
            await oms.reconcile()  # know every TWAP up front: the kill cancels TWAPs by id
        except (RequestTimeout, RequestFailed) as exc:
            log.warning("snapshot before the kill failed; killing anyway", error=str(exc))
        # Once the kill switch is pulled it finishes (bounded by manager.kill_timeout): a Ctrl-C or
        # SIGTERM meanwhile is held, not allowed to leave it half done.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as held:
            async with trio.open_nursery() as nursery:

                async def note_signals() -> None:
                    async for signum in held:
                        log.warning("signal held until the kill switch finishes",
                                    signal=signal.Signals(signum).name)

                nursery.start_soon(note_signals)
                if strategy is None:
                    report = await oms.cancel_all()
                else:  # only that strategy's orders, TWAPs and stops; never cancel_all_orders
                    report = await oms.for_strategy(strategy).cancel_all()
                nursery.cancel_scope.cancel()
        return report


@click.command()
@connect_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required off a terminal).")
@click.option("--strategy", default=None, metavar="NAME",
              help="Cancel only this strategy's orders, TWAPs and stops (client ids NAME:...), by id "
                   "or by client ids only it uses; other strategies' orders are left alone.")
@json_option
@exit_codes
def kill(config_path: str | None, url: str | None, yes: bool, strategy: str | None, as_json: bool) -> None:
    """The kill switch: cancel every order and TWAP of the account, then check with a snapshot.

    With --strategy NAME, only that strategy's (the snapshot check counts only its orders).
    Asks for confirmation on a terminal unless --yes; without a terminal and without --yes it refuses
    (exit 2, nothing sent). Exit 0 when the exchange's snapshot shows nothing open, else 4.
    """
    from qfex_oms.core.model import valid_strategy  # here: the core loads only when a command runs

    if strategy is not None and not valid_strategy(strategy):
        raise click.UsageError(f"--strategy: {strategy!r} is not a strategy name (1-16 letters, digits, "
                               "_ or -); nothing was sent")
    config = one_shot(load(config_path, url))
    credentials = config.credentials()
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("kill needs --yes when stdin is not a terminal; nothing was sent")
        venue = "an embedded simulator" if config.embedded else config.url
        what = "EVERY order and TWAP" if strategy is None else f"every order and TWAP of strategy {strategy}"
        if not click.confirm(f"Cancel {what} of {credentials.public_key} on {venue}?",
                             default=False, err=True):
            click.echo("not confirmed; nothing was sent", err=True)
            raise SystemExit(EXIT_USAGE)
    configure_logging(config)
    report = trio.run(_kill, config, strategy)
    code = EXIT_OK if report.clean else EXIT_UNSAFE
    if as_json:
        echo_json({**kill_dict(report), "exit_code": code})
    else:
        console = stdout_console()
        verdict = "[green]clean[/green]" if report.clean else "[red]NOT clean[/red]"
        whose = "kill switch" if strategy is None else f"kill switch of strategy {strategy}"
        console.print(f"{whose}: {len(report.cancelled_orders)} orders and "
                      f"{len(report.cancelled_twaps)} TWAPs cancelled in {report.elapsed * 1000:.1f} ms; "
                      f"snapshot {verdict}", highlight=False)
        if strategy is not None and not (report.cancelled_orders or report.cancelled_twaps
                                         or report.cancelled_stops or report.still_open):
            # Through a gateway an ordinary key sees only its own orders, under its own ids.
            console.print(f"nothing of strategy {strategy} is open for this key (through a qfex-oms "
                          "gateway only the operator's key, may_kill_account, sees other strategies' "
                          "orders)", highlight=False)
        if report.still_open:
            console.print(orders_table("still open", [order_dict(o) for o in report.still_open]))
        if report.still_open_twaps:
            console.print(twaps_table("TWAPs still open", [twap_dict(t) for t in report.still_open_twaps]))
    raise SystemExit(code)
