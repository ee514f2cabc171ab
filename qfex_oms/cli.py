"""The ``qfex-oms`` command. Each subcommand is one small function; keep the group itself bare."""

from __future__ import annotations

import signal
import sys

import click
import structlog
import trio

from qfex_oms.sim import RateLimitSettings, open_simulator


@click.group()
def main() -> None:
    """qfex_oms: an order manager for the QFEX exchange, and its simulator."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind.")
@click.option("--port", default=8765, show_default=True, type=int, help="Port (0 picks one).")
@click.option("--time-scale", default=1.0, show_default=True, type=float,
              help="Divide TWAP intervals by this factor.")
@click.option("--no-rate-limit", is_flag=True, help="Disable QFEX's rate limits.")
def sim(host: str, port: int, time_scale: float, no_rate_limit: bool) -> None:
    """Run the QFEX simulator until SIGINT/SIGTERM; the first stdout line is its ws:// URL."""
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
            print(venue.url, flush=True)
            async for _ in signals:
                break
