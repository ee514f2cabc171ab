"""Manual trading: ``qfex-oms place``, ``modify`` and ``twap``.

Each argument is checked with the API's own validators (``qfex_oms.core.args``) before anything
connects, then again by the manager (with the reference data) before the frame exists: a bad
argument exits 2 having sent nothing. The command prints the resulting order or TWAP as a table, or
``--json``.

An order placed here must outlive the command, so these commands connect with
``cancel_on_disconnect`` off whatever the config says (a cancel-on-disconnect session would have
QFEX cancel the order the moment the command exits).

Exit codes: 0 accepted (placed, modified, TWAP started); 1 QFEX refused it (REJECTED, the status is
printed); 2 a bad argument (nothing sent); 4 the answer was lost (the order may be live: check with
``qfex-oms orders``); 5 modify: no open order by that id.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import click
import trio

from qfex_oms.app.commands.common import (
    EXIT_ERROR,
    EXIT_NOTHING_TO_CANCEL,
    EXIT_OK,
    EXIT_UNSAFE,
    configure_logging,
    connect_options,
    echo_json,
    embedded_note,
    exit_codes,
    json_option,
    load,
    one_shot,
    order_dict,
    orders_table,
    stdout_console,
    twap_dict,
    twaps_table,
)
from qfex_oms.errors import InvalidArgument


def checked_order(symbol: str, side: str, quantity: str, price: str | None, order_type: str,
                  time_in_force: str | None, client_order_id: str | None,
                  take_profit: str | None, stop_loss: str | None) -> dict[str, Any]:
    """``place_order``'s keyword arguments, validated as the API validates them (``InvalidArgument``)."""
    # Here, not at the top: the core loads when a command runs, not for ``qfex-oms --help``.
    from qfex_oms.core import args
    from qfex_oms.protocol.enums import OrderType, Side

    kind, tif = args.order_type_and_tif(order_type, time_in_force)
    if kind is OrderType.MARKET and price is not None:
        raise InvalidArgument("MARKET orders take no price")
    if kind is not OrderType.MARKET and price is None:
        raise InvalidArgument(f"{kind} orders need a price")
    return {
        "symbol": args.symbol_arg(symbol), "side": str(args.enum_arg("side", side, Side)),
        "quantity": args.decimal_arg("quantity", quantity),
        "price": None if price is None else args.decimal_arg("price", price),
        "order_type": str(kind), "time_in_force": str(tif),
        "client_order_id": None if client_order_id is None else args.client_id_arg("client_order_id",
                                                                                    client_order_id),
        "take_profit": None if take_profit is None else args.decimal_arg("take_profit", take_profit),
        "stop_loss": None if stop_loss is None else args.decimal_arg("stop_loss", stop_loss),
    }


def _manual(config_path: str | None, url: str | None) -> Any:
    """The config for a manual command: no journal, quiet, and never cancel-on-disconnect."""
    config = one_shot(load(config_path, url))
    config = attrs.evolve(config, manager={**config.manager, "cancel_on_disconnect": False})
    config.credentials()  # missing key variables: exit 2 before anything connects
    configure_logging(config)
    return config


async def _place(config: Any, fields: dict[str, Any], reduce_only: bool | None
                 ) -> tuple[Any, str | None, int]:
    from qfex_oms.app.runner import connect
    from qfex_oms.errors import OrderRejected, OrderStatusUnknown

    async with connect(config) as oms:
        symbol, side, quantity, price = (fields.pop(k) for k in ("symbol", "side", "quantity", "price"))
        try:
            order = await oms.place_order(symbol, side, quantity, price, reduce_only=reduce_only, **fields)
        except OrderRejected as exc:
            return exc.order, f"REJECTED: {exc.status}", EXIT_ERROR
        except OrderStatusUnknown as exc:
            return exc.order, f"answer lost ({exc}): the order may be live", EXIT_UNSAFE
        return order, None, EXIT_OK


def _report(config: Any, what: str, row: dict[str, Any], problem: str | None, code: int, as_json: bool,
            table: Any) -> None:
    if as_json:
        echo_json({what: row, "error": problem, "exit_code": code})
        return
    console = stdout_console()
    if problem is not None:
        console.print(f"[red]{problem}[/red]", highlight=False)
    console.print(table)
    embedded_note(config, console)


@click.command()
@click.argument("symbol")
@click.argument("side", type=click.Choice(["BUY", "SELL"], case_sensitive=False))
@click.argument("quantity")
@click.argument("price", required=False)
@click.option("--type", "order_type", default="LIMIT", show_default=True,
              type=click.Choice(["LIMIT", "MARKET", "ALO"], case_sensitive=False), help="Order type.")
@click.option("--tif", "time_in_force", default=None,
              type=click.Choice(["GTC", "IOC", "FOK"], case_sensitive=False),
              help="Time in force (default: GTC for LIMIT and ALO, IOC for MARKET).")
@click.option("--client-order-id", default=None, help="Your id for the order (default: a fresh one).")
@click.option("--reduce-only", is_flag=True, default=None, help="Only reduce the position.")
@click.option("--take-profit", default=None, metavar="PRICE", help="Take-profit price.")
@click.option("--stop-loss", default=None, metavar="PRICE", help="Stop-loss price.")
@connect_options
@json_option
@exit_codes
def place(symbol: str, side: str, quantity: str, price: str | None, order_type: str,
          time_in_force: str | None, client_order_id: str | None, reduce_only: bool | None,
          take_profit: str | None, stop_loss: str | None, config_path: str | None, url: str | None,
          as_json: bool) -> None:
    """Place one order (SYMBOL SIDE QUANTITY [PRICE]) and print it once QFEX answered.

    Validated as the API validates (exit 2, nothing sent, on a bad argument); the order rests after
    the command exits. Exit 0 accepted, 1 REJECTED (QFEX's status printed), 4 answer lost.
    """
    fields = checked_order(symbol, side, quantity, price, order_type, time_in_force, client_order_id,
                           take_profit, stop_loss)
    config = _manual(config_path, url)
    order, problem, code = trio.run(_place, config, fields, reduce_only)
    row = {**order_dict(order), "last_status": order.last_status}
    _report(config, "order", row, problem, code, as_json, orders_table(f"order {order.state}", [row]))
    raise SystemExit(code)


async def _modify(config: Any, symbol: str, order_id: str | None, client_order_id: str | None,
                  price: Decimal | None, quantity: Decimal | None) -> tuple[Any, str | None, int]:
    from qfex_oms.app.runner import connect
    from qfex_oms.errors import ModifyRejected, OrderStatusUnknown

    async with connect(config) as oms:
        await oms.reconcile()  # the order was placed elsewhere: learn it from the snapshot
        matches = [o for o in oms.orders(symbol)
                   if (order_id is not None and o.order_id == order_id)
                   or (client_order_id is not None and o.client_order_id == client_order_id)]
        if len(matches) != 1:
            what = f"order_id {order_id}" if order_id else f"client_order_id {client_order_id}"
            found = "no open order" if not matches else f"{len(matches)} open orders"
            return None, f"{found} on {symbol} with {what}", EXIT_NOTHING_TO_CANCEL if not matches else 2
        try:
            order = await oms.modify_order(matches[0], price=price, quantity=quantity)
        except ModifyRejected as exc:
            return exc.order, f"modify refused: {exc.status}", EXIT_ERROR
        except OrderStatusUnknown as exc:
            return matches[0], f"answer lost ({exc}): the modify may or may not apply", EXIT_UNSAFE
        return order, None, EXIT_OK


@click.command()
@click.option("--symbol", required=True, help="Symbol of the order, e.g. AAPL-USD.")
@click.option("--order-id", default=None, help="The order's exchange order_id.")
@click.option("--client-order-id", default=None, help="The order's client id (must name one open order).")
@click.option("--price", default=None, help="New price.")
@click.option("--quantity", default=None, help="New quantity.")
@connect_options
@json_option
@exit_codes
def modify(symbol: str, order_id: str | None, client_order_id: str | None, price: str | None,
           quantity: str | None, config_path: str | None, url: str | None, as_json: bool) -> None:
    """Change an open order's price and/or quantity, and print it as QFEX answered.

    Exit 0 MODIFIED, 1 refused (CANNOT_MODIFY_*), 2 a bad argument (nothing sent), 4 answer lost,
    5 no open order by that id.
    """
    if (order_id is None) == (client_order_id is None):
        raise click.UsageError("give exactly one of --order-id, --client-order-id")
    if price is None and quantity is None:
        raise InvalidArgument("modify needs --price, --quantity, or both")
    from qfex_oms.core import args

    args.symbol_arg(symbol)
    new_price = None if price is None else args.decimal_arg("price", price)
    new_quantity = None if quantity is None else args.decimal_arg("quantity", quantity)
    config = _manual(config_path, url)
    order, problem, code = trio.run(_modify, config, symbol, order_id, client_order_id, new_price,
                                    new_quantity)
    if order is None:
        if as_json:
            echo_json({"order": None, "error": problem, "exit_code": code})
        else:
            click.echo(f"qfex-oms: {problem}", err=True)
        raise SystemExit(code)
    row = {**order_dict(order), "last_status": order.last_status}
    _report(config, "order", row, problem, code, as_json, orders_table(f"order {order.state}", [row]))
    raise SystemExit(code)


async def _twap(config: Any, checked: tuple[Any, ...], client_twap_id: str | None
                ) -> tuple[Any, str | None, int]:
    from qfex_oms.app.runner import connect
    from qfex_oms.errors import OrderStatusUnknown, TwapRejected

    symbol, side, total, num_orders, interval, reduce_only = checked
    async with connect(config) as oms:
        try:
            twap = await oms.place_twap(symbol, side, total_quantity=total, num_orders=num_orders,
                                        order_interval_secs=interval, reduce_only=reduce_only,
                                        client_twap_id=client_twap_id)
        except TwapRejected as exc:
            return exc.twap, f"REJECTED: {exc.status}", EXIT_ERROR
        except OrderStatusUnknown as exc:
            return exc.order, f"answer lost ({exc}): the TWAP may be running", EXIT_UNSAFE
        return twap, None, EXIT_OK


@click.command()
@click.argument("symbol")
@click.argument("side", type=click.Choice(["BUY", "SELL"], case_sensitive=False))
@click.argument("total_quantity")
@click.option("--num-orders", "-n", required=True, type=int, help="Child orders (at least 2).")
@click.option("--interval", "order_interval_secs", required=True, type=int,
              help="Seconds between child orders (at least 30).")
@click.option("--reduce-only", is_flag=True, help="Only reduce the position.")
@click.option("--client-twap-id", default=None, help="Your id for the TWAP (default: a fresh one).")
@connect_options
@json_option
@exit_codes
def twap(symbol: str, side: str, total_quantity: str, num_orders: int, order_interval_secs: int,
         reduce_only: bool, client_twap_id: str | None, config_path: str | None, url: str | None,
         as_json: bool) -> None:
    """Start a TWAP (SYMBOL SIDE TOTAL_QUANTITY) and print it once QFEX answered.

    It keeps running after the command exits (cancel it with `qfex-oms cancel --twap-id`). Exit 0
    started, 1 REJECTED, 2 a bad argument (nothing sent), 4 answer lost.
    """
    from qfex_oms.core import args
    from qfex_oms.protocol.enums import Side

    checked = (args.symbol_arg(symbol), str(args.enum_arg("side", side, Side)),
               args.decimal_arg("total_quantity", total_quantity),
               args.int_arg("num_orders", num_orders, 2), args.int_arg("order_interval_secs",
                                                                       order_interval_secs, 30),
               reduce_only)
    if client_twap_id is not None:
        args.client_id_arg("client_twap_id", client_twap_id)
    config = _manual(config_path, url)
    result, problem, code = trio.run(_twap, config, checked, client_twap_id)
    row = twap_dict(result)
    _report(config, "twap", row, problem, code, as_json, twaps_table(f"TWAP {result.state}", [row]))
    raise SystemExit(code)
