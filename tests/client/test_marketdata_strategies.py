"""The example strategies on live prices from the simulator's MDS: the quoter pegs to the market's
mid (its own orders left out) and re-quotes when it moves past the threshold, cancelling by order id
and by client id; the momentum taker follows the public tape against the background market."""

from __future__ import annotations

import importlib.util
from decimal import Decimal as D
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import trio
from simkit import CREDS2, PUB, manager
from waiting import wait_until

from qfex_oms import OrderManager
from qfex_oms.logs import get_logger
from qfex_oms.sim import Venue, open_simulator
from qfex_oms.sim.market import MarketSettings, MarketSymbol

REPO = Path(__file__).resolve().parents[2]
SYM = "AAPL-USD"


def strategy(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"strategy_{name}", REPO / "strategies" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def context(**params: Any) -> SimpleNamespace:
    return SimpleNamespace(params=params, halted=False, guard=SimpleNamespace(reason=None),
                           log=get_logger("test.strategy"))


def quoted(venue: Venue) -> list[tuple[str, D]]:
    return sorted((str(o.side), o.price) for o in venue.open_orders(PUB, SYM))


async def move(oms2: OrderManager, bid: str, ask: str, tag: str, old: list[Any]) -> list[Any]:
    """Place the new market first, then cancel the old one (the mid only jumps at the last cancel)."""
    new = [await oms2.place_order(SYM, "BUY", "5", bid, client_order_id=f"mb-{tag}"),
           await oms2.place_order(SYM, "SELL", "5", ask, client_order_id=f"ma-{tag}")]
    for order in old:
        await oms2.cancel(order)
    return new


async def test_quoter_pegs_to_the_live_mid_and_requotes_on_a_move(venue: Venue, oms: OrderManager) -> None:
    quoter = strategy("quoter")
    ctx = context(symbol=SYM, half_spread="0.5", size="1", cycles=2, interval=30, requote_threshold="0.5",
                  mds_url=venue.mds_url)
    result: dict[str, Any] = {}

    async def run() -> None:
        result.update(await quoter.run(oms, ctx))

    async with manager(venue, CREDS2) as oms2, trio.open_nursery() as nursery:
        market = await move(oms2, "199", "201", "0", [])
        nursery.start_soon(run)
        await wait_until(lambda: quoted(venue) == [("BUY", D("199.5")), ("SELL", D("200.5"))])
        market = await move(oms2, "199.8", "201.8", "1", market)
        await wait_until(lambda: quoted(venue) == [("BUY", D("200.3")), ("SELL", D("201.3"))],
                         what=lambda: f"{quoted(venue)} {venue.depth(SYM)}")
        await move(oms2, "200.6", "202.6", "2", market)
        await wait_until(lambda: bool(result))
    assert result["mids"] == ["200", "200.8"]
    assert result["requotes_on_move"] == 2 and result["quotes"] == 4
    assert result["cancelled_by_order_id"] == 2 and result["cancelled_by_client_id"] == 2
    assert venue.open_orders(PUB) == []


async def test_quoter_without_market_data_quotes_its_configured_mid(oms: OrderManager) -> None:
    result = await strategy("quoter").run(oms, context(symbol=SYM, cycles=1, mid="150", interval=0.01))
    assert result["quotes"] == 2 and result["cancelled_by_order_id"] == 1


async def test_momentum_follows_buying_pressure_against_the_background_market() -> None:
    flat = MarketSettings(seed=1, step=0.2, symbols=(MarketSymbol(SYM, D(200), 0.0, 0.0),))
    async with open_simulator(rate_limits=None, market=flat) as venue:
        await wait_until(lambda: len(venue.depth(SYM)["asks"]) == 3)
        async with manager(venue) as oms, manager(venue, CREDS2) as oms2, trio.open_nursery() as nursery:
            result: dict[str, Any] = {}
            ctx = context(symbol=SYM, window=30, threshold="3", size="1", max_position="1", interval=0.02,
                          duration=30, mds_url=venue.mds_url)

            async def run() -> None:
                result.update(await strategy("momentum").run(oms, ctx))

            nursery.start_soon(run)
            mds = venue.mds
            assert mds is not None  # a trade before the strategy subscribed is not on its tape:
            await wait_until(lambda: any(c.wants("trade", SYM) for c in mds.connections))
            await oms2.place_order(SYM, "BUY", "4", "201", time_in_force="IOC", client_order_id="push")
            await wait_until(lambda: venue.position(PUB, SYM).quantity == D(1), within=5.0)
            ctx.halted = True
            await wait_until(lambda: bool(result))
    assert result["orders"] == 1 and result["filled"] == "1" and result["position"] == "1"
