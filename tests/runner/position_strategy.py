"""A strategy that takes a position, then rests a GTC bid and waits: for the flatten exit policy.

It buys ``quantity`` with an IOC at ``price`` (the test rests the liquidity on another account),
waits until the exchange reports the position, rests one GTC bid at ``bid``, and waits to be
stopped (a signal, the guard, or ``hold`` seconds). Returns the position it read.
"""

from __future__ import annotations

import trio


async def run(oms, ctx):
    p = ctx.params
    symbol = p.get("symbol", "AAPL-USD")
    with oms.events() as events:
        order = await oms.place_order(symbol, "BUY", str(p.get("quantity", 3)), str(p.get("price", 200)),
                                      time_in_force="IOC", client_order_id="take")
        await oms.wait_ended(order)
        position = oms.position(symbol)
        async for _ in events:  # the exchange's report follows the fills
            position = oms.position(symbol)
            if position is not None and position.quantity == order.filled_quantity:
                break
    await oms.place_order(symbol, "BUY", "1", str(p.get("bid", 150)), client_order_id="rest")
    ctx.log.info("position strategy ready", symbol=symbol, position=str(position.quantity.normalize()))
    with trio.move_on_after(float(p.get("hold", 3600))):
        await ctx.guard.tripped.wait()
    return {"position": str(position.quantity.normalize())}
