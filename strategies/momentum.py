"""A momentum taker: follow the tape. It reads QFEX's public trades and buys into buying pressure,
sells into selling pressure, within a position limit.

Every ``interval`` seconds it looks at the public trades of the last ``window`` seconds (market
data's ``md.trades``, each stamped with its receive time) and sums their signed sizes (a trade's
``side`` is the aggressor's, CHOICE of the simulator; QFEX does not document it). Past ``threshold``
it sends an IOC limit order of ``size`` on that side, priced ``max_slippage`` beyond the best
opposite price: an IOC never rests, and its limit is the price band the order may trade within. If
the manager's guard has a ``price_band_pct`` it refuses an order priced outside the band around the
market, which this strategy counts as ``refused``. It never trades on stale data (``stale_after``).

A disconnect: the order that met ``NotConnected`` was not sent; the strategy waits for the
connection (``ctx.wait_connected()``, bounded by the guard's disconnect limit) and goes on.

Market data: ``ctx.market_data``, ``oms.market_data`` or the ``mds_url`` parameter (see quoter.py).
Parameters: symbol, window, threshold, size, max_position, max_slippage, interval, duration,
stale_after, mds_url, ready_timeout.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from decimal import Decimal

import trio

from qfex_oms import NotConnected, OrderRejected, OrderStatusUnknown, QfexOmsError, open_market_data


@asynccontextmanager
async def _market_data(oms, ctx):
    md = getattr(ctx, "market_data", None) or getattr(oms, "market_data", None)
    url = ctx.params.get("mds_url")
    if md is not None:
        yield md
        return
    if not url:
        raise ValueError("momentum needs market data: give the mds_url parameter")
    async with open_market_data(url, [ctx.params.get("symbol", "AAPL-USD")]) as own:
        yield own


def pressure(trades, since):
    """Signed volume of the trades received at or after ``since``: buys minus sells."""
    total = Decimal(0)
    for trade in trades:
        if trade.stamp.received >= since:
            total += trade.size if trade.side == "BUY" else -trade.size if trade.side == "SELL" else 0
    return total


async def run(oms, ctx):
    p = ctx.params
    symbol = p.get("symbol", "AAPL-USD")
    window = float(p.get("window", 2.0))
    threshold = Decimal(str(p.get("threshold", "3")))
    size = Decimal(str(p.get("size", "1")))
    max_position = Decimal(str(p.get("max_position", "5")))
    slippage = Decimal(str(p.get("max_slippage", "0.10")))
    stale_after = float(p.get("stale_after", 5.0))
    stats = {"signals": 0, "orders": 0, "filled": Decimal(0), "refused": 0, "stale_skips": 0,
             "position": Decimal(0)}
    async with _market_data(oms, ctx) as md:
        with trio.fail_after(float(p.get("ready_timeout", 10))):
            await md.wait_ready(symbol)
        with trio.move_on_after(float(p.get("duration", 10))):
            while not ctx.halted:
                await trio.sleep(float(p.get("interval", 0.25)))
                if md.stale(symbol, stale_after):
                    stats["stale_skips"] += 1
                    continue
                signal = pressure(md.trades(symbol), trio.current_time() - window)
                side = "BUY" if signal >= threshold else "SELL" if signal <= -threshold else None
                if side is None:
                    continue
                stats["signals"] += 1
                room = max_position - stats["position"] if side == "BUY" else max_position + stats["position"]
                quote = md.bbo(symbol)
                best = None if quote is None else quote.ask_price if side == "BUY" else quote.bid_price
                if room < size or best is None:
                    continue
                limit = best + slippage if side == "BUY" else best - slippage
                try:
                    order = await oms.place_order(symbol, side, size, limit, time_in_force="IOC",
                                                  client_order_id=f"mo-{stats['orders']}")
                except NotConnected as exc:
                    ctx.log.warning("momentum waits for the connection", error=str(exc))
                    await ctx.wait_connected()
                    continue
                except (OrderRejected, OrderStatusUnknown, QfexOmsError) as exc:
                    stats["refused"] += 1
                    ctx.log.warning("momentum order refused", error=str(exc))
                    continue
                stats["orders"] += 1
                await oms.wait_ended(order)
                filled = order.filled_quantity
                stats["filled"] += filled
                stats["position"] += filled if side == "BUY" else -filled
                ctx.log.info("momentum traded", side=side, signal=str(signal), filled=str(filled))
    return {k: str(v) if isinstance(v, Decimal) else v for k, v in stats.items()}
