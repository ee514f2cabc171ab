"""What the client does with frames from the exchange that are new, odd or broken.

Tolerant of what QFEX adds without notice (unknown fields, statuses, legacy values); strict about
frames it cannot read, which raise ``ProtocolError`` carrying the exact text received.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from qfex_oms.protocol import (
    OrderStatus,
    OrderType,
    ProtocolError,
    Side,
    TimeInForce,
    decode_reply,
)
from qfex_oms.protocol import messages as m


def order_response(**fields: str) -> str:
    """An order_response frame; each value is raw JSON text, so a test can put anything in it."""
    base = {"order_id": '"o-1"', "symbol": '"AAPL-USD"', "status": '"ACK"'}
    base.update(fields)
    body = ", ".join(f'"{k}": {v}' for k, v in base.items() if v is not None)
    return '{"order_response": {' + body + "}}"


def fill_response(**fields: str) -> str:
    base = {
        "trade_id": '"t-1"',
        "order_id": '"o-1"',
        "symbol": '"AAPL-USD"',
        "price": "200.5",
        "quantity": "0.004",
        "side": '"BUY"',
    }
    base.update(fields)
    body = ", ".join(f'"{k}": {v}' for k, v in base.items() if v is not None)
    return '{"fill_response": {' + body + "}}"


def test_helpers_build_valid_frames():
    assert decode_reply(order_response()) == m.OrderResponse("o-1", "AAPL-USD", OrderStatus.ACK)
    fill = decode_reply(fill_response())
    assert fill.quantity == Decimal("0.004")


# --------------------------------------------------------------------------- tolerance


def test_unknown_fields_are_ignored():
    raw = order_response(brand_new_field='{"nested": [1, 2]}', another="3.5", price="200.0")
    assert decode_reply(raw) == m.OrderResponse(
        "o-1", "AAPL-USD", OrderStatus.ACK, price=Decimal("200.0")
    )


def test_unknown_fields_ignored_in_every_object_kind():
    assert decode_reply(fill_response(liquidity="\"MAKER\"")).trade_id == "t-1"
    raw = '{"err": {"error_code": "ServerError", "retry_after_ms": 250}}'
    assert decode_reply(raw) == m.Err(error_code="ServerError")
    raw = '{"balance_response": {"available_balance": 1.5, "referral_rewards": 0.0, "fees": 1.0}}'
    assert decode_reply(raw) == m.BalanceResponse(available_balance=Decimal("1.5"))
    raw = '{"all_orders_response": {"orders": [], "twaps": [], "next_cursor": "abc"}}'
    assert decode_reply(raw) == m.AllOrdersResponse()


def test_extra_top_level_keys_beside_a_known_key_are_ignored():
    raw = '{"user_trades": [], "count": 0}'
    assert decode_reply(raw) == m.UserTradesResponse()


def test_unknown_status_is_an_open_pseudo_member():
    reply = decode_reply(order_response(status='"REJECTED_LESS_THAN_MIN_NOTIONAL"'))
    status = reply.status
    assert isinstance(status, OrderStatus)
    assert status == "REJECTED_LESS_THAN_MIN_NOTIONAL"
    assert status.name == "REJECTED_LESS_THAN_MIN_NOTIONAL"
    assert status.value == "REJECTED_LESS_THAN_MIN_NOTIONAL"
    assert status.known is False
    assert status.is_rejection is True


def test_legacy_gfd_time_in_force_decodes():
    reply = decode_reply(order_response(time_in_force='"GFD"'))
    assert isinstance(reply.time_in_force, TimeInForce)
    assert reply.time_in_force == "GFD"
    assert reply.time_in_force.known is False


def test_unknown_order_type_and_side_decode():
    reply = decode_reply(order_response(type='"TRAILING_STOP"', side='"BOTH"'))
    assert isinstance(reply.type, OrderType)
    assert reply.type == "TRAILING_STOP"
    assert not reply.type.known
    assert isinstance(reply.side, Side)
    assert not reply.side.known


def test_stop_order_types_are_known():
    for kind in ("TAKE_PROFIT", "STOP_LOSS", "STOP_MARKET"):
        assert decode_reply(order_response(type=f'"{kind}"')).type.known


def test_trade_id_null_is_fine():
    assert decode_reply(order_response(trade_id="null")).trade_id is None


def test_null_optional_fields_are_none():
    raw = order_response(
        side="null", type="null", time_in_force="null", quantity="null", price="null",
        quantity_remaining="null", client_order_id="null", take_profit="null",
        stop_loss="null", user_id="null", update_time="null",
    )
    assert decode_reply(raw) == m.OrderResponse("o-1", "AAPL-USD", OrderStatus.ACK)


@pytest.mark.parametrize("status", [s.value for s in OrderStatus])
def test_every_documented_status_is_known(status):
    reply = decode_reply(order_response(status=f'"{status}"'))
    assert reply.status is OrderStatus(status)
    assert reply.status.known


@pytest.mark.parametrize(
    "status",
    [
        "ACK",
        "FILLED",
        "MODIFIED",
        "CANCELLED",
        "CANCELLED_STP",
        "NO_SUCH_ORDER",
        "CANNOT_MODIFY_PARTIAL_FILL",
        "CANNOT_MODIFY_NO_SUCH_ORDER",
    ],
)
def test_non_rejection_statuses(status):
    assert not OrderStatus(status).is_rejection


@pytest.mark.parametrize(
    "status",
    [
        "REJECTED",
        "FAILED_MARGIN_CHECK",
        "BAD_SYMBOL",
        "RATE_LIMITED",
        "REJECTED_MARKET_CLOSED",
        "INVALID_TAKEPROFIT_PRICE",
        "INVALID_TAKE_PROFIT_PRICE",  # the older spelling (qfex-api.md §10.14): unknown, so rejection
        "IOC_CANCELLED",
    ],
)
def test_rejection_statuses(status):
    assert OrderStatus(status).is_rejection


# --------------------------------------------------------------------------- malformed frames

MALFORMED = [
    # not JSON
    pytest.param("", id="empty-text"),
    pytest.param("not json", id="not-json"),
    pytest.param('{"order_response": ', id="truncated"),
    pytest.param("{'authenticated': true}", id="single-quotes"),
    # JSON but not an object, or an empty one
    pytest.param("[]", id="array"),
    pytest.param('[{"authenticated": true}]', id="array-of-frame"),
    pytest.param('"authenticated"', id="string"),
    pytest.param("42", id="number"),
    pytest.param("null", id="null"),
    pytest.param("true", id="bool"),
    pytest.param("{}", id="empty-object"),
    # unknown or ambiguous kind
    pytest.param('{"bogus_response": {}}', id="unknown-key"),
    pytest.param(
        '{"order_response": {"order_id": "a", "symbol": "s", "status": "ACK"}, '
        '"fill_response": {}}',
        id="two-known-keys",
    ),
    pytest.param('{"foo": 1, "bar": 2}', id="two-unknown-keys"),
    # missing required fields
    pytest.param('{"order_response": {"symbol": "AAPL-USD", "status": "ACK"}}', id="no-order_id"),
    pytest.param('{"order_response": {"order_id": "o", "symbol": "AAPL-USD"}}', id="no-status"),
    pytest.param('{"order_response": {}}', id="empty-order_response"),
    pytest.param(
        '{"fill_response": {"trade_id": "t", "order_id": "o", "symbol": "s", "quantity": 1, '
        '"side": "BUY"}}',
        id="fill-no-price",
    ),
    pytest.param('{"err": {"message": "x"}}', id="err-no-code"),
    pytest.param('{"position_response": {"symbol": "AAPL-USD"}}', id="position-no-position"),
    pytest.param('{"balance_response": {"deposit": 1.0}}', id="balance-no-available"),
    pytest.param('{"twap_response": {"twap_id": "t", "symbol": "s"}}', id="twap-no-status"),
    pytest.param('{"user_trades_response": [{"trade_id": "t"}]}', id="trade-missing-fields"),
    # wrong payload shapes
    pytest.param('{"order_response": null}', id="order_response-null"),
    pytest.param('{"order_response": []}', id="order_response-array"),
    pytest.param('{"order_response": "ACK"}', id="order_response-string"),
    pytest.param('{"authenticated": "true"}', id="authenticated-string"),
    pytest.param('{"authenticated": 1}', id="authenticated-int"),
    pytest.param('{"authenticated": null}', id="authenticated-null"),
    pytest.param('{"subscribed": 5}', id="subscribed-number"),
    pytest.param('{"subscribed": ["fills"]}', id="subscribed-list"),
    pytest.param('{"ack": []}', id="ack-array"),
    pytest.param('{"user_trades_response": 5}', id="user_trades-number"),
    pytest.param('{"user_trades_response": "abc"}', id="user_trades-string"),
    pytest.param('{"all_orders_response": {"orders": "abc"}}', id="orders-string"),
    pytest.param('{"all_orders_response": {"orders": [5]}}', id="orders-number-item"),
    # wrong types
    pytest.param(order_response(quantity='"abc"'), id="quantity-abc"),
    pytest.param(order_response(quantity='""'), id="quantity-empty-string"),
    pytest.param(order_response(price="{}"), id="price-object"),
    pytest.param(order_response(price="[200.0]"), id="price-array"),
    pytest.param(order_response(status="5"), id="status-number"),
    pytest.param(order_response(status='""'), id="status-empty"),
    pytest.param(order_response(side="1"), id="side-number"),
    pytest.param(order_response(update_time='"soon"'), id="update_time-string"),
    pytest.param(fill_response(price='"12,5"'), id="fill-price-comma"),
    pytest.param('{"err": {"error_code": 429}}', id="err-code-number"),
    # NaN / Infinity in all spellings
    pytest.param(order_response(quantity="NaN"), id="NaN-literal"),
    pytest.param(order_response(quantity="Infinity"), id="Infinity-literal"),
    pytest.param(order_response(quantity="-Infinity"), id="minus-Infinity-literal"),
    pytest.param(order_response(quantity="1e400"), id="overflow-to-inf"),
    pytest.param(order_response(quantity="-1e400"), id="overflow-to-minus-inf"),
    pytest.param(order_response(quantity='"NaN"'), id="NaN-string"),
    pytest.param(order_response(quantity='"sNaN"'), id="sNaN-string"),
    pytest.param(order_response(quantity='"Infinity"'), id="Infinity-string"),
    pytest.param(order_response(quantity='"-inf"'), id="minus-inf-string"),
    pytest.param(fill_response(price='"nan"'), id="fill-nan-string"),
    # booleans where numbers are expected
    pytest.param(order_response(quantity="true"), id="quantity-true"),
    pytest.param(order_response(price="false"), id="price-false"),
    pytest.param(fill_response(quantity="true"), id="fill-quantity-true"),
    pytest.param('{"balance_response": {"available_balance": true}}', id="balance-true"),
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_frame_raises_protocol_error_with_raw_text(raw):
    with pytest.raises(ProtocolError) as info:
        decode_reply(raw)
    assert info.value.raw == raw
    assert str(info.value)


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_bytes_frame_keeps_the_text(raw):
    with pytest.raises(ProtocolError) as info:
        decode_reply(raw.encode())
    assert info.value.raw == raw
    assert isinstance(info.value.raw, str)


def test_protocol_error_raw_from_undecodable_bytes_is_replaced_not_raised():
    err = ProtocolError("x", b"\xff{")
    assert err.raw == "\ufffd{"


def test_old_error_envelope_is_not_an_error_it_is_an_envelope():
    # qfex-api.md §10.8: the old {"type": "error", ...} form has no reply key, so it decodes as an
    # Envelope of type "error"; whoever handles envelopes must not drop it silently.
    reply = decode_reply('{"type": "error", "error_code": "RateLimited", "message": "slow down"}')
    assert isinstance(reply, m.Envelope)
    assert reply.type == "error"
    assert reply.raw["error_code"] == "RateLimited"


def test_protocol_error_message_names_the_problem():
    with pytest.raises(ProtocolError, match="order_response"):
        decode_reply(order_response(quantity='"abc"'))
    with pytest.raises(ProtocolError, match="bogus"):
        decode_reply('{"bogus": 1}')


# Found while writing the tests: cattrs' default hooks for str/bool/int/float call the type on
# whatever arrives, so wrong JSON types are silently coerced instead of being refused.

LAX_COERCIONS = [
    pytest.param(order_response(order_id="null"), id="order_id-null-becomes-'None'"),
    pytest.param(order_response(order_id="123"), id="order_id-number-becomes-'123'"),
    pytest.param(order_response(order_id='{"a": 1}'), id="order_id-object-becomes-repr"),
    pytest.param(order_response(symbol="null"), id="symbol-null"),
    pytest.param(order_response(client_order_id="42"), id="client_order_id-number"),
    pytest.param(fill_response(trade_id="null"), id="fill-trade_id-null-becomes-'None'"),
    pytest.param(order_response(update_time="true"), id="update_time-bool-becomes-1.0"),
    pytest.param(
        '{"twap_response": {"twap_id": "t", "symbol": "s", "status": "ACTIVE", '
        '"reduce_only": "false"}}',
        id="twap-reduce_only-'false'-becomes-True",
    ),
    pytest.param(
        '{"twap_response": {"twap_id": "t", "symbol": "s", "status": "ACTIVE", '
        '"total_num_orders": 2.5}}',
        id="twap-total_num_orders-2.5-becomes-2",
    ),
    pytest.param('{"all_orders_response": {"orders": {}}}', id="orders-empty-object-becomes-()"),
]


@pytest.mark.parametrize("raw", LAX_COERCIONS)
def test_wrong_json_type_for_str_bool_int_float_is_refused(raw):
    with pytest.raises(ProtocolError) as info:
        decode_reply(raw)
    assert info.value.raw == raw


def test_decimal_value_survives_but_trailing_zeros_do_not():
    # Numbers are read through float's shortest repr, so the decoded value always equals the sent
    # value for <= 15 significant digits, but trailing zeros beyond repr's are not kept.
    reply = decode_reply(order_response(price="150.50", quantity="1e5"))
    assert reply.price == Decimal("150.50")
    assert reply.quantity == Decimal("100000")


@pytest.mark.parametrize("text", ["9999999.999999999", "0.30000000000000001"])
def test_reply_numbers_beyond_15_digits_read_as_the_nearest_float(text):
    # Documented limit (codec docstring): exact up to 15 significant digits, float-nearest beyond.
    assert decode_reply(order_response(price=text)).price == Decimal(repr(float(text)))
