"""Metrics: the order stamps, ``OmsStatistics`` from a manager's events, and the Prometheus endpoint
of ``qfex-oms run --metrics-port`` scraped over HTTP and parsed with prometheus_client's parser."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from ports import reserved_port
from prometheus_client.parser import text_string_to_metric_families
from simkit import CREDS, manager
from waiting import wait_until

from qfex_oms import OrderManager, OrderRejected
from qfex_oms.client.metrics import open_metrics
from qfex_oms.sim import Venue

REPO = Path(__file__).resolve().parents[2]
SYMBOL = "AAPL-USD"
HANG_GUARD = 60.0
REJECTED = ("qfex_oms_rejects_total", (("status", "INVALID_TICK_SIZE_PRECISION_PRICE"),))


async def test_orders_carry_sent_acked_and_ended_times(venue: Venue, oms: OrderManager,
                                                       oms2: OrderManager) -> None:
    before = time.time()
    order = await oms.place_order(SYMBOL, "BUY", "1", "150")
    assert order.sent_at is not None and order.acked_at is not None and order.ended_at is None
    assert order.sent_at <= order.acked_at and order.ack_latency is not None and order.ack_latency >= 0
    assert order.sent_wall is not None and before <= order.sent_wall <= time.time()
    await oms2.place_order(SYMBOL, "SELL", "1", "150")
    await oms.wait_ended(order)
    assert order.ended_at is not None and order.acked_at <= order.ended_at
    assert order.ended_wall is not None and order.ended_wall >= order.sent_wall
    # Learnt from the exchange, never sent by this manager: no sent time.
    async with manager(venue) as elsewhere:  # the same account, another manager
        mine = await elsewhere.place_order(SYMBOL, "SELL", "1", "160", client_order_id="elsewhere")
    await oms.reconcile()
    adopted = [o for o in oms.orders() if o.order_id == mine.order_id]
    assert adopted and adopted[0].sent_at is None


async def test_statistics_count_orders_cancels_rejects_fills_and_reconnects(
        venue: Venue, oms: OrderManager, oms2: OrderManager) -> None:
    async with open_metrics(oms) as metrics:
        a = await oms.place_order(SYMBOL, "BUY", "1", "140")
        b = await oms.place_order(SYMBOL, "BUY", "1", "141", client_order_id="by-client")
        await oms.cancel(a)
        await oms.cancel(client_order_id="by-client", symbol=SYMBOL)
        with pytest.raises(OrderRejected):
            await oms.place_order(SYMBOL, "BUY", "1", "140.00001")
        c = await oms.place_order(SYMBOL, "BUY", "2", "150")
        await oms2.place_order(SYMBOL, "SELL", "2", "150")
        await oms.wait_ended(b, c)
        await venue.drop_connections(CREDS.public_key)
        await wait_until(lambda: metrics.statistics().reconnects == 1 and oms.connected, within=HANG_GUARD)
        await wait_until(lambda: metrics.statistics().fills >= 1)
        s = metrics.statistics()
    assert (s.orders_placed, s.orders_acked) == (4, 3)
    assert s.cancels_by_mode == {"order_id": 1, "client_order_id": 1}
    assert s.rejects_by_status == {"INVALID_TICK_SIZE_PRECISION_PRICE": 1}
    assert s.place_to_ack.count == 3 and s.cancel_to_cancelled.count == 2
    for latency in (s.place_to_ack, s.cancel_to_cancelled):
        assert latency.p50 is not None and latency.p99 is not None and latency.max is not None
        assert 0 <= latency.p50 <= latency.p99 <= latency.max < HANG_GUARD


# Three orders placed and cancelled, one rejected, then it holds until SIGINT.
HOLD = '''
import trio

async def run(oms, ctx):
    for i in range(3):
        order = await oms.place_order("AAPL-USD", "BUY", "1", 120 + i, client_order_id=f"m-{i}")
        await oms.cancel(order)
    try:
        await oms.place_order("AAPL-USD", "BUY", "1", "120.00001")
    except Exception:
        pass
    await trio.sleep_forever()
'''



def start_run(strategy: Path, url: str, port: int, stderr: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
    with stderr.open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "qfex_oms", "run", str(strategy), "--url", url,
                                 "--metrics-port", str(port)], stdout=subprocess.DEVNULL, stderr=err,
                                cwd=REPO, env=env)


def scrape(port: int) -> dict[str, Any] | None:
    """Every sample of the endpoint by (name, labels), or None while it is not up yet."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.TransportError:
        return None
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


async def test_run_serves_prometheus_metrics(venue: Venue, tmp_path: Path) -> None:
    strategy = tmp_path / "metered.py"
    strategy.write_text(HOLD)
    port = reserved_port()
    proc = start_run(strategy, venue.url, port, tmp_path / "stderr")
    samples: dict[str, Any] | None = None
    try:
        def done() -> bool:
            nonlocal samples
            samples = scrape(port)
            return proc.poll() is not None or (samples is not None and REJECTED in samples)  # the last act

        async def scraped() -> None:
            while not await trio.to_thread.run_sync(done):  # noqa: ASYNC110 - another process's state
                await trio.sleep(0.05)

        with trio.fail_after(HANG_GUARD):
            await scraped()
        assert proc.poll() is None, (tmp_path / "stderr").read_text()
    finally:
        proc.send_signal(signal.SIGINT)
        code = await trio.to_thread.run_sync(lambda: proc.wait(timeout=HANG_GUARD))
    assert code == 130
    assert samples is not None
    assert samples[("qfex_oms_orders_placed_total", ())] == 4
    assert samples[("qfex_oms_cancels_total", (("mode", "order_id"),))] == 3
    assert samples[REJECTED] == 1
    assert samples[("qfex_oms_place_ack_seconds_count", ())] == 3
    assert samples[("qfex_oms_cancel_cancelled_seconds_count", ())] == 3
    assert samples[("qfex_oms_place_ack_seconds_bucket", (("le", "+Inf"),))] == 3
    assert samples[("qfex_oms_fills_total", ())] == 0 and samples[("qfex_oms_reconnects_total", ())] == 0
