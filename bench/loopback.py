"""Rows measured over loopback websockets, with the simulator in its own process.

The baseline for a round trip is a bare trio-websocket client speaking the same frames to the same
simulator process and waiting for the same reply: the cost of the protocol and the simulator
without the order manager. The manager's figure includes everything it adds (validation, the core,
pacing checks, waiters, events).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, contextmanager
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import cast

import orjson
import trio
import trio.lowlevel
import trio_websocket
from attrs import define, field

from bench import leanpath
from bench.common import Row, median_p99
from qfex_oms import Credentials, OrderManager, open_order_manager
from qfex_oms.client.connection import TRANSPORT
from qfex_oms.client.wsconn import connect_ws
from qfex_oms.core.pacer import PacerSettings
from qfex_oms.protocol import encode, make_auth
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, Channel, OrderType, Side, TimeInForce

CREDS = Credentials("qfex_pub_demo", "qfex_secret_demo")
WebSocket = trio_websocket.WebSocketConnection
CREDS2 = Credentials("qfex_pub_demo2", "qfex_secret_demo2")
SYMBOLS = ("AAPL-USD", "TSLA-USD", "US500-USD")


@contextmanager
def _process(args: list[str], lines: int = 1, pids: list[int] | None = None) -> Iterator[list[str]]:
    """A server in a process of its own; yields the first ``lines`` lines it prints (its URLs).
    ``pids``, if given, gets the process id."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, cwd=Path(__file__).resolve().parent.parent)
    try:
        assert proc.stdout is not None
        urls = [proc.stdout.readline().strip() for _ in range(lines)]
        if not urls[0].startswith("ws://"):
            raise RuntimeError(f"{' '.join(args)} did not print its URL (got {urls[0]!r})")
        if pids is not None:
            pids.append(proc.pid)
        yield urls
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextmanager
def simulator_process() -> Iterator[str]:
    with simulator_with_cpu() as (url, _):
        yield url


@contextmanager
def simulator_with_cpu() -> Iterator[tuple[str, Callable[[], float | None]]]:
    """The simulator in its own process, and a reading of the CPU seconds it has used so far
    (None where ``/proc`` cannot tell)."""
    pids: list[int] = []
    with _process(["-m", "qfex_oms", "sim", "--port", "0", "--no-rate-limit"], pids=pids) as urls:
        yield urls[0], partial(_cpu_of, pids[0])


def _cpu_of(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@contextmanager
def reference_venue() -> Iterator[tuple[str, str]]:
    """bench/refvenue.py in its own process: (its websocket URL, its raw-TCP URL)."""
    with _process(["-m", "bench.refvenue"], lines=2) as urls:
        yield urls[0], urls[1]


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


@define
class Samples:
    """One client's round trips of one kind: wall time of each, and the client process's CPU time
    (``time.process_time``) summed over them."""

    wall: list[float] = field(factory=list)
    cpu: float = 0.0

    def clear(self) -> None:
        self.wall.clear()
        self.cpu = 0.0

    def cpu_per_trip(self) -> float:
        return self.cpu / len(self.wall) if self.wall else 0.0


async def bare_place_and_cancel(ws: trio_websocket.WebSocketConnection, first: int, count: int,
                                places: Samples, cancels: Samples) -> None:
    ids = []
    cpu = time.process_time()
    for i in range(first, first + count):
        start = time.perf_counter()
        await ws.send_message(_add(i).decode())
        body = await _await_status(ws, "ACK")
        places.wall.append(time.perf_counter() - start)
        ids.append(str(body["order_id"]))
    places.cpu += time.process_time() - cpu
    frames = [encode(m.CancelOrder(order_id, "AAPL-USD", CancelIdType.ORDER_ID)).decode() for order_id in ids]
    cpu = time.process_time()
    for frame in frames:
        start = time.perf_counter()
        await ws.send_message(frame)
        await _await_status(ws, "CANCELLED")
        cancels.wall.append(time.perf_counter() - start)
    cancels.cpu += time.process_time() - cpu


async def oms_place_and_cancel(oms: OrderManager, first: int, count: int,
                               places: Samples, cancels: Samples) -> None:
    orders = []
    cpu = time.process_time()
    for i in range(first, first + count):
        start = time.perf_counter()
        order = await oms.place_order("AAPL-USD", "BUY", 1, _price(i), client_order_id=f"bench-oms-{i}")
        places.wall.append(time.perf_counter() - start)
        orders.append(order)
    places.cpu += time.process_time() - cpu
    cpu = time.process_time()
    for order in orders:
        start = time.perf_counter()
        await oms.cancel(order)
        cancels.wall.append(time.perf_counter() - start)
    cancels.cpu += time.process_time() - cpu


Side_ = Callable[[int, int], Awaitable[None]]
Block = Callable[[int, int, Samples, Samples], Awaitable[None]]  # one block of an extra client


async def _interleaved(url: str, count: int, block: int,
                       extra: dict[str, Callable[[], AbstractAsyncContextManager[Block]]] | None = None,
                       ) -> dict[str, Samples]:
    """Every client connected at once (the bare one and the manager on the two demo accounts, so
    neither sees the other's traffic), taking turns in blocks of ``block`` round trips and rotating
    who goes first each round: a change in the machine's load lands on every side instead of on
    whichever ran last. ``extra``: more clients (name -> an async context manager yielding one
    block's coroutine function), measured the same way."""
    got: dict[str, Samples] = {}
    async with AsyncExitStack() as stack:
        ws = await stack.enter_async_context(bare_client(url, CREDS2))
        oms = await stack.enter_async_context(open_order_manager(url, CREDS, pacer=None))
        sides: dict[str, Side_] = {}

        def side_of(name: str, run: Callable[..., Awaitable[None]], target: object) -> Side_:
            got[f"{name}_p"], got[f"{name}_c"] = Samples(), Samples()

            async def one_block(first: int, n: int) -> None:
                await run(target, first, n, got[f"{name}_p"], got[f"{name}_c"])
            return one_block

        sides["bare"] = side_of("bare", bare_place_and_cancel, ws)
        sides["oms"] = side_of("oms", oms_place_and_cancel, oms)
        for name, opener in (extra or {}).items():
            block_fn = await stack.enter_async_context(opener())
            sides[name] = side_of(name, _call_block, block_fn)
        order = list(sides.values())
        for side in order:
            await side(0, 200)  # warm every side up; not counted
        for samples in got.values():
            samples.clear()
        for round_no, first in enumerate(range(200, 200 + count, block)):
            shift = round_no % len(order)
            for side in order[shift:] + order[:shift]:
                await side(first, min(block, 200 + count - first))
    return got


async def _call_block(block_fn: Callable[..., Awaitable[None]], first: int, n: int,
                      places: Samples, cancels: Samples) -> None:
    await block_fn(first, n, places, cancels)


def _floor(tcp_url: str, count: int, block: int) -> dict[str, Samples]:
    """The raw-TCP floor: asyncio (uvloop when installed) on a plain socket to the reference venue,
    4-byte length-prefixed JSON, the same frames and the same wait for the same status."""
    from bench.refvenue import new_event_loop

    host, port = tcp_url.removeprefix("tcp://").rsplit(":", 1)
    got = {"floor_p": Samples(), "floor_c": Samples()}

    async def run() -> None:
        reader, writer = await asyncio.open_connection(host, int(port))

        async def status(wanted: str) -> dict[str, object]:
            while True:
                n = int.from_bytes(await reader.readexactly(4), "big")
                body = orjson.loads(await reader.readexactly(n)).get("order_response")
                if body is not None and body["status"] == wanted:
                    return cast(dict[str, object], body)

        async def one_block(first: int, n: int, places: Samples, cancels: Samples) -> None:
            ids, cpu = [], time.process_time()
            for i in range(first, first + n):
                start = time.perf_counter()
                frame = _add(i)
                writer.write(len(frame).to_bytes(4, "big") + frame)
                ids.append(str((await status("ACK"))["order_id"]))
                places.wall.append(time.perf_counter() - start)
            places.cpu += time.process_time() - cpu
            frames = [encode(m.CancelOrder(i, "AAPL-USD", CancelIdType.ORDER_ID)) for i in ids]
            cpu = time.process_time()
            for frame in frames:
                start = time.perf_counter()
                writer.write(len(frame).to_bytes(4, "big") + frame)
                await status("CANCELLED")
                cancels.wall.append(time.perf_counter() - start)
            cancels.cpu += time.process_time() - cpu

        await one_block(0, 200, Samples(), Samples())
        for first in range(200, 200 + count, block):
            await one_block(first, min(block, 200 + count - first), got["floor_p"], got["floor_c"])
        writer.close()

    loop, _ = new_event_loop()
    try:
        loop.run_until_complete(run())
    finally:
        loop.close()
    return got


@asynccontextmanager
async def oms_on(url: str, transport: str = "wsproto", tweak: Callable[[OrderManager], None] | None = None,
                 pacer: PacerSettings | None = None) -> AsyncIterator[Block]:
    """The manager on the websocket client ``transport`` names (qfex_oms.client.connection.TRANSPORT),
    as a block of round trips for ``_interleaved``. The reference venue only: on the simulator two
    managers on one account would each see the other's orders."""
    token = TRANSPORT.set(transport)
    try:
        async with open_order_manager(url, CREDS, pacer=pacer) as oms:
            TRANSPORT.reset(token)
            token = None
            if tweak is not None:
                tweak(oms)

            async def block_fn(first: int, n: int, places: Samples, cancels: Samples) -> None:
                await oms_place_and_cancel(oms, first, n, places, cancels)
            yield block_fn
    finally:
        if token is not None:
            TRANSPORT.reset(token)


@asynccontextmanager
async def lean_bare(url: str) -> AsyncIterator[Block]:
    """A bare client on qfex_oms.client.wsconn (wsproto on a trio stream, no reader task): the
    same frames and waits as the bare trio-websocket client."""
    ws = await connect_ws(f"{url}/?api_key={CREDS2.public_key}", max_message_size=1 << 26)
    try:
        await ws.send_message(encode(make_auth(CREDS2.public_key, CREDS2.secret_key)).decode())
        await ws.get_message()
        await ws.send_message(encode(m.Subscribe((Channel.ORDER_RESPONSES,))).decode())
        await ws.get_message()
        yield partial(bare_place_and_cancel, ws)  # type: ignore[arg-type]  # duck-typed websocket
    finally:
        with trio.move_on_after(2):
            await ws.aclose()


def loop_name() -> str:
    from bench.refvenue import new_event_loop

    loop, name = new_event_loop()
    loop.close()
    return name


# The design.md targets (against the reference venue): median at most this times the bare client.
REFERENCE_TARGET = 1.5
BARE = "bare trio-websocket client"


def round_trip_rows(got: dict[str, Samples], venue: str, count: int, target: float | None,
                    subject: str = "oms", label: str | None = None) -> list[Row]:
    """Median, p99 and client CPU per round trip of ``subject`` beside the bare client's."""
    rows = []
    for key, what in (("c", "3. cancel: await oms.cancel(order)"),
                      ("p", "4. place: await oms.place_order(...)")):
        name = what if label is None else f"{what.split(':')[0]}: {label}"
        ours, bare = got[f"{subject}_{key}"], got[f"bare_{key}"]
        (med, p99), (bmed, bp99) = median_p99(ours.wall), median_p99(bare.wall)
        rows.append(Row(f"{name} vs {venue}: median, {count:,} round trips", med * 1e6, bmed * 1e6, "us",
                        BARE,
                        "" if target is None else f"<= {target}x",
                        None if target is None else med / bmed <= target))
        rows.append(Row(f"{name} vs {venue}: p99", p99 * 1e6, bp99 * 1e6, "us", BARE))
        rows.append(Row(f"{name} vs {venue}: client CPU per round trip", ours.cpu_per_trip() * 1e6,
                        bare.cpu_per_trip() * 1e6, "us", BARE))
    return rows


def rows_round_trips(count: int = 2000, block: int = 100) -> list[Row]:
    """Rows 3 and 4: against the reference venue (judged) and the simulator (a second view), and
    the raw-TCP floor as a reference beside the bare client on the reference venue."""
    with reference_venue() as (url, tcp):
        extra = {"tws": partial(oms_on, url, "trio-websocket"), "lean": partial(lean_bare, url),
                 "onescope": partial(oms_on, url, tweak=leanpath.install),
                 "paced": partial(oms_on, url, pacer=PacerSettings(1e12, 1e12)),
                 "leanpaced": partial(oms_on, url, tweak=leanpath.install, pacer=PacerSettings(1e12, 1e12))}
        ref = trio.run(_interleaved, url, count, block, extra)
        floor = _floor(tcp, count, block)
    with simulator_process() as url:
        sim = trio.run(_interleaved, url, count, block)
    rows = round_trip_rows(ref, "reference venue", count, REFERENCE_TARGET)
    floor.update(bare_p=ref["bare_p"], bare_c=ref["bare_c"])
    rows += round_trip_rows(floor, "reference venue", count, None, "floor",
                            f"raw TCP floor ({loop_name()}, length-prefixed JSON)")
    rows += round_trip_rows(ref, "reference venue", count, None, "tws",
                            "await oms.cancel/place_order on trio-websocket (before issue 19)")
    rows += round_trip_rows(ref, "reference venue", count, None, "lean",
                            "bare client on qfex_oms.client.wsconn (wsproto on a trio stream)")
    for key, what in (("onescope", "prototype: one deadline scope per cancel (bench/leanpath.py)"),
                      ("paced", "await oms.cancel/place_order with a pacer that always has tokens"),
                      ("leanpaced", "prototype (bench/leanpath.py) with a pacer that always has tokens")):
        rows += round_trip_rows(ref, "reference venue", count, None, key, what)
    rows += round_trip_rows(sim, "simulator", count, None)
    return rows


@define
class Kill:
    """One side of row 5: wall seconds from the kill to its end, the client's CPU seconds
    (``time.process_time``) and the simulator's over the same span."""

    wall: float
    cpu: float
    sim_cpu: float | None
    clean: bool = True
    to_wire: float | None = None  # seconds until the cancel_all_orders frame was written


def _sim_delta(before: float | None, after: float | None) -> float | None:
    return None if before is None or after is None else after - before


async def _bare_kill(url: str, count: int, sim_cpu: Callable[[], float | None]) -> Kill:
    """Place ``count`` orders with a bare client, then time cancel_all_orders until every CANCELLED."""
    async with bare_client(url) as ws:
        for i in range(count):
            await ws.send_message(_add(i, SYMBOLS[i % 3]).decode())
        for _ in range(count):
            await _await_status(ws, "ACK")
        sim0, cpu0, start = sim_cpu(), time.process_time(), time.perf_counter()
        await ws.send_message(encode(m.CancelAllOrders()).decode())
        for _ in range(count):
            await _await_status(ws, "CANCELLED")
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        return Kill(wall, cpu, _sim_delta(sim0, sim_cpu()))


_WAVE = 5_000


async def _oms_kill(url: str, count: int, sim_cpu: Callable[[], float | None]) -> Kill:
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
        written: list[float] = []
        oms.on_frame_sent = lambda data: written.append(time.perf_counter())
        sim0, cpu0, start = sim_cpu(), time.process_time(), time.perf_counter()
        report = await oms.cancel_all()
        wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
        return Kill(wall, cpu, _sim_delta(sim0, sim_cpu()),
                    report.clean and len(report.cancelled_orders) == count,
                    written[0] - start if written else None)


KILL_WALL_TARGET = 1.0  # seconds (design.md)
KILL_RATIO_TARGET = 1.2  # times the bare client (issue 19)


def kill_pair(count: int) -> tuple[Kill, Kill]:
    """(the manager's kill, the bare client's), each against a fresh simulator process."""
    with simulator_with_cpu() as (url, sim_cpu):
        bare = trio.run(_bare_kill, url, count, sim_cpu)
    with simulator_with_cpu() as (url, sim_cpu):
        ours = trio.run(_oms_kill, url, count, sim_cpu)
    return ours, bare


def row_kill(count: int = 10_000) -> Row:
    return rows_kill(count)[0]


def rows_kill(count: int = 10_000) -> list[Row]:
    """Row 5: wall time to the report beside the bare client, then each side's client CPU. The
    simulator answers both, in its own process; its CPU over the kill goes in the note, since on
    a small machine it, not either client, sets the wall time."""
    ours, bare = kill_pair(count)
    ok = ours.wall < KILL_WALL_TARGET and ours.wall <= KILL_RATIO_TARGET * bare.wall and ours.clean
    sims = ", ".join(f"{who} {k.sim_cpu * 1e3:,.0f} ms" for who, k in (("ours", ours), ("bare", bare))
                     if k.sim_cpu is not None)
    note = "" if ours.clean else "report was NOT clean; "
    note += (f"cancel_all_orders written {ours.to_wire * 1e3:,.1f} ms after cancel_all(); "
             if ours.to_wire is not None else "")
    note += f"simulator CPU over the kill: {sims or 'unknown'}"
    return [
        Row(f"5. kill switch over {count:,} open orders, 3 symbols", ours.wall * 1e3, bare.wall * 1e3, "ms",
            "bare client: cancel_all until every CANCELLED",
            f"report < {KILL_WALL_TARGET * 1e3:.0f} ms, <= {KILL_RATIO_TARGET}x, clean", ok, note),
        Row("5. kill switch: client CPU (process_time)", ours.cpu * 1e3, bare.cpu * 1e3, "ms",
            "bare trio-websocket client's CPU"),
    ]
