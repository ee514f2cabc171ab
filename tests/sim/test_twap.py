"""TWAPs: validation, the child schedule on trio's clock, both cancel modes, cancel-all (§3.5)."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from sim_helpers import connect, rest
from simkit import PUB, PUB2

from qfex_oms.sim import open_simulator

TWAP = {"symbol": "AAPL-USD", "side": "BUY", "total_quantity": 3.0, "num_orders": 3,
        "order_interval_secs": 30, "reduce_only": False}
SILENCE = 1.2  # seconds: more than one interval of slow_venue's TWAPs


@pytest.fixture
async def fast_venue():
    async with open_simulator(rate_limits=None, ping_interval=None, time_scale=1000) as v:
        yield v


@pytest.fixture
async def slow_venue():
    # 30 s intervals become 1 s: long enough to cancel between children on a loaded machine (the test
    # reads the first child's frames, then must get its request in before the second child; 0.3 s
    # was too little). SILENCE, a little more than one interval, shows no further child comes.
    async with open_simulator(rate_limits=None, ping_interval=None, time_scale=30) as v:
        yield v


async def _child_frames(c, expect_fill: bool = True, within: float = 5.0) -> dict:
    ack = await c.recv_key("order_response", within=within)
    assert ack["status"] == "ACK" and ack["type"] == "MARKET" and ack["time_in_force"] == "IOC"
    if expect_fill:
        await c.recv_key("fill_response")  # an IOC child's fill comes before its one FILLED (C24)
    final = await c.recv_key("order_response")
    return {"ack": ack, "final": final}


async def test_twap_places_children_on_schedule_and_completes(fast_venue):
    venue = fast_venue
    async with connect(venue, PUB) as a, connect(venue, PUB2) as b:
        await rest(b, "SELL", "200", "10")
        await a.send("add_twap", **TWAP, client_twap_id="rb-1")
        started = trio.current_time()
        twap = await a.recv_key("twap_response")
        assert twap["status"] == "ACTIVE" and twap["client_twap_id"] == "rb-1"
        assert twap["total_num_orders"] == 3 and twap["total_quantity"] == 3
        children = [await _child_frames(a) for _ in range(3)]
        assert [ch["ack"]["client_order_id"] for ch in children] == [
            f"twap:{twap['twap_id']}:{n}" for n in (1, 2, 3)]
        assert all(ch["final"]["status"] == "FILLED" for ch in children)
        done = await a.recv_key("twap_response")
        assert done["status"] == "COMPLETED" and done["filled_quantity"] == 3
        assert done["average_fill_price"] == 200
        assert trio.current_time() - started >= 0.06  # two 30 ms intervals
    [record] = venue.twaps(PUB)
    assert record.status == "COMPLETED" and record.children_placed == 3
    assert [o.twap_id for o in venue.orders(PUB)] == [record.twap_id] * 3
    assert venue.open_orders(PUB2)[0].remaining == Decimal(7)


async def test_twap_children_without_liquidity_are_cancelled_and_twap_goes_on(fast_venue):
    async with connect(fast_venue, PUB) as a:
        await a.send("add_twap", **{**TWAP, "num_orders": 2, "total_quantity": 1.0})
        await a.recv_key("twap_response")
        for _ in range(2):
            assert (await _child_frames(a, expect_fill=False))["final"]["status"] == "CANCELLED"
        assert (await a.recv_key("twap_response"))["status"] == "COMPLETED"


async def test_twap_schedule_under_autojump_clock(autojump_clock):
    async with open_simulator(rate_limits=None, ping_interval=None) as venue, \
            connect(venue, PUB) as a:
        await a.send("add_twap", **TWAP)
        await a.recv_key("twap_response")
        await _child_frames(a, expect_fill=False)
        t0 = trio.current_time()
        await _child_frames(a, expect_fill=False, within=100)
        assert trio.current_time() - t0 >= 30


@pytest.mark.parametrize("mode", ["twap_id", "client_twap_id"])
async def test_cancel_twap_stops_the_schedule(slow_venue, mode):
    venue = slow_venue
    async with connect(venue, PUB) as a:
        await a.send("add_twap", **TWAP, client_twap_id="rb-2")
        twap = await a.recv_key("twap_response")
        await _child_frames(a, expect_fill=False)
        value = twap["twap_id"] if mode == "twap_id" else "rb-2"
        await a.send("cancel_order", order_id=value, symbol="AAPL-USD", cancel_order_id_type=mode)
        reply = await a.recv_key("order_response")
        assert reply["status"] == "CANCELLED" and reply["order_id"] == twap["twap_id"]
        final = await a.recv_key("twap_response")
        assert final["status"] == "CANCELLED"
        await a.expect_silence(SILENCE)  # no more children
        await a.send("cancel_order", order_id=value, symbol="AAPL-USD", cancel_order_id_type=mode)
        assert (await a.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
    [record] = venue.twaps(PUB)
    assert record.status == "CANCELLED" and record.children_placed == 1


async def test_cancel_twap_wrong_symbol_is_no_such_order(slow_venue):
    async with connect(slow_venue, PUB) as a:
        await a.send("add_twap", **TWAP, client_twap_id="rb-3")
        twap = await a.recv_key("twap_response")
        await _child_frames(a, expect_fill=False)
        await a.send("cancel_order", order_id=twap["twap_id"], symbol="TSLA-USD",
                     cancel_order_id_type="twap_id")
        assert (await a.recv_key("order_response"))["status"] == "NO_SUCH_ORDER"
        await a.send("get_user_orders")
        assert [t["twap_id"] for t in (await a.recv_key("all_orders_response"))["twaps"]] == [
            twap["twap_id"]]


async def test_cancel_all_ends_active_twaps(slow_venue):
    async with connect(slow_venue, PUB) as a:
        await a.send("add_twap", **TWAP)
        await a.recv_key("twap_response")
        await _child_frames(a, expect_fill=False)
        await a.send("cancel_all_orders")
        await a.recv_key("ack")
        assert (await a.recv_key("twap_response"))["status"] == "CANCELLED"
        await a.expect_silence(SILENCE)
    assert slow_venue.twaps(PUB, active_only=True) == []


@pytest.mark.parametrize(
    "change",
    [{"num_orders": 1}, {"order_interval_secs": 29}, {"total_quantity": 0.002},
     {"symbol": "NOPE-USD"}, {"side": "UP"}, {"num_orders": "three"}],
)
async def test_add_twap_validation(venue, change):
    async with connect(venue) as c:
        await c.send("add_twap", **{**TWAP, **change})
        err = await c.recv_key("err")
        assert err["error_code"] == "InvalidParameter"
        assert err["incoming_message"]["type"] == "add_twap"
    assert venue.twaps(PUB) == []


async def test_duplicate_active_client_twap_id_is_refused(slow_venue):
    async with connect(slow_venue) as c:
        await c.send("add_twap", **TWAP, client_twap_id="same")
        await c.recv_key("twap_response")
        await _child_frames(c, expect_fill=False)
        await c.send("add_twap", **TWAP, client_twap_id="same")
        assert (await c.recv_key("err"))["error_code"] == "InvalidParameter"
