"""Every reply kind decodes from the examples in qfex-api.md §4, numbers as Decimal with the sent text."""

from __future__ import annotations

from decimal import Decimal

import pytest

from qfex_oms.protocol import (
    ErrorCode,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
    decode_reply,
    encode,
)
from qfex_oms.protocol import messages as m

D = Decimal


def assert_decimal(value: object, text: str) -> None:
    """The decoded number is a Decimal whose text is exactly what was on the wire."""
    assert isinstance(value, Decimal), value
    assert str(value) == text


# --------------------------------------------------------------------------- order_response

ORDER_RESPONSE_ACK = """{
  "order_response": {
    "order_id": "5b309929-206f-40ec-804d-cbe46e81afc1",
    "symbol": "AAPL-USD",
    "status": "ACK",
    "quantity": 1.0,
    "price": 200.0,
    "take_profit": 0.0,
    "stop_loss": 0.0,
    "side": "BUY",
    "type": "LIMIT",
    "time_in_force": "GTC",
    "user_id": "0020ce8e-eaee-480e-8d7f-b9241d756ee5",
    "client_order_id": "",
    "quantity_remaining": 1.0,
    "trade_id": null
  }
}"""


def test_order_response_ack_from_docs():
    reply = decode_reply(ORDER_RESPONSE_ACK)
    assert reply == m.OrderResponse(
        order_id="5b309929-206f-40ec-804d-cbe46e81afc1",
        symbol="AAPL-USD",
        status=OrderStatus.ACK,
        side=Side.BUY,
        type=OrderType.LIMIT,
        time_in_force=TimeInForce.GTC,
        quantity=D("1.0"),
        price=D("200.0"),
        quantity_remaining=D("1.0"),
        client_order_id="",
        take_profit=D("0.0"),
        stop_loss=D("0.0"),
        user_id="0020ce8e-eaee-480e-8d7f-b9241d756ee5",
        trade_id=None,
    )
    assert reply.status is OrderStatus.ACK
    assert reply.side is Side.BUY
    assert reply.type is OrderType.LIMIT
    assert reply.time_in_force is TimeInForce.GTC
    assert_decimal(reply.price, "200.0")
    assert_decimal(reply.quantity, "1.0")
    assert_decimal(reply.quantity_remaining, "1.0")
    assert_decimal(reply.take_profit, "0.0")


def test_order_response_accepts_bytes_and_str_alike():
    assert decode_reply(ORDER_RESPONSE_ACK.encode()) == decode_reply(ORDER_RESPONSE_ACK)


def test_order_response_cancelled_with_legacy_gfd():
    # qfex-api.md §3.2, older docs: "time_in_force": "GFD" (not in the current enum, §10.13).
    raw = """{
      "order_response": {
        "order_id": "5b309929-206f-40ec-804d-cbe46e81afc1",
        "symbol": "AAPL-USD",
        "status": "CANCELLED",
        "quantity": 1.0,
        "price": 200.0,
        "take_profit": 0.0,
        "stop_loss": 0.0,
        "side": "BUY",
        "type": "LIMIT",
        "time_in_force": "GFD",
        "user_id": "0020ce8e-eaee-480e-8d7f-b9241d756ee5",
        "client_order_id": "",
        "quantity_remaining": 1.0
      }
    }"""
    reply = decode_reply(raw)
    assert isinstance(reply, m.OrderResponse)
    assert reply.status is OrderStatus.CANCELLED
    assert reply.time_in_force == "GFD"
    assert isinstance(reply.time_in_force, TimeInForce)
    assert not reply.time_in_force.known
    assert reply.trade_id is None
    assert reply.update_time is None


def test_order_response_filled_with_trade_id_and_update_time():
    raw = (
        '{"order_response": {"order_id": "o-1", "symbol": "US100-USD", "status": "FILLED", '
        '"quantity": 0.004, "price": 25242.0, "side": "SELL", "type": "MARKET", '
        '"time_in_force": "IOC", "client_order_id": "c-1", "quantity_remaining": 0.0, '
        '"update_time": 1758208770.5512846, "trade_id": "t-9"}}'
    )
    reply = decode_reply(raw)
    assert reply.status is OrderStatus.FILLED
    assert reply.trade_id == "t-9"
    assert reply.update_time == 1758208770.5512846
    assert_decimal(reply.quantity, "0.004")
    assert_decimal(reply.quantity_remaining, "0.0")
    assert reply.quantity_remaining == 0


def test_order_response_sparse_frame_decodes():
    reply = decode_reply('{"order_response": {"order_id": "o", "symbol": "S", "status": "ACK"}}')
    assert reply == m.OrderResponse(order_id="o", symbol="S", status=OrderStatus.ACK)


def test_order_response_integer_numbers_decode_exactly():
    raw = '{"order_response": {"order_id": "o", "symbol": "S", "status": "ACK", "price": 152}}'
    assert_decimal(decode_reply(raw).price, "152")


# --------------------------------------------------------------------------- fill_response

FILL_RESPONSE = """{
  "fill_response": {
    "trade_id": "REDACTED",
    "user_id": "REDACTED",
    "symbol": "US100-USD",
    "price": 25242.0,
    "quantity": 0.004,
    "side": "SELL",
    "aggressor_side": "SELL",
    "order_id": "0aeae7d0-4a6e-4672-ad69-82b8811d4e0b",
    "fee": 0.00045,
    "order_type": "MARKET",
    "tif": "IOC",
    "order_price": 25547.0,
    "client_order_id": "REDACTED",
    "remaining_quantity": 0.0,
    "take_profit": 0.0,
    "stop_loss": 0.0,
    "execution_type": "NEW",
    "timestamp": 1769439642.8484282,
    "realised_pnl": 0.0
  }
}"""


def test_fill_response_from_docs():
    reply = decode_reply(FILL_RESPONSE)
    assert reply == m.FillResponse(
        trade_id="REDACTED",
        order_id="0aeae7d0-4a6e-4672-ad69-82b8811d4e0b",
        symbol="US100-USD",
        price=D("25242.0"),
        quantity=D("0.004"),
        side=Side.SELL,
        client_order_id="REDACTED",
        remaining_quantity=D("0.0"),
        aggressor_side=Side.SELL,
        fee=D("0.00045"),
        order_type=OrderType.MARKET,
        tif=TimeInForce.IOC,
        order_price=D("25547.0"),
        take_profit=D("0.0"),
        stop_loss=D("0.0"),
        execution_type="NEW",
        timestamp=1769439642.8484282,
        realised_pnl=D("0.0"),
        user_id="REDACTED",
    )
    assert_decimal(reply.quantity, "0.004")
    assert_decimal(reply.price, "25242.0")
    assert_decimal(reply.fee, "0.00045")
    assert_decimal(reply.order_price, "25547.0")
    assert_decimal(reply.remaining_quantity, "0.0")
    assert reply.tif is TimeInForce.IOC


# --------------------------------------------------------------------------- twap / all orders

TWAP_OBJECT = """{
  "twap_id": "0c7c8e4d-f67e-4aa5-9c64-36a1a622ac35",
  "client_twap_id": "rebalance-aapl-001",
  "user_id": "0020ce8e-eaee-480e-8d7f-b9241d756ee5",
  "status": "ENGINE_STATUS",
  "symbol": "GOOG-USD",
  "total_quantity": 5,
  "filled_quantity": 1,
  "average_fill_price": 251.3,
  "total_num_orders": 5,
  "order_interval_secs": 30,
  "reduce_only": false,
  "side": "BUY",
  "updated_at": 1758208800.25,
  "created_at": null
}"""

EXPECTED_TWAP = m.TwapResponse(
    twap_id="0c7c8e4d-f67e-4aa5-9c64-36a1a622ac35",
    symbol="GOOG-USD",
    status="ENGINE_STATUS",
    side=Side.BUY,
    client_twap_id="rebalance-aapl-001",
    user_id="0020ce8e-eaee-480e-8d7f-b9241d756ee5",
    total_quantity=D("5"),
    filled_quantity=D("1"),
    average_fill_price=D("251.3"),
    total_num_orders=5,
    order_interval_secs=30,
    reduce_only=False,
    updated_at=1758208800.25,
    created_at=None,
)


def test_twap_response_from_schema():
    reply = decode_reply('{"twap_response": ' + TWAP_OBJECT + "}")
    assert reply == EXPECTED_TWAP
    assert_decimal(reply.average_fill_price, "251.3")
    assert reply.reduce_only is False


def test_twap_response_with_null_client_twap_id():
    raw = (
        '{"twap_response": {"twap_id": "t", "symbol": "AAPL-USD", "status": "ACTIVE", '
        '"client_twap_id": null}}'
    )
    reply = decode_reply(raw)
    assert reply == m.TwapResponse(twap_id="t", symbol="AAPL-USD", status="ACTIVE")


DOC_OPEN_ORDER = """{
  "order_id": "2f05173c-992a-426b-bcaf-6b341644bb62",
  "symbol": "GOOG-USD",
  "status": "ACK",
  "quantity": 2.708,
  "price": 251.25,
  "take_profit": 0.0,
  "stop_loss": 0.0,
  "side": "SELL",
  "type": "LIMIT",
  "time_in_force": "GTC",
  "user_id": "0020ce8e-eaee-480e-8d7f-b9241d756ee5",
  "client_order_id": "7a257796-a9c1-49bd-a80b-bcccdc81c103",
  "quantity_remaining": 2.708,
  "update_time": 1758208770.5512846,
  "trade_id": null
}"""

EXPECTED_OPEN_ORDER = m.OrderResponse(
    order_id="2f05173c-992a-426b-bcaf-6b341644bb62",
    symbol="GOOG-USD",
    status=OrderStatus.ACK,
    side=Side.SELL,
    type=OrderType.LIMIT,
    time_in_force=TimeInForce.GTC,
    quantity=D("2.708"),
    price=D("251.25"),
    quantity_remaining=D("2.708"),
    client_order_id="7a257796-a9c1-49bd-a80b-bcccdc81c103",
    take_profit=D("0.0"),
    stop_loss=D("0.0"),
    user_id="0020ce8e-eaee-480e-8d7f-b9241d756ee5",
    update_time=1758208770.5512846,
    trade_id=None,
)


def test_all_orders_response_with_orders_and_twaps():
    raw = (
        '{"all_orders_response": {"orders": [' + DOC_OPEN_ORDER + '], "twaps": [' + TWAP_OBJECT + "]}}"
    )
    reply = decode_reply(raw)
    assert reply == m.AllOrdersResponse(orders=(EXPECTED_OPEN_ORDER,), twaps=(EXPECTED_TWAP,))
    assert isinstance(reply.orders, tuple)
    assert isinstance(reply.twaps, tuple)
    assert_decimal(reply.orders[0].quantity, "2.708")
    assert_decimal(reply.orders[0].price, "251.25")


def test_all_orders_response_stop_orders_rendering():
    # Another rendering of get_user_orders / get_order ends with "stop_orders": [] (qfex-api.md §4.4).
    raw = '{"all_orders_response": {"orders": [' + DOC_OPEN_ORDER + '], "stop_orders": []}}'
    reply = decode_reply(raw)
    assert reply == m.AllOrdersResponse(orders=(EXPECTED_OPEN_ORDER,))
    assert reply.twaps == ()
    assert reply.stop_orders == ()


def test_all_orders_response_stop_orders_are_typed():
    # Items of stop_orders are StopOrder rows (tests/protocol/test_stop_messages.py covers the rest).
    raw = (
        '{"all_orders_response": {"orders": [], "stop_orders": [{"stop_order_id": "510333ac", "symbol":'
        ' "AAPL-USD", "price": 200.0, "quantity": 1.0, "direction": "BUY",'
        ' "stop_order_type": "TAKE_PROFIT"}]}}'
    )
    reply = decode_reply(raw)
    assert reply.stop_orders == (m.StopOrderResponse("510333ac", "AAPL-USD", Decimal("200"), Decimal("1"),
                                                     Side.BUY, OrderType.TAKE_PROFIT),)


def test_all_orders_response_empty():
    assert decode_reply('{"all_orders_response": {"orders": [], "twaps": []}}') == (
        m.AllOrdersResponse()
    )
    assert decode_reply('{"all_orders_response": {}}') == m.AllOrdersResponse()


def test_old_user_orders_form_decodes():
    # qfex-api.md §10.6: old docs answer get_user_orders with {"user_orders": [...], "count": 1}.
    raw = '{"user_orders": [' + DOC_OPEN_ORDER + '], "count": 1}'
    assert decode_reply(raw) == m.AllOrdersResponse(orders=(EXPECTED_OPEN_ORDER,))


# --------------------------------------------------------------------------- user trades

TRADE_ASYNCAPI = (
    '{"trade_id": "t-1", "symbol": "AAPL-USD", "price": 200.5, "quantity": 0.004, "side": "BUY", '
    '"order_id": "5b309929-206f-40ec-804d-cbe46e81afc1", "fee": 0.00045, "order_type": "LIMIT", '
    '"tif": "GTC"}'
)
EXPECTED_TRADE = m.Trade(
    trade_id="t-1",
    symbol="AAPL-USD",
    price=D("200.5"),
    quantity=D("0.004"),
    side=Side.BUY,
    order_id="5b309929-206f-40ec-804d-cbe46e81afc1",
    fee=D("0.00045"),
    order_type=OrderType.LIMIT,
    tif=TimeInForce.GTC,
)


def test_user_trades_response_bare_array():
    reply = decode_reply('{"user_trades_response": [' + TRADE_ASYNCAPI + ", " + TRADE_ASYNCAPI + "]}")
    assert reply == m.UserTradesResponse(trades=(EXPECTED_TRADE, EXPECTED_TRADE))
    assert_decimal(reply.trades[0].quantity, "0.004")


def test_user_trades_response_empty_array():
    assert decode_reply('{"user_trades_response": []}') == m.UserTradesResponse()


def test_user_trades_old_form_with_count():
    # qfex-api.md §4.8 / §10.7: the docs page answers {"user_trades": [...], "count": 1}.
    raw = """{
      "user_trades": [
        {
          "trade_id": "t-2",
          "symbol": "AAPL-USD",
          "price": 200.0,
          "quantity": 1.0,
          "side": "SELL",
          "aggressor_side": "BUY",
          "order_id": "5b309929-206f-40ec-804d-cbe46e81afc1",
          "client_order_id": "my-order-001",
          "fee": 0.09,
          "order_type": "LIMIT",
          "tif": "GTC",
          "timestamp": 1746900123.5
        }
      ],
      "count": 1
    }"""
    reply = decode_reply(raw)
    assert reply == m.UserTradesResponse(
        trades=(
            m.Trade(
                trade_id="t-2",
                symbol="AAPL-USD",
                price=D("200.0"),
                quantity=D("1.0"),
                side=Side.SELL,
                order_id="5b309929-206f-40ec-804d-cbe46e81afc1",
                fee=D("0.09"),
                order_type=OrderType.LIMIT,
                tif=TimeInForce.GTC,
                client_order_id="my-order-001",
                aggressor_side=Side.BUY,
                timestamp=1746900123.5,
            ),
        )
    )


def test_user_trades_response_wrapped_in_an_object():
    raw = '{"user_trades_response": {"user_trades": [' + TRADE_ASYNCAPI + '], "count": 1}}'
    assert decode_reply(raw) == m.UserTradesResponse(trades=(EXPECTED_TRADE,))


def test_user_trades_response_encodes_as_bare_array():
    raw = encode(m.UserTradesResponse(trades=(EXPECTED_TRADE,)))
    assert raw.startswith(b'{"user_trades_response":[{')
    assert decode_reply(raw) == m.UserTradesResponse(trades=(EXPECTED_TRADE,))


# --------------------------------------------------------------------------- ack / subscriptions


def test_ack_with_incoming_message():
    raw = '{"ack": {"incoming_message": {"type": "cancel_all_orders", "params": {}}}}'
    assert decode_reply(raw) == m.Ack(
        incoming_message={"type": "cancel_all_orders", "params": {}}
    )


def test_ack_with_cancel_on_disconnect_echo():
    raw = (
        '{"ack": {"incoming_message": {"type": "cancel_on_disconnect", '
        '"params": {"cancel_on_disconnect": true}}}}'
    )
    reply = decode_reply(raw)
    assert reply.incoming_message["params"]["cancel_on_disconnect"] is True


@pytest.mark.parametrize("payload", ["{}", "null"])
def test_bare_ack(payload):
    assert decode_reply('{"ack": ' + payload + "}") == m.Ack()


@pytest.mark.parametrize(
    "channel", ["order_responses", "fills", "positions", "balances", "stop_orders"]
)
def test_subscribed_and_unsubscribed(channel):
    assert decode_reply(f'{{ "subscribed": "{channel}" }}') == m.Subscribed(channel)
    assert decode_reply(f'{{ "unsubscribed": "{channel}" }}') == m.Unsubscribed(channel)


# --------------------------------------------------------------------------- err

ERR_RATE_LIMITED = """{
  "err": {
    "error_code": "RateLimited",
    "message": "You have exceeded the allowed message rate.",
    "incoming_message": {
      "type": "add_order",
      "params": {
        "symbol": "AAPL",
        "side": "BUY",
        "order_type": "LIMIT",
        "order_time_in_force": "GTC",
        "quantity": 10.0,
        "price": 200.0,
        "client_order_id": "my-order-001",
        "take_profit": null,
        "stop_loss": null
      }
    }
  }
}"""


def test_err_from_docs():
    reply = decode_reply(ERR_RATE_LIMITED)
    assert isinstance(reply, m.Err)
    assert reply.error_code is ErrorCode.RATE_LIMITED
    assert reply.message == "You have exceeded the allowed message rate."
    assert reply.incoming_message["type"] == "add_order"
    assert reply.incoming_message["params"]["client_order_id"] == "my-order-001"
    assert reply.incoming_message["params"]["take_profit"] is None


@pytest.mark.parametrize("code", [c.value for c in ErrorCode])
def test_err_every_documented_code(code):
    raw = f'{{"err": {{"error_code": "{code}", "message": null, "incoming_message": null}}}}'
    reply = decode_reply(raw)
    assert reply == m.Err(error_code=ErrorCode(code))
    assert reply.error_code.known


def test_err_unknown_code_is_kept():
    reply = decode_reply('{"err": {"error_code": "AlreadySubscribedToLeaderboard"}}')
    assert reply.error_code == "AlreadySubscribedToLeaderboard"
    assert not reply.error_code.known


# --------------------------------------------------------------------------- positions / balances


def test_position_response_from_docs():
    raw = """{
      "position_response": {
        "id": "c003ad60-ded4-401b-9b4c-e255a53d32ea",
        "symbol": "AAPL-USD",
        "position": 0.0,
        "margin_alloc": 0.0,
        "realised_pnl": 0.0,
        "unrealised_pnl": 0.0,
        "net_funding": 0.0,
        "open_orders": 0.0,
        "open_quantity": 0.0,
        "leverage": 20.0,
        "initial_margin": 0.05,
        "maintenance_margin": 0.03333333333333333,
        "average_price": 0.0
      }
    }"""
    reply = decode_reply(raw)
    assert reply == m.PositionResponse(
        symbol="AAPL-USD",
        position=D("0.0"),
        id="c003ad60-ded4-401b-9b4c-e255a53d32ea",
        margin_alloc=D("0.0"),
        realised_pnl=D("0.0"),
        unrealised_pnl=D("0.0"),
        net_funding=D("0.0"),
        open_orders=D("0.0"),
        open_quantity=D("0.0"),
        leverage=D("20.0"),
        average_price=D("0.0"),
    )
    assert_decimal(reply.leverage, "20.0")


def test_position_response_negative_position():
    raw = '{"position_response": {"symbol": "AAPL-USD", "position": -1.25, "average_price": 201.5}}'
    reply = decode_reply(raw)
    assert_decimal(reply.position, "-1.25")
    assert_decimal(reply.average_price, "201.5")


def test_balance_response_from_docs():
    raw = """{
      "balance_response": {
        "id": "0020ce8e-eaee-480e-8d7f-b9241d756ee5",
        "user_id": "0020ce8e-eaee-480e-8d7f-b9241d756ee5",
        "deposit": 9990000000.0,
        "realised_pnl": 0.0,
        "order_margin": 0.0,
        "position_margin": 0.0,
        "unrealised_pnl": 0.0,
        "net_funding": 0.0,
        "available_balance": 9990000000.0
      }
    }"""
    reply = decode_reply(raw)
    assert reply == m.BalanceResponse(
        available_balance=D("9990000000.0"),
        id="0020ce8e-eaee-480e-8d7f-b9241d756ee5",
        user_id="0020ce8e-eaee-480e-8d7f-b9241d756ee5",
        deposit=D("9990000000.0"),
        realised_pnl=D("0.0"),
        unrealised_pnl=D("0.0"),
        order_margin=D("0.0"),
        position_margin=D("0.0"),
        net_funding=D("0.0"),
    )
    assert_decimal(reply.available_balance, "9990000000.0")
    assert_decimal(reply.deposit, "9990000000.0")


# --------------------------------------------------------------------------- authenticated


@pytest.mark.parametrize("flag", [True, False])
def test_authenticated(flag):
    reply = decode_reply('{"authenticated": %s}' % ("true" if flag else "false"))
    assert reply == m.Authenticated(flag)
    assert reply.authenticated is flag


# --------------------------------------------------------------------------- envelope (§4.1)

ENVELOPE = (
    '{"type":"subscribed","connection_id":"ee987ddf-822c-4356-b0d1-012314859b00","message_id":1,'
    '"id":"3ab267fd-7c83-49c6-b42e-65bb94682b41","channel":"v4_balances","contents":[{"id":'
    '"2cb208e3-6e54-48c4-82e9-641e64bf185d","user_id":"0f5208e3-6e54-48c4-82e9-641e64bf185d",'
    '"deposit":1000,"realised_pnl":-898.65735,"unrealised_pnl":0,"order_margin":0,'
    '"position_margin":0,"net_funding":-1.5354636,"available_balance":99.80721}]}'
)


def test_envelope_form():
    reply = decode_reply(ENVELOPE)
    assert isinstance(reply, m.Envelope)
    assert reply.type == "subscribed"
    assert reply.channel == "v4_balances"
    assert isinstance(reply.contents, list)
    assert len(reply.contents) == 1
    assert reply.contents[0]["id"] == "2cb208e3-6e54-48c4-82e9-641e64bf185d"
    assert reply.contents[0]["deposit"] == 1000
    assert reply.raw["connection_id"] == "ee987ddf-822c-4356-b0d1-012314859b00"
    assert reply.raw["message_id"] == 1


def test_envelope_positions_channel_without_optional_fields():
    raw = '{"type":"subscribed","connection_id":"c","message_id":2,"contents":[]}'
    reply = decode_reply(raw)
    assert reply == m.Envelope(type="subscribed", channel=None, contents=[], raw=reply.raw)
    assert reply.channel is None


# --------------------------------------------------------------------------- reply encoding


@pytest.mark.parametrize(
    "reply",
    [
        m.Authenticated(True),
        m.Authenticated(False),
        m.Subscribed("fills"),
        m.Unsubscribed("positions"),
        m.Ack(),
        m.Ack(incoming_message={"type": "cancel_all_orders", "params": {}}),
        m.Err(ErrorCode.INVALID_PARAMETER, "bad", {"type": "get_order", "params": {}}),
        EXPECTED_OPEN_ORDER,
        EXPECTED_TWAP,
        m.AllOrdersResponse(orders=(EXPECTED_OPEN_ORDER,), twaps=(EXPECTED_TWAP,)),
        m.UserTradesResponse(trades=(EXPECTED_TRADE,)),
        m.PositionResponse(symbol="AAPL-USD", position=D("-3.5"), leverage=D("20")),
        m.BalanceResponse(available_balance=D("99.80721"), deposit=D("1000")),
    ],
    ids=lambda r: type(r).__name__,
)
def test_reply_encode_decode_round_trip(reply):
    # The simulator encodes replies with the same codec; the client must read them back unchanged.
    assert decode_reply(encode(reply)) == reply


def test_reply_frames_have_a_single_top_level_key():
    for reply in (m.Authenticated(True), m.Subscribed("fills"), EXPECTED_OPEN_ORDER, m.Ack()):
        raw = encode(reply)
        assert raw.startswith(b'{"' + type(reply).KEY.encode() + b'":')
    assert encode(m.Authenticated(True)) == b'{"authenticated":true}'
    assert encode(m.Subscribed("fills")) == b'{"subscribed":"fills"}'
