"""``qfex-oms gateway`` as a process: its URL first on stdout, a crash and restart mid-run
(recovered from its journal: nothing lost, nothing doubled), the TLS rule."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path

import pytest
import trio
from gwkit import ARB, MM, client
from ports import reserved_port
from simkit import CREDS2, PUB, manager
from waiting import wait_until

from qfex_oms import OrderState
from qfex_oms.client.connection import ReconnectPolicy
from qfex_oms.sim import Venue

SYM = "AAPL-USD"
ENV = {**os.environ, "GW_SECRET_MM": MM.secret, "GW_SECRET_ARB": ARB.secret}
for _name in ("QFEX_PUBLIC_KEY", "QFEX_SECRET_KEY"):
    ENV.pop(_name, None)



def _config(tmp: Path, upstream: str, port: int, host: str = "127.0.0.1") -> Path:
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

[[gateway.client]]
public_key = "{MM.public_key}"
secret_env = "GW_SECRET_MM"
strategy = "mm"

[[gateway.client]]
public_key = "{ARB.public_key}"
secret_env = "GW_SECRET_ARB"
strategy = "arb"
""")
    return path


@asynccontextmanager
async def gateway_process(config: Path) -> AsyncIterator[tuple[trio.Process, str]]:
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


async def test_gateway_restart_loses_nothing_and_doubles_nothing(venue: Venue, tmp_path: Path) -> None:
    port = reserved_port()
    config = _config(tmp_path, venue.url, port)
    fast = ReconnectPolicy(initial=0.05, maximum=0.2)
    async with manager(venue, CREDS2) as taker, gateway_process(config) as (first, url):
        assert url == f"ws://127.0.0.1:{port}"
        async with client(url, MM, reconnect=fast) as mm, client(url, ARB, reconnect=fast) as arb:
            a = await mm.place_order(SYM, "BUY", "1", "190", client_order_id="a")
            f = await mm.place_order(SYM, "BUY", "1", "200", client_order_id="f")
            theirs = await arb.place_order(SYM, "BUY", "1", "189", client_order_id="a")
            await taker.place_order(SYM, "SELL", "0.5", "200", order_type="LIMIT", time_in_force="IOC")
            await wait_until(lambda: f.filled_quantity == Decimal("0.5"))

            first.kill()  # a crash: no clean close, the journal is all it keeps
            await first.wait()
            await wait_until(lambda: not mm.connected and not arb.connected)
            # A fill while the gateway is down: nobody saw it yet.
            await taker.place_order(SYM, "SELL", "0.25", "200", order_type="LIMIT", time_in_force="IOC")

            async with gateway_process(config) as (_, again):
                assert again == url
                await wait_until(lambda: mm.connected and arb.connected, within=10)
                await wait_until(lambda: f.filled_quantity == Decimal("0.75"), within=10,
                                 what=lambda: f"the missed fill, filled {f.filled_quantity}")
                assert f.fill_total == Decimal("0.75")  # each trade counted once
                assert {o.order_id for o in mm.orders()} == {a.order_id, f.order_id}
                assert {o.order_id for o in arb.orders()} == {theirs.order_id}
                wire = sorted(o.client_order_id for o in venue.open_orders(PUB, SYM))
                assert wire == ["arb:a", "mm:a", "mm:f"]  # nothing placed twice
                # After the restart the namespaces still hold.
                result = await mm.cancel(client_order_id="a", symbol=SYM)
                assert [o.order_id for o in result.cancelled] == [a.order_id]
                assert theirs.state is OrderState.OPEN
                assert sorted(o.client_order_id for o in venue.open_orders(PUB, SYM)) == ["arb:a", "mm:f"]


async def test_listening_beyond_loopback_needs_tls(venue: Venue, tmp_path: Path) -> None:
    config = _config(tmp_path, venue.url, 0, host="0.0.0.0")
    argv = [sys.executable, "-m", "qfex_oms", "gateway", "--config", str(config)]
    done = await trio.run_process(argv, env=ENV, check=False, capture_stdout=True, capture_stderr=True)
    assert done.returncode == 2
    assert done.stdout == b""
    assert b"TLS" in done.stderr


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_loopback_needs_no_tls(host: str) -> None:
    from qfex_oms.gateway.config import GatewayConfig, check_listen

    check_listen(GatewayConfig((MM,), host=host))
