"""``qfex-oms watch [orders|fills|positions|all]``: follow the account live, read-only.

It connects, takes one snapshot (``reconcile``) so the view starts from what is open now, and from
then on only follows the manager's event stream: nothing is polled. ``--json`` prints a ``ready``
line (the account and venue), then the current open orders and positions as ``initial`` records,
then one line per event; without it, a table redrawn in place on a terminal. SIGINT or SIGTERM ends
it with exit 0 (watching is read-only: there is nothing to clean up).
"""

from __future__ import annotations

import signal
from typing import Any

import click
import trio

from qfex_oms.app.commands.common import (
    configure_logging,
    connect_options,
    exit_codes,
    json_option,
    load,
    one_shot,
    order_dict,
    stdout_console,
)

# qfex_oms.app.live.TOPICS, spelled here so that the command line does not import the live views
# (rich.live, the client's events) before ``watch`` runs; tests/app/test_cli_startup.py checks they agree.
TOPICS = ("orders", "fills", "positions", "all")


async def _until_signalled() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def watch_account(config: Any, topic: str, as_json: bool) -> None:
    """Connect, print what is open now, then follow the events of ``topic`` until a signal."""
    from qfex_oms.app.live import LiveView, echo_line, position_dict, show_live, stream_json
    from qfex_oms.app.runner import connect

    async with connect(config) as oms:
        await oms.reconcile()
        async with trio.open_nursery() as nursery:
            if as_json:
                await nursery.start(stream_json, oms, topic)
                echo_line({"event": "ready", "topic": topic, "url": oms.url,
                           "account": oms.credentials.public_key})
                if topic in ("orders", "all"):
                    for order in oms.orders():
                        echo_line({"event": "order", "initial": True, **order_dict(order)})
                if topic in ("positions", "all"):
                    for position in oms.positions().values():
                        echo_line({"event": "position", "initial": True, **position_dict(position)})
            else:
                view = LiveView(oms, topic, title=f"{oms.credentials.public_key} on {oms.url}")
                await nursery.start(show_live, view, stdout_console())
            await _until_signalled()
            nursery.cancel_scope.cancel()


@click.command()
@click.argument("topic", type=click.Choice(TOPICS), default="all", required=False)
@connect_options
@json_option
@exit_codes
def watch(topic: str, config_path: str | None, url: str | None, as_json: bool) -> None:
    """Follow open orders, fills and positions live (TOPIC: orders, fills, positions, all).

    Read-only: it never sends an order or a cancel, and never polls; it shows what the exchange
    pushes. --json prints one JSON object per line (first a "ready" line, then the open orders and
    positions as "initial" records, then one per event, each flushed); otherwise a table redrawn in
    place (off a terminal, the table is printed when it ends: use --json in pipes). Connection
    changes are shown for every topic. Ctrl-C ends it (exit 0).
    """
    config = one_shot(load(config_path, url))
    config.credentials()  # missing key variables: exit 2 before anything connects
    configure_logging(config)
    trio.run(watch_account, config, topic, as_json)
