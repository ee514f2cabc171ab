"""Bench row 11 (issue 18): a cancel through the gateway against the same cancel sent directly.

Three processes besides this one's clients: the simulator (``qfex-oms sim``), and the gateway in
front of it (``python -m bench.gateway_row --serve SIM_URL``: ``open_gateway`` with no pacer, as
the direct client has none, so neither side waits for a rate limiter). This process runs two
managers on the same account, one connected to the simulator, one to the gateway, and times
``await oms.cancel(order)`` on each in alternating blocks (place a block, cancel it one at a time),
so machine noise lands on both. The figure is the median cancel round trip through the gateway,
the baseline the direct one; design.md's target: at most 1.5x.

Run: ``python -m bench.gateway_row [--quick]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

import trio

from bench.common import Row
from bench.loopback import _process, simulator_process
from qfex_oms import Credentials, OrderManager, open_order_manager
from qfex_oms.gateway import ClientKey, GatewayConfig, open_gateway

TARGET = 1.5
SYM = "AAPL-USD"
DEMO = Credentials("qfex_pub_demo", "qfex_secret_demo")
KEY = ClientKey("gw_pub_bench", "gw_secret_bench", "bench")
OPTIONS: dict[str, Any] = {"pacer": None, "request_timeout": 10.0, "rest_url": None}


async def _serve(sim_url: str) -> None:
    config = GatewayConfig((KEY,), port=0)
    async with open_gateway(sim_url, DEMO, config, **OPTIONS) as gw:
        print(gw.url, flush=True)
        await trio.sleep_forever()


async def _block(oms: OrderManager, tag: str, first: int, count: int, samples: list[float]) -> None:
    orders = [await oms.place_order(SYM, "BUY", 1, Decimal(100) + Decimal(i % 5000) / 100,
                                    client_order_id=f"{tag}-{i}") for i in range(first, first + count)]
    for order in orders:
        start = time.perf_counter()
        await oms.cancel(order)
        samples.append(time.perf_counter() - start)


async def _measure(sim_url: str, gw_url: str, count: int, block: int) -> tuple[list[float], list[float]]:
    direct: list[float] = []
    through: list[float] = []
    async with open_order_manager(sim_url, DEMO, **OPTIONS) as d, \
            open_order_manager(gw_url, Credentials(KEY.public_key, KEY.secret), **OPTIONS) as g:
        await _block(d, "warm-d", 0, block, [])  # warm both paths before anything counts
        await _block(g, "warm-g", 0, block, [])
        for n, first in enumerate(range(0, count, block)):
            sides = [(d, "d", direct), (g, "g", through)]
            for oms, tag, samples in sides if n % 2 == 0 else sides[::-1]:
                await _block(oms, tag, first, min(block, count - first), samples)
    return direct, through


def row_gateway(count: int = 2000, block: int = 100) -> Row:
    with simulator_process() as sim_url, _process(["-m", "bench.gateway_row", "--serve", sim_url]) as urls:
        direct, through = trio.run(_measure, sim_url, urls[0], count, block)
    value, baseline = statistics.median(through) * 1e6, statistics.median(direct) * 1e6
    return Row("11. cancel round trip through the gateway (median)", value, baseline, "us",
               "the same cancel sent directly", f"<= {TARGET}x", value <= TARGET * baseline,
               note=f"{len(through)} cancels each side in blocks of {block}, simulator in its own process, "
                    "gateway in another, no pacer on either path")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.gateway_row")
    parser.add_argument("--serve", metavar="SIM_URL", help="run the gateway in front of SIM_URL")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.serve:
        trio.run(_serve, args.serve)
        return 0
    from qfex_oms.logs import configure_logging

    configure_logging("error")
    row = row_gateway(400 if args.quick else 2000)
    print(f"{row.name}: {row.value:,.1f} {row.unit} vs {row.baseline:,.1f} {row.unit} "
          f"({row.baseline_name}): {row.ratio:.2f}x, target {row.target}: {'ok' if row.ok else 'MISSED'}")
    return 0 if row.ok else 1


if __name__ == "__main__":
    sys.exit(main())
