"""A kill-switch drill: rest orders on several symbols, pull the kill switch, check the report.

Run it against the simulator or UAT before trusting a setup: it proves that ``cancel_all()`` halts
new orders, empties the book on the exchange (checked with a snapshot, not assumed) and that
``resume()`` lifts the halt.

Parameters: orders_per_symbol, symbols (list).
"""

from __future__ import annotations

from qfex_oms import Halted


async def run(oms, ctx):
    p = ctx.params
    symbols = p.get("symbols", ["AAPL-USD", "TSLA-USD", "US500-USD"])
    prices = {"AAPL-USD": 150, "TSLA-USD": 150, "US500-USD": 4000}
    for symbol in symbols:
        for i in range(int(p.get("orders_per_symbol", 5))):
            await oms.place_order(symbol, "BUY", "1", prices.get(symbol, 100) - i)
    report = await oms.cancel_all()
    try:
        await oms.place_order(symbols[0], "BUY", "1", prices.get(symbols[0], 100))
        halted = False
    except Halted:
        halted = True
    oms.resume()
    ctx.log.info("kill drill done", cancelled=len(report.cancelled_orders), clean=report.clean,
                 halted_while_killed=halted, elapsed=round(report.elapsed, 4))
    return {"cancelled": len(report.cancelled_orders), "clean": report.clean, "halted": halted,
            "elapsed": report.elapsed}
