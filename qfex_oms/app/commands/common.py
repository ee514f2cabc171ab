"""What every command shares: exit codes, config loading, the error wrapper, JSON and table output.

Exit codes are part of the interface (scripts rely on them); they are listed in the group's help and
in ``EXIT_CODES``. Every command that connects takes ``--config`` (default ``config/sim.toml``) and
``--url`` (overrides the config's exchange URL, typically the ``ws://`` URL of a ``qfex-oms sim``).
"""

from __future__ import annotations

import functools
import re
import sys
import traceback
from collections.abc import Callable, Iterable
from decimal import Decimal
from enum import Enum
from typing import Any, TypeVar

import attrs
import click
import msgspec
import orjson
import trio
from rich.console import Console
from rich.table import Table

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

# Relative to the working directory; where there is none, the one bundled in the package.
DEFAULT_CONFIG = "config/sim.toml"

F = TypeVar("F", bound=Callable[..., Any])

# ====================================================================== shared plumbing


def leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in leaves(inner)]
    return [exc]


def classify(exc: BaseException) -> tuple[int, BaseException]:
    """The exit code for what escaped a command, and the exception that decided it."""
    import trio_websocket

    from qfex_oms.app.config import ConfigError
    from qfex_oms.app.runner import StrategyError
    from qfex_oms.errors import (
        AuthenticationError,
        ConnectError,
        InvalidArgument,
        NotConnected,
        RequestTimeout,
    )
    from qfex_oms.journal import JournalError

    found = leaves(exc)
    rules: list[tuple[int, tuple[type[BaseException], ...]]] = [
        (EXIT_SIGINT, (KeyboardInterrupt,)),
        (EXIT_USAGE, (ConfigError, InvalidArgument, StrategyError, JournalError)),
        (EXIT_CONNECTION, (ConnectError, AuthenticationError, NotConnected, RequestTimeout, OSError,
                           trio_websocket.HandshakeError, trio_websocket.ConnectionClosed)),
    ]
    for code, kinds in rules:
        for leaf in found:
            if isinstance(leaf, kinds):
                return code, leaf
    return EXIT_ERROR, found[0]


def exit_codes(command: F) -> F:
    """Turn what escapes a command into a one-line message and its documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                SystemExit):
            raise
        except BaseException as exc:
            code, cause = classify(exc)
            cause = explained(cause)
            message = "interrupted" if code == EXIT_SIGINT else str(cause) or type(cause).__name__
            if code == EXIT_ERROR:
                traceback.print_exception(exc, file=sys.stderr)
                message = f"unexpected {type(cause).__name__}: {message}"
            if kwargs.get("as_json"):
                echo_json({"error": message, "error_type": type(cause).__name__, "exit_code": code})
            click.echo(f"qfex-oms: error: {message}", err=True)
            raise SystemExit(code) from None

    return wrapper  # type: ignore[return-value]


_LOADED_CONFIG = "qfex_oms.loaded_config"


def explained(cause: BaseException) -> BaseException:
    """What to tell the user about a connection failure: a network failure the client still raised
    as ``AuthenticationError`` becomes ``ConnectError`` (with its loopback hint), and a refused
    credential says where the keys came from (which environment variables, named where)."""
    import trio_websocket

    from qfex_oms.client.session import connect_failure, rejected_upgrade
    from qfex_oms.errors import AuthenticationError, ConnectError

    context = click.get_current_context(silent=True)
    config = None if context is None else context.meta.get(_LOADED_CONFIG)
    if not isinstance(cause, AuthenticationError) or isinstance(cause, ConnectError) or config is None:
        return cause
    network = cause.__cause__
    if isinstance(network, OSError | trio.TooSlowError | trio_websocket.HandshakeError) and not \
            isinstance(network, trio_websocket.ConnectionRejected):
        return connect_failure(config.url, network)
    # The connection's own wording for a refused upgrade (until it raises rejected_upgrade's).
    refused = re.fullmatch(r"the exchange refused the connection: HTTP (\d+)", str(cause))
    if refused is not None:
        cause = rejected_upgrade(config.url, int(refused.group(1)), config.credentials().public_key)
    return AuthenticationError(f"{cause} {config.key_origin()}")


def load(config_path: str | None, url: str | None = None) -> Any:
    from qfex_oms.app.bundled import existing_or_bundled
    from qfex_oms.app.config import ConfigError, load_config

    config = load_config(existing_or_bundled(config_path or DEFAULT_CONFIG))
    if url is not None:
        if not url.startswith(("ws://", "wss://")):
            raise ConfigError(f"--url: expected a ws:// or wss:// URL, got {url!r}")
        config = attrs.evolve(config, url=url)
    context = click.get_current_context(silent=True)
    overrides = {} if context is None else context.meta.get(CREDENTIAL_OPTIONS, {})
    if overrides.get("account_id") == "":
        raise ConfigError("--account-id: expected a subaccount id, got an empty string")
    config = attrs.evolve(config, **overrides)
    if context is not None:
        context.meta[_LOADED_CONFIG] = config
    return config


def one_shot(config: Any) -> Any:
    """Config for orders/cancel/kill: no journal (a running strategy may hold it), quiet console."""
    manager = {k: v for k, v in config.manager.items() if k != "journal"}
    level = config.log_level if config.log_level in ("warning", "error") else "warning"
    return attrs.evolve(config, manager=manager, log_level=level)


_LOGGING_OPTIONS = "qfex_oms.logging_options"
LOG_LEVELS = ("debug", "info", "warning", "error")


def logging_options(group: F) -> F:
    """The group's logging options, read by ``configure_logging``: they outrank the config's
    [logging] table and each command's default."""

    def remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        if param.name is not None:
            ctx.meta.setdefault(_LOGGING_OPTIONS, {})[param.name] = value
        return value

    for option in (
        click.option("--log-format", type=click.Choice(["console", "json"]), default="console",
                     expose_value=False, callback=remember,
                     help="Log lines on stderr as console text (key=value off a terminal) or JSON."),
        click.option("--log-file", default=None, metavar="PATH", expose_value=False, callback=remember,
                     help="Also append every log record as a JSON line to PATH (overrides "
                          "logging.json_file)."),
        click.option("--quiet", "-q", is_flag=True, expose_value=False, callback=remember,
                     help="Only errors on stderr (same as --log-level error)."),
        click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None,
                     expose_value=False, callback=remember,
                     help="Log records from this level up, on stderr (overrides logging.level; "
                          "commands that only query default to warning)."),
    ):
        group = option(group)
    return group


def configure_logging(config: Any = None, default_level: str = "warning") -> None:
    """Logging for this command: the group's options, else the config's [logging], else
    ``default_level``. Log lines go to stderr (and the log file): stdout is the command's output."""
    from qfex_oms.logs import configure_logging as configure

    context = click.get_current_context(silent=True)
    options = {} if context is None else context.meta.get(_LOGGING_OPTIONS, {})
    level = "error" if options.get("quiet") else options.get("log_level") or (
        config.log_level if config is not None else default_level)
    log_file = options.get("log_file") or (config.log_json_file if config is not None else None)
    configure(level.lower(), log_file, console=options.get("log_format") or "console")


def json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return num(value)
    if isinstance(value, Enum):
        return str(value)
    if attrs.has(type(value)):
        return attrs.asdict(value, recurse=False)
    if isinstance(value, msgspec.Struct):  # protocol.messages.OrderResponse
        return msgspec.structs.asdict(value)
    return str(value)


def echo_json(data: Any) -> None:
    click.echo(orjson.dumps(data, default=json_default,
                            option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


def num(value: Decimal | None) -> str | None:
    if value is None:
        return None
    return format(value.normalize(), "f")


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Decimal):
        return num(value) or "-"
    return str(value)


def order_dict(order: Any) -> dict[str, Any]:
    return {
        "symbol": order.symbol, "side": str(order.side), "quantity": num(order.quantity),
        "price": num(order.price), "filled": num(order.filled_quantity),
        "remaining": num(order.remaining_quantity), "state": str(order.state),
        "last_status": order.last_status, "order_id": order.order_id,
        "client_order_id": order.client_order_id, "order_type": str(order.order_type),
        "time_in_force": str(order.time_in_force), "twap_id": order.twap_id,
    }


def twap_dict(twap: Any) -> dict[str, Any]:
    return {
        "symbol": twap.symbol, "side": str(twap.side), "total_quantity": num(twap.total_quantity),
        "filled": num(twap.filled_quantity), "num_orders": twap.num_orders,
        "order_interval_secs": twap.order_interval_secs, "children": len(twap.children),
        "state": str(twap.state), "last_status": twap.last_status, "twap_id": twap.twap_id,
        "client_twap_id": twap.client_twap_id,
    }


def kill_dict(report: Any) -> dict[str, Any]:
    return {
        "clean": report.clean, "cancelled_orders": [order_dict(o) for o in report.cancelled_orders],
        "cancelled_twaps": [twap_dict(t) for t in report.cancelled_twaps],
        "still_open": [order_dict(o) for o in report.still_open],
        "still_open_twaps": [twap_dict(t) for t in report.still_open_twaps],
        "ack_received": report.ack_received, "snapshot_checked": report.snapshot_checked,
        "elapsed": round(report.elapsed, 6),
    }


def stdout_console() -> Console:
    # Off a terminal (a pipe, a file) ids are long: do not fold them at 80 columns.
    return Console() if sys.stdout.isatty() else Console(width=200)


def print_table(console: Console, table: Table) -> None:
    if table.row_count:
        console.print(table)
    else:
        console.print(table.title, highlight=False)


def _table(title: str, columns: str) -> Table:
    """A listing's table: ``columns`` by name, those ending ``>`` right-justified (numbers), ids
    never wrapped."""
    table = Table(title=title, title_justify="left")
    for spec in columns.split():
        name = spec.rstrip(">")
        table.add_column(name, justify="right" if spec.endswith(">") else "left",
                         no_wrap=name.endswith("id"))
    return table


def orders_table(title: str, rows: Iterable[dict[str, Any]]) -> Table:
    table = _table(title, "symbol side qty> price> filled> state order_id client_order_id")
    for r in rows:
        table.add_row(r["symbol"], r["side"], cell(r["quantity"]), cell(r["price"]), cell(r["filled"]),
                      r["state"], cell(r["order_id"]), cell(r["client_order_id"]))
    return table


def twaps_table(title: str, rows: Iterable[dict[str, Any]]) -> Table:
    table = _table(title, "symbol side total> filled> orders> state twap_id client_twap_id")
    for r in rows:
        table.add_row(r["symbol"], r["side"], cell(r["total_quantity"]), cell(r["filled"]),
                      cell(r.get("num_orders")), r["state"], cell(r["twap_id"]), cell(r["client_twap_id"]))
    return table


def stop_dict(stop: Any) -> dict[str, Any]:
    """A stop order as the CLI shows it (``orders``, ``--json``)."""
    return {"symbol": stop.symbol, "side": str(stop.side), "kind": str(stop.kind),
            "trigger_price": num(stop.trigger_price), "quantity": num(stop.quantity),
            "state": str(stop.state), "stop_order_id": stop.stop_order_id,
            "client_order_id": stop.client_order_id, "parent_order_id": stop.parent_order_id}


def stops_table(title: str, rows: Iterable[dict[str, Any]]) -> Table:
    table = _table(title, "symbol side kind trigger> qty> state stop_order_id parent_order_id")
    for r in rows:
        table.add_row(r["symbol"], r["side"], r["kind"], cell(r["trigger_price"]), cell(r["quantity"]),
                      r["state"], cell(r["stop_order_id"]), cell(r["parent_order_id"]))
    return table


CREDENTIAL_OPTIONS = "qfex_oms.credential_options"


def remember(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    """Keep a credential option for ``load`` (given on every command, read in one place)."""
    if value is not None and param.name is not None:
        ctx.meta.setdefault(CREDENTIAL_OPTIONS, {})[param.name] = value


def connect_options(command: F) -> F:
    command = click.option("--auth", type=click.Choice(["hmac", "jwt"]), default=None, expose_value=False,
                           callback=remember,
                           help="hmac: API keys from the config's key variables; jwt: a JWT from the "
                                "variable named by exchange.jwt_env (QFEX_JWT). Overrides exchange.auth."
                           )(command)
    command = click.option("--account-id", "account_id", default=None, metavar="ID", expose_value=False,
                           callback=remember,
                           help="Trade as this subaccount (overrides exchange.account_id).")(command)
    command = click.option("--url", default=None, metavar="WS_URL",
                           help="Exchange URL overriding the config's, e.g. the ws://127.0.0.1:PORT "
                                "printed by `qfex-oms sim` (demo keys are used on loopback when the "
                                "key variables are unset).")(command)
    command = click.option("--config", "config_path", default=None, metavar="FILE",
                           type=click.Path(dir_okay=False),
                           help=f"TOML config  [default: {DEFAULT_CONFIG}]")(command)
    return command


json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable JSON on stdout.")


def embedded_note(config: Any, console: Console) -> None:
    if config.embedded:
        console.print("[dim]note: embedded config: this simulator started for this command and is empty; "
                      "use --url with the URL of a running `qfex-oms sim`[/dim]")
