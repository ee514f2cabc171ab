"""The simulator answers a number outside the market number domain with a small refusal (issue 11, item 9).

A 150-byte ``add_order`` whose quantity was ``"1e-30000000"`` used to be rejected with the quantity
echoed in positional notation: a 60 MB reply built while every other connection waited (2 GB for
``"1e-999999999"``). The request decoder shares the client's number domain (``protocol.numbers``),
so such a request is an ``InvalidParameter`` err echoing the text as sent; the reply's size is
asserted, never its time. Numbers inside the domain keep QFEX's usual order_response rejections.
"""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import orjson
import pytest
from sim_helpers import Client, connect, rest
from simkit import PUB, PUB2

from qfex_oms.protocol import OrderStatus, numbers
from qfex_oms.sim.settings import SymbolSpec
from qfex_oms.sim.validation import check_price, check_quantity

HOSTILE = ['"1e-30000000"', '"1e-999999999"', '"1e999999999"', '"9e999999"', '"0e-999999999"',
           '"' + "9" * 60 + '"', '"NaN"', '"-Infinity"', "1e300", "1e-300", "12345678901234567890"]
# A reply is the request echoed plus a few fields; a request here is under 300 bytes.
SMALL = 1000


def _add_order(quantity: str, price: str = "200") -> str:
    return ('{"type": "add_order", "params": {"symbol": "AAPL-USD", "side": "BUY", "order_type": "LIMIT", '
            f'"order_time_in_force": "GTC", "price": {price}, "quantity": {quantity}, '
            '"client_order_id": "hostile"}}')


async def _reply(client: Client, raw: str) -> tuple[int, dict[str, Any]]:
    await client.send_raw(raw)
    text = await client.ws.get_message()
    return len(text), orjson.loads(text)


@pytest.mark.parametrize("quantity", HOSTILE)
async def test_a_hostile_quantity_gets_a_small_invalid_parameter_err(venue, quantity: str) -> None:
    async with connect(venue, PUB) as bad, connect(venue, PUB2) as good:
        raw = _add_order(quantity)
        size, reply = await _reply(bad, raw)
        assert size < SMALL, f"{size} bytes in reply to {len(raw)}"
        assert list(reply) == ["err"] and reply["err"]["error_code"] == "InvalidParameter", reply
        echoed = reply["err"]["incoming_message"]["params"]["quantity"]
        assert echoed == orjson.loads(quantity)  # the text as sent, never an expansion of it
        assert venue.orders(PUB) == []
        await rest(good, "BUY", "200", "1")  # nobody waited on it
        await rest(bad, "BUY", "200", "1")  # and the connection still works


@pytest.mark.parametrize("price", ['"1e-30000000"', '"1e999999999"', '"' + "1" * 60 + '"'])
async def test_a_hostile_price_gets_a_small_invalid_parameter_err(venue, price: str) -> None:
    async with connect(venue, PUB) as bad:
        size, reply = await _reply(bad, _add_order("1", price))
        assert size < SMALL and reply["err"]["error_code"] == "InvalidParameter", reply


async def test_hostile_modify_and_twap_get_small_errs(venue) -> None:
    async with connect(venue, PUB) as client:
        ack = await rest(client, "BUY", "200", "1")
        modify = orjson.dumps({"type": "modify_order", "params": {
            "order_id": ack["order_id"], "symbol": "AAPL-USD", "side": "BUY", "order_type": "LIMIT",
            "price": "1e-30000000"}}).decode()
        size, reply = await _reply(client, modify)
        assert size < SMALL and reply["err"]["error_code"] == "InvalidParameter", reply
        twap = orjson.dumps({"type": "add_twap", "params": {
            "symbol": "AAPL-USD", "side": "BUY", "total_quantity": "1e999999999", "num_orders": 2,
            "order_interval_secs": 30}}).decode()
        size, reply = await _reply(client, twap)
        assert size < SMALL and reply["err"]["error_code"] == "InvalidParameter", reply
        assert [o.price for o in venue.orders(PUB)] == [200]


@pytest.mark.parametrize(("quantity", "status"), [
    ('"0.000000000000000001"', "QUANTITY_LESS_THAN_MIN_QUANTITY"),
    ('"-0.000000000000000001"', "QUANTITY_LESS_THAN_MIN_QUANTITY"),
    ('"9999999999999999.999"', "QUANTITY_GREATER_THAN_MAX_QUANTITY"),
    ('"1.' + "0" * 32 + '1"', "INVALID_TICK_SIZE_PRECISION_QUANTITY"),
    ("0", "QUANTITY_LESS_THAN_MIN_QUANTITY"),
])
async def test_numbers_at_the_domain_edges_keep_qfex_rejections(venue, quantity: str, status: str) -> None:
    """Inside the domain the usual order_response rejection, echoing the quantity in a few dozen
    characters at most (the domain bounds a number's positional text)."""
    async with connect(venue, PUB) as client:
        size, reply = await _reply(client, _add_order(quantity))
        assert list(reply) == ["order_response"] and reply["order_response"]["status"] == status, reply
        assert size < SMALL
        assert len(orjson.dumps(reply["order_response"]["quantity"])) <= numbers.MAX_FIXED_TEXT


def test_validation_divides_exactly_over_the_whole_domain() -> None:
    """A tick of 1e-18 and a price near 1e16: a 34-digit quotient the default context cannot hold."""
    fine = SymbolSpec("FINE-USD", D("1e-18"), D("1e-18"), D("1e-18"), D("9999999999999999"), D("1e-18"),
                      D("9999999999999999"))
    assert check_price(fine, D("9999999999999999.5")) is OrderStatus.PRICE_GREATER_THAN_MAX_PRICE
    assert check_price(fine, D("9999999999999998.000000000000000001")) is None
    assert check_quantity(fine, D("1234567890123456.123456789012345678")) is None
    off_lot = check_quantity(fine, D("0.0000000000000000015"))
    assert off_lot is OrderStatus.INVALID_TICK_SIZE_PRECISION_QUANTITY
