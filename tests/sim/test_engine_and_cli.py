"""The pure engine driven directly (speed, invariants) and ``qfex-oms sim`` as a process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal

import pytest
import trio
from sim_helpers import connect, rest

from qfex_oms.protocol import CancelIdType, OrderType, Side, TimeInForce
from qfex_oms.protocol.messages import AddOrder, CancelOrder
from qfex_oms.sim import DEFAULT_SYMBOLS, default_accounts
from qfex_oms.sim.engine import Engine

A, B = (acct.public_key for acct in default_accounts())


def _limit(side: Side, price: str, qty: str = "1", coid: str | None = None) -> AddOrder:
    return AddOrder("AAPL-USD", side, OrderType.LIMIT, TimeInForce.GTC, Decimal(qty),
                    Decimal(price), coid)


def test_engine_10k_orders_and_cancels_are_fast():
    engine = Engine(default_accounts(), DEFAULT_SYMBOLS)
    start = time.process_time()  # CPU time: other processes (parallel workers) do not count
    ids = []
    for i in range(10_000):
        events = engine.add_order(A, _limit(Side.BUY, f"{100 + (i % 500) / 100:.2f}", coid=f"c{i}"))
        ids.append(events[0][1].order_id)
    for order_id in ids[::2]:
        engine.cancel_order(A, CancelOrder(order_id, "AAPL-USD", CancelIdType.ORDER_ID))
    events = engine.cancel_all(A)
    elapsed = time.process_time() - start
    assert len(events) == 5_000
    assert not engine.accounts[A].open_orders and not engine.accounts[A].open_by_client_id
    assert not engine.books["AAPL-USD"].bids
    assert elapsed < 2.0, elapsed


def test_engine_sweep_keeps_indices_consistent():
    engine = Engine(default_accounts(), DEFAULT_SYMBOLS)
    for i in range(50):
        engine.add_order(A, _limit(Side.SELL, f"{200 + i % 5}", "1", coid="same"))
    events = engine.add_order(B, AddOrder("AAPL-USD", Side.BUY, OrderType.MARKET, TimeInForce.IOC,
                                          Decimal("30.5")))
    fills = [r for acct, r in events if acct == B and type(r).KEY == "fill_response"]
    assert sum(f.quantity for f in fills) == Decimal("30.5")
    state = engine.accounts[A]
    assert len(state.open_orders) == 20
    assert len(state.open_by_client_id[("AAPL-USD", "same")]) == 20
    book = engine.books["AAPL-USD"].asks
    assert sum(len(level) for level in book.levels.values()) == 20
    assert sorted(book.levels) == book.prices


async def test_many_orders_over_the_wire(venue):
    async with connect(venue) as c:
        start = trio.current_time()
        for i in range(1000):
            await c.send("add_order", symbol="AAPL-USD", side="BUY", order_type="LIMIT",
                         order_time_in_force="GTC", quantity=1.0, price=100 + (i % 100) / 100)
        for _ in range(1000):
            await c.recv()
        await c.send("cancel_all_orders")
        await c.recv_many(1001)
        assert trio.current_time() - start < 5
        await rest(c, "BUY", "200", "1")


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_prints_url_and_exits_zero_on_signal(signum):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "qfex_oms", "sim", "--port", "0", "--time-scale", "100"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("ws://127.0.0.1:") and int(url.rsplit(":", 1)[1]) > 0

        async def _talk() -> None:
            from trio_websocket import open_websocket_url

            from qfex_oms.protocol import encode, make_auth

            async with open_websocket_url(url + "/?api_key=qfex_pub_demo") as ws:
                await ws.send_message(
                    encode(make_auth("qfex_pub_demo", "qfex_secret_demo")).decode())
                with trio.fail_after(5):
                    assert await ws.get_message() == '{"authenticated":true}'

        trio.run(_talk)
        proc.send_signal(signum)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
