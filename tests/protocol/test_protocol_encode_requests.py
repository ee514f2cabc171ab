"""Every request encodes to the exact JSON documented in qfex-api.md §3.

Both sides are parsed with ``parse_float=Decimal`` so numbers are compared exactly, not as floats.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from qfex_oms.protocol import (
    CancelIdType,
    Channel,
    OrderType,
    Side,
    TimeInForce,
    encode,
    incoming_echo,
)
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.codec import request_params


def wire(raw: bytes | str) -> object:
    return json.loads(raw, parse_float=Decimal)


D = Decimal

# (message, the documented frame) -- the JSON text is copied from qfex-api.md §3.
DOCUMENTED_REQUESTS = [
    pytest.param(
        m.AddOrder(
            symbol="AAPL-USD",
            side=Side.BUY,
            order_type=OrderType.LIMIT,
            order_time_in_force=TimeInForce.GTC,
            quantity=D("10"),
            price=D("150.5"),
            client_order_id="my-order-123",
        ),
        """{
          "type": "add_order",
          "params": {
            "symbol": "AAPL-USD",
            "side": "BUY",
            "order_type": "LIMIT",
            "order_time_in_force": "GTC",
            "quantity": 10,
            "price": 150.5,
            "client_order_id": "my-order-123"
          }
        }""",
        id="add_order-asyncapi",
    ),
    pytest.param(
        m.AddOrder(
            symbol="AAPL-USD",
            side=Side.BUY,
            order_type=OrderType.MARKET,
            order_time_in_force=TimeInForce.IOC,
            quantity=D("1"),
            price=D("0"),
            reduce_only=False,
        ),
        '{"type":"add_order","params":{"symbol":"AAPL-USD","side":"BUY","order_type":"MARKET",'
        '"order_time_in_force":"IOC","quantity":1,"price":0,"reduce_only":false}}',
        id="add_order-cli-reduce_only-false-is-sent",
    ),
    pytest.param(
        m.CancelOrder(
            order_id="REPLACE_WITH_ORDER_UUID_V4",
            symbol="AAPL-USD",
            cancel_order_id_type=CancelIdType.ORDER_ID,
        ),
        '{ "type": "cancel_order", "params": { "order_id": "REPLACE_WITH_ORDER_UUID_V4", '
        '"symbol": "AAPL-USD", "cancel_order_id_type": "order_id" } }',
        id="cancel_order-by-order_id",
    ),
    pytest.param(
        m.CancelOrder(
            order_id="my-client-oid-123",
            symbol="AAPL-USD",
            cancel_order_id_type=CancelIdType.CLIENT_ORDER_ID,
        ),
        '{ "type": "cancel_order", "params": { "order_id": "my-client-oid-123", '
        '"symbol": "AAPL-USD", "cancel_order_id_type": "client_order_id" } }',
        id="cancel_order-by-client_order_id",
    ),
    pytest.param(
        m.CancelOrder(
            order_id="0c7c8e4d-f67e-4aa5-9c64-36a1a622ac35",
            symbol="AAPL-USD",
            cancel_order_id_type=CancelIdType.TWAP_ID,
        ),
        '{ "type": "cancel_order", "params": { "order_id": "0c7c8e4d-f67e-4aa5-9c64-36a1a622ac35", '
        '"symbol": "AAPL-USD", "cancel_order_id_type": "twap_id" } }',
        id="cancel_order-by-twap_id",
    ),
    pytest.param(
        # The docs' value is truncated ("rebalance-aa…"); add_twap's example id is used instead.
        m.CancelOrder(
            order_id="rebalance-aapl-001",
            symbol="AAPL-USD",
            cancel_order_id_type=CancelIdType.CLIENT_TWAP_ID,
        ),
        '{ "type": "cancel_order", "params": { "order_id": "rebalance-aapl-001", '
        '"symbol": "AAPL-USD", "cancel_order_id_type": "client_twap_id" } }',
        id="cancel_order-by-client_twap_id",
    ),
    pytest.param(
        m.ModifyOrder(
            symbol="AAPL-USD",
            order_id="5b309929-206f-40ec-804d-cbe46e81afc1",
            price=D("152"),
            quantity=D("15"),
            side=Side.BUY,
            order_type=OrderType.LIMIT,
        ),
        """{
          "type": "modify_order",
          "params": {
            "symbol": "AAPL-USD",
            "order_id": "5b309929-206f-40ec-804d-cbe46e81afc1",
            "price": 152,
            "quantity": 15,
            "side": "BUY",
            "order_type": "LIMIT"
          }
        }""",
        id="modify_order",
    ),
    pytest.param(
        m.CancelAllOrders(),
        '{ "type": "cancel_all_orders", "params": {} }',
        id="cancel_all_orders",
    ),
    pytest.param(
        m.AddTwap(
            symbol="AAPL-USD",
            side=Side.BUY,
            total_quantity=D("10"),
            num_orders=5,
            order_interval_secs=30,
            reduce_only=False,
            client_twap_id="rebalance-aapl-001",
        ),
        """{
          "type": "add_twap",
          "params": {
            "symbol": "AAPL-USD",
            "side": "BUY",
            "total_quantity": 10,
            "num_orders": 5,
            "order_interval_secs": 30,
            "reduce_only": false,
            "client_twap_id": "rebalance-aapl-001"
          }
        }""",
        id="add_twap",
    ),
    pytest.param(
        m.GetOrder(symbol="US500-USD", order_id="57cc1941-8ad1-4df3-b34c-bb556518befc"),
        '{ "type": "get_order", "params": { "symbol": "US500-USD", '
        '"order_id": "57cc1941-8ad1-4df3-b34c-bb556518befc" } }',
        id="get_order",
    ),
    pytest.param(
        m.GetUserOrders(limit=10, offset=0, symbol="AAPL-USD"),
        '{ "type": "get_user_orders", "params": { "limit": 10, "offset": 0, "symbol": "AAPL-USD" } }',
        id="get_user_orders",
    ),
    pytest.param(
        m.GetUserTrades(
            limit=10,
            offset=0,
            order_id="5b309929-206f-40ec-804d-cbe46e81afc1",
            start_ts=1746900000,
            end_ts=1746908400,
        ),
        '{ "type": "get_user_trades", "params": { "limit": 10, "offset": 0, '
        '"order_id": "5b309929-206f-40ec-804d-cbe46e81afc1", "start_ts": 1746900000, '
        '"end_ts": 1746908400 } }',
        id="get_user_trades",
    ),
    *(
        pytest.param(
            m.Subscribe(channels=(channel,)),
            f'{{ "type": "subscribe", "params": {{ "channels": ["{channel.value}"] }} }}',
            id=f"subscribe-{channel.value}",
        )
        for channel in Channel
    ),
    pytest.param(
        m.Unsubscribe(channels=(Channel.ORDER_RESPONSES, Channel.POSITIONS)),
        '{ "type": "unsubscribe", "params": { "channels": ["order_responses", "positions"] } }',
        id="unsubscribe-two-channels",
    ),
    pytest.param(
        m.CancelOnDisconnect(cancel_on_disconnect=True),
        '{ "type": "cancel_on_disconnect", "params": { "cancel_on_disconnect": true } }',
        id="cancel_on_disconnect-true",
    ),
    pytest.param(
        m.CancelOnDisconnect(cancel_on_disconnect=False),
        '{ "type": "cancel_on_disconnect", "params": { "cancel_on_disconnect": false } }',
        id="cancel_on_disconnect-false",
    ),
    pytest.param(
        m.ClosePosition(symbol="AAPL-USD"),
        '{ "type": "close_position", "params": { "symbol": "AAPL-USD" } }',
        id="close_position",
    ),
    pytest.param(
        m.ClosePosition(symbol="AAPL-USD", client_order_id="my-close-order-1"),
        '{ "type": "close_position", "params": { "symbol": "AAPL-USD", '
        '"client_order_id": "my-close-order-1" } }',
        id="close_position-client-id",
    ),
    pytest.param(
        m.GetUserLeverage(limit=10, offset=0),
        '{"type":"get_user_leverage","params":{"limit":10,"offset":0}}',
        id="get_user_leverage",
    ),
    pytest.param(
        m.SetUserLeverage(symbol="AAPL-USD", leverage=D("10")),
        '{"type":"set_user_leverage","params":{"symbol":"AAPL-USD","leverage":10}}',
        id="set_user_leverage",
    ),
    pytest.param(
        m.GetAvailableLeverageLevels(limit=10, offset=0),
        '{"type":"get_available_leverage_levels","params":{"limit":10,"offset":0}}',
        id="get_available_leverage_levels",
    ),
    pytest.param(
        m.CancelStopOrder("510333ac-3f7b-4d88-934a-4396d48824cc"),
        '{"type": "cancel_stop_order", "params": {"stop_order_id": "510333ac-3f7b-4d88-934a-4396d48824cc"}}',
        id="cancel_stop_order",
    ),
    pytest.param(
        m.ModifyStopOrder("510333ac-3f7b-4d88-934a-4396d48824cc", "AAPL-USD", price=D("200"), quantity=D("2"),
                          side=Side.BUY, order_type=OrderType.TAKE_PROFIT),
        '{"type": "modify_stop_order", "params": {"stop_order_id": "510333ac-3f7b-4d88-934a-4396d48824cc",'
        ' "symbol": "AAPL-USD", "side": "BUY", "order_type": "TAKE_PROFIT", "quantity": 2, "price": 200}}',
        id="modify_stop_order",
    ),
]


@pytest.mark.parametrize(("message", "documented"), DOCUMENTED_REQUESTS)
def test_request_encodes_to_documented_frame(message, documented):
    assert wire(encode(message)) == wire(documented)


@pytest.mark.parametrize(("message", "documented"), DOCUMENTED_REQUESTS)
def test_incoming_echo_is_the_encoded_frame(message, documented):
    # err/ack echo a request in the same tagged format (qfex-api.md §3, §4.9).
    assert incoming_echo(message) == json.loads(encode(message))
    assert incoming_echo(message) == json.loads(documented)


def test_every_request_type_is_covered_by_a_documented_example():
    covered = {type(p.values[0]) for p in DOCUMENTED_REQUESTS} | {m.Auth}  # auth: signing tests
    assert covered == set(m.REQUEST_TYPES)


def test_encode_returns_compact_bytes():
    raw = encode(m.CancelAllOrders())
    assert raw == b'{"type":"cancel_all_orders","params":{}}'


def test_all_four_cancel_modes_put_the_id_in_order_id():
    for kind in CancelIdType:
        params = wire(encode(m.CancelOrder("the-id", "AAPL-USD", kind)))["params"]
        assert params == {"order_id": "the-id", "symbol": "AAPL-USD", "cancel_order_id_type": kind}
        assert "client_order_id" not in params


def _add_order(**overrides) -> m.AddOrder:
    fields = {
        "symbol": "AAPL-USD",
        "side": Side.BUY,
        "order_type": OrderType.LIMIT,
        "order_time_in_force": TimeInForce.GTC,
        "quantity": D("1"),
    }
    fields.update(overrides)
    return m.AddOrder(**fields)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("150.50"), b"150.50"),
        (D("0.1"), b"0.1"),
        (D("0.10"), b"0.10"),
        (D("123456789.123456789"), b"123456789.123456789"),
        (D("9876543210987654.012345678901234567"), b"9876543210987654.012345678901234567"),
        (D("1E-18"), b"0.000000000000000001"),
        (D("10"), b"10"),
        (D("0"), b"0"),
        (D("-2.5"), b"-2.5"),
        (D("0.00000001"), b"0.00000001"),
        (D("1E-8"), b"0.00000001"),
        (D("1E+2"), b"100"),
        (D("2.50E+3"), b"2500"),
    ],
)
def test_decimal_goes_out_as_json_number_with_exact_text(value, text):
    raw = encode(_add_order(price=value))
    assert b'"price":' + text + b"}" in raw
    assert wire(raw)["params"]["price"] == value


def test_decimal_exact_in_every_numeric_field():
    big = D("123456789.123456789")
    raw = encode(_add_order(quantity=big, price=big, take_profit=big, stop_loss=big))
    assert raw.count(b"123456789.123456789") == 4
    params = wire(raw)["params"]
    for key in ("quantity", "price", "take_profit", "stop_loss"):
        assert params[key] == big


def test_none_optional_fields_are_omitted():
    params = wire(encode(_add_order()))["params"]
    assert set(params) == {"symbol", "side", "order_type", "order_time_in_force", "quantity"}
    assert b"null" not in encode(_add_order())


def test_falsy_but_set_optional_fields_are_sent():
    params = request_params(_add_order(price=D("0"), client_order_id="", reduce_only=False))
    assert set(params) >= {"price", "client_order_id", "reduce_only"}
    assert wire(encode(_add_order(price=D("0"), client_order_id="", reduce_only=False)))[
        "params"
    ] == {
        "symbol": "AAPL-USD",
        "side": "BUY",
        "order_type": "LIMIT",
        "order_time_in_force": "GTC",
        "quantity": 1,
        "price": 0,
        "client_order_id": "",
        "reduce_only": False,
    }


def test_modify_order_omits_unchanged_fields():
    msg = m.ModifyOrder("oid", "AAPL-USD", Side.SELL, OrderType.LIMIT, price=D("151.25"))
    assert wire(encode(msg)) == {
        "type": "modify_order",
        "params": {
            "order_id": "oid",
            "symbol": "AAPL-USD",
            "side": "SELL",
            "order_type": "LIMIT",
            "price": D("151.25"),
        },
    }


def test_get_user_orders_and_trades_with_no_filters_send_empty_params():
    assert wire(encode(m.GetUserOrders())) == {"type": "get_user_orders", "params": {}}
    assert wire(encode(m.GetUserTrades())) == {"type": "get_user_trades", "params": {}}


def test_add_twap_without_client_twap_id_omits_it_but_sends_reduce_only():
    msg = m.AddTwap("AAPL-USD", Side.SELL, D("2.5"), 2, 30)
    assert wire(encode(msg))["params"] == {
        "symbol": "AAPL-USD",
        "side": "SELL",
        "total_quantity": D("2.5"),
        "num_orders": 2,
        "order_interval_secs": 30,
        "reduce_only": False,
    }


def test_subscribe_many_channels_keeps_order():
    msg = m.Subscribe((Channel.FILLS, Channel.ORDER_RESPONSES, Channel.BALANCES))
    assert wire(encode(msg))["params"] == {"channels": ["fills", "order_responses", "balances"]}


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "sNaN"])
def test_encoding_a_non_finite_decimal_is_refused(bad):
    with pytest.raises((ValueError, TypeError)):
        encode(_add_order(quantity=D(bad)))
