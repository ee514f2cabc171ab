"""``qfex-oms gateway --config FILE``: serve one QFEX account to local clients (issue 18).

The config's ``[exchange]`` and ``[manager]`` tables say where the gateway connects and how (a
``journal`` there makes a restart recover its book); its ``[gateway]`` table (``qfex_oms.gateway.
config``) says where it listens and whose keys it accepts. The first stdout line is the URL clients
connect to (``ws://`` on loopback, ``wss://`` with TLS); SIGINT/SIGTERM stop it (exit 0) without
firing the clients' cancel-on-disconnect.
"""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click
import trio

from qfex_oms.app.commands.common import DEFAULT_CONFIG, configure_logging, connect_options, exit_codes, load

if TYPE_CHECKING:  # the gateway (and the order manager under it) is imported when the command runs
    from qfex_oms.gateway import GatewayConfig


async def _until_signalled() -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def serve(config: Any, gateway: GatewayConfig) -> None:
    from qfex_oms.gateway import open_gateway

    async def run(url: str) -> None:
        async with open_gateway(url, config.credentials(), gateway, **config.manager) as gw:
            print(gw.url, flush=True)  # the command's output: the first stdout line
            await _until_signalled()

    if config.embedded:
        from qfex_oms.sim import open_simulator

        async with open_simulator(port=0, time_scale=config.sim_time_scale) as venue:
            await run(venue.url)
    else:
        await run(config.url)


@click.command()
@connect_options
@click.option("--host", default=None, help="Interface to listen on (overrides gateway.host).")
@click.option("--port", default=None, type=int, help="Port (overrides gateway.port; 0 picks one).")
@click.option("--certfile", default=None, type=click.Path(dir_okay=False, exists=True),
              help="TLS certificate (PEM): required to listen beyond loopback.")
@click.option("--keyfile", default=None, type=click.Path(dir_okay=False, exists=True),
              help="TLS private key (PEM), with --certfile.")
@exit_codes
def gateway(config_path: str | None, url: str | None, host: str | None, port: int | None,
            certfile: str | None, keyfile: str | None) -> None:
    """Share one QFEX account among local clients that speak QFEX's own protocol.

    One connection to QFEX (one pacer, one journal, one kill switch); each client authenticates
    with a key from [[gateway.client]], sees only its own orders, and cancels only its own (unless
    its key has may_kill_account). The first stdout line is the URL clients use instead of QFEX's.
    Listening beyond loopback requires --certfile/--keyfile (TLS). Ctrl-C stops it (exit 0).
    """
    from qfex_oms.app.bundled import existing_or_bundled
    from qfex_oms.gateway import load_gateway
    from qfex_oms.gateway.config import check_listen

    path = Path(existing_or_bundled(config_path or DEFAULT_CONFIG))
    gw = load_gateway(path)
    gw = attrs.evolve(gw, host=gw.host if host is None else host, port=gw.port if port is None else port,
                      certfile=certfile or gw.certfile, keyfile=keyfile or gw.keyfile)
    check_listen(gw)
    config = load(str(path), url)  # the app's loader leaves the [gateway] tables to load_gateway
    config.credentials()  # missing key variables: exit 2 before anything connects
    configure_logging(config)
    trio.run(serve, config, gw)
