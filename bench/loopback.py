"""Rows measured over loopback websockets, with the simulator in its own process.

The baseline for a round trip is a bare trio-websocket client speaking the same frames to the same
simulator process and waiting for the same reply: the cost of the protocol and the simulator
without the order manager. The manager's figure includes everything it adds (validation, the core,
pacing checks, waiters, events).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal

import orjson
import trio
import trio.lowlevel
import trio_websocket

from bench.common import Row, median_p99
from qfex_oms import Credentials, OrderManager, open_order_manager
from qfex_oms.protocol import encode, make_auth
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, Channel, OrderType, Side, TimeInForce

CREDS = Credentials("qfex_pub_demo", "qfex_secret_demo")
WebSocket = trio_websocket.WebSocketConnection
CREDS2 = Credentials("qfex_pub_demo2", "qfex_secret_demo2")
SYMBOLS = ("AAPL-USD", "TSLA-USD", "US500-USD")


@contextmanager
def simulator_process() -> Iterator[str]:
    proc = subprocess.Popen([sys.executable, "-m", "qfex_oms", "sim", "--port", "0", "--no-rate-limit"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        if not url.startswith("ws://"):
            raise RuntimeError(f"the simulator did not print its URL (got {url!r})")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@asynccontextmanager
async def bare_client(url: str, creds: Credentials = CREDS) -> AsyncIterator[WebSocket]:
    async with trio_websocket.open_websocket_url(f"{url}/?api_key={creds.public_key}",
                                                 message_queue_size=65536) as ws:
        await ws.send_message(encode(make_auth(creds.public_key, creds.secret_key)).decode())
        await ws.get_message()
        await ws.send_message(encode(m.Subscribe((Channel.ORDER_RESPONSES,))).decode())
        await ws.get_message()
        yield ws


def _price(i: int) -> Decimal:
    """A resting bid valid on every default symbol (US500-USD ticks in 0.1 from 100)."""
    return Decimal(1000) + Decimal(i % 500) / 10


def _add(i: int, symbol: str = "AAPL-USD") -> bytes:
    return encode(m.AddOrder(symbol, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(1), _price(i),
                             f"bench-{i}"))


async def _await_status(ws: trio_websocket.WebSocketConnection, status: str) -> dict[str, object]:
    with trio.fail_after(10):
        while True:
            body = orjson.loads(await ws.get_message()).get("order_response")
            if body is None:
                continue
            if body["status"] == status:
                return body
            if body["status"] not in ("ACK", "FILLED", "CANCELLED"):
                raise RuntimeError(f"benchmark frame refused: {body}")


async def bare_place_and_cancel(ws: trio_websocket.WebSocketConnection, first: int, count: int,
                                places: list[float], cancels: list[float]) -> None:
    ids = []
    for i in range(first, first + count):
        start = time.perf_counter()
        await ws.send_message(_add(i).decode())
        body = await _await_status(ws, "ACK")
        places.append(time.perf_counter() - start)
        ids.append(str(body["order_id"]))
    for order_id in ids:
        frame = encode(m.CancelOrder(order_id, "AAPL-USD", CancelIdType.ORDER_ID)).decode()
        start = time.perf_counter()
        await ws.send_message(frame)
        await _await_status(ws, "CANCELLED")
        cancels.append(time.perf_counter() - start)


async def oms_place_and_cancel(oms: OrderManager, first: int, count: int,
                               places: list[float], cancels: list[float]) -> None:
    orders = []
    for i in range(first, first + count):
        start = time.perf_counter()
        order = await oms.place_order("AAPL-USD", "BUY", 1, _price(i), client_order_id=f"bench-oms-{i}")
        places.append(time.perf_counter() - start)
        orders.append(order)
    for order in orders:
        start = time.perf_counter()
        await oms.cancel(order)
        cancels.append(time.perf_counter() - start)


async def _interleaved(url: str, count: int, block: int) -> dict[str, list[float]]:
    """Both clients connected at once (on the two demo accounts, so neither sees the other's
    traffic), taking turns in blocks of ``block`` round trips and swapping who goes first each
    round: a change in the machine's load lands on both sides instead of on whichever ran last."""
    got: dict[str, list[float]] = {k: [] for k in ("bare_p", "bare_c", "oms_p", "oms_c")}
    async with bare_client(url, CREDS2) as ws, open_order_manager(url, CREDS, pacer=None) as oms:
        async def bare(first: int, n: int) -> None:
            await bare_place_and_cancel(ws, first, n, got["bare_p"], got["bare_c"])

        async def ours(first: int, n: int) -> None:
            await oms_place_and_cancel(oms, first, n, got["oms_p"], got["oms_c"])

        await bare(0, 200)  # warm both sides up; not counted
        await ours(0, 200)
        for key in got:
            got[key].clear()
        for round_no, first in enumerate(range(200, 200 + count, block)):
            sides = (bare, ours) if round_no % 2 == 0 else (ours, bare)
            for side in sides:
                await side(first, min(block, 200 + count - first))
    return got


def rows_round_trips(count: int = 2000, block: int = 100) -> list[Row]:
    with simulator_process() as url:
        got = trio.run(_interleaved, url, count, block)
    rows = []
    for label, ours, bare, target in (("3. await oms.cancel(order)", got["oms_c"], got["bare_c"], 1.3),
                                      ("4. await oms.place_order(...)", got["oms_p"], got["bare_p"], 1.3)):
        (med, p99), (bmed, bp99) = median_p99(ours), median_p99(bare)
        rows.append(Row(f"{label} median, {count:,} round trips", med * 1e6, bmed * 1e6, "us",
                        "bare trio-websocket client", f"<= {target}x" if "cancel" in label else "",
                        med / bmed <= target if "cancel" in label else None))
        rows.append(Row(f"{label} p99", p99 * 1e6, bp99 * 1e6, "us", "bare trio-websocket client"))
    return rows


async def _bare_kill(url: str, count: int) -> float:
    """Place ``count`` orders with a bare client, then time cancel_all_orders until every CANCELLED."""
    async with bare_client(url) as ws:
        for i in range(count):
            await ws.send_message(_add(i, SYMBOLS[i % 3]).decode())
        for _ in range(count):
            await _await_status(ws, "ACK")
        start = time.perf_counter()
        await ws.send_message(encode(m.CancelAllOrders()).decode())
        for _ in range(count):
            await _await_status(ws, "CANCELLED")
        return time.perf_counter() - start


_WAVE = 5_000


async def _oms_kill(url: str, count: int) -> tuple[float, bool]:
    async with open_order_manager(url, CREDS, pacer=None) as oms:
        # Seeded in waves: 100,000 concurrent place_order calls would outlast their own request
        # timeout waiting for the socket, which measures nothing useful.
        for wave in range(0, count, _WAVE):
            async with trio.open_nursery() as nursery:
                for i in range(wave, min(count, wave + _WAVE)):
                    nursery.start_soon(lambda i=i: oms.place_order(SYMBOLS[i % 3], "BUY", 1, _price(i)))
                    if i % 500 == 499:
                        await trio.lowlevel.checkpoint()
        assert len(oms.orders()) == count, len(oms.orders())
        start = time.perf_counter()
        report = await oms.cancel_all()
        return time.perf_counter() - start, report.clean and len(report.cancelled_orders) == count


def row_kill(count: int = 10_000) -> Row:
    with simulator_process() as url:
        bare = trio.run(_bare_kill, url, count)
    with simulator_process() as url:
        ours, clean = trio.run(_oms_kill, url, count)
    return Row(f"5. kill switch over {count:,} open orders, 3 symbols", ours * 1e3, bare * 1e3, "ms",
               "bare client: cancel_all until every CANCELLED", "report < 1000 ms, clean",
               ours < 1.0 and clean, "" if clean else "report was NOT clean")
