"""add_order: validation, every order type and time in force, matching, STP, modify (§3.1, §3.3)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sim_helpers import connect, rest
from simkit import PUB, PUB2


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"symbol": "NOPE-USD"}, "BAD_SYMBOL"),
        ({"price": 200.001}, "INVALID_TICK_SIZE_PRECISION_PRICE"),
        ({"quantity": 1.0005}, "INVALID_TICK_SIZE_PRECISION_QUANTITY"),
        ({"quantity": 0.0001}, "QUANTITY_LESS_THAN_MIN_QUANTITY"),
        ({"quantity": 1_000_000}, "QUANTITY_GREATER_THAN_MAX_QUANTITY"),
        ({"price": 0.5}, "PRICE_LESS_THAN_MIN_PRICE"),
        ({"price": 20000}, "PRICE_GREATER_THAN_MAX_PRICE"),
        ({"order_type": "MARKET", "order_time_in_force": "GTC"}, "INVALID_TIME_IN_FORCE"),
        ({"order_type": "MARKET", "order_time_in_force": "FOK"}, "INVALID_TIME_IN_FORCE"),
        ({"order_type": "ALO", "order_time_in_force": "IOC"}, "INVALID_TIME_IN_FORCE"),
        ({"order_time_in_force": "GFD"}, "INVALID_TIME_IN_FORCE"),
        ({"order_type": "STOP_MARKET"}, "INVALID_ORDER_TYPE"),
        ({"order_type": "ICEBERG"}, "INVALID_ORDER_TYPE"),
        ({"price": None}, "REJECTED"),
    ],
)
async def test_validation_rejections(venue, params, status):
    async with connect(venue) as c:
        order = {"side": "BUY", "price": 200.0, "quantity": 1.0, "client_order_id": "x", **params}
        order = {k: v for k, v in order.items() if v is not None}
        reply = await c.order(**order)
        assert reply["status"] == status
        assert reply["client_order_id"] == "x"
        await c.expect_silence()
    assert venue.open_orders(PUB) == []
    assert venue.orders(PUB)[0].status == status


async def test_missing_client_order_id_is_empty_string(venue):
    async with connect(venue) as c:
        ack = await rest(c, "BUY", "200", "1")
        assert ack["client_order_id"] == ""
        assert ack["trade_id"] is None


async def test_gtc_limit_rests_at_ack(venue):
    async with connect(venue) as c:
        ack = await rest(c, "SELL", "201.5", "2", client_order_id="s1")
        await c.expect_silence()
    [order] = venue.open_orders(PUB)
    assert order.order_id == ack["order_id"]
    assert order.status == "ACK" and order.remaining == Decimal(2)
    assert venue.depth("AAPL-USD")["asks"] == [(Decimal("201.5"), Decimal(2))]


async def test_two_accounts_cross_and_both_get_fills(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        maker = await rest(a, "SELL", "200", "1", client_order_id="m")
        taker = await b.order(side="BUY", price=200.5, quantity=1.0, client_order_id="t")
        assert taker["status"] == "ACK"
        filled, fill = await b.recv_key("order_response"), await b.recv_key("fill_response")
        assert filled["status"] == "FILLED" and filled["quantity_remaining"] == 0
        assert fill["price"] == 200 and fill["quantity"] == 1 and fill["side"] == "BUY"
        assert fill["trade_id"] == filled["trade_id"] and fill["aggressor_side"] == "BUY"
        m_filled, m_fill = await a.recv_key("order_response"), await a.recv_key("fill_response")
        assert m_filled["order_id"] == maker["order_id"] and m_filled["status"] == "FILLED"
        assert m_fill["side"] == "SELL" and m_fill["client_order_id"] == "m"
        assert m_fill["trade_id"] != fill["trade_id"]
    assert venue.open_orders(PUB) == [] and venue.open_orders(PUB2) == []
    assert len(venue.trades(PUB)) == len(venue.trades(PUB2)) == 1


async def test_partial_fills_of_a_resting_order_one_filled_per_fill(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        maker = await rest(a, "BUY", "200", "3")
        for qty, left in (("1", 2), ("1.5", Decimal("0.5"))):
            await b.order(side="SELL", order_type="MARKET", order_time_in_force="IOC",
                          quantity=float(qty))
            await b.recv_many(2)
            reply = await a.recv_key("order_response")
            assert reply["status"] == "FILLED" and Decimal(str(reply["quantity_remaining"])) == left
            assert reply["quantity"] == 3
            await a.recv_key("fill_response")
    [order] = venue.open_orders(PUB)
    assert order.order_id == maker["order_id"] and order.filled == Decimal("2.5")


async def test_aggressor_sweeps_levels_in_price_time_priority(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        first = await rest(a, "SELL", "200", "1")
        second = await rest(a, "SELL", "200", "1")
        better = await rest(a, "SELL", "199", "1")
        await b.order(side="BUY", price=200.0, quantity=2.0)
        frames = await b.recv_many(4)
        prices = [f["fill_response"]["price"] for f in frames if "fill_response" in f]
        assert prices == [199, 200]
        makers = [(await a.recv_many(2))[0]["order_response"]["order_id"] for _ in range(2)]
        assert makers == [better["order_id"], first["order_id"]]
    assert [o.order_id for o in venue.open_orders(PUB)] == [second["order_id"]]
    assert venue.open_orders(PUB2) == []


async def test_market_ioc_full_partial_and_nothing(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        ack = await b.order(side="BUY", order_type="MARKET", order_time_in_force="IOC", quantity=1.0)
        assert ack["status"] == "ACK" and ack["price"] == 0
        assert (await b.recv_key("order_response"))["status"] == "CANCELLED"
        await rest(a, "SELL", "200", "1")
        await b.order(side="BUY", order_type="MARKET", order_time_in_force="IOC", quantity=1.5)
        fill = await b.recv_key("fill_response")
        filled = await b.recv_key("order_response")  # the sweep's one report comes last (C24)
        assert filled["status"] == "FILLED" and filled["quantity_remaining"] == 0.5
        assert filled["trade_id"] == fill["trade_id"]
        await b.expect_silence()  # the unfilled remainder ends silently (FILLED with leaves)
    assert venue.open_orders(PUB2) == []


async def test_limit_ioc_partial_does_not_rest(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await rest(a, "SELL", "200", "1")
        await b.order(side="BUY", order_time_in_force="IOC", price=201.0, quantity=2.0)
        await b.recv_key("fill_response")
        assert (await b.recv_key("order_response"))["quantity_remaining"] == 1
        await b.expect_silence()
    assert venue.open_orders(PUB2) == []
    [order] = venue.orders(PUB2)
    assert not order.is_open and order.status == "FILLED"


async def test_fok_fills_fully_or_is_cancelled_untouched(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await rest(a, "SELL", "200", "1")
        await rest(a, "SELL", "201", "1")
        await b.order(side="BUY", order_time_in_force="FOK", price=200.0, quantity=2.0)
        assert (await b.recv_key("order_response"))["status"] == "CANCELLED"
        await a.expect_silence()
        await b.order(side="BUY", order_time_in_force="FOK", price=201.0, quantity=2.0)
        frames = await b.recv_many(3)  # a fill_response per level, then the one FILLED (C24)
        assert [list(f) for f in frames] == [["fill_response"], ["fill_response"], ["order_response"]]
        assert frames[-1]["order_response"]["quantity_remaining"] == 0
        await b.expect_silence()
    assert venue.open_orders(PUB) == []


async def test_alo_rests_or_is_cancelled_when_it_would_cross(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await rest(a, "SELL", "200", "1")
        ack = await b.order(side="BUY", order_type="ALO", price=200.0, quantity=1.0)
        assert ack["status"] == "ACK"
        assert (await b.recv_key("order_response"))["status"] == "CANCELLED"
        await rest(b, "BUY", "199.99", "1", order_type="ALO")
        await a.expect_silence()
    assert len(venue.open_orders(PUB2)) == 1


async def test_self_trade_prevention_cancels_the_passive_order(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        own = await rest(a, "SELL", "200", "1")
        other = await rest(b, "SELL", "200.5", "1")
        await a.order(side="BUY", price=201.0, quantity=1.0)
        stp = await a.recv_key("order_response")
        assert stp["order_id"] == own["order_id"] and stp["status"] == "CANCELLED_STP"
        filled = await a.recv_key("order_response")
        assert filled["status"] == "FILLED" and filled["quantity_remaining"] == 0
        assert (await a.recv_key("fill_response"))["price"] == 200.5
        assert (await b.recv_key("order_response"))["order_id"] == other["order_id"]


async def test_modify_changes_price_and_quantity(venue):
    async with connect(venue) as c:
        ack = await rest(c, "BUY", "200", "1", client_order_id="m1")
        await c.send("modify_order", order_id=ack["order_id"], symbol="AAPL-USD", side="BUY",
                     order_type="LIMIT", price=199.5, quantity=2.0)
        mod = await c.recv_key("order_response")
        assert mod["status"] == "MODIFIED" and mod["order_id"] == ack["order_id"]
        assert mod["price"] == 199.5 and mod["quantity_remaining"] == 2
        await c.send("modify_order", order_id=ack["order_id"], symbol="AAPL-USD", side="BUY",
                     order_type="LIMIT", price=199.555)
        assert (await c.recv_key("order_response"))["status"] == "INVALID_TICK_SIZE_PRECISION_PRICE"
    [order] = venue.open_orders(PUB)
    assert order.price == Decimal("199.5") and order.quantity == 2


@pytest.mark.parametrize("change", [{"side": "SELL"}, {"order_type": "ALO"},
                                    {"symbol": "TSLA-USD"}, {"order_id": "nope"}])
async def test_modify_with_wrong_fields_is_no_such_order(venue, change):
    async with connect(venue) as c:
        ack = await rest(c, "BUY", "200", "1")
        params = {"order_id": ack["order_id"], "symbol": "AAPL-USD", "side": "BUY",
                  "order_type": "LIMIT", "price": 199.0, **change}
        await c.send("modify_order", **params)
        assert (await c.recv_key("order_response"))["status"] == "CANNOT_MODIFY_NO_SUCH_ORDER"


async def test_modify_partially_filled_is_refused(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        ack = await rest(a, "BUY", "200", "2")
        await b.order(side="SELL", order_type="MARKET", order_time_in_force="IOC", quantity=1.0)
        await a.recv_many(2)
        await a.send("modify_order", order_id=ack["order_id"], symbol="AAPL-USD", side="BUY",
                     order_type="LIMIT", price=199.0)
        assert (await a.recv_key("order_response"))["status"] == "CANNOT_MODIFY_PARTIAL_FILL"


async def test_modify_into_the_book_trades(venue):
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await rest(a, "SELL", "201", "1")
        ack = await rest(b, "BUY", "200", "1")
        await b.send("modify_order", order_id=ack["order_id"], symbol="AAPL-USD", side="BUY",
                     order_type="LIMIT", price=201.0)
        statuses = [f.get("order_response", {}).get("status") for f in await b.recv_many(3)]
        assert statuses == ["MODIFIED", "FILLED", None]


async def test_an_ioc_sweeping_two_levels_gets_one_filled_report_at_the_end(venue):
    """C24: per level a fill_response; one FILLED order_response after the last, so a client can read
    a FILLED with quantity_remaining > 0 on an IOC as its end. Resting orders still get one per fill."""
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await rest(a, "SELL", "200", "1")
        await rest(a, "SELL", "201", "1")
        await b.order(side="BUY", order_time_in_force="IOC", price=201.0, quantity=3.0)
        frames = await b.recv_many(3)
        assert [list(f) for f in frames] == [["fill_response"], ["fill_response"], ["order_response"]]
        report = frames[-1]["order_response"]
        assert report["status"] == "FILLED" and report["quantity_remaining"] == 1
        assert report["trade_id"] == frames[1]["fill_response"]["trade_id"]
        await b.expect_silence()
        passive = await a.recv_many(4)  # each resting order: its FILLED, then its fill_response
        assert [list(f) for f in passive] == [["order_response"], ["fill_response"]] * 2
