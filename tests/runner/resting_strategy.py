"""A long-running strategy for the runner and CLI tests: rest GTC orders (and a TWAP), then wait.

It waits until it is cancelled (SIGINT/SIGTERM), until the guard halts trading, or for ``hold``
seconds. Parameters: symbol, orders (how many GTC bids to rest), twap (also start a slow TWAP),
hold, price.
"""

from __future__ import annotations

import trio


async def run(oms, ctx):
    p = ctx.params
    symbol = p.get("symbol", "AAPL-USD")
    price = int(p.get("price", 150))
    placed = []
    for i in range(int(p.get("orders", 3))):
        if ctx.halted:
            break
        order = await oms.place_order(symbol, "BUY", "1", price - i, time_in_force="GTC",
                                      client_order_id=f"rest-{i}")
        placed.append(order.order_id)
    if p.get("twap") and not ctx.halted:
        await oms.place_twap(symbol, "BUY", total_quantity="10", num_orders=10, order_interval_secs=600,
                             client_twap_id="rest-twap")
    ctx.log.info("resting strategy ready", symbol=symbol, resting=len(placed))
    with trio.move_on_after(float(p.get("hold", 3600))):
        await ctx.guard.tripped.wait()
    return {"placed": len(placed), "halted": ctx.halted}
