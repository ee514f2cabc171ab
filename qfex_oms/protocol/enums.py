"""Wire enums.

QFEX adds statuses and order types without notice (see qfex-api.md §5, §10), so every enum decoded
from the exchange is *open*: an unknown value decodes to a pseudo-member that keeps its raw name
instead of failing the whole frame. Code that must be strict (argument validation, the simulator's
request checks) asks ``member.known``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self


class OpenStrEnum(StrEnum):
    """A StrEnum that accepts unknown values as pseudo-members carrying the raw string."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if not isinstance(value, str) or not value:
            return None
        pseudo = str.__new__(cls, value)
        pseudo._name_ = value
        pseudo._value_ = value
        return pseudo

    @property
    def known(self) -> bool:
        """True for a documented wire value (pseudo-members for unknown values are not)."""
        return type(self)._value2member_map_.get(self._value_) is self


class Side(OpenStrEnum):
    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class OrderType(OpenStrEnum):
    LIMIT = "LIMIT"
    MARKET = "MARKET"
    ALO = "ALO"
    TAKE_PROFIT = "TAKE_PROFIT"
    STOP_LOSS = "STOP_LOSS"
    STOP_MARKET = "STOP_MARKET"

    @property
    def is_stop(self) -> bool:
        """TAKE_PROFIT / STOP_LOSS: a stop order held off the book until the mark crosses ``price``
        (qfex-api.md §14). STOP_MARKET is what a triggered stop may trade as, not a stop to stage."""
        return self in STOP_ORDER_TYPES


STOP_ORDER_TYPES = frozenset({OrderType.TAKE_PROFIT, OrderType.STOP_LOSS})
"""The two ``stop_order_type`` values of ``stop_order_response`` (qfex-api.md §14.3)."""


class TimeInForce(OpenStrEnum):
    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"


class CancelIdType(OpenStrEnum):
    ORDER_ID = "order_id"
    CLIENT_ORDER_ID = "client_order_id"
    TWAP_ID = "twap_id"
    CLIENT_TWAP_ID = "client_twap_id"


class Channel(OpenStrEnum):
    ORDER_RESPONSES = "order_responses"
    FILLS = "fills"
    POSITIONS = "positions"
    BALANCES = "balances"
    STOP_ORDERS = "stop_orders"


# The subscription channel each per-order push travels on (who receives an order_response is whoever
# subscribed to order_responses): the simulator and the gateway route by it.
CHANNEL_OF_REPLY_KEY = {"order_response": Channel.ORDER_RESPONSES, "fill_response": Channel.FILLS,
                        "stop_order_response": Channel.STOP_ORDERS}


class ErrorCode(OpenStrEnum):
    RATE_LIMITED = "RateLimited"
    INVALID_JSON_FORMAT = "InvalidJSONFormat"
    ALREADY_AUTHENTICATED = "AlreadyAuthenticated"
    INVALID_PARAMETER = "InvalidParameter"
    PERMISSION_DENIED = "PermissionDenied"
    SERVER_ERROR = "ServerError"
    INVALID_ORDER = "InvalidOrder"
    KYC_REQUIRED = "KycRequired"
    TNC_REQUIRED = "TncRequired"


class OrderStatus(OpenStrEnum):
    """``order_response.status``. Anything not listed is treated as a rejection (qfex-api.md §5.1)."""

    ACK = "ACK"
    FILLED = "FILLED"
    MODIFIED = "MODIFIED"
    CANCELLED = "CANCELLED"
    CANCELLED_STP = "CANCELLED_STP"
    REJECTED = "REJECTED"
    NO_SUCH_ORDER = "NO_SUCH_ORDER"
    INVALID_ORDER_TYPE = "INVALID_ORDER_TYPE"
    BAD_SYMBOL = "BAD_SYMBOL"
    PRICE_LESS_THAN_MIN_PRICE = "PRICE_LESS_THAN_MIN_PRICE"
    PRICE_GREATER_THAN_MAX_PRICE = "PRICE_GREATER_THAN_MAX_PRICE"
    CANNOT_MODIFY_PARTIAL_FILL = "CANNOT_MODIFY_PARTIAL_FILL"
    FAILED_MARGIN_CHECK = "FAILED_MARGIN_CHECK"
    INVALID_TICK_SIZE_PRECISION_PRICE = "INVALID_TICK_SIZE_PRECISION_PRICE"
    INVALID_TICK_SIZE_PRECISION_QUANTITY = "INVALID_TICK_SIZE_PRECISION_QUANTITY"
    QUANTITY_LESS_THAN_MIN_QUANTITY = "QUANTITY_LESS_THAN_MIN_QUANTITY"
    QUANTITY_GREATER_THAN_MAX_QUANTITY = "QUANTITY_GREATER_THAN_MAX_QUANTITY"
    REJECTED_GREATER_THAN_MAX_PRICE_BAND = "REJECTED_GREATER_THAN_MAX_PRICE_BAND"
    REJECTED_LESS_THAN_MIN_PRICE_BAND = "REJECTED_LESS_THAN_MIN_PRICE_BAND"
    INVALID_TIME_IN_FORCE = "INVALID_TIME_IN_FORCE"
    REJECTED_WOULD_BREACH_MAX_POSITION = "REJECTED_WOULD_BREACH_MAX_POSITION"
    CANNOT_MODIFY_NO_SUCH_ORDER = "CANNOT_MODIFY_NO_SUCH_ORDER"
    REJECTED_MARKET_CLOSED = "REJECTED_MARKET_CLOSED"
    RATE_LIMITED = "RATE_LIMITED"
    REJECTED_WOULD_BREACH_MAX_NOTIONAL = "REJECTED_WOULD_BREACH_MAX_NOTIONAL"
    REJECTED_FAILED_TO_PROCESS = "REJECTED_FAILED_TO_PROCESS"
    INVALID_TAKEPROFIT_PRICE = "INVALID_TAKEPROFIT_PRICE"
    INVALID_STOPLOSS_PRICE = "INVALID_STOPLOSS_PRICE"
    # The older docs' spellings of the two above (qfex-api.md §10.14, §14.8): both decode as known.
    INVALID_TAKE_PROFIT_PRICE = "INVALID_TAKE_PROFIT_PRICE"
    INVALID_STOP_LOSS_PRICE = "INVALID_STOP_LOSS_PRICE"
    REJECTED_TOO_MANY_OPEN_ORDERS = "REJECTED_TOO_MANY_OPEN_ORDERS"
    REJECTED_OPEN_INTEREST_LIMIT = "REJECTED_OPEN_INTEREST_LIMIT"

    @property
    def is_rejection(self) -> bool:
        """True for every status that refuses a request (unknown statuses included)."""
        return self not in NON_REJECTIONS


STOP_PRICE_REJECTIONS = frozenset(
    {
        OrderStatus.INVALID_TAKEPROFIT_PRICE,
        OrderStatus.INVALID_STOPLOSS_PRICE,
        OrderStatus.INVALID_TAKE_PROFIT_PRICE,
        OrderStatus.INVALID_STOP_LOSS_PRICE,
    }
)
"""The statuses refusing a stop's trigger price, in both spellings (qfex-api.md §14.8)."""


NON_REJECTIONS = frozenset(
    {
        OrderStatus.ACK,
        OrderStatus.FILLED,
        OrderStatus.MODIFIED,
        OrderStatus.CANCELLED,
        OrderStatus.CANCELLED_STP,
        OrderStatus.NO_SUCH_ORDER,
        OrderStatus.CANNOT_MODIFY_PARTIAL_FILL,
        OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER,
    }
)
