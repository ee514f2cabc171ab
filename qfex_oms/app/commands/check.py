"""``qfex-oms check``: a read-only look at an account, the safe way to try a venue and its keys.

It connects, authenticates, and reports the clock skew against the exchange's time, the round-trip
latency of a query, the open orders and TWAPs, the positions and the balance. It never sends an
order, a modify or a cancel: only ``auth``, ``subscribe``, the ``cancel_on_disconnect`` opt-in the
config asks for, and queries (``get_user_orders``, ``get_user_trades``), whatever the account holds.

The exchange's time: QFEX's websocket frames carry no clock reading that answers a query (an order
update's ``update_time`` is when the order last changed), so the skew is read from the ``Date``
header of QFEX's REST API (one-second resolution), against the midpoint of the request. Where the
venue has no REST API known (a simulator: it runs on this machine's clock) the skew is reported as
not measured, with the reason.
"""

from __future__ import annotations

import email.utils
import statistics
import time
from typing import Any

import click
import trio
from rich.table import Table

from qfex_oms.app.commands.account import account_name, account_reported, position_dict, positions_table
from qfex_oms.app.commands.common import (
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
    twap_dict,
    twaps_table,
)

LATENCY_SAMPLES = 5  # get_user_orders round trips timed
# Beyond this the exchange may refuse a signature (its window for unix_ts is not documented for the
# websocket; REST says "typically ±5 minutes"): the check warns well before.
SKEW_WARNING_SECONDS = 2.0


async def exchange_clock_skew(rest_url: str | None, seconds: float) -> dict[str, Any]:
    """Local clock minus the exchange's, from the REST API's ``Date`` header (see the module)."""
    if rest_url is None:
        return {"skew_seconds": None, "source": None,
                "reason": "the venue gives no time to compare with (no REST API known for this URL; a "
                          "simulator runs on this machine's clock)"}
    import httpx

    try:
        with trio.fail_after(seconds):
            async with httpx.AsyncClient() as client:
                sent = time.time()
                response = await client.get(rest_url.rstrip("/") + "/refdata")
                received = time.time()
    except (httpx.HTTPError, trio.TooSlowError) as exc:
        return {"skew_seconds": None, "source": rest_url,
                "reason": f"the REST API did not answer: {type(exc).__name__} {exc}".rstrip()}
    date = response.headers.get("date")
    if date is None:
        return {"skew_seconds": None, "source": rest_url, "reason": "the REST API sent no Date header"}
    exchange = email.utils.parsedate_to_datetime(date).timestamp()
    midpoint = (sent + received) / 2
    # The header is truncated to the second: the exchange's time was in [exchange, exchange + 1).
    return {"skew_seconds": round(midpoint - (exchange + 0.5), 3), "source": f"Date header of {rest_url}",
            "resolution_seconds": round(0.5 + (received - sent) / 2, 3), "reason": None}


async def run_check(config: Any) -> dict[str, Any]:
    """Everything ``check`` reports, as a dict (the --json output)."""
    from qfex_oms.app.runner import connect

    started = trio.current_time()
    async with connect(config) as oms:
        connected = trio.current_time() - started
        await account_reported(oms)
        samples = []
        for _ in range(LATENCY_SAMPLES):
            sent = trio.current_time()
            await oms.fetch_open_orders()
            samples.append(trio.current_time() - sent)
        await oms.reconcile()  # the book from the exchange's snapshot: queries only
        clock = await exchange_clock_skew(oms.reference.rest_url, oms.settings.request_timeout)
        balance = oms.balance()
        positions = sorted((p for p in oms.positions().values() if not p.flat), key=lambda p: p.symbol)
        warnings = []
        if clock["skew_seconds"] is not None and abs(clock["skew_seconds"]) > SKEW_WARNING_SECONDS:
            warnings.append(f"this machine's clock is {clock['skew_seconds']:+.1f} s off the exchange's: "
                            "signatures carry the local time, sync the clock (NTP)")
        return {
            "url": oms.url, "account": account_name(oms), "authenticated": True,
            "connect_seconds": round(connected, 6), "clock": clock,
            "latency_ms": {"samples": [round(s * 1000, 3) for s in samples],
                           "min": round(min(samples) * 1000, 3),
                           "median": round(statistics.median(samples) * 1000, 3)},
            "orders": [order_dict(o) for o in oms.orders()],
            "twaps": [twap_dict(t) for t in oms.twaps(open_only=True)],
            "positions": [position_dict(p) for p in positions],
            "balance": None if balance is None else {
                "available": num(balance.available), "deposit": num(balance.deposit),
                "order_margin": num(balance.order_margin), "position_margin": num(balance.position_margin),
                "unrealised_pnl": num(balance.unrealised_pnl)},
            "warnings": warnings,
        }


@click.command()
@connect_options
@json_option
@exit_codes
def check(config_path: str | None, url: str | None, as_json: bool) -> None:
    """Check a venue and its keys without trading: connect, authenticate, then report the clock skew,
    the round-trip latency, open orders and TWAPs, positions and balance.

    Never sends an order or a cancel. Exit 0 when the keys work; 3 when the connection or the keys
    are refused (the message says which and what to do); 2 for a config problem.
    """
    config = one_shot(load(config_path, url))
    config.credentials()  # missing key variables: exit 2 before anything connects
    configure_logging(config)
    answer = trio.run(run_check, config)
    if as_json:
        echo_json(answer)
        return
    console = stdout_console()
    console.print(f"[green]OK[/green]: account {answer['account']} authenticated on {answer['url']} "
                  f"in {answer['connect_seconds'] * 1000:.0f} ms", highlight=False)
    clock = answer["clock"]
    skew = ("not measured: " + clock["reason"] if clock["skew_seconds"] is None else
            f"{clock['skew_seconds']:+.3f} s (±{clock['resolution_seconds']:.3f} s, {clock['source']})")
    latency = answer["latency_ms"]
    summary = Table(show_header=False)
    summary.add_row("clock skew (local - exchange)", skew)
    summary.add_row("round trip (get_user_orders)",
                    f"median {latency['median']:.1f} ms, min {latency['min']:.1f} ms "
                    f"over {len(latency['samples'])}")
    if answer["balance"] is not None:
        b = answer["balance"]
        summary.add_row("balance", f"available {b['available']}, deposit {b['deposit']}, "
                                   f"unrealised {b['unrealised_pnl']}")
    console.print(summary)
    print_table(console, orders_table(f"{len(answer['orders'])} open orders", answer["orders"]))
    print_table(console, twaps_table(f"{len(answer['twaps'])} open TWAPs", answer["twaps"]))
    print_table(console, positions_table(f"{len(answer['positions'])} open positions", answer["positions"]))
    for warning in answer["warnings"]:
        console.print(f"[yellow]warning:[/yellow] {warning}", highlight=False)
    embedded_note(config, console)
