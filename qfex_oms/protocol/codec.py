"""The one codec: attrs messages <-> QFEX JSON bytes.

Decimal inside, JSON numbers on the wire: a Decimal is written as its exact decimal text through
``orjson.Fragment`` (no float rounding on the way out). A JSON number read by orjson becomes a
Decimal through the float's shortest repr, which equals the value sent for any number of at most
15 significant digits (QFEX's prices and sizes have far fewer); trailing zeros are not kept
(``150.50`` reads as ``Decimal("150.5")``, an equal value). Reading through orjson keeps decoding
inside the 5x-``orjson.loads`` budget of design.md.

Decoding is strict about JSON types: cattrs' default hooks would turn ``null`` into ``"None"``,
``"false"`` into True and a string into a tuple of characters, so every scalar and array type has
its own checking hook. Frames are told apart by their single top-level key (qfex-api.md §4).

Every number read or written lies in the market number domain (``numbers``: bounded magnitude and
digits); a number outside it, or a trade's zero or negative size, makes the frame malformed, and the
encoder refuses to write one, so no huge exponent reaches a sum or gets expanded into text.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from enum import Enum
from typing import Any, cast, get_args, get_origin

import cattrs
import msgspec
import orjson
from cattrs.gen import make_dict_structure_fn

from qfex_oms.protocol import messages as m
from qfex_oms.protocol import numbers, wirefast
from qfex_oms.protocol.enums import ErrorCode, OpenStrEnum, OrderType, Side
from qfex_oms.protocol.errors import ProtocolError, RequestError
from qfex_oms.protocol.fastpath import make_structurers


def _structure_decimal(value: Any, _: type) -> Decimal:
    """A JSON number or numeric string in the market number domain (``numbers``); a NumberError
    (a ValueError) or a TypeError otherwise, which the decoders turn into a malformed frame."""
    return numbers.parse(value)


def _unstructure_decimal(value: Decimal) -> orjson.Fragment:
    return orjson.Fragment(numbers.fixed_text(value))


def _strict(kind: type, *accepted: type) -> Callable[[Any, type], Any]:
    accepted = accepted or (kind,)

    def structure(value: Any, _: type) -> Any:
        if isinstance(value, bool) and bool not in accepted:
            raise TypeError(f"expected {kind.__name__}, got a boolean")
        if not isinstance(value, accepted):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value if type(value) is kind else kind(value)

    return structure


def structure_enum(value: Any, kind: type[OpenStrEnum]) -> OpenStrEnum:
    """A QFEX enum from its wire string (shared by the REST converter)."""
    if not isinstance(value, str):
        raise TypeError(f"expected a {kind.__name__} string, got {type(value).__name__}")
    return kind(value)


def is_homogeneous_tuple(kind: Any) -> bool:
    """``tuple[X, ...]``: the converters' hook factories structure these (REST's too)."""
    return get_origin(kind) is tuple and len(get_args(kind)) == 2 and get_args(kind)[1] is Ellipsis


def _tuple_hook(conv: cattrs.Converter) -> Callable[[Any], Callable[[Any, type], tuple[Any, ...]]]:
    def factory(kind: Any) -> Callable[[Any, type], tuple[Any, ...]]:
        item = get_args(kind)[0]

        def structure(value: Any, _: type) -> tuple[Any, ...]:
            if not isinstance(value, list | tuple):
                raise TypeError(f"expected an array, got {type(value).__name__}")
            return tuple(conv.structure(v, item) for v in value)

        return structure

    return factory


def _build_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(str, _strict(str))
    conv.register_structure_hook(bool, _strict(bool))
    conv.register_structure_hook(int, _strict(int))
    conv.register_structure_hook(float, _strict(float, int, float))
    # Per class: a hook for ``str`` would otherwise win for these str subclasses.
    for enum_type in OpenStrEnum.__subclasses__():
        conv.register_structure_hook(enum_type, structure_enum)
    conv.register_structure_hook_factory(is_homogeneous_tuple, _tuple_hook(conv))
    conv.register_structure_hook(Decimal, _structure_decimal)
    conv.register_unstructure_hook(Decimal, _unstructure_decimal)
    for kind, hook in _FAST.items():
        conv.register_structure_hook(kind, hook)
    conv.register_structure_hook(m.Trade, _sized_trade_hook(conv))
    conv.register_structure_hook(m.StopOrderResponse, _stop_order_hook(conv))
    conv.register_unstructure_hook(m.OrderResponse, _struct_unstructurer(conv, m.OrderResponse))
    return conv


def _struct_unstructurer(conv: cattrs.Converter,
                         kind: type[msgspec.Struct]) -> Callable[[Any], dict[str, Any]]:
    """A msgspec struct's fields as cattrs unstructures an attrs class's: every field in declaration
    order (None as null), Decimals as JSON numbers, enum members as their words, strings and floats
    as they are (the simulator sends order_response by the thousand: no dispatch per field). Any
    other value goes through the converter. The structure side is the fast path's hook."""
    names = kind.__struct_fields__
    plain = (str, float, int, type(None))

    def unstructure(value: Any) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, item in zip(names, msgspec.structs.astuple(value), strict=True):
            if type(item) is Decimal:
                out[name] = _unstructure_decimal(item)
            elif isinstance(item, Enum):
                out[name] = item.value
            elif isinstance(item, plain):
                out[name] = item
            else:
                out[name] = conv.unstructure(item)
        return out

    return unstructure


# An ``order_response``-shaped stop row (qfex-api.md §14.4: the item shape of ``stop_orders`` is not
# documented) is read with these names mapped onto the ``StopOrder`` ones.
_STOP_ROW_NAMES = {"order_id": "stop_order_id", "side": "direction", "type": "stop_order_type"}


def _stop_order_hook(conv: cattrs.Converter) -> Callable[[Any, type], m.StopOrderResponse]:
    """``StopOrder`` by its wire names, or an ``order_response`` row by its own; unknown keys ignored.
    ``update_time`` is an ISO string in the schema, a float of seconds in ``order_response``: either."""

    def hook(value: Any, _: type) -> m.StopOrderResponse:
        if not isinstance(value, dict):
            raise TypeError("a stop order must be an object")
        if "stop_order_id" not in value and "order_id" in value:
            value = {_STOP_ROW_NAMES.get(k, k): v for k, v in value.items()}
            if value.get("quantity_remaining") is not None:
                value["quantity"] = value["quantity_remaining"]
        when = value.get("update_time")
        if not (when is None or isinstance(when, str) or (isinstance(when, int | float)
                                                          and not isinstance(when, bool))):
            raise TypeError("update_time: expected a date-time string or a number")

        def opt_text(name: str) -> str | None:
            return None if value.get(name) is None else conv.structure(value[name], str)

        return m.StopOrderResponse(
            stop_order_id=conv.structure(value["stop_order_id"], str),
            symbol=conv.structure(value["symbol"], str),
            price=_structure_decimal(value["price"], Decimal),
            quantity=_structure_decimal(value["quantity"], Decimal),
            direction=cast(Side, structure_enum(value["direction"], Side)),
            stop_order_type=cast(OrderType, structure_enum(value["stop_order_type"], OrderType)),
            client_order_id=opt_text("client_order_id"),
            user_id=opt_text("user_id"),
            update_time=float(when) if isinstance(when, int) else when,
        )

    return hook


def _sized_trade_hook(conv: cattrs.Converter) -> Callable[[Any, type], m.Trade]:
    """A trade's quantity is a size: zero or negative makes the frame malformed, as in a fill."""
    structure = make_dict_structure_fn(m.Trade, conv)

    def hook(value: Any, kind: type) -> m.Trade:
        trade = structure(value, kind)
        numbers.size(trade.quantity)
        return trade

    return hook


_FAST = make_structurers(_structure_decimal)


converter = _build_converter()

_REPLY_BY_KEY: dict[str, type[Any]] = {cls.KEY: cls for cls in m.REPLY_TYPES}
_REQUEST_BY_TYPE: dict[str, type[Any]] = {cls.TYPE: cls for cls in m.REQUEST_TYPES}
_FAST_BY_KEY: dict[str, Callable[[Any], m.Reply]] = {kind.KEY: hook for kind, hook in _FAST.items()}
_fast_order_response: Callable[[Any], m.OrderResponse] = _FAST[m.OrderResponse]
_LEVERAGE_REPLIES: dict[str, Callable[[tuple[m.LeverageLevel, ...]], m.Reply]] = {
    m.UserLeverageResponse.KEY: m.UserLeverageResponse,
    m.AvailableLeverageLevelsResponse.KEY: m.AvailableLeverageLevelsResponse,
}
# Older docs spell these two replies differently (qfex-api.md §10.6, §10.7).
_REPLY_ALIASES = {"user_trades": "user_trades_response", "user_orders": "all_orders_response"}


# --------------------------------------------------------------------------- encoding


def request_params(request: m.Request) -> dict[str, Any]:
    """The ``params`` object of a request, without the optional fields left as None."""
    raw = converter.unstructure(request)
    return {k: v for k, v in raw.items() if v is not None}


def _encode_cancel(c: m.CancelOrder) -> bytes:
    return orjson.dumps({"type": "cancel_order", "params": {
        "order_id": c.order_id, "symbol": c.symbol, "cancel_order_id_type": c.cancel_order_id_type.value}})


def _encode_add(a: m.AddOrder) -> bytes:
    params: dict[str, Any] = {"symbol": a.symbol, "side": a.side.value, "order_type": a.order_type.value,
                              "order_time_in_force": a.order_time_in_force.value,
                              "quantity": _unstructure_decimal(a.quantity)}
    for name in ("price", "client_order_id", "take_profit", "stop_loss", "reduce_only"):
        value = getattr(a, name)
        if value is not None:
            params[name] = _unstructure_decimal(value) if isinstance(value, Decimal) else value
    return orjson.dumps({"type": "add_order", "params": params})


# The two requests on the strategies' hot path skip cattrs' generic unstructuring; test_codec_fast
# checks they produce the same bytes as the generic path.
_FAST_ENCODERS: dict[type, Any] = {m.CancelOrder: _encode_cancel, m.AddOrder: _encode_add}


def encode(message: m.Request | m.Reply) -> bytes:
    """Encode a request (``{"type", "params"}``) or a reply (``{KEY: payload}``) to JSON bytes."""
    kind: type[Any] = type(message)
    fast = _FAST_ENCODERS.get(kind)
    if fast is not None:
        return fast(message)  # type: ignore[no-any-return]
    request_type = getattr(kind, "TYPE", None)
    if request_type is not None:
        return orjson.dumps({"type": request_type, "params": request_params(cast(m.Request, message))})
    return orjson.dumps({kind.KEY: _reply_payload(cast(m.Reply, message))})


def _reply_payload(reply: m.Reply) -> Any:
    if isinstance(reply, m.Authenticated):
        return reply.authenticated
    if isinstance(reply, m.Subscribed | m.Unsubscribed):
        return reply.channel
    if isinstance(reply, m.UserTradesResponse):
        return converter.unstructure(reply.trades)
    if isinstance(reply, m.UserLeverageResponse | m.AvailableLeverageLevelsResponse):
        return converter.unstructure(reply.levels)  # a bare array, as the AsyncAPI has it
    return converter.unstructure(reply)


def incoming_echo(request: m.Request) -> dict[str, Any]:
    """The request as QFEX echoes it in ``err.incoming_message`` and ``ack.incoming_message``."""
    return {"type": type(request).TYPE, "params": orjson.loads(orjson.dumps(request_params(request)))}


# --------------------------------------------------------------------------- decoding


def _decode_by_dict(raw: bytes | str) -> m.Reply:
    """Every frame but the usual ``order_response`` (``wirefast``), and every error."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}", raw) from None
    if type(obj) is dict and len(obj) == 1:
        # Hot path: one key, and it is one of the two frames that arrive by the thousand;
        # order_response, the commonest, is asked for by name (no iterator, no table lookup).
        payload = obj.get("order_response")
        if payload is not None:
            try:
                return _fast_order_response(payload)
            except (ValueError, TypeError, KeyError) as exc:
                raise ProtocolError(f"malformed order_response: {_describe(exc)}", raw) from None
        for key, payload in obj.items():
            fast = _FAST_BY_KEY.get(key)
            if fast is not None:
                try:
                    return fast(payload)
                except (ValueError, TypeError, KeyError) as exc:
                    raise ProtocolError(f"malformed {key}: {_describe(exc)}", raw) from None
    if not isinstance(obj, dict) or not obj:
        raise ProtocolError("frame is not a non-empty JSON object", raw)
    key = _reply_key(obj, raw)
    if key is None:
        return m.Envelope(type=str(obj["type"]), channel=obj.get("channel"),
                          contents=obj.get("contents"), raw=obj)
    payload = obj[key]
    if key == "user_orders" and isinstance(payload, list):
        payload = {"orders": payload}
    key = _REPLY_ALIASES.get(key, key)
    try:
        return _structure_reply(key, payload)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ProtocolError(f"malformed {key}: {_describe(exc)}", raw) from None


# The commonest frame is read straight from its bytes by ``wirefast``; the rest, and every error, by
# ``_decode_by_dict``.
decode_reply: Callable[[bytes | str], m.Reply] = wirefast.ahead_of(
    _decode_by_dict, "decode_reply",
    "Decode one server frame; raise ``ProtocolError`` (carrying the raw text) if it is unreadable.")


def _reply_key(obj: dict[str, Any], raw: bytes | str) -> str | None:
    if len(obj) == 1:
        (key,) = obj
        if key in _REPLY_BY_KEY or key in _REPLY_ALIASES:
            return key
        raise ProtocolError(f"unknown frame kind {key!r}", raw)
    known = [k for k in obj if k in _REPLY_BY_KEY or k in _REPLY_ALIASES]
    if len(known) == 1:
        return known[0]
    if not known and "type" in obj:
        return None
    raise ProtocolError(f"cannot tell the frame kind from keys {sorted(obj)}", raw)


def _structure_reply(key: str, payload: Any) -> m.Reply:
    if key == "authenticated":
        if not isinstance(payload, bool):
            raise TypeError("authenticated must be a boolean")
        return m.Authenticated(payload)
    if key in ("subscribed", "unsubscribed"):
        if not isinstance(payload, str):
            raise TypeError(f"{key} must name a channel")
        return m.Subscribed(payload) if key == "subscribed" else m.Unsubscribed(payload)
    if key == "user_trades_response":
        trades = payload.get("user_trades", payload.get("trades")) if isinstance(payload, dict) else payload
        return m.UserTradesResponse(converter.structure(trades or [], tuple[m.Trade, ...]))
    if key in _LEVERAGE_REPLIES:
        return _LEVERAGE_REPLIES[key](converter.structure(payload, tuple[m.LeverageLevel, ...]))
    if key == "ack" and payload is None:
        return m.Ack()
    fast = _FAST_BY_KEY.get(key)
    if fast is not None:
        return fast(payload)
    if not isinstance(payload, dict):
        raise TypeError(f"{key} must be an object")
    reply: m.Reply = converter.structure(payload, _REPLY_BY_KEY[key])
    return reply


def decode_request(raw: bytes | str) -> m.Request:
    """Decode one client frame for a server; raise ``RequestError`` with the QFEX error code."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise RequestError(ErrorCode.INVALID_JSON_FORMAT, "message is not valid JSON", None) from None
    if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
        raise RequestError(ErrorCode.INVALID_JSON_FORMAT, "message has no string 'type'", None)
    cls = _REQUEST_BY_TYPE.get(obj["type"])
    if cls is None:
        raise RequestError(ErrorCode.INVALID_JSON_FORMAT, f"unknown message type {obj['type']!r}", obj)
    params = obj.get("params", {})
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise RequestError(ErrorCode.INVALID_JSON_FORMAT, "'params' must be an object", obj)
    try:
        request: m.Request = converter.structure(params, cls)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise RequestError(ErrorCode.INVALID_PARAMETER, _describe(exc), obj) from None
    if isinstance(request, m.Auth) and (request.hmac is None) == (request.jwt is None):
        raise RequestError(ErrorCode.INVALID_PARAMETER, "auth needs exactly one of hmac or jwt", obj)
    return request


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc)) or str(exc)
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__
