"""Helpers of the CLI tests (imported by name: tests have no packages; never import conftest).

The CLI runs as real subprocesses (``sys.executable -m qfex_oms ...``) against a simulator that is
itself a process (``qfex-oms sim --port 0``, URL read from its first stdout line). Orders are placed
and the venue inspected through an order manager inside the test process, on the same account
(``simkit.manager_at``); waits are ``waiting.wait_until``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import trio
from simkit import CREDS, manager_at

from qfex_oms import Credentials

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 30.0  # per CLI call; a hang fails the test instead of the suite


def cli_env(**extra: str) -> dict[str, str]:
    """The environment of a CLI process: no QFEX_* keys from the developer's shell."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
    env.update(PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200", **extra)
    return env


def cli_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "qfex_oms", *args]


def run_cli(*args: str, timeout: float = TIMEOUT, env: dict[str, str] | None = None,
            stdin: Any = subprocess.DEVNULL, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cli_command(*args), capture_output=True, text=True, timeout=timeout,
                          env=env or cli_env(), stdin=stdin, cwd=cwd, check=False)


def start_cli(*args: str, log_dir: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    """A CLI process left running; its stdout/stderr go to ``log_dir``/cli.stdout and cli.stderr."""
    with (log_dir / "cli.stdout").open("w") as out, (log_dir / "cli.stderr").open("w") as err:
        return subprocess.Popen(cli_command(*args), stdout=out, stderr=err, text=True,
                                env=env or cli_env(), cwd=REPO)


async def arun_cli(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """``run_cli`` off the trio thread, so the test's own managers keep reading meanwhile."""
    return await trio.to_thread.run_sync(partial(run_cli, *args, **kwargs))


async def arun_all(*calls: Sequence[str], **kwargs: Any) -> list[subprocess.CompletedProcess[str]]:
    """Several independent CLI calls at once (each is mostly interpreter start-up); results in order."""
    results: list[Any] = [None] * len(calls)

    async def one(i: int, args: Sequence[str]) -> None:
        results[i] = await arun_cli(*args, **kwargs)

    async with trio.open_nursery() as nursery:
        for i, args in enumerate(calls):
            nursery.start_soon(one, i, args)
    return results


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.strip(), f"no stdout; stderr: {proc.stderr}"
    return orjson.loads(proc.stdout)


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


class SimProcess:
    """``qfex-oms sim --port 0`` as a child process; ``url`` is read from its first stdout line."""

    def __init__(self, *extra: str) -> None:
        self.proc = subprocess.Popen(cli_command("sim", "--port", "0", *extra), stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, env=cli_env(), cwd=REPO)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("ws://127.0.0.1:"):
            self.stop()
            raise RuntimeError(f"the simulator did not print its URL (got {self.url!r})")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()



def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, url: str, **sections: dict[str, Any]) -> Path:
    """A config file for ``url``; ``sections`` add or override tables, e.g. ``runner={...}``."""
    tables: dict[str, dict[str, Any]] = {
        "exchange": {"url": url},
        "manager": {"request_timeout": 5.0},
        "runner": {"on_exit": "cancel_all", "shutdown_timeout": 10.0},
        "logging": {"level": "info"},
    }
    for name, body in sections.items():
        tables.setdefault(name, {}).update(body)
    lines: list[str] = []
    for name, body in tables.items():
        lines.append(f"[{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in body.items()]
        lines.append("")
    path.write_text("\n".join(lines))
    return path


async def venue_open(url: str, credentials: Credentials = CREDS) -> tuple[list[Any], list[Any]]:
    """What the exchange shows open for the account right now: (orders, TWAPs), from a snapshot."""
    async with manager_at(url, credentials) as oms:
        snapshot = await oms.fetch_open_orders()
    return list(snapshot.orders), list(snapshot.twaps)


def secrets_in(texts: Sequence[str]) -> list[str]:
    """Forbidden strings found in ``texts``: the demo secret and any signature."""
    return [word for word in ("qfex_secret_demo", "signature") for text in texts if word in text.lower()]
