"""Each REST endpoint against the simulator over real HTTP on loopback (qfex-api.md §15)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import httpx
import pytest
from restkit import trader
from simkit import CREDS2, PUB, PUB2

from qfex_oms.client.rest import RestClient, RestRequestFailed
from qfex_oms.protocol.enums import OrderStatus, OrderType, Side, TimeInForce
from qfex_oms.sim import DEFAULT_SYMBOLS, Venue

REFDATA_KEYS = {"clobPairId", "symbol", "underlier_price", "price_change_24h", "default_max_leverage",
                "tick_size", "lot_size", "min_price", "max_price", "min_quantity", "max_quantity",
                "base_asset", "quote_asset", "margin_asset", "order_time_in_force", "order_types",
                "market_hours", "status", "product_category"}
STRING_NUMBERS = ("underlier_price", "price_change_24h", "tick_size", "lot_size", "min_price",
                  "max_price", "min_quantity", "max_quantity")


async def make_history(venue: Venue) -> dict[str, str]:
    """PUB buys 1.5 AAPL at 150 from PUB2's resting 2 (taker-1 FILLED), and rests then cancels
    rest-1 (CANCELLED). Returns the exchange order ids by client id."""
    async with trader(venue, PUB2) as maker, trader(venue, PUB) as taker:
        made = await maker.order("maker-1", "SELL", "150", "2")
        assert made["status"] == "ACK"
        took = await taker.order("taker-1", "BUY", "150", "1.5", tif="IOC", done=lambda s: s == "FILLED")
        rested = await taker.order("rest-1", "BUY", "100", "1")
        await taker.send("cancel_order", order_id=rested["order_id"], symbol="AAPL-USD",
                         cancel_order_id_type="order_id")
        await taker.until("order_response", lambda o: o["client_order_id"] == "rest-1"
                          and o["status"] == "CANCELLED")
    return {"maker-1": made["order_id"], "taker-1": took["order_id"], "rest-1": rested["order_id"]}


async def test_refdata_is_shaped_as_qfex_with_numbers_as_strings(venue: Venue) -> None:
    assert venue.rest_url is not None
    async with httpx.AsyncClient(base_url=venue.rest_url) as http:
        body = (await http.get("/refdata")).json()  # public: no credentials
        assert body["type"] == "refdata"
        assert [row["symbol"] for row in body["data"]] == [s.symbol for s in DEFAULT_SYMBOLS]
        for row in body["data"]:
            assert set(row) == REFDATA_KEYS
            assert all(isinstance(row[k], str) for k in STRING_NUMBERS), row
            assert isinstance(row["default_max_leverage"], int)
            assert isinstance(row["order_types"], list) and isinstance(row["market_hours"], dict)
        one = (await http.get("/refdata", params={"ticker": "TSLA-USD"})).json()["data"]
        assert [row["symbol"] for row in one] == ["TSLA-USD"]
        assert (await http.get("/refdata", params={"ticker": "NOPE-USD"})).json()["data"] == []


async def test_refdata_through_the_client_gives_the_simulators_rules(rest: RestClient) -> None:
    instruments = await rest.instruments()
    for spec in DEFAULT_SYMBOLS:
        got = instruments.get(spec.symbol)
        assert got is not None
        assert (got.tick_size, got.lot_size, got.min_quantity, got.max_quantity, got.min_price,
                got.max_price) == (spec.tick_size, spec.lot_size, spec.min_quantity, spec.max_quantity,
                                   spec.min_price, spec.max_price)
        assert got.order_types == {OrderType.LIMIT, OrderType.MARKET, OrderType.ALO}
        assert got.time_in_force == {TimeInForce.GTC, TimeInForce.IOC, TimeInForce.FOK}
        assert got.status == "ACTIVE"


async def test_positions_and_balance_match_the_ledger(venue: Venue, rest: RestClient) -> None:
    await make_history(venue)
    answer = await rest.positions()
    assert [p.symbol for p in answer.positions] == [s.symbol for s in DEFAULT_SYMBOLS]  # flat too
    for row in answer.positions:
        view = venue.position(PUB, row.symbol)
        assert (row.position, row.average_price, row.realised_pnl, row.unrealised_pnl, row.net_funding,
                row.open_orders, row.open_quantity, row.leverage, row.initial_margin,
                row.maintenance_margin) == (
            view.quantity, view.average_price, view.realised_pnl, view.unrealised_pnl, view.net_funding,
            view.open_orders, view.open_quantity, view.leverage, view.initial_margin,
            view.maintenance_margin)
    aapl = next(p for p in answer.positions if p.symbol == "AAPL-USD")
    assert (aapl.position, aapl.average_price) == (D("1.5"), D("150"))
    b = venue.balance(PUB)
    assert (answer.balance.deposit, answer.balance.available_balance, answer.balance.order_margin,
            answer.balance.position_margin) == (b.deposit, b.available_balance, b.order_margin,
                                                b.position_margin)


async def test_historic_orders_say_how_each_closed_order_ended(venue: Venue, rest: RestClient) -> None:
    ids = await make_history(venue)
    page = await rest.historic_orders()
    assert page.count == 2
    assert [o.client_order_id for o in page.data] == ["rest-1", "taker-1"]  # newest first
    cancelled, filled = page.data
    assert (filled.order_id, filled.terminal_status, filled.filled_qty, filled.avg_price) == (
        ids["taker-1"], OrderStatus.FILLED, D("1.5"), D("150"))
    assert (filled.side, filled.type, filled.time_in_force, filled.quantity, filled.price) == (
        Side.BUY, OrderType.LIMIT, TimeInForce.IOC, D("1.5"), D("150"))
    assert filled.passive_qty == 0 and filled.first_fill_ts is not None and filled.last_fill_ts is not None
    assert (cancelled.terminal_status, cancelled.filled_qty, cancelled.avg_price) == (
        OrderStatus.CANCELLED, D(0), None)
    assert cancelled.first_fill_ts is None
    # PUB2's maker order is still open (0.5 left): not history. Its fill was passive.
    async with RestClient(venue.rest_url or "", CREDS2) as rest2:
        assert (await rest2.historic_orders()).count == 0


async def test_historic_orders_filters_and_pages(venue: Venue, rest: RestClient) -> None:
    await make_history(venue)
    only = await rest.historic_orders(client_order_id="taker-1", symbol="AAPL-USD")
    assert [o.client_order_id for o in only.data] == ["taker-1"] and only.count == 1
    assert (await rest.historic_orders(symbol="TSLA-USD")).data == ()
    first = await rest.historic_orders(limit=1)
    second = await rest.historic_orders(limit=1, offset=1)
    assert first.count == second.count == 2
    assert [o.client_order_id for o in first.data + second.data] == ["rest-1", "taker-1"]
    later = datetime.now(UTC) + timedelta(hours=1)
    assert (await rest.historic_orders(start=later)).count == 0
    assert (await rest.historic_orders(end=later)).count == 2


async def test_trades_are_the_accounts_fills(venue: Venue, rest: RestClient) -> None:
    ids = await make_history(venue)
    page = await rest.trades()
    assert page.count == 1
    (trade,) = page.data
    assert (trade.order_id, trade.symbol, trade.price, trade.quantity, trade.side) == (
        ids["taker-1"], "AAPL-USD", D("150"), D("1.5"), Side.BUY)
    assert (trade.order_type, trade.tif, trade.fee) == (OrderType.LIMIT, TimeInForce.IOC, D(0))
    assert trade.id == venue.trades(PUB)[0].trade_id
    assert trade.margin_used == D("150") * D("1.5") / venue.position(PUB, "AAPL-USD").leverage
    assert (await rest.trades(exchange_order_id=ids["rest-1"])).count == 0
    assert (await rest.trades(orderdirection="SELL")).count == 0
    async with RestClient(venue.rest_url or "", CREDS2) as rest2:
        (theirs,) = (await rest2.trades(orderdirection="SELL")).data
        assert theirs.order_id == ids["maker-1"] and theirs.side is Side.SELL


async def test_set_leverage_changes_the_ledger_and_pushes_the_position(
    venue: Venue, rest: RestClient
) -> None:
    async with trader(venue, PUB, channels=("positions",)) as watcher:
        await rest.set_leverage("AAPL-USD", 10)
        pushed = await watcher.until("position_response",
                                     lambda p: p["symbol"] == "AAPL-USD" and p["leverage"] == 10.0)
        assert pushed["initial_margin"] == 0.1
    assert venue.position(PUB, "AAPL-USD").leverage == 10
    assert next(p for p in (await rest.positions()).positions if p.symbol == "AAPL-USD").leverage == 10


@pytest.mark.parametrize(("symbol", "leverage", "words"), [
    ("AAPL-USD", 7, "not an available level"), ("NOPE-USD", 10, "unknown symbol")])
async def test_set_leverage_refusals_carry_qfex_detail(
    venue: Venue, rest: RestClient, symbol: str, leverage: int, words: str
) -> None:
    with pytest.raises(RestRequestFailed) as caught:
        await rest.set_leverage(symbol, leverage)
    assert caught.value.status == 400 and caught.value.title == "Bad Request"
    assert words in caught.value.detail and words in str(caught.value)
    assert venue.position(PUB, "AAPL-USD").leverage == 20  # unchanged


async def test_historic_twaps_list_ended_twaps_with_their_client_ids(venue: Venue, rest: RestClient) -> None:
    """The row shape is an assumption (CHOICES C48: the twap_response's fields, ISO timestamps)."""
    async with trader(venue, PUB) as taker:
        await taker.send("add_twap", symbol="AAPL-USD", side="BUY", total_quantity=2, num_orders=2,
                         order_interval_secs=3600, reduce_only=False, client_twap_id="hist-tw")
        made = await taker.until("twap_response", lambda t: t["client_twap_id"] == "hist-tw")
        assert (await rest.historic_twaps()).count == 0  # an active TWAP is not history
        await taker.send("cancel_order", order_id=made["twap_id"], symbol="AAPL-USD",
                         cancel_order_id_type="twap_id")
        await taker.until("order_response", lambda o: o["order_id"] == made["twap_id"])
    page = await rest.historic_twaps(symbol="AAPL-USD")
    (row,) = page.data
    assert (row.twap_id, row.client_twap_id, row.side, row.total_quantity, row.total_num_orders) == (
        made["twap_id"], "hist-tw", Side.BUY, D(2), 2)
    assert row.status != "ACTIVE" and row.updated_at is not None
    assert (await rest.historic_twaps(symbol="TSLA-USD")).count == 0
