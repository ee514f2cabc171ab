"""Stop-order wire shapes (qfex-api.md §3.10, §4.4, §14): requests, ``stop_order_response``, and
stops in ``all_orders_response`` under either reading of the 2025-10-30 changelog."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from qfex_oms.protocol import (
    OrderStatus,
    OrderType,
    ProtocolError,
    RequestError,
    Side,
    TimeInForce,
    decode_reply,
    decode_request,
    encode,
)
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import STOP_ORDER_TYPES, STOP_PRICE_REJECTIONS
from qfex_oms.protocol.limits import Bucket, weight_of

D = Decimal
STOP_ID = "510333ac-3f7b-4d88-934a-4396d48824cc"

# The schema-built example of §14.3 (no example exists in QFEX's sources).
DOC_STOP = (
    '{"stop_order_response": {"stop_order_id": "510333ac-3f7b-4d88-934a-4396d48824cc", "user_id":'
    ' "0020ce8e-eaee-480e-8d7f-b9241d756ee5", "symbol": "AAPL-USD", "price": 200.0, "quantity": 1.0,'
    ' "direction": "BUY", "stop_order_type": "TAKE_PROFIT", "client_order_id": "",'
    ' "update_time": "2025-10-30T12:00:00Z"}}'
)
EXPECTED_STOP = m.StopOrderResponse(
    STOP_ID, "AAPL-USD", D("200"), D("1"), Side.BUY, OrderType.TAKE_PROFIT,
    client_order_id="", user_id="0020ce8e-eaee-480e-8d7f-b9241d756ee5", update_time="2025-10-30T12:00:00Z",
)
# §14.5's verbatim answer to cancel_stop_order.
DOC_CANCEL_ANSWER = (
    '{"order_response": {"order_id": "510333ac-3f7b-4d88-934a-4396d48824cc", "symbol": "AAPL-USD",'
    ' "status": "CANCELLED", "quantity": 0.0, "price": 200.0, "side": "BUY", "type": "TAKE_PROFIT",'
    ' "time_in_force": "GTC", "user_id": "0020ce8e-eaee-480e-8d7f-b9241d756ee5", "client_order_id": "",'
    ' "quantity_remaining": 0.0}}'
)


# --------------------------------------------------------------------------- requests


def test_cancel_stop_order_is_the_documented_frame():
    frame = {"type": "cancel_stop_order", "params": {"stop_order_id": STOP_ID}}
    assert json.loads(encode(m.CancelStopOrder(STOP_ID))) == frame
    assert decode_request(json.dumps(frame)) == m.CancelStopOrder(STOP_ID)


def test_modify_stop_order_docs_page_shape_with_side_and_type():
    frame = {"type": "modify_stop_order", "params": {"stop_order_id": STOP_ID, "symbol": "AAPL-USD",
                                                     "side": "BUY", "order_type": "TAKE_PROFIT",
                                                     "quantity": 2, "price": 200}}
    request = decode_request(json.dumps(frame))
    assert request == m.ModifyStopOrder(STOP_ID, "AAPL-USD", price=D("200"), quantity=D("2"),
                                        side=Side.BUY, order_type=OrderType.TAKE_PROFIT)
    assert json.loads(encode(request)) == frame


def test_modify_stop_order_asyncapi_and_cli_shape_without_side_and_type():
    frame = {"type": "modify_stop_order",
             "params": {"stop_order_id": STOP_ID, "symbol": "AAPL-USD", "price": 200, "quantity": 2}}
    request = decode_request(json.dumps(frame))
    assert request == m.ModifyStopOrder(STOP_ID, "AAPL-USD", price=D("200"), quantity=D("2"))
    assert json.loads(encode(request)) == frame  # no side/order_type keys appear


def test_modify_stop_order_price_only_per_docs_page():
    request = decode_request('{"type": "modify_stop_order", "params": '
                             '{"stop_order_id": "s", "symbol": "AAPL-USD", "price": 201.5}}')
    assert request == m.ModifyStopOrder("s", "AAPL-USD", price=D("201.5"))


@pytest.mark.parametrize("params", [
    {},
    {"stop_order_id": 5},
    {"stop_order_id": None},
])
def test_bad_cancel_stop_order_is_invalid_parameter(params):
    with pytest.raises(RequestError) as info:
        decode_request(json.dumps({"type": "cancel_stop_order", "params": params}))
    assert info.value.code == "InvalidParameter"


def test_standalone_stop_is_an_add_order_with_the_trigger_in_price():
    # §14.2: the time in force is "required for legacy reasons" and not read.
    frame = {"type": "add_order", "params": {"symbol": "AAPL-USD", "side": "BUY", "order_type": "TAKE_PROFIT",
                                             "order_time_in_force": "GTC", "quantity": 1, "price": 200}}
    request = decode_request(json.dumps(frame))
    assert request == m.AddOrder("AAPL-USD", Side.BUY, OrderType.TAKE_PROFIT, TimeInForce.GTC, D("1"),
                                 price=D("200"))
    assert request.order_type.is_stop
    assert json.loads(encode(request)) == frame


def test_stop_enums():
    assert {OrderType.TAKE_PROFIT, OrderType.STOP_LOSS} == STOP_ORDER_TYPES
    assert not OrderType.STOP_MARKET.is_stop
    assert not OrderType.LIMIT.is_stop
    assert not OrderType("SOMETHING_NEW").is_stop
    # Both spellings of the stop-price rejections are known statuses, and rejections (§14.8).
    for status in STOP_PRICE_REJECTIONS:
        assert status.known and status.is_rejection
    assert OrderStatus("INVALID_TAKE_PROFIT_PRICE") is OrderStatus.INVALID_TAKE_PROFIT_PRICE


def test_stop_request_rate_weights():
    assert weight_of("cancel_stop_order") == (Bucket.CANCEL, 1.0)
    assert weight_of("modify_stop_order") == (Bucket.GENERAL, 1.0)


# --------------------------------------------------------------------------- stop_order_response


def test_stop_order_response_decodes_every_documented_field():
    assert decode_reply(DOC_STOP) == EXPECTED_STOP


def test_stop_order_response_round_trips():
    assert decode_reply(encode(EXPECTED_STOP)) == EXPECTED_STOP
    sparse = m.StopOrderResponse("s", "AAPL-USD", D("1.5"), D("0.01"), Side.SELL, OrderType.STOP_LOSS)
    assert decode_reply(encode(sparse)) == sparse


def test_stop_order_response_tolerates_unknown_fields_and_values():
    raw = DOC_STOP.replace('"client_order_id": ""', '"client_order_id": "", "status": "NEW", "x": [1]')
    assert decode_reply(raw) == EXPECTED_STOP
    odd = decode_reply(DOC_STOP.replace('"TAKE_PROFIT"', '"TRAILING_STOP"'))
    assert odd.stop_order_type == "TRAILING_STOP" and not odd.stop_order_type.known


def test_stop_order_response_update_time_as_float_seconds():
    reply = decode_reply(DOC_STOP.replace('"2025-10-30T12:00:00Z"', "1761825600.25"))
    assert reply.update_time == 1761825600.25


@pytest.mark.parametrize("payload", [
    "[]",
    "null",
    '{"stop_order_id": "s"}',
    '{"stop_order_id": 7, "symbol": "A", "price": 1, "quantity": 1, "direction": "BUY",'
    ' "stop_order_type": "STOP_LOSS"}',
    '{"stop_order_id": "s", "symbol": "A", "price": "x", "quantity": 1, "direction": "BUY",'
    ' "stop_order_type": "STOP_LOSS"}',
    '{"stop_order_id": "s", "symbol": "A", "price": 1, "quantity": 1, "direction": 1,'
    ' "stop_order_type": "STOP_LOSS"}',
    '{"stop_order_id": "s", "symbol": "A", "price": 1, "quantity": 1, "direction": "BUY",'
    ' "stop_order_type": "STOP_LOSS", "update_time": true}',
    '{"stop_order_id": "s", "symbol": "A", "price": 1e300, "quantity": 1, "direction": "BUY",'
    ' "stop_order_type": "STOP_LOSS"}',
])
def test_malformed_stop_order_response_is_a_protocol_error(payload):
    raw = '{"stop_order_response": ' + payload + "}"
    with pytest.raises(ProtocolError) as info:
        decode_reply(raw)
    assert "stop_order_response" in str(info.value)


def test_cancel_stop_answer_is_an_order_response_with_the_stop_id():
    reply = decode_reply(DOC_CANCEL_ANSWER)
    assert isinstance(reply, m.OrderResponse)
    assert (reply.order_id, reply.status) == (STOP_ID, OrderStatus.CANCELLED)
    assert reply.type is OrderType.TAKE_PROFIT


# --------------------------------------------------------------------------- all_orders_response


def _row(order_id: str, kind: str, **extra: object) -> dict[str, object]:
    row: dict[str, object] = {"order_id": order_id, "symbol": "AAPL-USD", "status": "ACK", "quantity": 1.0,
                              "price": 200.0, "side": "SELL", "type": kind, "time_in_force": "GTC",
                              "client_order_id": "c", "quantity_remaining": 1.0}
    row.update(extra)
    return row


def test_stops_listed_in_the_orders_key_changelog_reading():
    raw = json.dumps({"all_orders_response": {"orders": [_row("o1", "LIMIT"), _row(STOP_ID, "STOP_LOSS")],
                                              "twaps": []}})
    reply = decode_reply(raw)
    assert [o.order_id for o in reply.regular_orders()] == ["o1"]
    (stop,) = reply.stops()
    assert stop == m.StopOrderResponse(STOP_ID, "AAPL-USD", D("200"), D("1"), Side.SELL, OrderType.STOP_LOSS,
                                       client_order_id="c")
    assert len(reply.orders) == 2  # the wire is kept as sent


def test_stops_listed_in_a_stop_orders_key_docs_rendering():
    stop = json.loads(DOC_STOP)["stop_order_response"]
    raw = json.dumps({"all_orders_response": {"orders": [_row("o1", "LIMIT")], "stop_orders": [stop]}})
    reply = decode_reply(raw)
    assert reply.stop_orders == (EXPECTED_STOP,)
    assert reply.stops() == (EXPECTED_STOP,)
    assert reply.regular_orders() == reply.orders


def test_a_stop_in_both_keys_is_one_stop():
    stop = json.loads(DOC_STOP)["stop_order_response"]
    body = {"orders": [_row(STOP_ID, "TAKE_PROFIT")], "stop_orders": [stop]}
    raw = json.dumps({"all_orders_response": body})
    assert decode_reply(raw).stops() == (EXPECTED_STOP,)


def test_order_shaped_rows_under_stop_orders_are_read_as_stops():
    raw = json.dumps({"all_orders_response": {"orders": [], "stop_orders": [_row("s2", "TAKE_PROFIT")]}})
    (stop,) = decode_reply(raw).stop_orders
    assert (stop.stop_order_id, stop.direction) == ("s2", Side.SELL)
    assert stop.stop_order_type is OrderType.TAKE_PROFIT


def test_all_orders_with_stops_round_trips():
    reply = m.AllOrdersResponse(stop_orders=(EXPECTED_STOP,))
    assert decode_reply(encode(reply)) == reply


def test_malformed_stop_row_makes_the_snapshot_malformed():
    raw = json.dumps({"all_orders_response": {"orders": [], "stop_orders": [{"stop_order_id": "s"}]}})
    with pytest.raises(ProtocolError):
        decode_reply(raw)
