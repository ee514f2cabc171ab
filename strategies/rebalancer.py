"""A rebalancer: work a position change through a TWAP, and stop it early on a condition.

It shows a TWAP's life: ``place_twap`` returns once QFEX accepted it, child orders appear in the
book as they execute, and the strategy cancels the TWAP by its ``client_twap_id`` once enough has
been bought (the condition here: ``stop_after`` filled), or lets it complete.

A disconnect while it watches: the early cancel that met ``NotConnected`` (never sent) waits for
the connection (``ctx.wait_connected()``, bounded by the guard's disconnect limit) and is made again.

Parameters: symbol, side, total_quantity, num_orders, order_interval_secs, stop_after, timeout.
"""

from __future__ import annotations

from decimal import Decimal

import trio

from qfex_oms import NotConnected, TwapState


async def run(oms, ctx):
    p = ctx.params
    symbol = p.get("symbol", "AAPL-USD")
    client_twap_id = p.get("client_twap_id", "rebalance-1")
    stop_after = Decimal(str(p.get("stop_after", "6")))
    twap = await oms.place_twap(
        symbol, p.get("side", "BUY"), total_quantity=p.get("total_quantity", "10"),
        num_orders=int(p.get("num_orders", 5)), order_interval_secs=int(p.get("order_interval_secs", 30)),
        client_twap_id=client_twap_id)
    ctx.log.info("TWAP started", twap_id=twap.twap_id, client_twap_id=client_twap_id)
    with trio.move_on_after(float(p.get("timeout", 10))):
        while twap.is_open and not ctx.halted:
            if twap.filled_quantity >= stop_after:
                try:
                    result = await oms.cancel(client_twap_id=client_twap_id, symbol=symbol)
                except NotConnected as exc:
                    ctx.log.warning("rebalancer waits for the connection", error=str(exc))
                    await ctx.wait_connected()
                    continue
                ctx.log.info("TWAP stopped early", filled=str(twap.filled_quantity), status=result.status)
                break
            await trio.sleep(0.01)
    return {"twap_id": twap.twap_id, "state": str(twap.state), "filled": twap.filled_quantity,
            "children": len(twap.children), "stopped_early": twap.state is TwapState.CANCELLED}
