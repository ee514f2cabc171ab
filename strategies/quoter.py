"""A two-sided quoter: keep a bid and an ask around the market's mid, re-quoting when it moves.

It shows the two ways to cancel a single order: the bid by its ``order_id`` (``oms.cancel(order)``),
the ask by its ``client_order_id`` (unique per quote here, so exactly one order is hit).

Pegged (live prices): given market data, the quoter centres its quotes on the market's own mid (the
book without its own orders, so it never chases itself) and re-quotes as soon as that mid moves
more than ``requote_threshold`` from the one it quoted around, or after ``interval`` seconds. After
pulling its quotes it waits for a book image newer than the pull (level2 is pulsed, §13.4). It does
not quote on stale data: past ``stale_after`` seconds without a price it pulls its quotes and waits.
Market data comes from, in order: ``ctx.market_data`` or ``oms.market_data`` (an open feed), or the
``mds_url`` parameter (the quoter opens the feed itself: the simulator's, or ``wss://mds.qfex.com``).

Static (no market data): quotes around the configured ``mid``, moved by ``drift`` each cycle.

Disconnects: a cycle cut by ``NotConnected`` waits for the connection (``ctx.wait_connected()``,
bounded by the guard's disconnect limit) and the quoter carries on; the manager's resync settles
the quotes the outage left behind.

Parameters ([strategy] in the config): symbol, half_spread, size, cycles, interval, mds_url,
requote_threshold, stale_after, ready_timeout; static mode: mid, drift.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from decimal import Decimal

import trio

from qfex_oms import NotConnected, OrderRejected, OrderStatusUnknown, open_market_data
from qfex_oms.protocol import Side


async def run(oms, ctx):
    async with _market_data(oms, ctx) as md:
        if md is None:
            return await _static(oms, ctx)
        return await _pegged(oms, ctx, md)


@asynccontextmanager
async def _market_data(oms, ctx):
    md = getattr(ctx, "market_data", None) or getattr(oms, "market_data", None)
    url = ctx.params.get("mds_url")
    if md is not None or not url:
        yield md
        return
    async with open_market_data(url, [ctx.params.get("symbol", "AAPL-USD")]) as own:
        yield own


def market_mid(md, oms, symbol):
    """The mid of the book without this account's own resting orders (None if a side is empty)."""
    own = {}
    for order in oms.orders(symbol=symbol):
        key = (str(order.side), order.price)
        own[key] = own.get(key, Decimal(0)) + order.remaining_quantity
    bids, asks = md.book(symbol).depth()
    best = []
    for side, levels in (("BUY", bids), ("SELL", asks)):
        price = next((p for p, size in levels if size > own.get((side, p), Decimal(0))), None)
        if price is None:
            return None
        best.append(price)
    return (best[0] + best[1]) / 2


async def _quote(oms, symbol, size, bid_price, ask_price, cycle, stats, log):
    try:
        bid = await oms.place_order(symbol, "BUY", size, bid_price, client_order_id=f"q-bid-{cycle}")
        ask = await oms.place_order(symbol, "SELL", size, ask_price, client_order_id=f"q-ask-{cycle}")
    except (OrderRejected, OrderStatusUnknown) as exc:
        stats["rejected"] += 1
        log.warning("quote not placed", error=str(exc))
        return None
    stats["quotes"] += 2
    return bid, ask


async def _pull(oms, symbol, quotes, stats):
    """Cancel the bid by its order id and the ask by its client id."""
    if quotes is None:
        return
    bid, ask = quotes
    if bid.is_open and (await oms.cancel(bid)).ok:
        stats["cancelled_by_order_id"] += 1
    if ask.is_open and (await oms.cancel(client_order_id=ask.client_order_id, symbol=symbol)).ok:
        stats["cancelled_by_client_id"] += 1


def _priced(oms, symbol, price, side):
    """On the tick, toward the passive side (reference data when the manager has it)."""
    instrument = oms.instrument(symbol) if hasattr(oms, "instrument") else None
    if instrument is None:
        return price.quantize(Decimal("0.01"))
    return instrument.round_price(price, Side(side))


async def _pegged(oms, ctx, md):
    p = ctx.params
    symbol = p.get("symbol", "AAPL-USD")
    half = Decimal(str(p.get("half_spread", "0.5")))
    size = Decimal(str(p.get("size", "1")))
    threshold = Decimal(str(p.get("requote_threshold", "0.05")))
    interval = float(p.get("interval", 5.0))
    stale_after = float(p.get("stale_after", 5.0))
    stats = {"quotes": 0, "cancelled_by_order_id": 0, "cancelled_by_client_id": 0, "rejected": 0,
             "requotes_on_move": 0, "paused_stale": 0, "mids": [], "reconnect_waits": 0}
    with trio.fail_after(float(p.get("ready_timeout", 10))):
        await md.wait_ready(symbol)
    updates = md.updates([symbol], conflate=True)
    pulled_at = None
    with updates:
        for cycle in range(int(p.get("cycles", 10))):
            if ctx.halted:
                ctx.log.warning("quoter stops: trading halted", reason=ctx.guard.reason)
                break
            if pulled_at is not None:
                with trio.move_on_after(interval):
                    await _book_after(md, symbol, pulled_at, updates)
            mid = market_mid(md, oms, symbol)
            if mid is None or md.stale(symbol, stale_after):
                stats["paused_stale"] += 1
                ctx.log.warning("quoter waits: no fresh market price", symbol=symbol)
                with trio.move_on_after(interval):
                    await updates.__anext__()
                continue
            stats["mids"].append(str(mid))
            try:
                quotes = await _quote(oms, symbol, size, _priced(oms, symbol, mid - half, "BUY"),
                                      _priced(oms, symbol, mid + half, "SELL"), cycle, stats, ctx.log)
                with trio.move_on_after(interval):
                    async for _ in updates:
                        now = market_mid(md, oms, symbol)
                        if now is None or abs(now - mid) > threshold or md.stale(symbol, stale_after):
                            stats["requotes_on_move"] += 1
                            ctx.log.info("market moved; re-quoting", quoted_mid=str(mid), mid=str(now))
                            break
                await _pull(oms, symbol, quotes, stats)
            except NotConnected as exc:
                await _wait_connected(ctx, stats, exc)
            pulled_at = trio.current_time()
    return stats


async def _book_after(md, symbol, moment, updates):
    """Wait for a book image received after ``moment``: QFEX's level2 is
    pulsed, so the image right after a cancel may still show the cancelled quotes, which the quoter
    would otherwise take for the market."""
    while (stamp := md.book(symbol).book_stamp) is None or stamp.received <= moment:
        await updates.__anext__()


async def _wait_connected(ctx, stats, exc):
    """The connection dropped mid-cycle: wait for it (the guard bounds the wait), then go on."""
    stats["reconnect_waits"] += 1
    ctx.log.warning("quoter waits for the connection", error=str(exc))
    await ctx.wait_connected()


async def _static(oms, ctx):
    p = ctx.params
    symbol = p.get("symbol", "AAPL-USD")
    mid = Decimal(str(p.get("mid", "200")))
    half = Decimal(str(p.get("half_spread", "0.5")))
    size = Decimal(str(p.get("size", "1")))
    drift = Decimal(str(p.get("drift", "0.1")))
    stats = {"quotes": 0, "cancelled_by_order_id": 0, "cancelled_by_client_id": 0, "rejected": 0,
             "reconnect_waits": 0}
    for cycle in range(int(p.get("cycles", 10))):
        if ctx.halted:
            ctx.log.warning("quoter stops: trading halted", reason=ctx.guard.reason)
            break
        try:
            quotes = await _quote(oms, symbol, size, mid - half, mid + half, cycle, stats, ctx.log)
            if quotes is None:
                continue
            await trio.sleep(float(p.get("interval", 0.05)))
            await _pull(oms, symbol, quotes, stats)
        except NotConnected as exc:
            await _wait_connected(ctx, stats, exc)
            continue
        mid += drift
    return stats
