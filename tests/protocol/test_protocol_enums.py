"""Open wire enums: unknown values survive as pseudo-members, ``known`` tells them apart."""

from __future__ import annotations

import pytest

from qfex_oms.protocol import (
    CancelIdType,
    Channel,
    ErrorCode,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

OPEN_ENUMS = [CancelIdType, Channel, ErrorCode, OrderStatus, OrderType, Side, TimeInForce]


@pytest.mark.parametrize("enum", OPEN_ENUMS, ids=lambda e: e.__name__)
def test_members_are_known_and_equal_their_wire_text(enum):
    for member in enum:
        assert member.known
        assert enum(member.value) is member
        assert member == member.value
        assert str(member) == member.value


@pytest.mark.parametrize("enum", OPEN_ENUMS, ids=lambda e: e.__name__)
def test_unknown_value_is_an_unknown_pseudo_member(enum):
    pseudo = enum("SOMETHING_NEW")
    assert isinstance(pseudo, enum)
    assert isinstance(pseudo, str)
    assert pseudo == "SOMETHING_NEW"
    assert pseudo.value == "SOMETHING_NEW"
    assert pseudo.name == "SOMETHING_NEW"
    assert not pseudo.known
    assert pseudo not in list(enum)


@pytest.mark.parametrize("enum", OPEN_ENUMS, ids=lambda e: e.__name__)
@pytest.mark.parametrize("bad", ["", None, 0, 1.5, ["ACK"]])
def test_empty_and_non_string_values_are_refused(enum, bad):
    with pytest.raises(ValueError):
        enum(bad)


def test_wire_values_of_lowercase_enums():
    assert [c.value for c in CancelIdType] == [
        "order_id",
        "client_order_id",
        "twap_id",
        "client_twap_id",
    ]
    assert {c.value for c in Channel} == {
        "order_responses",
        "fills",
        "positions",
        "balances",
        "stop_orders",
    }


def test_error_codes_are_the_documented_spellings():
    assert {c.value for c in ErrorCode} >= {
        "RateLimited",
        "InvalidJSONFormat",
        "AlreadyAuthenticated",
        "InvalidParameter",
        "PermissionDenied",
        "ServerError",
        "InvalidOrder",
        "KycRequired",
        "TncRequired",
    }


def test_side_opposite():
    assert Side.BUY.opposite is Side.SELL
    assert Side.SELL.opposite is Side.BUY


def test_unknown_status_is_a_rejection_known_ones_follow_the_table():
    assert OrderStatus("USER_IN_LIQUIDATION").is_rejection
    assert not OrderStatus.ACK.is_rejection
    assert OrderStatus.REJECTED.is_rejection


@pytest.mark.parametrize(
    ("enum", "name"),
    [
        (CancelIdType, "ORDER_ID"),
        (CancelIdType, "CLIENT_TWAP_ID"),
        (Channel, "FILLS"),
        (ErrorCode, "RATE_LIMITED"),
        (ErrorCode, "INVALID_PARAMETER"),
    ],
)
def test_member_name_used_as_value_is_not_known(enum, name):
    pseudo = enum(name)
    assert pseudo not in list(enum)
    assert not pseudo.known
