"""A two-sided quoter: keep a bid and an ask around a mid price, re-quoting every interval.

It shows the two ways to cancel a single order: the bid by its ``order_id`` (``oms.cancel(order)``),
the ask by its ``client_order_id`` (unique per quote here, so exactly one order is hit).

Parameters ([strategy] in the config): symbol, mid, half_spread, size, cycles, interval, drift.
"""

from __future__ import annotations

from decimal import Decimal

import trio

from qfex_oms import OrderRejected, OrderStatusUnknown


async def run(oms, ctx):
    p = ctx.params
    symbol = p.get("symbol", "AAPL-USD")
    mid = Decimal(str(p.get("mid", "200")))
    half = Decimal(str(p.get("half_spread", "0.5")))
    size = Decimal(str(p.get("size", "1")))
    drift = Decimal(str(p.get("drift", "0.1")))
    stats = {"quotes": 0, "cancelled_by_order_id": 0, "cancelled_by_client_id": 0, "rejected": 0}
    for cycle in range(int(p.get("cycles", 10))):
        if ctx.halted:
            ctx.log.warning("quoter stops: trading halted", reason=ctx.guard.reason)
            break
        try:
            bid = await oms.place_order(symbol, "BUY", size, mid - half, client_order_id=f"q-bid-{cycle}")
            ask = await oms.place_order(symbol, "SELL", size, mid + half, client_order_id=f"q-ask-{cycle}")
        except (OrderRejected, OrderStatusUnknown) as exc:
            stats["rejected"] += 1
            ctx.log.warning("quote not placed", error=str(exc))
            continue
        stats["quotes"] += 2
        await trio.sleep(float(p.get("interval", 0.05)))
        if bid.is_open and (await oms.cancel(bid)).ok:
            stats["cancelled_by_order_id"] += 1
        if ask.is_open and (await oms.cancel(client_order_id=ask.client_order_id, symbol=symbol)).ok:
            stats["cancelled_by_client_id"] += 1
        mid += drift
    return stats
