"""The commands that need no exchange: ``demo`` and ``sim``."""

from __future__ import annotations

import errno
import signal
from typing import TYPE_CHECKING

import click
import trio
from attrs import frozen
from rich.console import Console

from qfex_oms.app.commands.common import EXIT_OK, EXIT_UNSAFE, configure_logging, exit_codes, leaves
from qfex_oms.errors import InvalidArgument

if TYPE_CHECKING:  # the simulator (hypercorn, its REST and market data sides) loads only for sim
    from qfex_oms.sim import MarketSettings, RateLimitSettings

# ====================================================================== demo and sim


@click.command()
@exit_codes
def demo() -> None:
    """Run the whole product against an embedded simulator and print a summary (exit 0 if OK, else 4)."""
    from qfex_oms.app.demo import run_demo

    configure_logging(default_level="error")
    summary = trio.run(run_demo, Console())
    raise SystemExit(EXIT_OK if summary.ok else EXIT_UNSAFE)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks one).")
@click.option("--time-scale", default=1.0, show_default=True, type=float,
              help="Divide TWAP intervals by this factor.")
@click.option("--no-rate-limit", is_flag=True, help="Disable QFEX's rate limits.")
@click.option("--mds-port", default=0, show_default=True, type=int,
              help="Market-data (MDS) websocket port (0 picks one).")
@click.option("--mds-pulse", default=0.5, show_default=True, type=float,
              help="Seconds between level2 book images (QFEX documents 500 ms).")
@click.option("--market/--no-market", default=False, show_default=True,
              help="Run a background market: a liquidity provider around a seeded random walk.")
@click.option("--market-seed", default=0, show_default=True, type=int, help="The background market's seed.")
@exit_codes
def sim(host: str, port: int, time_scale: float, no_rate_limit: bool, mds_port: int, mds_pulse: float,
        market: bool, market_seed: int) -> None:
    """Run the QFEX simulator until SIGINT/SIGTERM; the first stdout line is its ws:// URL, then
    ``rest <http URL>`` of its REST API and ``mds <ws URL>`` of its market data. Exit 2 when a
    port is taken."""
    # Logs go to stderr so stdout carries only the URL line a parent process waits for.
    from qfex_oms.sim import MarketSettings, RateLimitSettings

    configure_logging(default_level="info")
    options = _SimOptions(time_scale, None if no_rate_limit else RateLimitSettings(), mds_port, mds_pulse,
                          MarketSettings(seed=market_seed) if market else None)
    try:
        trio.run(_serve_until_signalled, host, port, options)
    except (OSError, BaseExceptionGroup) as exc:
        if not any(_address_in_use(leaf) for leaf in leaves(exc)):
            raise
        raise InvalidArgument(f"cannot listen on {host}:{port}: the address is already in use (another "
                              "`qfex-oms sim`?); pick another --port, or --port 0 for a free one") from None


def _address_in_use(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and (exc.errno == errno.EADDRINUSE
                                         or "address already in use" in str(exc))


@frozen
class _SimOptions:
    time_scale: float
    rate_limits: RateLimitSettings | None
    mds_port: int
    mds_pulse: float
    market: MarketSettings | None


async def _serve_until_signalled(host: str, port: int, options: _SimOptions) -> None:
    from qfex_oms.sim import open_simulator

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_simulator(port, host, time_scale=options.time_scale, rate_limits=options.rate_limits,
                                  mds_port=options.mds_port, mds_pulse=options.mds_pulse,
                                  market=options.market) as venue:
            print(venue.url, flush=True)  # first: scripts wait for this one line
            if venue.rest_url is not None:
                print(f"rest {venue.rest_url}", flush=True)
            if venue.mds_url is not None:
                print(f"mds {venue.mds_url}", flush=True)
            async for _ in signals:
                break
