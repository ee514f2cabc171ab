"""Sans-IO QFEX wire protocol: messages, the codec and HMAC signing. No sockets, no clocks awaited."""

from qfex_oms.protocol.codec import decode_reply, decode_request, encode, incoming_echo
from qfex_oms.protocol.enums import (
    CancelIdType,
    Channel,
    ErrorCode,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)
from qfex_oms.protocol.errors import ProtocolError, RequestError
from qfex_oms.protocol.messages import *  # noqa: F403
from qfex_oms.protocol.signing import make_auth, sign, verify

__all__ = [
    "CancelIdType",
    "Channel",
    "ErrorCode",
    "OrderStatus",
    "OrderType",
    "ProtocolError",
    "RequestError",
    "Side",
    "TimeInForce",
    "decode_reply",
    "decode_request",
    "encode",
    "incoming_echo",
    "make_auth",
    "sign",
    "verify",
]
