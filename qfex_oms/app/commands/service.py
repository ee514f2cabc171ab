"""The commands that need no exchange: ``demo`` and ``sim``."""

from __future__ import annotations

import errno
import signal

import click
import trio
from rich.console import Console

from qfex_oms.app.commands.common import EXIT_OK, EXIT_UNSAFE, configure_logging, exit_codes, leaves
from qfex_oms.errors import InvalidArgument
from qfex_oms.sim import RateLimitSettings, open_simulator

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
@exit_codes
def sim(host: str, port: int, time_scale: float, no_rate_limit: bool) -> None:
    """Run the QFEX simulator until SIGINT/SIGTERM; the first stdout line is its ws:// URL, the
    second ``rest <http URL>`` of its REST API. Exit 2 when the port is taken."""
    # Logs go to stderr so stdout carries only the URL line a parent process waits for.
    configure_logging(default_level="info")
    rate_limits = None if no_rate_limit else RateLimitSettings()
    try:
        trio.run(_serve_until_signalled, host, port, time_scale, rate_limits)
    except (OSError, BaseExceptionGroup) as exc:
        if not any(_address_in_use(leaf) for leaf in leaves(exc)):
            raise
        raise InvalidArgument(f"cannot listen on {host}:{port}: the address is already in use (another "
                              "`qfex-oms sim`?); pick another --port, or --port 0 for a free one") from None


def _address_in_use(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and (exc.errno == errno.EADDRINUSE
                                         or "address already in use" in str(exc))


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
