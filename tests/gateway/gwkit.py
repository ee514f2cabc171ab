"""What the gateway tests share: client keys, a gateway in front of a simulator, clients on it,
``qfex-oms gateway`` and other CLI commands as real processes."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import trio
from ports import reserved_port
from simkit import CREDS, OPTIONS

from qfex_oms import Credentials, OrderManager, open_order_manager
from qfex_oms.gateway import ClientKey, Gateway, GatewayConfig, open_gateway
from qfex_oms.sim import Venue

MM = ClientKey("gw_pub_mm", "gw_secret_mm", "mm")
ARB = ClientKey("gw_pub_arb", "gw_secret_arb", "arb")
HEDGE = ClientKey("gw_pub_hedge", "gw_secret_hedge", "hedge")
OPS = ClientKey("gw_pub_ops", "gw_secret_ops", "ops", may_kill_account=True)
KEYS = (MM, ARB, HEDGE, OPS)
HERE = Path(__file__).parent
CONFIG = GatewayConfig(KEYS, port=0)


def creds(key: ClientKey) -> Credentials:
    return Credentials(key.public_key, key.secret)


@asynccontextmanager
async def gateway_on(venue: Venue, config: GatewayConfig = CONFIG, **options: Any) -> AsyncIterator[Gateway]:
    async with open_gateway(venue.url, CREDS, config, **{**OPTIONS, "rest_url": venue.rest_url,
                                                         **options}) as gw:
        yield gw


@asynccontextmanager
async def client(gw: Gateway | str, key: ClientKey, **options: Any) -> AsyncIterator[OrderManager]:
    url = gw if isinstance(gw, str) else gw.url
    async with open_order_manager(url, creds(key), **{**OPTIONS, **options}) as oms:
        yield oms


class ClientProcess:
    """A ``gw_client.py`` process: commands in on stdin, JSON answers out on stdout."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def read(self) -> Any:
        assert self.process.stdout is not None
        with trio.fail_after(20):
            while b"\n" not in self._buffer:
                chunk = await self.process.stdout.receive_some()
                if not chunk:
                    raise AssertionError("the client process ended")
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return orjson.loads(line)

    async def ask(self, command: str) -> Any:
        assert self.process.stdin is not None
        await self.process.stdin.send_all(command.encode() + b"\n")
        return await self.read()


@asynccontextmanager
async def client_process(url: str, key: ClientKey, *, cod: bool = False) -> AsyncIterator[ClientProcess]:
    argv = [sys.executable, str(HERE / "gw_client.py"), url, key.public_key, key.secret]
    if cod:
        argv.append("--cod")
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(partial(
            trio.run_process, argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, check=False))
        client = ClientProcess(process)
        try:
            assert await client.read() == {"ready": True}
            yield client
        finally:
            if process.returncode is None:
                process.kill()


# ---------------------------------------------------------------------- processes

# The environment of a gateway or CLI process: the gateway keys' secrets, no QFEX_* keys of the
# developer's shell (a CLI call gets its key's QFEX_PUBLIC_KEY/QFEX_SECRET_KEY from ``cli``).
ENV = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
ENV.update({f"GW_SECRET_{key.strategy.upper()}": key.secret for key in KEYS},
           PYTHONUNBUFFERED="1", NO_COLOR="1", COLUMNS="200")
CLI_TIMEOUT = 30.0  # per CLI call: a hang fails the test, not the suite


def free_port() -> int:
    """A port for a gateway process to listen on (``ports.reserved_port``: never one the kernel
    may hand to a parallel worker's connection in the meantime)."""
    return reserved_port()


def gateway_toml(tmp: Path, upstream: str, port: int, host: str = "127.0.0.1",
                 keys: tuple[ClientKey, ...] = (MM, ARB)) -> Path:
    """A gateway config in ``tmp`` (journal beside it) accepting ``keys``, secrets from ``ENV``."""
    clients = "".join(f"""
[[gateway.client]]
public_key = "{key.public_key}"
secret_env = "GW_SECRET_{key.strategy.upper()}"
strategy = "{key.strategy}"
may_kill_account = {'true' if key.may_kill_account else 'false'}
""" for key in keys)
    path = tmp / "gateway.toml"
    path.write_text(f"""
[exchange]
url = "{upstream}"

[manager]
request_timeout = 5.0
journal = "{tmp / 'gateway.journal'}"

[gateway]
host = "{host}"
port = {port}
{clients}""")
    return path


@asynccontextmanager
async def gateway_process(config: Path) -> AsyncIterator[tuple[trio.Process, str]]:
    """``qfex-oms gateway --config`` as a process; yields it and the URL it printed first."""
    argv = [sys.executable, "-m", "qfex_oms", "gateway", "--config", str(config)]
    async with trio.open_nursery() as nursery:
        process: trio.Process = await nursery.start(partial(
            trio.run_process, argv, stdout=subprocess.PIPE, env=ENV, check=False))
        assert process.stdout is not None
        line = b""
        with trio.fail_after(20):
            while not line.endswith(b"\n"):
                chunk = await process.stdout.receive_some(1)
                assert chunk, "the gateway ended before printing its URL"
                line += chunk
        try:
            yield process, line.decode().strip()
        finally:
            if process.returncode is None:
                process.kill()


def run_cli(key: ClientKey | None, *args: str, jwt: str | None = None) -> subprocess.CompletedProcess[str]:
    """``qfex-oms ARGS`` as a process with ``key`` as its QFEX keys (a client of the gateway), or
    with ``jwt`` as ``QFEX_JWT`` (add ``--auth jwt``)."""
    env = dict(ENV)
    if key is not None:
        env.update(QFEX_PUBLIC_KEY=key.public_key, QFEX_SECRET_KEY=key.secret)
    if jwt is not None:
        env["QFEX_JWT"] = jwt
    return subprocess.run([sys.executable, "-m", "qfex_oms", *args], capture_output=True, text=True,
                          timeout=CLI_TIMEOUT, env=env, stdin=subprocess.DEVNULL, check=False)


async def cli(key: ClientKey | None, *args: str, jwt: str | None = None) -> subprocess.CompletedProcess[str]:
    """``run_cli`` off the trio thread, so the test's own managers keep reading meanwhile."""
    return await trio.to_thread.run_sync(partial(run_cli, key, *args, jwt=jwt))


def explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
