"""``qfex-oms gateway --config FILE``: serve one QFEX account to local clients (issue 18).

The config's ``[exchange]`` and ``[manager]`` tables say where the gateway connects and how (a
``journal`` there makes a restart recover its book); its ``[gateway]`` table (``qfex_oms.gateway.
config``) says where it listens and whose keys it accepts. The first stdout line is the URL clients
connect to (``ws://`` on loopback, ``wss://`` with TLS); SIGINT/SIGTERM stop it (exit 0) without
firing the clients' cancel-on-disconnect.

``qfex-oms gateway token --config FILE --key PUBLIC_KEY``: print a JWT the gateway accepts as that
client key (``qfex_oms.gateway.tokens``), for clients that authenticate with a JWT as QFEX allows.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import click
import trio

from qfex_oms.app.commands.common import DEFAULT_CONFIG, configure_logging, connect_options, exit_codes, load

if TYPE_CHECKING:  # the gateway (and the order manager under it) is imported when the command runs
    from qfex_oms.gateway import GatewayConfig

# qfex_oms.gateway.tokens' DEFAULT_TOKEN_TTL and MAX_TOKEN_TTL, here for --help without the gateway's
# imports (tests/app/test_cli_startup.py checks both that --help stays light and that these agree).
TOKEN_TTL_DEFAULT = 3600.0
TOKEN_TTL_MAX = 30 * 24 * 3600.0


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


@click.group(invoke_without_command=True)
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
    with a key from [[gateway.client]], sees only its own orders, and cancels only its own. A key
    with may_kill_account is the operator's: it sees every order of the account (other strategies'
    ids as strategy:id) and may cancel any, so `orders --by-strategy` and `kill [--strategy NAME]`
    with it work through the gateway. The first stdout line is the URL clients use instead of QFEX's.
    Listening beyond loopback requires --certfile/--keyfile (TLS). Ctrl-C stops it (exit 0).
    `qfex-oms gateway token --key PUBLIC_KEY` prints a JWT a client may use instead of its secret.
    """
    if click.get_current_context().invoked_subcommand is not None:
        return  # ``gateway token``: the group's options are the server's, not its
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


@gateway.command("token")
@click.option("--config", "config_path", default=None, metavar="FILE", type=click.Path(dir_okay=False),
              help=f"The gateway's TOML config  [default: {DEFAULT_CONFIG}]")
@click.option("--key", "public_key", required=True, metavar="PUBLIC_KEY",
              help="The public_key of a [[gateway.client]]: the token stands for that key.")
@click.option("--ttl", type=float, default=TOKEN_TTL_DEFAULT, show_default=True, metavar="SECONDS",
              help=f"How long the token is valid (at most {TOKEN_TTL_MAX:.0f}).")
@exit_codes
def token(config_path: str | None, public_key: str, ttl: float) -> None:
    """Print a JWT the gateway accepts as the client key PUBLIC_KEY, for TTL seconds.

    A client sends it as QFEX's own (the URL's ?jwt= and {"auth": {"jwt": ...}}; this package:
    QFEX_JWT=... with --auth jwt), so it needs no secret. HS256, signed with that key's secret:
    changing the secret revokes its tokens. Needs the config's secret variables, as the gateway.
    """
    from qfex_oms.app.bundled import existing_or_bundled
    from qfex_oms.gateway import load_gateway
    from qfex_oms.gateway.tokens import mint_token

    path = Path(existing_or_bundled(config_path or DEFAULT_CONFIG))
    key = load_gateway(path).key(public_key)
    if key is None:
        raise click.UsageError(f"--key {public_key!r}: no [[gateway.client]] has that public_key in {path}")
    click.echo(mint_token(key, time.time(), ttl))
