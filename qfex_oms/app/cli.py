"""The ``qfex-oms`` command. Each subcommand is one small function; keep the group itself bare.

Exit codes are part of the interface (scripts rely on them); they are listed in the group's help and
in ``EXIT_CODES``. Every command that connects takes ``--config`` (default ``config/sim.toml``) and
``--url`` (overrides the config's exchange URL, typically the ``ws://`` URL of a ``qfex-oms sim``).
"""

from __future__ import annotations

import functools
import signal
import sys
import tomllib
import traceback
from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import Enum
from pathlib import Path
from typing import Any, TypeVar

import attrs
import click
import orjson
import structlog
import trio
from rich.console import Console
from rich.table import Table

from qfex_oms.logs import get_logger
from qfex_oms.sim import RateLimitSettings, open_simulator

EXIT_OK = 0
EXIT_ERROR = 1  # unexpected error (a bug, or the strategy raised)
EXIT_USAGE = 2  # bad usage or config: ConfigError, InvalidArgument, strategy file, refused confirmation
EXIT_CONNECTION = 3  # authentication or connection failure, the exchange did not answer
EXIT_UNSAFE = 4  # guard tripped, kill not clean, cancel not confirmed: orders may still be live;
# close: a position is still held
EXIT_NOTHING_TO_CANCEL = 5  # cancel: NO_SUCH_ORDER (or already closed): nothing by that id is open;
# close: the position was flat already
EXIT_SIGINT = 130
EXIT_SIGTERM = 143

EXIT_CODES = {
    EXIT_OK: "success (cancel: CANCELLED; kill: snapshot clean)",
    EXIT_ERROR: "unexpected error, or the strategy raised",
    EXIT_USAGE: "bad usage or config (missing/unknown key, wrong type, bad TOML, missing file, "
                "invalid argument, unusable strategy file, kill not confirmed)",
    EXIT_CONNECTION: "authentication or connection failure",
    EXIT_UNSAFE: "guard tripped, kill not clean, exit policy incomplete, or cancel not confirmed "
                 "(REJECTED, TIMEOUT, ...): orders may still be live; close: a position is still held",
    EXIT_NOTHING_TO_CANCEL: "cancel: NO_SUCH_ORDER / ALREADY_CLOSED, nothing by that id is open; "
                            "close: nothing to close (flat)",
    EXIT_SIGINT: "run: stopped by SIGINT after a clean shutdown",
    EXIT_SIGTERM: "run: stopped by SIGTERM after a clean shutdown",
}

DEFAULT_CONFIG = "config/sim.toml"
# For an editable install run outside the checkout: the repository's own config/sim.toml.
_BUNDLED_CONFIG = Path(__file__).resolve().parents[2] / DEFAULT_CONFIG

F = TypeVar("F", bound=Callable[..., Any])


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """qfex_oms: an order manager for the QFEX exchange, and its simulator.

    \b
    Start here:  qfex-oms demo
    Then:        qfex-oms sim --port 8765          (a simulator in its own process)
                 qfex-oms run strategies/quoter.py --url ws://127.0.0.1:8765
                 qfex-oms orders --url ws://127.0.0.1:8765
                 qfex-oms kill --url ws://127.0.0.1:8765 --yes
    The account: qfex-oms positions | balance | close SYMBOL | leverage [SYMBOL [N]]

    Commands that connect read --config (default config/sim.toml: an embedded simulator that
    starts and stops with the command) and take --url to point at another venue. Keys come from
    the environment variables the config names (QFEX_PUBLIC_KEY / QFEX_SECRET_KEY); the embedded
    simulator and a ws:// simulator on loopback fall back to the demo keys.

    \b
    Exit codes:
      0    success (cancel: CANCELLED; kill: the exchange shows nothing open)
      1    unexpected error, or the strategy raised
      2    bad usage or config (ConfigError, InvalidArgument, strategy file, kill or close not
           confirmed, unknown symbol, a leverage level QFEX refuses)
      3    authentication or connection failure
      4    guard tripped, kill not clean, exit policy incomplete (flatten: a position still held),
           a cancel not confirmed, or close: the position is still held
      5    cancel: NO_SUCH_ORDER (nothing by that id is open: filled, cancelled or unknown);
           close: nothing to close (the position is flat)
      130  run: stopped by SIGINT after a clean shutdown
      143  run: stopped by SIGTERM after a clean shutdown
    """


# ====================================================================== shared plumbing


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _classify(exc: BaseException) -> tuple[int, BaseException]:
    """The exit code for what escaped a command, and the exception that decided it."""
    import trio_websocket

    from qfex_oms.app.config import ConfigError
    from qfex_oms.app.runner import StrategyError
    from qfex_oms.errors import AuthenticationError, InvalidArgument, NotConnected, RequestTimeout
    from qfex_oms.journal import JournalError

    leaves = _leaves(exc)
    rules: list[tuple[int, tuple[type[BaseException], ...]]] = [
        (EXIT_SIGINT, (KeyboardInterrupt,)),
        (EXIT_USAGE, (ConfigError, InvalidArgument, StrategyError, JournalError)),
        (EXIT_CONNECTION, (AuthenticationError, NotConnected, RequestTimeout, OSError,
                           trio_websocket.HandshakeError, trio_websocket.ConnectionClosed)),
    ]
    for code, kinds in rules:
        for leaf in leaves:
            if isinstance(leaf, kinds):
                return code, leaf
    return EXIT_ERROR, leaves[0]


def _exit_codes(command: F) -> F:
    """Turn what escapes a command into a one-line message and its documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                SystemExit):
            raise
        except BaseException as exc:
            code, cause = _classify(exc)
            message = "interrupted" if code == EXIT_SIGINT else str(cause) or type(cause).__name__
            if code == EXIT_ERROR:
                traceback.print_exception(exc, file=sys.stderr)
                message = f"unexpected {type(cause).__name__}: {message}"
            if kwargs.get("as_json"):
                _echo_json({"error": message, "error_type": type(cause).__name__, "exit_code": code})
            click.echo(f"qfex-oms: error: {message}", err=True)
            raise SystemExit(code) from None

    return wrapper  # type: ignore[return-value]


def _load(config_path: str | None, url: str | None = None) -> Any:
    from qfex_oms.app.config import ConfigError, load_config

    if config_path is None:
        path = Path(DEFAULT_CONFIG)
        if not path.is_file() and _BUNDLED_CONFIG.is_file():
            path = _BUNDLED_CONFIG
    else:
        path = Path(config_path)
    config = load_config(path)
    if url is not None:
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"--url: expected a ws:// or wss:// URL, got {url!r}")
        config = attrs.evolve(config, url=url)
    context = click.get_current_context(silent=True)
    overrides = {} if context is None else context.meta.get(_CREDENTIAL_OPTIONS, {})
    if overrides.get("account_id") == "":
        raise ConfigError("--account-id: expected a subaccount id, got an empty string")
    return attrs.evolve(config, **overrides)


def _one_shot(config: Any) -> Any:
    """Config for orders/cancel/kill: no journal (a running strategy may hold it), quiet console."""
    manager = {k: v for k, v in config.manager.items() if k != "journal"}
    level = config.log_level if config.log_level in ("warning", "error") else "warning"
    return attrs.evolve(config, manager=manager, log_level=level)


def _configure_logging(config: Any) -> None:
    from qfex_oms.logs import configure_logging

    configure_logging(config.log_level, config.log_json_file)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _num(value)
    if isinstance(value, Enum):
        return str(value)
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=False)
    return str(value)


def _echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, default=_json_default,
                            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def _num(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return format(value.normalize(), "f")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return _num(value) or "-"
    return str(value)


def _order_dict(order: Any) -> dict[str, Any]:
    return {
        "symbol": order.symbol, "side": str(order.side), "quantity": _num(order.quantity),
        "price": _num(order.price), "filled": _num(order.filled_quantity),
        "remaining": _num(order.remaining_quantity), "state": str(order.state),
        "last_status": order.last_status, "order_id": order.order_id,
        "client_order_id": order.client_order_id, "order_type": str(order.order_type),
        "time_in_force": str(order.time_in_force), "twap_id": order.twap_id,
    }


def _twap_dict(twap: Any) -> dict[str, Any]:
    return {
        "symbol": twap.symbol, "side": str(twap.side), "total_quantity": _num(twap.total_quantity),
        "filled": _num(twap.filled_quantity), "num_orders": twap.num_orders,
        "order_interval_secs": twap.order_interval_secs, "children": len(twap.children),
        "state": str(twap.state), "last_status": twap.last_status, "twap_id": twap.twap_id,
        "client_twap_id": twap.client_twap_id,
    }


def _kill_dict(report: Any) -> dict[str, Any]:
    return {
        "clean": report.clean, "cancelled_orders": [_order_dict(o) for o in report.cancelled_orders],
        "cancelled_twaps": [_twap_dict(t) for t in report.cancelled_twaps],
        "still_open": [_order_dict(o) for o in report.still_open],
        "still_open_twaps": [_twap_dict(t) for t in report.still_open_twaps],
        "ack_received": report.ack_received, "snapshot_checked": report.snapshot_checked,
        "elapsed": round(report.elapsed, 6),
    }


def _console() -> Console:
    # Off a terminal (a pipe, a file) ids are long: do not fold them at 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=200)


def _print_table(console: Console, table: Table) -> None:
    if table.row_count:
        console.print(table)
    else:
        console.print(table.title, highlight=False)


def _orders_table(title: str, rows: Iterable[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in (("symbol", "left"), ("side", "left"), ("qty", "right"), ("price", "right"),
                          ("filled", "right"), ("state", "left"), ("order_id", "left"),
                          ("client_order_id", "left")):
        table.add_column(name, justify=justify, no_wrap=name.endswith("id"))  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["symbol"], r["side"], _cell(r["quantity"]), _cell(r["price"]), _cell(r["filled"]),
                      r["state"], _cell(r["order_id"]), _cell(r["client_order_id"]))
    return table


def _twaps_table(title: str, rows: Iterable[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    for name, justify in (("symbol", "left"), ("side", "left"), ("total", "right"), ("filled", "right"),
                          ("orders", "right"), ("state", "left"), ("twap_id", "left"),
                          ("client_twap_id", "left")):
        table.add_column(name, justify=justify, no_wrap=name.endswith("id"))  # type: ignore[arg-type]
    for r in rows:
        table.add_row(r["symbol"], r["side"], _cell(r["total_quantity"]), _cell(r["filled"]),
                      _cell(r.get("num_orders")), r["state"], _cell(r["twap_id"]), _cell(r["client_twap_id"]))
    return table


_CREDENTIAL_OPTIONS = "qfex_oms.credential_options"


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep a credential option for ``_load`` (given on every command, read in one place)."""
    if value is not None and param.name is not None:
        ctx.meta.setdefault(_CREDENTIAL_OPTIONS, {})[param.name] = value


def _connect_options(command: F) -> F:
    command = click.option("--auth", type=click.Choice(["hmac", "jwt"]), default=None, expose_value=False,
                           callback=_remember,
                           help="hmac: API keys from the config's key variables; jwt: a JWT from the "
                                "variable named by exchange.jwt_env (QFEX_JWT). Overrides exchange.auth."
                           )(command)
    command = click.option("--account-id", "account_id", default=None, metavar="ID", expose_value=False,
                           callback=_remember,
                           help="Trade as this subaccount (overrides exchange.account_id).")(command)
    command = click.option("--url", default=None, metavar="WS_URL",
                           help="Exchange URL overriding the config's, e.g. the ws://127.0.0.1:PORT "
                                "printed by `qfex-oms sim` (demo keys are used on loopback when the "
                                "key variables are unset).")(command)
    command = click.option("--config", "config_path", default=None, metavar="FILE",
                           type=click.Path(dir_okay=False),
                           help=f"TOML config  [default: {DEFAULT_CONFIG}]")(command)
    return command


_json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


def _embedded_note(config: Any, console: Console) -> None:
    if config.embedded:
        console.print("[dim]note: embedded config: this simulator started for this command and is empty; "
                      "use --url with the URL of a running `qfex-oms sim`[/dim]")


# ====================================================================== demo and sim


@main.command()
@_exit_codes
def demo() -> None:
    """Run the whole product against an embedded simulator and print a summary (exit 0 if OK, else 4)."""
    from qfex_oms.app.demo import run_demo
    from qfex_oms.logs import configure_logging

    configure_logging("error")
    summary = trio.run(run_demo, Console())
    raise SystemExit(EXIT_OK if summary.ok else EXIT_UNSAFE)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks one).")
@click.option("--time-scale", default=1.0, show_default=True, type=float,
              help="Divide TWAP intervals by this factor.")
@click.option("--no-rate-limit", is_flag=True, help="Disable QFEX's rate limits.")
def sim(host: str, port: int, time_scale: float, no_rate_limit: bool) -> None:
    """Run the QFEX simulator until SIGINT/SIGTERM; the first stdout line is its ws:// URL, the
    second ``rest <http URL>`` of its REST API."""
    # Logs go to stderr so stdout carries only the URL line a parent process waits for.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    rate_limits = None if no_rate_limit else RateLimitSettings()
    trio.run(_serve_until_signalled, host, port, time_scale, rate_limits)


async def _serve_until_signalled(
    host: str, port: int, time_scale: float, rate_limits: RateLimitSettings | None
) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_simulator(port, host, time_scale=time_scale,
                                  rate_limits=rate_limits) as venue:
            print(venue.url, flush=True)  # first: scripts wait for this one line
            if venue.rest_url is not None:
                print(f"rest {venue.rest_url}", flush=True)
            async for _ in signals:
                break


# ====================================================================== run


def _parse_params(params: Iterable[str]) -> dict[str, Any]:
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


@main.command()
@click.argument("strategy", type=click.Path(dir_okay=False))
@_connect_options
@click.option("--param", "-p", "params", multiple=True, metavar="KEY=VALUE",
              help="Strategy parameter, overriding the config's [strategy] table; repeatable. VALUE is "
                   "read as TOML (5, 0.5, true, [\"a\", \"b\"]) or else taken as a string.")
@_json_option
@_exit_codes
def run(strategy: str, config_path: str | None, url: str | None, params: tuple[str, ...],
        as_json: bool) -> None:
    """Run a strategy file (async def run(oms, ctx)) beside the kill-switch guard until it returns.

    SIGINT/SIGTERM stop it; the config's runner.on_exit policy (cancel_all, leave_gtc, or flatten:
    cancel_all then close every position) then runs, shielded (the kill switch is bounded by
    manager.kill_timeout, leave_gtc's TWAP cancels and flatten's closes by runner.shutdown_timeout).
    Exit 0 when it finished, 4 when the guard tripped or the exit policy did not complete (flatten:
    a position is still held), 130/143 after a signal, 1 if the strategy raised.
    """
    from qfex_oms.app.runner import run_file

    config = _load(config_path, url)
    config = attrs.evolve(config, strategy={**config.strategy, **_parse_params(params)})
    config.credentials()  # missing key variables fail here (exit 2), before anything connects
    _configure_logging(config)
    result = trio.run(run_file, strategy, config)
    code = run_exit_code(result)
    if as_json:
        _echo_json({
            "strategy": strategy, "stopped_by": result.stopped_by, "guard_reason": result.guard_reason,
            "error": result.error, "on_exit": config.on_exit, "exit_clean": result.exit_clean,
            "exit_report": None if result.exit_report is None else _kill_dict(result.exit_report),
            "positions_held": {symbol: _num(q) for symbol, q in result.positions_held.items()},
            "result": result.strategy_result, "exit_code": code,
        })
    else:
        console = _console()
        how = "finished" if result.stopped_by == "finished" else f"stopped by {result.stopped_by}"
        line = f"[bold]{strategy}[/bold]: {how}"
        if result.guard_reason:
            line += f" (guard: {result.guard_reason})"
        if result.error:
            line += f" ({result.error})"
        if result.exit_report is not None:
            r = result.exit_report
            line += (f"; exit policy {config.on_exit}: {len(r.cancelled_orders)} orders cancelled, "
                     f"{len(r.still_open)} still open, {'clean' if r.clean else 'NOT clean'}")
        else:
            line += f"; exit policy {config.on_exit}: {'done' if result.exit_clean else 'NOT complete'}"
        if config.on_exit == "flatten":
            still = ", ".join(f"{s} {_num(q)}" for s, q in result.positions_held.items())
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
        return {"url": oms.url, "account": oms.credentials.public_key,
                "orders": [_order_dict(o) for o in orders], "twaps": [_twap_dict(t) for t in twaps]}


def _journal_book(path: str, account: str | None, venue: str | None) -> dict[str, Any]:
    from qfex_oms.journal.view import recovered_book

    book = recovered_book(path, account=account, venue=venue)
    orders = [{"symbol": r.symbol, "side": r.side, "quantity": _num(r.quantity), "price": _num(r.price),
               "filled": _num(r.filled), "remaining": _num(r.remaining), "state": r.state,
               "last_status": r.last_status, "order_id": r.exchange_id, "client_order_id": r.client_id}
              for r in book.open_orders]
    twaps = [{"symbol": r.symbol, "side": r.side, "total_quantity": _num(r.quantity),
              "filled": _num(r.filled), "state": r.state, "last_status": r.last_status,
              "twap_id": r.exchange_id, "client_twap_id": r.client_id} for r in book.open_twaps]
    report = book.report
    return {"journal": book.path, "account": book.account, "url": book.venue, "records": book.records,
            "first_ts": book.first_ts, "last_ts": book.last_ts,
            "damaged": bool(report.damaged), "damage": report.describe() if report.damaged else None,
            "orders": orders, "twaps": twaps, "closed_orders": book.closed_orders,
            "closed_twaps": book.closed_twaps, "fills": book.fills}


@main.command()
@_connect_options
@click.option("--all", "show_all", is_flag=True,
              help="Also closed orders and TWAPs the snapshot revealed (orders that filled recently).")
@click.option("--journal", "journal_path", default=None, metavar="PATH",
              type=click.Path(exists=True, dir_okay=False),
              help="Show the book as recovered from this journal, without connecting.")
@click.option("--account", default=None, help="With --journal: the account it must belong to.")
@click.option("--venue", default=None, help="With --journal: the venue URL it must belong to.")
@_json_option
@_exit_codes
def orders(config_path: str | None, url: str | None, show_all: bool, journal_path: str | None,
           account: str | None, venue: str | None, as_json: bool) -> None:
    """Show open orders and TWAPs: the exchange's snapshot, or a journal's recovered book."""
    if journal_path is not None:
        book = _journal_book(journal_path, account, venue)
        title = f"journal {book['journal']}: account {book['account']} on {book['url']}"
    else:
        if account is not None or venue is not None:
            raise click.UsageError("--account and --venue only apply with --journal")
        config = _one_shot(_load(config_path, url))
        config.credentials()  # missing key variables: exit 2 before any log file is opened
        _configure_logging(config)
        book = trio.run(_fetch_book, config, show_all)
        title = f"account {book['account']} on {book['url']}"
    if as_json:
        _echo_json(book)
        return
    console = _console()
    which = "orders" if show_all and journal_path is None else "open orders"
    _print_table(console, _orders_table(f"{title}: {len(book['orders'])} {which}", book["orders"]))
    twaps = "TWAPs" if show_all and journal_path is None else "open TWAPs"
    _print_table(console, _twaps_table(f"{len(book['twaps'])} {twaps}", book["twaps"]))
    if journal_path is not None:
        if book["damaged"]:
            console.print(f"[red]journal damaged:[/red] {book['damage']}")
        closed = ", ".join(f"{n} {s}" for s, n in sorted(book["closed_orders"].items())) or "none"
        console.print(f"{book['records']} records; closed orders: {closed}; fills: {book['fills']}; "
                      "as recovered, before any resync with the exchange", highlight=False)
    else:
        _embedded_note(config, console)


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

    log = get_logger("qfex_oms.app.cli")
    async with connect(config) as oms:
        try:
            await oms.reconcile()  # learn the book first, so the answer names every order it ended
        except (RequestTimeout, RequestFailed) as exc:
            log.warning("snapshot before the cancel failed; cancelling anyway", error=str(exc))
        return await oms.cancel(None, symbol=symbol, **selector)


@main.command()
@click.option("--symbol", required=True, help="Symbol, e.g. AAPL-USD (QFEX needs it for every cancel).")
@click.option("--order-id", default=None, help="Cancel the order with this exchange order_id.")
@click.option("--client-order-id", default=None, help="Cancel every open order with this client id.")
@click.option("--twap-id", default=None, help="Cancel the TWAP with this twap_id.")
@click.option("--client-twap-id", default=None, help="Cancel the TWAP with this client_twap_id.")
@_connect_options
@_json_option
@_exit_codes
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
    config = _one_shot(_load(config_path, url))
    config.credentials()  # missing key variables: exit 2 before any log file is opened
    _configure_logging(config)
    result = trio.run(_cancel, config, given, symbol)
    code = cancel_exit_code(result.status)
    if as_json:
        _echo_json({"status": result.status, "ok": result.ok, "mode": result.mode, "value": result.value,
                    "symbol": result.symbol, "cancelled": [_order_dict(o) for o in result.cancelled],
                    "twap": None if result.twap is None else _twap_dict(result.twap), "exit_code": code})
    else:
        console = _console()
        style = "green" if code == EXIT_OK else "yellow" if code == EXIT_NOTHING_TO_CANCEL else "red"
        what = "1 TWAP" if result.twap is not None and not result.cancelled else \
            f"{len(result.cancelled)} order(s)"
        console.print(f"[{style}]{result.status}[/{style}]: cancel by {result.mode}={result.value} on "
                      f"{result.symbol} ended {what}", highlight=False)
        if result.cancelled:
            console.print(_orders_table("cancelled", [_order_dict(o) for o in result.cancelled]))
        if result.twap is not None:
            console.print(_twaps_table("TWAP", [_twap_dict(result.twap)]))
    raise SystemExit(code)


# ====================================================================== kill


async def _kill(config: Any) -> Any:
    from qfex_oms.app.runner import connect
    from qfex_oms.errors import RequestFailed, RequestTimeout

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
                report = await oms.cancel_all()
                nursery.cancel_scope.cancel()
        return report


@main.command()
@_connect_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required off a terminal).")
@_json_option
@_exit_codes
def kill(config_path: str | None, url: str | None, yes: bool, as_json: bool) -> None:
    """The kill switch: cancel every order and TWAP of the account, then check with a snapshot.

    Asks for confirmation on a terminal unless --yes; without a terminal and without --yes it refuses
    (exit 2, nothing sent). Exit 0 when the exchange's snapshot shows nothing open, else 4.
    """
    config = _one_shot(_load(config_path, url))
    credentials = config.credentials()
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("kill needs --yes when stdin is not a terminal; nothing was sent")
        venue = "an embedded simulator" if config.embedded else config.url
        if not click.confirm(f"Cancel EVERY order and TWAP of {credentials.public_key} on {venue}?",
                             default=False, err=True):
            click.echo("not confirmed; nothing was sent", err=True)
            raise SystemExit(EXIT_USAGE)
    _configure_logging(config)
    report = trio.run(_kill, config)
    code = EXIT_OK if report.clean else EXIT_UNSAFE
    if as_json:
        _echo_json({**_kill_dict(report), "exit_code": code})
    else:
        console = _console()
        verdict = "[green]clean[/green]" if report.clean else "[red]NOT clean[/red]"
        console.print(f"kill switch: {len(report.cancelled_orders)} orders and "
                      f"{len(report.cancelled_twaps)} TWAPs cancelled in {report.elapsed * 1000:.1f} ms; "
                      f"snapshot {verdict}", highlight=False)
        if report.still_open:
            console.print(_orders_table("still open", [_order_dict(o) for o in report.still_open]))
        if report.still_open_twaps:
            console.print(_twaps_table("TWAPs still open", [_twap_dict(t) for t in report.still_open_twaps]))
    raise SystemExit(code)


# ====================================================================== the account


async def _account_reported(oms: Any) -> None:
    """Until the account snapshot that follows the subscription has arrived.

    The manager subscribes to ``positions`` before ``balances`` on one ordered connection, so the
    first balance report comes after the position snapshot: it marks the snapshot as complete.
    """
    from qfex_oms.errors import RequestTimeout

    with oms.events() as stream, trio.move_on_after(oms.settings.request_timeout):
        if oms.balance() is not None:
            return
        async for _ in stream:
            if oms.balance() is not None:
                return
    raise RequestTimeout(f"the exchange reported no balance within {oms.settings.request_timeout} s "
                         "of subscribing")


def _account_name(oms: Any) -> str:
    c = oms.credentials
    return c.public_key if c.account_id is None else f"{c.public_key}/{c.account_id}"


def _position_dict(p: Any) -> dict[str, Any]:
    return {"symbol": p.symbol, "side": None if p.side is None else ("LONG" if str(p.side) == "BUY"
                                                                      else "SHORT"),
            "quantity": _num(p.quantity), "average_price": _num(p.average_price),
            "unrealised_pnl": _num(p.unrealised_pnl), "realised_pnl": _num(p.realised_pnl),
            "net_funding": _num(p.net_funding), "margin": _num(p.margin), "leverage": _num(p.leverage),
            "open_orders": _num(p.open_orders), "open_quantity": _num(p.open_quantity),
            "reported_at": p.reported_at}


def _positions_table(title: str, rows: Iterable[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    columns = (("symbol", "symbol"), ("side", "side"), ("qty", "quantity"), ("avg price", "average_price"),
               ("unrealised", "unrealised_pnl"), ("realised", "realised_pnl"), ("funding", "net_funding"),
               ("margin", "margin"), ("leverage", "leverage"))
    for name, _ in columns:
        table.add_column(name, justify="left" if name in ("symbol", "side") else "right")
    for r in rows:
        table.add_row(*(_cell(r[key]) for _, key in columns))
    return table


async def _fetch_positions(config: Any) -> dict[str, Any]:
    from qfex_oms.app.runner import connect

    async with connect(config) as oms:
        await _account_reported(oms)
        positions = sorted(oms.positions().values(), key=lambda p: p.symbol)
        return {"url": oms.url, "account": _account_name(oms),
                "positions": [_position_dict(p) for p in positions]}


@main.command()
@_connect_options
@click.option("--all", "show_all", is_flag=True, help="Also the flat positions the exchange reported.")
@_json_option
@_exit_codes
def positions(config_path: str | None, url: str | None, show_all: bool, as_json: bool) -> None:
    """Show the account's positions as the exchange reports them (signed: negative = short).

    Non-zero positions only, unless --all. Exit 0, or 3 if the exchange did not answer.
    """
    config = _one_shot(_load(config_path, url))
    config.credentials()  # missing key variables: exit 2 before anything connects
    _configure_logging(config)
    book = trio.run(_fetch_positions, config)
    if not show_all:
        book["positions"] = [p for p in book["positions"] if Decimal(p["quantity"]) != 0]
    if as_json:
        _echo_json(book)
        return
    console = _console()
    which = "positions" if show_all else "open positions"
    title = f"account {book['account']} on {book['url']}: {len(book['positions'])} {which}"
    _print_table(console, _positions_table(title, book["positions"]))
    _embedded_note(config, console)


async def _fetch_balance(config: Any) -> dict[str, Any]:
    from qfex_oms.app.runner import connect

    async with connect(config) as oms:
        await _account_reported(oms)
        b = oms.balance()
        assert b is not None  # _account_reported waited for it
        balance = {"available": _num(b.available), "deposit": _num(b.deposit),
                   "order_margin": _num(b.order_margin), "position_margin": _num(b.position_margin),
                   "realised_pnl": _num(b.realised_pnl), "unrealised_pnl": _num(b.unrealised_pnl),
                   "net_funding": _num(b.net_funding), "reported_at": b.reported_at}
        return {"url": oms.url, "account": _account_name(oms), "balance": balance}


@main.command()
@_connect_options
@_json_option
@_exit_codes
def balance(config_path: str | None, url: str | None, as_json: bool) -> None:
    """Show the account's balance as the exchange reports it. Exit 0, or 3 if it did not answer."""
    config = _one_shot(_load(config_path, url))
    config.credentials()
    _configure_logging(config)
    answer = trio.run(_fetch_balance, config)
    if as_json:
        _echo_json(answer)
        return
    console = _console()
    console.print(f"account {answer['account']} on {answer['url']}: balance", highlight=False)
    table = Table()
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in answer["balance"].items():
        if key != "reported_at":
            table.add_row(key, _cell(value))
    console.print(table)
    _embedded_note(config, console)


# ====================================================================== close


async def _close(config: Any, symbol: str) -> dict[str, Any]:
    from qfex_oms.app.runner import connect

    async with connect(config) as oms:
        await _account_reported(oms)
        before = oms.position(symbol)
        # Once sent, the close is seen through (its IOC ends at once): a signal meanwhile is held,
        # and delivered once the outcome is known.
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM):
            order = await oms.close_position(symbol)
            if order is not None:
                with trio.move_on_after(oms.settings.request_timeout):
                    await oms.wait_ended(order)
                    await _reported_flat(oms, symbol)
        after = oms.position(symbol)
        return {"url": oms.url, "account": _account_name(oms), "symbol": symbol,
                "position_before": None if before is None else _num(before.quantity),
                "order": None if order is None else _order_dict(order),
                "position_after": None if after is None else _num(after.quantity),
                "flat": after is not None and after.flat}


async def _reported_flat(oms: Any, symbol: str) -> None:
    """Until the exchange reports ``symbol`` flat (the report follows the close's fills)."""
    with oms.events() as stream:
        if (p := oms.position(symbol)) is not None and p.flat:
            return
        async for _ in stream:
            if (p := oms.position(symbol)) is not None and p.flat:
                return


def close_exit_code(answer: dict[str, Any]) -> int:
    if answer["order"] is None:
        return EXIT_NOTHING_TO_CANCEL  # flat already (or QFEX refused: nothing to close)
    return EXIT_OK if answer["flat"] else EXIT_UNSAFE


@main.command()
@click.argument("symbol")
@_connect_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required off a terminal).")
@_json_option
@_exit_codes
def close(symbol: str, config_path: str | None, url: str | None, yes: bool, as_json: bool) -> None:
    """Close SYMBOL's whole position with QFEX's close_position (a reduce-only IOC near mark).

    Asks for confirmation on a terminal unless --yes; without a terminal and without --yes it refuses
    (exit 2, nothing sent). Exit 0 when the exchange then reports the position flat; 5 when there
    was nothing to close (flat already, or QFEX refused the close: an unknown symbol too); 4 when a
    position is still held (the IOC found too little liquidity): run it again or trade it down.
    """
    config = _one_shot(_load(config_path, url))
    credentials = config.credentials()
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("close needs --yes when stdin is not a terminal; nothing was sent")
        venue = "an embedded simulator" if config.embedded else config.url
        if not click.confirm(f"Close the whole {symbol} position of {credentials.public_key} on {venue}?",
                             default=False, err=True):
            click.echo("not confirmed; nothing was sent", err=True)
            raise SystemExit(EXIT_USAGE)
    _configure_logging(config)
    answer = trio.run(_close, config, symbol)
    code = close_exit_code(answer)
    if as_json:
        _echo_json({**answer, "exit_code": code})
    else:
        console = _console()
        before, after = answer["position_before"], answer["position_after"]
        if answer["order"] is None:
            console.print(f"[yellow]nothing to close[/yellow]: {symbol} position "
                          f"{before if before is not None else 'never reported'}", highlight=False)
        else:
            verdict = "[green]flat[/green]" if answer["flat"] else f"[red]still held: {after}[/red]"
            console.print(f"close {symbol}: position {before} -> {verdict}", highlight=False)
            console.print(_orders_table("close order", [answer["order"]]))
    raise SystemExit(code)


# ====================================================================== leverage


def _leverage_dict(row: Any) -> dict[str, Any]:
    return {"symbol": row.symbol, "leverage": row.leverage, "initial_margin": _num(row.initial_margin),
            "maintenance_margin": _num(row.maintenance_margin), "max_notional": _num(row.max_notional)}


async def _leverage(config: Any, symbol: str | None, level: int | None) -> dict[str, Any]:
    from qfex_oms.app.runner import connect
    from qfex_oms.errors import InvalidArgument, RequestFailed

    async with connect(config) as oms:
        if symbol is not None and level is not None:
            try:
                await oms.set_leverage(symbol, level)
            except RequestFailed as exc:
                allowed = sorted({r.leverage for r in await oms.leverage_levels() if r.symbol == symbol},
                                 key=lambda text: Decimal(text))
                why = f"allowed: {', '.join(allowed)}" if allowed else "unknown symbol"
                raise InvalidArgument(f"leverage {level} on {symbol} refused "
                                      f"({exc.error_code}); {why}") from None
        rows = await oms.leverage()
        if symbol is not None and symbol not in rows:
            raise InvalidArgument(f"unknown symbol {symbol!r}: the exchange reports no leverage for it")
        chosen = [rows[symbol]] if symbol is not None else [rows[s] for s in sorted(rows)]
        return {"url": oms.url, "account": _account_name(oms), "set": level is not None,
                "leverage": [_leverage_dict(r) for r in chosen]}


@main.command()
@click.argument("symbol", required=False)
@click.argument("level", required=False, type=click.IntRange(min=1), metavar="[N]")
@_connect_options
@_json_option
@_exit_codes
def leverage(symbol: str | None, level: int | None, config_path: str | None, url: str | None,
             as_json: bool) -> None:
    """Show the account's leverage per symbol, one symbol's, or set SYMBOL's to N.

    \b
    qfex-oms leverage               every symbol
    qfex-oms leverage AAPL-USD      one symbol
    qfex-oms leverage AAPL-USD 10   set it (QFEX allows only listed levels)
    Exit 0; 2 for an unknown symbol or a level QFEX refuses (the allowed ones are listed).
    """
    config = _one_shot(_load(config_path, url))
    config.credentials()
    _configure_logging(config)
    answer = trio.run(_leverage, config, symbol, level)
    if as_json:
        _echo_json(answer)
        return
    console = _console()
    if answer["set"]:
        console.print(f"leverage on {symbol} set to {level}", highlight=False)
    table = Table(title=f"account {answer['account']} on {answer['url']}: leverage", title_justify="left")
    columns = ("symbol", "leverage", "initial_margin", "maintenance_margin", "max_notional")
    for name in columns:
        table.add_column(name, justify="left" if name == "symbol" else "right")
    for row in answer["leverage"]:
        table.add_row(*(_cell(row[name]) for name in columns))
    _print_table(console, table)
