"""The ``qfex-oms`` command: the group and its options; the commands live in ``qfex_oms.app.commands``.

Adding a command: write it as a ``@click.command()`` in the module of its group under
``qfex_oms/app/commands/`` (or a new module there), and list it in ``COMMANDS`` below. The shared
plumbing (exit codes, ``--config``/``--url``, ``--json``, tables) is ``qfex_oms.app.commands.common``.
"""

from __future__ import annotations

import click

from qfex_oms.app.commands import account, check, gateway, manual, service, trading, watch
from qfex_oms.app.commands.common import (
    DEFAULT_CONFIG,
    EXIT_CODES,
    EXIT_CONNECTION,
    EXIT_ERROR,
    EXIT_NOTHING_TO_CANCEL,
    EXIT_OK,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    EXIT_UNSAFE,
    EXIT_USAGE,
    configure_logging,
    logging_options,
)
from qfex_oms.app.commands.trading import parse_params


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
# The installed distribution's version: pyproject.toml takes it from qfex_oms/_version.py.
@click.version_option(None, "--version", "-V", package_name="qfex_oms", prog_name="qfex-oms",
                      message="%(prog)s %(version)s")
@logging_options
def main() -> None:
    """qfex_oms: an order manager for the QFEX exchange, and its simulator.

    \b
    Start here:  qfex-oms demo
    Then:        qfex-oms sim --port 8765          (a simulator in its own process)
                 qfex-oms run strategies/quoter.py --url ws://127.0.0.1:8765
                 qfex-oms orders --url ws://127.0.0.1:8765
                 qfex-oms kill --url ws://127.0.0.1:8765 --yes
    The account: qfex-oms positions | balance | close SYMBOL | leverage [SYMBOL [N]]
    Keys, safely: qfex-oms check --config config/uat.toml   (read-only: never trades)
    Live:        qfex-oms watch [orders|fills|positions|all] --url ... [--json]
    By hand:     qfex-oms place SYMBOL SIDE QTY [PRICE] | modify | twap SYMBOL SIDE QTY -n N --interval S

    Commands that connect read --config (default config/sim.toml: an embedded simulator that
    starts and stops with the command) and take --url to point at another venue. Keys come from
    the environment variables the config names (QFEX_PUBLIC_KEY / QFEX_SECRET_KEY); the embedded
    simulator and a ws:// simulator on loopback fall back to the demo keys.

    \b
    Exit codes:
      0    success (cancel: CANCELLED; kill: the exchange shows nothing open)
      1    unexpected error, or the strategy raised
      2    bad usage or config (ConfigError, InvalidArgument, strategy file, kill or close not
           confirmed, unknown symbol, a leverage level QFEX refuses)
      3    authentication or connection failure
      4    guard tripped, kill not clean, exit policy incomplete (flatten: a position still held),
           a cancel not confirmed, or close: the position is still held
      5    cancel: NO_SUCH_ORDER (nothing by that id is open: filled, cancelled or unknown);
           close: nothing to close (the position is flat)
      130  run: stopped by SIGINT after a clean shutdown
      143  run: stopped by SIGTERM after a clean shutdown

    Logs go to stderr (stdout carries only the command's output: every --json parses), with UTC
    ISO timestamps; the logging options come before the command: qfex-oms -q orders --json.
    """
    # Until a command reads its config: stderr only, warnings and up (or what the options say).
    configure_logging()


COMMANDS: list[click.Command] = [
    service.demo, service.sim,
    trading.run, trading.orders, trading.cancel, trading.kill,
    account.positions, account.balance, account.close, account.leverage,
    check.check,
    watch.watch,
    manual.place, manual.modify, manual.twap,
    gateway.gateway,
]
for _command in COMMANDS:
    main.add_command(_command)

__all__ = ["COMMANDS", "DEFAULT_CONFIG", "EXIT_CODES", "EXIT_CONNECTION", "EXIT_ERROR",
           "EXIT_NOTHING_TO_CANCEL", "EXIT_OK", "EXIT_SIGINT", "EXIT_SIGTERM", "EXIT_UNSAFE", "EXIT_USAGE",
           "main", "parse_params"]
