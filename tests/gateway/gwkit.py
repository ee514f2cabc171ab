"""What the gateway tests share: client keys, a gateway in front of a simulator, clients on it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import trio
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
