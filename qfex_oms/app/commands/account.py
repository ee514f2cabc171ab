"""The commands about the account: ``positions``, ``balance``, ``close`` and ``leverage``."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import click
import trio
from rich.table import Table

from qfex_oms.app.commands.common import (
    EXIT_NOTHING_TO_CANCEL,
    EXIT_OK,
    EXIT_UNSAFE,
    EXIT_USAGE,
    cell,
    configure_logging,
    connect_options,
    echo_json,
    embedded_note,
    exit_codes,
    json_option,
    load,
    num,
    one_shot,
    order_dict,
    orders_table,
    print_table,
    stdout_console,
)

# ====================================================================== the account


async def account_reported(oms: Any) -> None:
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


def account_name(oms: Any) -> str:
    c = oms.credentials
    return c.public_key if c.account_id is None else f"{c.public_key}/{c.account_id}"


def position_dict(p: Any) -> dict[str, Any]:
    return {"symbol": p.symbol, "side": None if p.side is None else ("LONG" if str(p.side) == "BUY"
                                                                      else "SHORT"),
            "quantity": num(p.quantity), "average_price": num(p.average_price),
            "unrealised_pnl": num(p.unrealised_pnl), "realised_pnl": num(p.realised_pnl),
            "net_funding": num(p.net_funding), "margin": num(p.margin), "leverage": num(p.leverage),
            "open_orders": num(p.open_orders), "open_quantity": num(p.open_quantity),
            "reported_at": p.reported_at}


def positions_table(title: str, rows: Iterable[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left")
    columns = (("symbol", "symbol"), ("side", "side"), ("qty", "quantity"), ("avg price", "average_price"),
               ("unrealised", "unrealised_pnl"), ("realised", "realised_pnl"), ("funding", "net_funding"),
               ("margin", "margin"), ("leverage", "leverage"))
    for name, _ in columns:
        table.add_column(name, justify="left" if name in ("symbol", "side") else "right")
    for r in rows:
        table.add_row(*(cell(r[key]) for _, key in columns))
    return table


async def _fetch_positions(config: Any) -> dict[str, Any]:
    from qfex_oms.app.runner import connect

    async with connect(config) as oms:
        await account_reported(oms)
        positions = sorted(oms.positions().values(), key=lambda p: p.symbol)
        return {"url": oms.url, "account": account_name(oms),
                "positions": [position_dict(p) for p in positions]}


@click.command()
@connect_options
@click.option("--all", "show_all", is_flag=True, help="Also the flat positions the exchange reported.")
@json_option
@exit_codes
def positions(config_path: str | None, url: str | None, show_all: bool, as_json: bool) -> None:
    """Show the account's positions as the exchange reports them (signed: negative = short).

    Non-zero positions only, unless --all. Exit 0, or 3 if the exchange did not answer.
    """
    config = one_shot(load(config_path, url))
    config.credentials()  # missing key variables: exit 2 before anything connects
    configure_logging(config)
    book = trio.run(_fetch_positions, config)
    if not show_all:
        book["positions"] = [p for p in book["positions"] if Decimal(p["quantity"]) != 0]
    if as_json:
        echo_json(book)
        return
    console = stdout_console()
    which = "positions" if show_all else "open positions"
    title = f"account {book['account']} on {book['url']}: {len(book['positions'])} {which}"
    print_table(console, positions_table(title, book["positions"]))
    embedded_note(config, console)


async def _fetch_balance(config: Any) -> dict[str, Any]:
    from qfex_oms.app.runner import connect

    async with connect(config) as oms:
        await account_reported(oms)
        b = oms.balance()
        assert b is not None  # account_reported waited for it
        balance = {"available": num(b.available), "deposit": num(b.deposit),
                   "order_margin": num(b.order_margin), "position_margin": num(b.position_margin),
                   "realised_pnl": num(b.realised_pnl), "unrealised_pnl": num(b.unrealised_pnl),
                   "net_funding": num(b.net_funding), "reported_at": b.reported_at}
        return {"url": oms.url, "account": account_name(oms), "balance": balance}


@click.command()
@connect_options
@json_option
@exit_codes
def balance(config_path: str | None, url: str | None, as_json: bool) -> None:
    """Show the account's balance as the exchange reports it. Exit 0, or 3 if it did not answer."""
    config = one_shot(load(config_path, url))
    config.credentials()
    configure_logging(config)
    answer = trio.run(_fetch_balance, config)
    if as_json:
        echo_json(answer)
        return
    console = stdout_console()
    console.print(f"account {answer['account']} on {answer['url']}: balance", highlight=False)
    table = Table()
    table.add_column("field")
    table.add_column("value", justify="right")
    for key, value in answer["balance"].items():
        if key != "reported_at":
            table.add_row(key, cell(value))
    console.print(table)
    embedded_note(config, console)


# ====================================================================== close


async def _close(config: Any, symbol: str) -> dict[str, Any]:
    from qfex_oms.app.runner import connect

    async with connect(config) as oms:
        await account_reported(oms)
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
        return {"url": oms.url, "account": account_name(oms), "symbol": symbol,
                "position_before": None if before is None else num(before.quantity),
                "order": None if order is None else order_dict(order),
                "position_after": None if after is None else num(after.quantity),
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


@click.command()
@click.argument("symbol")
@connect_options
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation (required off a terminal).")
@json_option
@exit_codes
def close(symbol: str, config_path: str | None, url: str | None, yes: bool, as_json: bool) -> None:
    """Close SYMBOL's whole position with QFEX's close_position (a reduce-only IOC near mark).

    Asks for confirmation on a terminal unless --yes; without a terminal and without --yes it refuses
    (exit 2, nothing sent). Exit 0 when the exchange then reports the position flat; 5 when there
    was nothing to close (flat already, or QFEX refused the close: an unknown symbol too); 4 when a
    position is still held (the IOC found too little liquidity): run it again or trade it down.
    """
    config = one_shot(load(config_path, url))
    credentials = config.credentials()
    if not yes:
        if not sys.stdin.isatty():
            raise click.UsageError("close needs --yes when stdin is not a terminal; nothing was sent")
        venue = "an embedded simulator" if config.embedded else config.url
        if not click.confirm(f"Close the whole {symbol} position of {credentials.public_key} on {venue}?",
                             default=False, err=True):
            click.echo("not confirmed; nothing was sent", err=True)
            raise SystemExit(EXIT_USAGE)
    configure_logging(config)
    answer = trio.run(_close, config, symbol)
    code = close_exit_code(answer)
    if as_json:
        echo_json({**answer, "exit_code": code})
    else:
        console = stdout_console()
        before, after = answer["position_before"], answer["position_after"]
        if answer["order"] is None:
            console.print(f"[yellow]nothing to close[/yellow]: {symbol} position "
                          f"{before if before is not None else 'never reported'}", highlight=False)
        else:
            verdict = "[green]flat[/green]" if answer["flat"] else f"[red]still held: {after}[/red]"
            console.print(f"close {symbol}: position {before} -> {verdict}", highlight=False)
            console.print(orders_table("close order", [answer["order"]]))
    raise SystemExit(code)


# ====================================================================== leverage


def _leverage_dict(row: Any) -> dict[str, Any]:
    return {"symbol": row.symbol, "leverage": row.leverage, "initial_margin": num(row.initial_margin),
            "maintenance_margin": num(row.maintenance_margin), "max_notional": num(row.max_notional)}


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
        return {"url": oms.url, "account": account_name(oms), "set": level is not None,
                "leverage": [_leverage_dict(r) for r in chosen]}


@click.command()
@click.argument("symbol", required=False)
@click.argument("level", required=False, type=click.IntRange(min=1), metavar="[N]")
@connect_options
@json_option
@exit_codes
def leverage(symbol: str | None, level: int | None, config_path: str | None, url: str | None,
             as_json: bool) -> None:
    """Show the account's leverage per symbol, one symbol's, or set SYMBOL's to N.

    \b
    qfex-oms leverage               every symbol
    qfex-oms leverage AAPL-USD      one symbol
    qfex-oms leverage AAPL-USD 10   set it (QFEX allows only listed levels)
    Exit 0; 2 for an unknown symbol or a level QFEX refuses (the allowed ones are listed).
    """
    config = one_shot(load(config_path, url))
    config.credentials()
    configure_logging(config)
    answer = trio.run(_leverage, config, symbol, level)
    if as_json:
        echo_json(answer)
        return
    console = stdout_console()
    if answer["set"]:
        console.print(f"leverage on {symbol} set to {level}", highlight=False)
    table = Table(title=f"account {answer['account']} on {answer['url']}: leverage", title_justify="left")
    columns = ("symbol", "leverage", "initial_margin", "maintenance_margin", "max_notional")
    for name in columns:
        table.add_column(name, justify="left" if name == "symbol" else "right")
    for row in answer["leverage"]:
        table.add_row(*(cell(row[name]) for name in columns))
    print_table(console, table)
