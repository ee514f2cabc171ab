"""The simulator's MDS endpoint, read with a bare websocket: frames are flat, numbers are strings,
shaped as qfex-api.md §13; subscriptions are per (channel, symbol), "*" means all, unsubscribe stops
a channel; a bad frame answers an err frame and keeps the connection."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import orjson
import pytest
import trio
from simkit import CREDS, CREDS2, manager
from trio_websocket import WebSocketConnection, open_websocket_url

from qfex_oms.protocol import mds
from qfex_oms.sim import Venue, open_simulator

SYM = "AAPL-USD"


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with open_simulator(rate_limits=None, ping_interval=None, mds_pulse=0.05) as v:
        yield v


async def subscribe(ws: WebSocketConnection, channel: str, symbol: str = SYM, unsub: bool = False) -> None:
    request = mds.Subscribe((channel,), (symbol,), unsubscribe=unsub)
    await ws.send_message(mds.encode_subscribe(request).decode())


async def next_of(ws: WebSocketConnection, kind: str, within: float = 3.0) -> dict[str, Any]:
    with trio.fail_after(within):
        while True:
            obj = orjson.loads(await ws.get_message())
            if obj.get("type") == kind or (kind == "err" and "err" in obj):
                return obj


async def test_level2_bbo_trade_mark_are_flat_with_string_numbers(venue: Venue) -> None:
    assert venue.mds_url is not None
    async with open_websocket_url(venue.mds_url) as ws:
        for channel in (mds.LEVEL2, mds.BBO, mds.TRADE, mds.MARK_PRICE, mds.FUNDING):
            await subscribe(ws, channel)
        async with manager(venue, CREDS) as a, manager(venue, CREDS2) as b:
            await a.place_order(SYM, "BUY", "1.5", "199", client_order_id="bid")
            await a.place_order(SYM, "SELL", "2", "201.25", client_order_id="ask")
            await b.place_order(SYM, "SELL", "1", "200", client_order_id="m")
            await a.place_order(SYM, "BUY", "1", "200", client_order_id="t")
            got: dict[str, dict[str, Any]] = {}
            with trio.fail_after(3):
                while len(got) < 5:
                    obj = orjson.loads(await ws.get_message())
                    if obj["type"] != mds.LEVEL2 or obj["ask"] == [["201.25", "2"]]:
                        got[obj["type"]] = obj
    image, bbo, trade, mark, funding = (got[k] for k in (mds.LEVEL2, mds.BBO, mds.TRADE, mds.MARK_PRICE,
                                                         mds.FUNDING))
    assert set(image) == {"type", "symbol", "bid", "ask", "sequence", "time"}
    assert image["bid"] == [["199", "1.5"]] and image["ask"] == [["201.25", "2"]]
    assert isinstance(image["sequence"], int)
    assert image["time"].endswith("Z") and len(image["time"].split(".")[1]) == 10  # 9 digits + Z
    assert set(bbo) == {"type", "symbol", "bid", "ask", "sequence", "time"} and len(bbo["bid"]) <= 1
    assert {k: trade[k] for k in ("symbol", "price", "size", "side", "execution_type")} == {
        "symbol": SYM, "price": "200", "size": "1", "side": "BUY", "execution_type": "T"}
    assert isinstance(trade["trade_id"], str)
    assert mark == {"type": "mark_price", "symbol": SYM, "price": "200", "time": mark["time"]}
    assert isinstance(funding["funding_rate"], str) and isinstance(funding["time_remaining"], int)
    # and the client's own codec reads each of them
    for frame in (image, bbo, trade, mark, funding):
        assert len(mds.decode(orjson.dumps(frame))) == 1


async def test_star_unsubscribe_refdata_and_bad_frames(venue: Venue) -> None:
    assert venue.mds_url is not None
    async with open_websocket_url(venue.mds_url) as ws:
        await subscribe(ws, mds.REFDATA, "*")
        refdata = await next_of(ws, mds.REFDATA)
        assert {row["symbol"] for row in refdata["data"]} == {s.symbol for s in venue.settings.symbols}
        assert isinstance(refdata["data"][0]["tick_size"], str)
        await subscribe(ws, mds.LEVEL2, "*")
        seen = set()
        while len(seen) < len(venue.settings.symbols):
            seen.add((await next_of(ws, mds.LEVEL2))["symbol"])
        await ws.send_message("{not json")
        err = await next_of(ws, "err")
        assert err["err"]["error_code"] == "INVALID_JSON_FORMAT"
        await subscribe(ws, mds.LEVEL2, "*", unsub=True)
        await subscribe(ws, mds.MARK_PRICE, SYM)
        venue.set_mark(SYM, "123.5")
        with trio.fail_after(3):  # level2 pulses sent before the unsubscribe may still be queued
            while (obj := orjson.loads(await ws.get_message()))["type"] != mds.MARK_PRICE:
                assert obj["type"] == mds.LEVEL2
        assert obj["price"] == "123.5"
        async with open_websocket_url(venue.mds_url) as witness:  # proves pulses went on meanwhile
            await subscribe(witness, mds.LEVEL2, SYM)
            for _ in range(3):
                await next_of(witness, mds.LEVEL2)
        venue.set_mark(SYM, "124")
        assert orjson.loads(await ws.get_message())["price"] == "124"  # no level2 in between
    assert D(refdata["data"][0]["tick_size"]) > 0
