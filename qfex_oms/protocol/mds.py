"""QFEX's public market-data feed (MDS) without I/O: frame shapes and their codec (qfex-api.md §13).

MDS is a different wire from the trade socket, so it has its own converter (one converter per
codec, as ``rest`` has): numbers are JSON *strings* here (§13.5) and a frame is told apart by its
``type`` (equal to the channel name), not by a single top-level key.

Rules, each from §13:

* Three frame forms are read (§13.3): a JSON array of messages, an envelope ``{"type", "contents":
  [...]}`` whose items inherit the outer ``type``, and a flat object (what every doc example shows
  and what ``encode`` writes).
* Prices, sizes, rates and open interest are decimal text; a JSON number is accepted too. The five
  fields the CLI reads as ``json.Number`` (``sequence``, ``sig_figs``, ``time_remaining``, candle
  ``usdVolume`` and ``trades``) accept both a number and a numeric string.
* ``time`` is RFC 3339 in UTC with up to nanoseconds; it is kept as integer nanoseconds since the
  Unix epoch (``time_ns``), exact and cheap to compare. Absent or unreadable-as-optional: None.
* Unknown fields are ignored; an unknown ``type`` decodes to ``UnknownMessage`` (QFEX adds channels);
  an ``{"err": ...}`` frame decodes to ``MdsError``. Anything else unreadable raises
  ``ProtocolError`` carrying the raw text, for the whole frame (the book is never half-applied).
* A level is ``[price, size]``; the codec does not judge sizes (a negative size is the book's to
  refuse, as a resync, §13.6), but a level that is not a pair of numbers is malformed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeAlias

import cattrs
import orjson
from attrs import frozen
from cattrs.gen import make_dict_structure_fn, override

from qfex_oms.protocol import numbers
from qfex_oms.protocol.codec import is_homogeneous_tuple
from qfex_oms.protocol.errors import ProtocolError

# --------------------------------------------------------------------------- channels

LEVEL2 = "level2"
BBO = "bbo"
TRADE = "trade"
CANDLE = "candle"
MARK_PRICE = "mark_price"
FUNDING = "funding"
UNDERLIER = "underlier"
OPEN_INTEREST = "open_interest"
MINMAX_PRICE = "minmax_price"
MARKET_STATS = "market_stats"
REFDATA = "refdata"
CHANNELS = (LEVEL2, BBO, TRADE, CANDLE, MARK_PRICE, FUNDING, UNDERLIER, OPEN_INTEREST, MINMAX_PRICE,
            MARKET_STATS, REFDATA)
ALL_SYMBOLS = "*"
CANDLE_INTERVALS = ("1MIN", "5MINS", "15MINS", "1HOUR", "4HOURS", "1DAY")
MAX_LEVEL2_DEPTH = 20  # "order book up to 20 levels deep" (§13.4)

Level: TypeAlias = tuple[Decimal, Decimal]
"""One price level, ``(price, size)``."""


# --------------------------------------------------------------------------- requests


@frozen
class Subscribe:
    """The flat subscribe frame (§13.2): no ``params`` wrapper. ``unsubscribe=True`` writes the
    ``unsubscribe`` form. ``sig_figs`` (level2) and ``intervals`` (candle) are sent only when set."""

    channels: tuple[str, ...]
    symbols: tuple[str, ...]
    sig_figs: tuple[int, ...] | None = None
    intervals: tuple[str, ...] | None = None
    unsubscribe: bool = False


# --------------------------------------------------------------------------- server messages


@frozen
class BookImage:
    """``level2``: a full image of the top levels (up to 20), each side best first (§13.5, §13.6)."""

    symbol: str
    bid: tuple[Level, ...] = ()
    ask: tuple[Level, ...] = ()
    sequence: int | None = None
    time_ns: int | None = None
    sig_figs: int | None = None


@frozen
class Bbo:
    """``bbo``: one level per side; an empty or omitted side reads as ``()``."""

    symbol: str
    bid: tuple[Level, ...] = ()
    ask: tuple[Level, ...] = ()
    sequence: int | None = None
    time_ns: int | None = None


@frozen
class PublicTrade:
    """``trade``. ``side`` is upper-cased (old docs send ``"sell"``, §13.9 5); which party's side it
    is (aggressor?) is not documented."""

    symbol: str
    price: Decimal
    size: Decimal
    side: str | None = None
    trade_id: str | None = None
    execution_type: str | None = None
    sequence: int | None = None
    time_ns: int | None = None


@frozen
class MarkPrice:
    symbol: str
    price: Decimal
    time_ns: int | None = None


@frozen
class Funding:
    """``funding``: ``funding_rate`` as streamed (unit not documented), ``time_remaining`` seconds."""

    symbol: str
    funding_rate: Decimal
    time_remaining: int | None = None
    sequence: int | None = None
    time_ns: int | None = None


@frozen
class Underlier:
    symbol: str
    price: Decimal
    source: str | None = None
    sequence: int | None = None
    time_ns: int | None = None


@frozen
class OpenInterest:
    symbol: str
    open_interest: Decimal
    time_ns: int | None = None


@frozen
class MinMaxPrice:
    symbol: str
    min_price: Decimal
    max_price: Decimal
    time_ns: int | None = None


@frozen
class Candle:
    symbol: str
    resolution: str
    start_ns: int | None = None
    open: Decimal | None = None
    high: Decimal | None = None
    low: Decimal | None = None
    close: Decimal | None = None
    usd_volume: Decimal | None = None
    trades: int | None = None


@frozen
class StatsBbo:
    symbol: str
    bid: tuple[Level, ...] = ()
    ask: tuple[Level, ...] = ()
    time_ns: int | None = None


@frozen
class StatsVolume:
    symbol: str
    volume: Decimal


@frozen
class MarketStats:
    """``market_stats`` (§13.5): 1 Hz snapshot of BBOs, marks, open interest, daily volume."""

    symbol: str
    bbos: tuple[StatsBbo, ...] = ()
    mark_prices: tuple[MarkPrice, ...] = ()
    open_interests: tuple[OpenInterest, ...] = ()
    daily_volumes: tuple[StatsVolume, ...] = ()
    sequence: int | None = None
    time_ns: int | None = None


@frozen
class RefData:
    """``refdata`` (old docs only, shape not documented): the raw object, for whoever wants it."""

    raw: dict[str, Any]


@frozen
class UnknownMessage:
    """A ``type`` this codec does not know: kept raw, never an error (QFEX adds channels)."""

    type: str
    raw: dict[str, Any]


@frozen
class MdsError:
    """``{"err": {...}}`` (§13.7; whether MDS sends it is not documented)."""

    error_code: str | None
    message: str | None
    incoming_message: Any = None


MdsMessage: TypeAlias = (BookImage | Bbo | PublicTrade | MarkPrice | Funding | Underlier | OpenInterest
                         | MinMaxPrice | Candle | MarketStats | RefData | UnknownMessage | MdsError)

_TYPE_OF: dict[type, str] = {
    BookImage: LEVEL2, Bbo: BBO, PublicTrade: TRADE, MarkPrice: MARK_PRICE, Funding: FUNDING,
    Underlier: UNDERLIER, OpenInterest: OPEN_INTEREST, MinMaxPrice: MINMAX_PRICE, Candle: CANDLE,
    MarketStats: MARKET_STATS,
}
_CLASS_OF: dict[str, type] = {name: kind for kind, name in _TYPE_OF.items()}


# --------------------------------------------------------------------------- time

_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|z|[+-]\d\d:\d\d)\Z", re.ASCII)


def parse_time(text: str) -> int:
    """RFC 3339 text (up to nanoseconds) as integer nanoseconds since the Unix epoch."""
    match = _RFC3339.match(text)
    if match is None:
        raise ValueError(f"{numbers.preview(text)} is not an RFC 3339 time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    offset = "+00:00" if zone in ("Z", "z") else zone
    stamp = datetime.fromisoformat(f"{year}-{month}-{day}T{hour}:{minute}:{second}{offset}")
    nanos = int((fraction or "0").ljust(9, "0"))
    return int(stamp.timestamp()) * 1_000_000_000 + nanos


def format_time(time_ns: int) -> str:
    """Integer nanoseconds as RFC 3339 UTC with nine fractional digits (the docs' longest form)."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


# --------------------------------------------------------------------------- converter


def _decimal(value: Any, _: type) -> Decimal:
    return numbers.parse(value)


def _int_or_text(value: Any, _: type) -> int:
    """A JSON integer or a numeric string of one (``"16.700000"`` too, if integral, §13.5)."""
    if isinstance(value, bool):
        raise TypeError("a boolean is not an integer")
    if isinstance(value, int):
        return value
    if isinstance(value, str | float):
        number = numbers.parse(value)
        if number != number.to_integral_value():
            raise ValueError(f"{numbers.preview(value)} is not an integer")
        return int(number)
    raise TypeError(f"expected an integer, got {type(value).__name__}")


def _str(value: Any, _: type) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


# Pulsed images repeat the same price and size texts pulse after pulse: each distinct text is parsed
# (and checked against the number domain) once. Decimals are immutable, so sharing them is safe;
# the memo is bounded by clearing it when full.
_TEXT_MEMO: dict[str, Decimal] = {}
TEXT_MEMO_LIMIT = 65_536


def _level_number(value: Any) -> Decimal:
    if type(value) is str:
        found = _TEXT_MEMO.get(value)
        if found is None:
            found = numbers.parse(value)
            if len(_TEXT_MEMO) >= TEXT_MEMO_LIMIT:
                _TEXT_MEMO.clear()
            _TEXT_MEMO[value] = found
        return found
    return numbers.parse(value)


def _level(value: Any, _: type) -> Level:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise TypeError("a level must be a [price, size] pair")
    return _level_number(value[0]), _level_number(value[1])


def _level_side(value: Any, _: type) -> tuple[Level, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise TypeError(f"expected an array of levels, got {type(value).__name__}")
    return tuple([_level(v, tuple) for v in value])


def _time(value: Any, _: type) -> int:
    if not isinstance(value, str):
        raise TypeError(f"time must be a string, got {type(value).__name__}")
    return parse_time(value)


def _side(value: Any, _: type) -> str:
    return _str(value, str).upper()


def _tuples(conv: cattrs.Converter) -> Callable[[Any], Callable[[Any, type], tuple[Any, ...]]]:
    def factory(kind: Any) -> Callable[[Any, type], tuple[Any, ...]]:
        item = kind.__args__[0]
        if item == Level:  # the hot path: a book side, read without cattrs' dispatch per level
            return _level_side

        def structure(value: Any, _: type) -> tuple[Any, ...]:
            if value is None:
                return ()  # the CLI's fields are omitempty; a null side reads as empty (§13.5)
            if not isinstance(value, list | tuple):
                raise TypeError(f"expected an array, got {type(value).__name__}")
            return tuple(conv.structure(v, item) for v in value)

        return structure

    return factory


def _with_wire_names(conv: cattrs.Converter, kind: type) -> None:
    """``time`` -> ``time_ns`` (parsed), ``side`` upper-cased, candle's ``start``/``usdVolume``."""
    names = {a.name for a in kind.__attrs_attrs__}  # type: ignore[attr-defined]
    overrides: dict[str, Any] = {}
    if "time_ns" in names:
        overrides["time_ns"] = override(rename="time", struct_hook=_time)
    if "start_ns" in names:
        overrides["start_ns"] = override(rename="start", struct_hook=_time)
    if "usd_volume" in names:
        overrides["usd_volume"] = override(rename="usdVolume")
    if "side" in names:
        overrides["side"] = override(struct_hook=_side)
    for name in ("sequence", "sig_figs", "time_remaining", "trades"):
        if name in names:
            overrides[name] = override(struct_hook=_int_or_text)
    conv.register_structure_hook(kind, make_dict_structure_fn(kind, conv, **overrides))


def _build_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(str, _str)
    conv.register_structure_hook(int, _int_or_text)
    conv.register_structure_hook(Decimal, _decimal)
    conv.register_structure_hook_func(lambda kind: kind == Level, _level)
    conv.register_structure_hook_factory(is_homogeneous_tuple, _tuples(conv))
    for kind in (*_TYPE_OF, StatsBbo, StatsVolume):
        _with_wire_names(conv, kind)
    return conv


converter = _build_converter()


# --------------------------------------------------------------------------- decoding


def decode(raw: bytes | str) -> list[MdsMessage]:
    """Every message of one MDS frame (array, envelope or flat, §13.3); ``ProtocolError`` if any
    part of it is unreadable, so a frame is applied whole or not at all."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}", raw) from None
    out: list[MdsMessage] = []
    try:
        for item in obj if isinstance(obj, list) else [obj]:
            _collect(item, None, out)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ProtocolError(f"malformed market data: {_describe(exc)}", raw) from None
    return out


def _collect(item: Any, inherited: str | None, out: list[MdsMessage]) -> None:
    if not isinstance(item, dict):
        raise TypeError(f"a message must be an object, got {type(item).__name__}")
    if "err" in item and "type" not in item:
        err = item["err"]
        if not isinstance(err, dict):
            raise TypeError("err must be an object")
        out.append(MdsError(_opt_str(err.get("error_code")), _opt_str(err.get("message")),
                            err.get("incoming_message")))
        return
    kind = item.get("type", inherited)
    if not isinstance(kind, str):
        raise TypeError("a message needs a string 'type'")
    contents = item.get("contents")
    if isinstance(contents, list):
        for inner in contents:
            _collect(inner, kind, out)
        return
    out.append(decode_message(kind, item))


def _opt(payload: dict[str, Any], key: str, hook: Callable[[Any, type], Any]) -> Any:
    value = payload.get(key)
    return None if value is None else hook(value, int)


def _fast_book(kind: type[BookImage] | type[Bbo], payload: dict[str, Any]) -> MdsMessage:
    """level2 and bbo, the frames that arrive by the thousand, read without cattrs' dispatch
    (same rules as the converter: ``test_mds_codec`` checks both paths agree)."""
    symbol = _str(payload["symbol"], str)
    bid = _level_side(payload.get("bid"), tuple)
    ask = _level_side(payload.get("ask"), tuple)
    sequence = _opt(payload, "sequence", _int_or_text)
    time_ns = _opt(payload, "time", _time)
    if kind is Bbo:
        return Bbo(symbol, bid, ask, sequence, time_ns)
    return BookImage(symbol, bid, ask, sequence, time_ns, _opt(payload, "sig_figs", _int_or_text))


def decode_message(kind: str, payload: dict[str, Any]) -> MdsMessage:
    """One flat message of type ``kind``; cattrs/ValueError/TypeError if it is malformed."""
    if kind == LEVEL2:
        return _fast_book(BookImage, payload)
    if kind == BBO:
        return _fast_book(Bbo, payload)
    if kind == REFDATA:
        return RefData(payload)
    cls = _CLASS_OF.get(kind)
    if cls is None:
        return UnknownMessage(kind, payload)
    message: MdsMessage = converter.structure(payload, cls)
    return message


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc)) or str(exc)
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def decode_subscribe(raw: bytes | str) -> Subscribe:
    """A client's subscribe/unsubscribe frame, for a server; ``ProtocolError`` if unreadable."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"frame is not JSON: {exc}", raw) from None
    if not isinstance(obj, dict) or obj.get("type") not in ("subscribe", "unsubscribe"):
        raise ProtocolError("expected a subscribe or unsubscribe frame", raw)
    try:
        return Subscribe(
            channels=_str_tuple(obj.get("channels")),
            symbols=_str_tuple(obj.get("symbols")),
            sig_figs=None if obj.get("sig_figs") is None
            else tuple(_int_or_text(v, int) for v in _array(obj["sig_figs"])),
            intervals=None if obj.get("intervals") is None else _str_tuple(obj["intervals"]),
            unsubscribe=obj["type"] == "unsubscribe",
        )
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"malformed subscribe: {exc}", raw) from None


def _array(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError("expected an array")
    return value


def _str_tuple(value: Any) -> tuple[str, ...]:
    return tuple(_str(v, str) for v in _array(value))


# --------------------------------------------------------------------------- encoding


def encode_subscribe(request: Subscribe) -> bytes:
    """The flat frame QFEX's docs and CLI send (§13.2)."""
    frame: dict[str, Any] = {"type": "unsubscribe" if request.unsubscribe else "subscribe",
                             "channels": list(request.channels), "symbols": list(request.symbols)}
    if request.sig_figs is not None:
        frame["sig_figs"] = list(request.sig_figs)
    if request.intervals is not None:
        frame["intervals"] = list(request.intervals)
    return orjson.dumps(frame)


def _text(value: Decimal) -> str:
    return numbers.fixed_text(value)


def _levels(levels: tuple[Level, ...]) -> list[list[str]]:
    return [[_text(p), _text(s)] for p, s in levels]


def _payload(message: MdsMessage) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for attribute in type(message).__attrs_attrs__:
        name, value = attribute.name, getattr(message, attribute.name)
        if value is None:
            continue
        if name == "time_ns":
            out["time"] = format_time(value)
        elif name == "start_ns":
            out["start"] = format_time(value)
        elif name == "usd_volume":
            out["usdVolume"] = _text(value)
        elif name in ("bid", "ask"):
            out[name] = _levels(value)
        elif isinstance(value, Decimal):
            out[name] = _text(value)
        elif isinstance(value, tuple):
            out[name] = [_payload(v) for v in value]
        else:
            out[name] = value
    return out


def encode(message: MdsMessage) -> bytes:
    """One flat message, numbers as strings, as every doc example shows (§13.3 form 3)."""
    if isinstance(message, RefData):
        return orjson.dumps({"type": REFDATA, **message.raw})
    if isinstance(message, UnknownMessage):
        return orjson.dumps({**message.raw, "type": message.type})
    if isinstance(message, MdsError):
        return orjson.dumps({"err": {"error_code": message.error_code, "message": message.message,
                                     "incoming_message": message.incoming_message}})
    return orjson.dumps({"type": _TYPE_OF[type(message)], **_payload(message)})
