"""``decode_request``: how the simulator reads a client's frame and which QFEX error code it answers."""

from __future__ import annotations

from decimal import Decimal

import orjson
import pytest

from qfex_oms.protocol import (
    CancelIdType,
    Channel,
    ErrorCode,
    OrderType,
    RequestError,
    Side,
    TimeInForce,
    decode_request,
    encode,
    make_auth,
)
from qfex_oms.protocol import messages as m

D = Decimal

ONE_OF_EACH = [
    make_auth("qfex_pub_demo", "qfex_secret_demo", unix_ts=1760545414, nonce="c0ffee"),
    make_auth("qfex_pub_demo", "qfex_secret_demo", account_id="11111111-1111-1111-1111-111111111111"),
    m.Auth(jwt="eyJhbGciOiJFUzI1NiJ9.e30.sig"),
    m.AddOrder("AAPL-USD", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, D("10"), price=D("150.50")),
    m.AddOrder(
        "US100-USD",
        Side.SELL,
        OrderType.MARKET,
        TimeInForce.IOC,
        D("0.004"),
        price=D("0"),
        client_order_id="mm-1",
        take_profit=D("26000.25"),
        stop_loss=D("24000"),
        reduce_only=True,
    ),
    m.AddOrder("AAPL-USD", Side.BUY, OrderType.ALO, TimeInForce.GTC, D("1"), price=D("199.95")),
    *(m.CancelOrder("some-id", "AAPL-USD", kind) for kind in CancelIdType),
    m.ModifyOrder("5b309929", "AAPL-USD", Side.BUY, OrderType.LIMIT, price=D("152"), quantity=D("15")),
    m.ModifyOrder(
        "5b309929", "AAPL-USD", Side.SELL, OrderType.LIMIT, take_profit=D("1.5"), stop_loss=D("0.5")
    ),
    m.CancelAllOrders(),
    m.AddTwap("AAPL-USD", Side.BUY, D("10"), 5, 30, reduce_only=False, client_twap_id="rb-1"),
    m.AddTwap("AAPL-USD", Side.SELL, D("2.5"), 2, 60, reduce_only=True),
    m.GetOrder("US500-USD", "57cc1941-8ad1-4df3-b34c-bb556518befc"),
    m.GetUserOrders(),
    m.GetUserOrders(limit=10, offset=0, symbol="AAPL-USD"),
    m.GetUserTrades(),
    m.GetUserTrades(limit=10, offset=20, order_id="o", start_ts=1746900000, end_ts=1746908400),
    m.Subscribe((Channel.ORDER_RESPONSES,)),
    m.Subscribe(tuple(Channel)),
    m.Unsubscribe((Channel.ORDER_RESPONSES, Channel.POSITIONS)),
    m.CancelOnDisconnect(True),
    m.CancelOnDisconnect(False),
    m.ClosePosition("AAPL-USD"),
    m.ClosePosition("AAPL-USD", client_order_id="my-close-order-1"),
    m.GetUserLeverage(),
    m.GetUserLeverage(limit=10, offset=0),
    m.SetUserLeverage("AAPL-USD", D("10")),
    m.GetAvailableLeverageLevels(limit=10, offset=0),
    m.CancelStopOrder("510333ac-3f7b-4d88-934a-4396d48824cc"),
    m.ModifyStopOrder("510333ac", "AAPL-USD", price=D("200"), quantity=D("2")),
]


@pytest.mark.parametrize("request_", ONE_OF_EACH, ids=lambda r: type(r).__name__)
def test_valid_frames_round_trip(request_):
    decoded = decode_request(encode(request_))
    assert type(decoded) is type(request_)
    assert decoded == request_


def test_round_trip_covers_every_request_type():
    assert {type(r) for r in ONE_OF_EACH} == set(m.REQUEST_TYPES)


def test_decoded_enums_are_the_real_members():
    order = decode_request(encode(ONE_OF_EACH[3]))
    assert order.side is Side.BUY
    assert order.order_type is OrderType.LIMIT
    assert order.order_time_in_force is TimeInForce.GTC
    sub = decode_request(encode(m.Subscribe((Channel.FILLS,))))
    assert sub.channels == (Channel.FILLS,)
    assert sub.channels[0] is Channel.FILLS
    assert isinstance(sub.channels, tuple)


def test_decoded_decimals_keep_value():
    order = decode_request(b'{"type":"add_order","params":{"symbol":"AAPL-USD","side":"BUY",'
                           b'"order_type":"LIMIT","order_time_in_force":"GTC","quantity":0.004,'
                           b'"price":150.5}}')
    assert order.quantity == D("0.004")
    assert str(order.quantity) == "0.004"
    assert order.price == D("150.5")


def test_documented_frames_with_whitespace_decode():
    raw = '{ "type": "cancel_all_orders", "params": {} }'
    assert decode_request(raw) == m.CancelAllOrders()
    raw = '{ "type": "subscribe", "params": { "channels": ["order_responses"] } }'
    assert decode_request(raw) == m.Subscribe((Channel.ORDER_RESPONSES,))


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "cancel_all_orders"}',
        '{"type": "cancel_all_orders", "params": null}',
        '{"type": "get_user_orders"}',
    ],
)
def test_params_may_be_absent_when_nothing_is_required(raw):
    assert decode_request(raw) in (m.CancelAllOrders(), m.GetUserOrders())


def test_unknown_params_are_ignored():
    raw = '{"type": "cancel_all_orders", "params": {"symbols": ["AAPL-USD"]}}'
    assert decode_request(raw) == m.CancelAllOrders()


# --------------------------------------------------------------------------- InvalidJSONFormat


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "not json",
        '{"type": "add_order", ',
        "{'type': 'cancel_all_orders'}",
        b"\xff\xfe",
        '{"type": "add_order", "params": {"symbol": "A", "side": "BUY", "order_type": "LIMIT", '
        '"order_time_in_force": "GTC", "quantity": NaN}}',
    ],
)
def test_malformed_json_is_invalid_json_format(raw):
    with pytest.raises(RequestError) as info:
        decode_request(raw)
    assert info.value.code is ErrorCode.INVALID_JSON_FORMAT
    assert info.value.incoming is None
    assert info.value.message


@pytest.mark.parametrize(
    "raw",
    ["[]", '["add_order"]', "42", "null", '"add_order"', "{}", '{"params": {}}', '{"type": 5}',
     '{"type": null}'],
)
def test_frame_without_a_string_type_is_invalid_json_format(raw):
    with pytest.raises(RequestError) as info:
        decode_request(raw)
    assert info.value.code is ErrorCode.INVALID_JSON_FORMAT


@pytest.mark.parametrize(
    "raw",
    [
        '{"type": "place_order", "params": {}}',
        '{"type": "ADD_ORDER", "params": {}}',
        '{"type": "", "params": {}}',
    ],
)
def test_unknown_type_is_invalid_json_format_with_echo(raw):
    with pytest.raises(RequestError) as info:
        decode_request(raw)
    assert info.value.code is ErrorCode.INVALID_JSON_FORMAT
    assert info.value.incoming == orjson.loads(raw)


@pytest.mark.parametrize("params", ["[]", '"x"', "5", "true"])
def test_params_not_an_object_is_invalid_json_format_with_echo(params):
    raw = '{"type": "get_user_orders", "params": ' + params + "}"
    with pytest.raises(RequestError) as info:
        decode_request(raw)
    assert info.value.code is ErrorCode.INVALID_JSON_FORMAT
    assert info.value.incoming == orjson.loads(raw)


# --------------------------------------------------------------------------- InvalidParameter

ADD_ORDER_PARAMS = {
    "symbol": "AAPL-USD",
    "side": "BUY",
    "order_type": "LIMIT",
    "order_time_in_force": "GTC",
    "quantity": 10,
    "price": 150.5,
}


def _without(params: dict, key: str) -> dict:
    return {k: v for k, v in params.items() if k != key}


MISSING_REQUIRED = [
    *(
        pytest.param("add_order", _without(ADD_ORDER_PARAMS, key), id=f"add_order-no-{key}")
        for key in ("symbol", "side", "order_type", "order_time_in_force", "quantity")
    ),
    *(
        pytest.param(
            "cancel_order",
            _without({"order_id": "o", "symbol": "s", "cancel_order_id_type": "order_id"}, key),
            id=f"cancel_order-no-{key}",
        )
        for key in ("order_id", "symbol", "cancel_order_id_type")
    ),
    *(
        pytest.param(
            "modify_order",
            _without({"order_id": "o", "symbol": "s", "side": "BUY", "order_type": "LIMIT"}, key),
            id=f"modify_order-no-{key}",
        )
        for key in ("order_id", "symbol", "side", "order_type")
    ),
    *(
        pytest.param(
            "add_twap",
            _without(
                {"symbol": "s", "side": "BUY", "total_quantity": 10, "num_orders": 5,
                 "order_interval_secs": 30},
                key,
            ),
            id=f"add_twap-no-{key}",
        )
        for key in ("symbol", "side", "total_quantity", "num_orders", "order_interval_secs")
    ),
    pytest.param("get_order", {"symbol": "s"}, id="get_order-no-order_id"),
    pytest.param("get_order", {"order_id": "o"}, id="get_order-no-symbol"),
    pytest.param("subscribe", {}, id="subscribe-no-channels"),
    pytest.param("unsubscribe", {}, id="unsubscribe-no-channels"),
    pytest.param("cancel_on_disconnect", {}, id="cod-no-flag"),
    pytest.param(
        "auth", {"hmac": {"public_key": "p", "nonce": "n", "unix_ts": 1}}, id="auth-no-signature"
    ),
]


@pytest.mark.parametrize(("type_", "params"), MISSING_REQUIRED)
def test_missing_required_param_is_invalid_parameter_with_echo(type_, params):
    frame = {"type": type_, "params": params}
    with pytest.raises(RequestError) as info:
        decode_request(orjson.dumps(frame))
    assert info.value.code is ErrorCode.INVALID_PARAMETER
    assert info.value.incoming == frame
    assert info.value.message


def test_missing_params_object_with_required_fields_is_invalid_parameter():
    with pytest.raises(RequestError) as info:
        decode_request('{"type": "add_order"}')
    assert info.value.code is ErrorCode.INVALID_PARAMETER
    assert info.value.incoming == {"type": "add_order"}


BAD_VALUES = [
    pytest.param("quantity", "abc", id="quantity-abc"),
    pytest.param("quantity", "", id="quantity-empty-string"),
    pytest.param("quantity", True, id="quantity-true"),
    pytest.param("quantity", None, id="quantity-null"),
    pytest.param("quantity", [10], id="quantity-array"),
    pytest.param("quantity", {"value": 10}, id="quantity-object"),
    pytest.param("quantity", "NaN", id="quantity-NaN-string"),
    pytest.param("quantity", "Infinity", id="quantity-Infinity-string"),
    pytest.param("price", "-inf", id="price-minus-inf-string"),
    pytest.param("price", False, id="price-false"),
    pytest.param("side", 0, id="side-number"),
    pytest.param("side", "", id="side-empty"),
    pytest.param("order_type", None, id="order_type-null"),
    pytest.param("order_time_in_force", 1, id="tif-number"),
]


@pytest.mark.parametrize(("key", "value"), BAD_VALUES)
def test_wrong_type_is_invalid_parameter_with_echo(key, value):
    frame = {"type": "add_order", "params": {**ADD_ORDER_PARAMS, key: value}}
    with pytest.raises(RequestError) as info:
        decode_request(orjson.dumps(frame))
    assert info.value.code is ErrorCode.INVALID_PARAMETER
    assert info.value.incoming == frame


def test_request_error_carries_the_fields_the_simulator_answers_with():
    with pytest.raises(RequestError) as info:
        decode_request('{"type": "get_order", "params": {"symbol": "s"}}')
    err = info.value
    assert err.code == "InvalidParameter"
    assert "order_id" in err.message
    reply = m.Err(error_code=err.code, message=err.message, incoming_message=err.incoming)
    assert orjson.loads(encode(reply)) == {
        "err": {
            "error_code": "InvalidParameter",
            "message": err.message,
            "incoming_message": {"type": "get_order", "params": {"symbol": "s"}},
        }
    }


def test_unknown_enum_values_decode_as_open_members_for_the_simulator_to_check():
    frame = {"type": "add_order", "params": {**ADD_ORDER_PARAMS, "order_time_in_force": "GFD"}}
    order = decode_request(orjson.dumps(frame))
    assert order.order_time_in_force == "GFD"
    assert not order.order_time_in_force.known


# --------------------------------------------------------------------------- bugs found

LAX_REQUESTS = [
    pytest.param(
        {"type": "cancel_on_disconnect", "params": {"cancel_on_disconnect": "false"}},
        id="cod-'false'-becomes-True",
    ),
    pytest.param(
        {"type": "cancel_on_disconnect", "params": {"cancel_on_disconnect": 1}},
        id="cod-1-becomes-True",
    ),
    pytest.param(
        {"type": "add_order", "params": {**ADD_ORDER_PARAMS, "reduce_only": "false"}},
        id="reduce_only-'false'-becomes-True",
    ),
    pytest.param({"type": "subscribe", "params": {"channels": "fills"}},
                 id="channels-string-becomes-5-channels"),
    pytest.param({"type": "subscribe", "params": {"channels": {}}},
                 id="channels-object-becomes-empty"),
    pytest.param(
        {"type": "add_twap", "params": {"symbol": "s", "side": "BUY", "total_quantity": 10,
                                        "num_orders": 2.5, "order_interval_secs": 30}},
        id="num_orders-2.5-becomes-2",
    ),
    pytest.param({"type": "get_user_orders", "params": {"limit": True}}, id="limit-true-becomes-1"),
    pytest.param({"type": "add_order", "params": {**ADD_ORDER_PARAMS, "symbol": None}},
                 id="symbol-null-becomes-'None'"),
    pytest.param({"type": "add_order", "params": {**ADD_ORDER_PARAMS, "symbol": 123}},
                 id="symbol-number-becomes-'123'"),
    pytest.param(
        {"type": "cancel_order",
         "params": {"order_id": None, "symbol": "s", "cancel_order_id_type": "order_id"}},
        id="cancel-order_id-null-becomes-'None'",
    ),
    pytest.param({"type": "auth", "params": {}}, id="auth-without-hmac-or-jwt"),
]


@pytest.mark.parametrize("frame", LAX_REQUESTS)
def test_wrong_json_types_are_invalid_parameter(frame):
    with pytest.raises(RequestError) as info:
        decode_request(orjson.dumps(frame))
    assert info.value.code is ErrorCode.INVALID_PARAMETER
    assert info.value.incoming == frame


@pytest.mark.parametrize("text", ["9999999.999999999", "123456789.123456789"])
def test_request_numbers_beyond_15_digits_read_as_the_nearest_float(text):
    # Documented limit (codec docstring): exact up to 15 significant digits, float-nearest beyond.
    order = m.AddOrder("AAPL-USD", Side.BUY, OrderType.LIMIT, TimeInForce.GTC, D("1"), price=D(text))
    assert decode_request(encode(order)).price == D(repr(float(text)))
