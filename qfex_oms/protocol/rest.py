"""QFEX's REST API without I/O: request descriptions, HMAC headers and response shapes (qfex-api.md §15).

Both sides use this module: the client builds a ``RestRequest``, signs it with ``auth_headers`` and
decodes the body into the classes below; the simulator reads the same headers back with
``auth_from_headers``, parses the same queries with ``from_params`` and writes the same classes with
``encode_body``. One converter (``converter``) holds every wire rule, so the two sides cannot drift.

Wire rules (qfex-api.md §15): reference data numbers are strings, account numbers are JSON numbers,
timestamps are ISO-8601 strings, ``data``/``positions`` arrays may be ``null`` (read as empty),
unknown keys such as ``$schema`` are ignored. Decimal inside; a number outside the market number
domain (``numbers``) makes a body malformed. Signing is the websocket's recipe: only
``"{nonce}:{unix_ts}"`` is signed, never the method, path or body (§15.1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from http import HTTPStatus
from typing import Any, TypeVar, get_args

import cattrs
import orjson
from attrs import field, frozen
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

from qfex_oms.protocol import numbers
from qfex_oms.protocol.codec import is_homogeneous_tuple, structure_enum
from qfex_oms.protocol.enums import OrderStatus, OrderType, Side, TimeInForce
from qfex_oms.protocol.errors import ProtocolError
from qfex_oms.protocol.messages import Auth, HmacAuth
from qfex_oms.protocol.signing import new_nonce, sign

T = TypeVar("T")

PUBLIC_KEY_HEADER = "x-qfex-public-key"
SIGNATURE_HEADER = "x-qfex-hmac-signature"
NONCE_HEADER = "x-qfex-nonce"
TIMESTAMP_HEADER = "x-qfex-timestamp"
ACCOUNT_HEADER = "x-qfex-requested-account-id"
# Never logged: the client's log lines name the method, path and status only.
SECRET_HEADERS = frozenset({SIGNATURE_HEADER, NONCE_HEADER, TIMESTAMP_HEADER})
PROBLEM_CONTENT_TYPE = "application/problem+json"
JSON_CONTENT_TYPE = "application/json"
MAX_LIMIT = 1000  # §15.4, §15.5: limit is 1-1000
DEFAULT_LIMIT = 100
_PREVIEW = 200


# --------------------------------------------------------------------------- signing


@frozen
class RestCredentials:
    """The key pair (or a JWT, sent as ``Authorization: Bearer`` as QFEX's CLI does) and, for a
    subaccount, the account to act on (``x-qfex-requested-account-id``)."""

    public_key: str
    secret_key: str = field(repr=False)
    account_id: str | None = None
    jwt: str | None = field(default=None, repr=False)


AUTHORIZATION_HEADER = "authorization"


def auth_headers(
    credentials: RestCredentials, *, unix_ts: int | None = None, nonce: str | None = None
) -> dict[str, str]:
    """The four HMAC headers (+ the subaccount header); a fresh nonce per call, as QFEX's CLI does.
    With a JWT, ``Authorization: Bearer`` instead of the HMAC headers."""
    if credentials.jwt:
        headers = {AUTHORIZATION_HEADER: f"Bearer {credentials.jwt}"}
        if credentials.account_id is not None:
            headers[ACCOUNT_HEADER] = credentials.account_id
        return headers
    nonce = nonce or new_nonce()
    ts = int(time.time()) if unix_ts is None else unix_ts
    headers = {
        PUBLIC_KEY_HEADER: credentials.public_key,
        SIGNATURE_HEADER: sign(credentials.secret_key, nonce, ts),
        NONCE_HEADER: nonce,
        TIMESTAMP_HEADER: str(ts),
    }
    if credentials.account_id is not None:
        headers[ACCOUNT_HEADER] = credentials.account_id
    return headers


def auth_from_headers(headers: Mapping[str, str]) -> Auth | str:
    """The websocket ``Auth`` the four headers (or a Bearer JWT) amount to (so one check serves
    both), or why they cannot be read. ``headers`` must have lower-case names."""
    bearer = headers.get(AUTHORIZATION_HEADER, "")
    if bearer.lower().startswith("bearer ") and bearer[7:].strip():
        return Auth(jwt=bearer[7:].strip(), account_id=headers.get(ACCOUNT_HEADER) or None)
    missing = [h for h in (PUBLIC_KEY_HEADER, SIGNATURE_HEADER, NONCE_HEADER, TIMESTAMP_HEADER)
               if not headers.get(h)]
    if missing:
        return f"missing header(s) {', '.join(missing)}"
    stamp = headers[TIMESTAMP_HEADER]
    if not (stamp.isascii() and stamp.isdigit() and len(stamp) <= 12):
        return f"{TIMESTAMP_HEADER} must be Unix seconds"
    block = HmacAuth(public_key=headers[PUBLIC_KEY_HEADER], nonce=headers[NONCE_HEADER],
                     unix_ts=int(stamp), signature=headers[SIGNATURE_HEADER])
    return Auth(hmac=block, account_id=headers.get(ACCOUNT_HEADER) or None)


# --------------------------------------------------------------------------- requests


@frozen
class RestRequest:
    """One REST call, unsigned: the client signs it per attempt (a retry needs a fresh nonce)."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    private: bool = True  # needs the HMAC headers

    @property
    def idempotent(self) -> bool:
        """Safe to send again after a lost answer: every GET here is a read."""
        return self.method == "GET"

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"

    def headers(self, credentials: RestCredentials | None, **signing: Any) -> dict[str, str]:
        headers = {"accept": f"{JSON_CONTENT_TYPE}, {PROBLEM_CONTENT_TYPE}"}
        if self.body is not None:
            headers["content-type"] = JSON_CONTENT_TYPE
        if self.private:
            if credentials is None:
                raise ValueError(f"{self.name} needs credentials")
            headers.update(auth_headers(credentials, **signing))
        return headers


class QueryError(ValueError):
    """A query or body parameter is wrong; ``location`` is RFC 9457's (``query.limit``)."""

    def __init__(self, location: str, message: str) -> None:
        super().__init__(f"{location}: {message}")
        self.location = location
        self.message = message


def format_time(value: datetime) -> str:
    """ISO-8601 in UTC with a ``Z`` (a naive datetime is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_time(text: str) -> datetime:
    """An ISO-8601 date-time (``Z`` or an offset; naive is UTC); ValueError otherwise."""
    if len(text) > 40:
        raise ValueError("date-time is too long")
    value = datetime.fromisoformat(text)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _param_int(params: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    if not (text.isascii() and text.isdigit() and len(text) <= 9) or not low <= int(text) <= high:
        raise QueryError(f"query.{name}", f"must be an integer from {low} to {high}")
    return int(text)


def _param_time(params: Mapping[str, str], *names: str) -> datetime | None:
    for name in names:
        text = params.get(name)
        if text is not None:
            try:
                return parse_time(text)
            except ValueError:
                raise QueryError(f"query.{name}", "must be an ISO-8601 date-time") from None
    return None


def _query(pairs: dict[str, str | int | datetime | None]) -> tuple[tuple[str, str], ...]:
    out = []
    for name, value in pairs.items():
        if value is None:
            continue
        out.append((name, format_time(value) if isinstance(value, datetime) else str(value)))
    return tuple(out)


def _check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise QueryError("query.limit", f"must be an integer from 1 to {MAX_LIMIT}")
    if offset < 0:
        raise QueryError("query.offset", "must be >= 0")


@frozen
class HistoricOrdersQuery:
    """``GET /user/historic-orders`` parameters (§15.4)."""

    symbol: str | None = None
    client_order_id: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def request(self) -> RestRequest:
        _check_page(self.limit, self.offset)
        return RestRequest("GET", "/user/historic-orders", _query({
            "symbol": self.symbol, "client_order_id": self.client_order_id, "start": self.start,
            "end": self.end, "limit": self.limit, "offset": self.offset}))

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> HistoricOrdersQuery:
        return cls(symbol=params.get("symbol"), client_order_id=params.get("client_order_id"),
                   start=_param_time(params, "start"), end=_param_time(params, "end"),
                   limit=_param_int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
                   offset=_param_int(params, "offset", 0, 0, 10**9))


@frozen
class HistoricTwapsQuery:
    """``GET /user/historic-twaps`` parameters: QFEX documents ``symbol`` and ``limit`` only (§8)."""

    symbol: str | None = None
    limit: int = DEFAULT_LIMIT

    def request(self) -> RestRequest:
        _check_page(self.limit, 0)
        return RestRequest("GET", "/user/historic-twaps", _query({"symbol": self.symbol,
                                                                  "limit": self.limit}))

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> HistoricTwapsQuery:
        return cls(symbol=params.get("symbol"),
                   limit=_param_int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT))


@frozen
class TradesQuery:
    """``GET /user/trade`` parameters (§15.5); ``start_time``/``end_time`` read as ``start``/``end``."""

    exchange_order_id: str | None = None
    symbol: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    ordertype: str | None = None
    orderdirection: str | None = None
    limit: int = DEFAULT_LIMIT
    offset: int = 0

    def request(self) -> RestRequest:
        _check_page(self.limit, self.offset)
        return RestRequest("GET", "/user/trade", _query({
            "exchange_order_id": self.exchange_order_id, "symbol": self.symbol, "start": self.start,
            "end": self.end, "ordertype": self.ordertype, "orderdirection": self.orderdirection,
            "limit": self.limit, "offset": self.offset}))

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> TradesQuery:
        return cls(exchange_order_id=params.get("exchange_order_id"), symbol=params.get("symbol"),
                   start=_param_time(params, "start", "start_time"),
                   end=_param_time(params, "end", "end_time"),
                   ordertype=params.get("ordertype"), orderdirection=params.get("orderdirection"),
                   limit=_param_int(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT),
                   offset=_param_int(params, "offset", 0, 0, 10**9))


def refdata_request(ticker: str | None = None) -> RestRequest:
    return RestRequest("GET", "/refdata", _query({"ticker": ticker}), private=False)


def positions_request() -> RestRequest:
    return RestRequest("GET", "/user/positions")


@frozen
class SetLeverage:
    """``POST /user/leverage`` body. QFEX documents the path only (§8); the body mirrors the
    websocket's ``set_user_leverage`` params (§3.11), an assumption."""

    symbol: str
    leverage: int

    def request(self) -> RestRequest:
        return RestRequest("POST", "/user/leverage", body=encode_body(self))


# --------------------------------------------------------------------------- responses


@frozen
class RefdataSymbol:
    """One ``RefdataSymbol`` (§15.6). The fields an order check needs are required; the
    informational ones default, so a sparse row still reads. ``clobPairId`` is renamed."""

    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_price: Decimal
    max_price: Decimal
    min_quantity: Decimal
    max_quantity: Decimal
    clob_pair_id: str = ""
    underlier_price: Decimal | None = None
    price_change_24h: Decimal | None = None
    default_max_leverage: int | None = None
    base_asset: str = ""
    quote_asset: str = ""
    margin_asset: str = ""
    order_time_in_force: tuple[str, ...] = ()
    order_types: tuple[str, ...] = ()
    market_hours: dict[str, Any] = field(factory=dict)
    status: str = ""
    product_category: str = ""


@frozen
class RefdataResponse:
    """``{type, data}``. A malformed row is left out and its reason kept in ``rejected``, so one bad
    symbol does not hide the others."""

    data: tuple[RefdataSymbol, ...] = ()
    type: str = "refdata"
    rejected: tuple[str, ...] = ()


@frozen
class PositionPublic:
    symbol: str
    position: Decimal
    average_price: Decimal
    realised_pnl: Decimal
    unrealised_pnl: Decimal
    net_funding: Decimal
    open_orders: int
    open_quantity: Decimal
    leverage: Decimal
    initial_margin: Decimal
    maintenance_margin: Decimal


@frozen
class BalancePublic:
    deposit: Decimal
    realised_pnl: Decimal
    order_margin: Decimal
    position_margin: Decimal
    unrealised_pnl: Decimal
    net_funding: Decimal
    available_balance: Decimal


@frozen
class PositionsBalance:
    """``GET /user/positions`` (§15.3)."""

    balance: BalancePublic
    positions: tuple[PositionPublic, ...] = ()


@frozen
class HistoricOrder:
    """One closed order (§15.4): how it really ended (``terminal_status``) and what it filled."""

    order_id: str
    terminal_status: OrderStatus
    status_ts: datetime
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal
    client_order_id: str
    passive_qty: Decimal
    filled_qty: Decimal
    avg_price: Decimal | None
    first_fill_ts: datetime | None
    last_fill_ts: datetime | None
    execution_state: str


@frozen
class HistoricOrdersPage:
    count: int
    data: tuple[HistoricOrder, ...] = ()


@frozen
class HistoricTwap:
    """One ended TWAP of ``GET /user/historic-twaps`` ("cancelled or completed", §8).

    QFEX documents the endpoint but not its rows. Assumed (the most plausible reading, easy to
    change here alone): the websocket ``twap_response``'s fields under the same names, with the
    REST side's ISO timestamps, in a ``{data, count}`` page like ``historic-orders``; ``status`` as
    text (QFEX documents no TWAP status values either).
    """

    twap_id: str
    symbol: str
    status: str
    side: Side
    client_twap_id: str | None
    total_quantity: Decimal
    filled_quantity: Decimal
    total_num_orders: int
    order_interval_secs: int
    reduce_only: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


@frozen
class HistoricTwapsPage:
    count: int
    data: tuple[HistoricTwap, ...] = ()


@frozen
class RestTrade:
    """One ``Trade`` of ``GET /user/trade`` (§15.5); ``order_timestamp`` in seconds (unit undocumented)."""

    id: str
    order_timestamp: Decimal
    symbol: str
    price: Decimal
    quantity: Decimal
    side: Side
    fee: Decimal
    margin_used: Decimal
    order_type: OrderType
    tif: TimeInForce
    order_id: str
    realised_pnl_change: Decimal


@frozen
class TradesPage:
    count: int
    data: tuple[RestTrade, ...] = ()


@frozen
class ProblemItem:
    location: str | None = None
    message: str | None = None
    value: Any = None


@frozen
class Problem:
    """An RFC 9457 ``ErrorModel`` (§15.2); no field is required, so every one defaults."""

    status: int | None = None
    title: str = ""
    detail: str = ""
    type: str = "about:blank"
    instance: str | None = None
    errors: tuple[ProblemItem, ...] = ()


# --------------------------------------------------------------------------- the converter


def _strict(kind: type) -> Callable[[Any, type], Any]:
    def structure(value: Any, _: type) -> Any:
        if isinstance(value, bool) or not isinstance(value, kind):
            raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
        return value

    return structure


def _strict_bool(value: Any, _: type) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"expected a boolean, got {type(value).__name__}")
    return value


def _structure_time(value: Any, _: type) -> datetime:
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 string, got {type(value).__name__}")
    return parse_time(value)


def _tuple_hook(conv: cattrs.Converter) -> Callable[[Any], Callable[[Any, type], tuple[Any, ...]]]:
    def factory(kind: Any) -> Callable[[Any, type], tuple[Any, ...]]:
        item = get_args(kind)[0]

        def structure(value: Any, _: type) -> tuple[Any, ...]:
            if value is None:  # QFEX's arrays are "X[]|null"
                return ()
            if not isinstance(value, list):
                raise TypeError(f"expected an array, got {type(value).__name__}")
            return tuple(conv.structure(v, item) for v in value)

        return structure

    return factory


def _structure_object(value: Any, _: type) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value


def _refdata_hooks(conv: cattrs.Converter) -> None:
    renamed = {"clob_pair_id": override(rename="clobPairId")}
    structure_row = make_dict_structure_fn(RefdataSymbol, conv, **renamed)  # type: ignore[arg-type]
    unstructure_row = make_dict_unstructure_fn(RefdataSymbol, conv, **renamed)  # type: ignore[arg-type]
    decimals = ("tick_size", "lot_size", "min_price", "max_price", "min_quantity", "max_quantity")

    def row_out(row: RefdataSymbol) -> dict[str, Any]:
        raw = unstructure_row(row)
        for name in decimals:  # reference data numbers travel as strings (§15.6)
            raw[name] = numbers.fixed_text(getattr(row, name))
        for name in ("underlier_price", "price_change_24h"):
            value = getattr(row, name)
            raw[name] = None if value is None else numbers.fixed_text(value)
        return raw

    def response_in(value: Any, _: type) -> RefdataResponse:
        if not isinstance(value, dict):
            raise TypeError("refdata must be an object")
        rows, rejected = [], []
        data = value.get("data") or []
        if not isinstance(data, list):
            raise TypeError("refdata data must be an array")
        for raw in data:
            try:
                rows.append(structure_row(raw, RefdataSymbol))
            except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
                name = raw.get("symbol") if isinstance(raw, dict) else None
                rejected.append(f"{numbers.preview(name)}: {_describe(exc)}")
        kind = value.get("type")
        return RefdataResponse(tuple(rows), kind if isinstance(kind, str) else "", tuple(rejected))

    conv.register_structure_hook(RefdataSymbol, structure_row)
    conv.register_unstructure_hook(RefdataSymbol, row_out)
    conv.register_structure_hook(RefdataResponse, response_in)
    conv.register_unstructure_hook(
        RefdataResponse, lambda r: {"type": r.type, "data": [row_out(x) for x in r.data]})


def _build_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=False)
    conv.register_structure_hook(str, _strict(str))
    conv.register_structure_hook(int, _strict(int))
    conv.register_structure_hook(bool, _strict_bool)
    conv.register_structure_hook(Decimal, lambda v, _: numbers.parse(v))
    conv.register_unstructure_hook(Decimal, lambda v: orjson.Fragment(numbers.fixed_text(v)))
    conv.register_structure_hook(datetime, _structure_time)
    conv.register_unstructure_hook(datetime, format_time)
    conv.register_structure_hook_func(lambda kind: kind == dict[str, Any], _structure_object)
    for enum_type in (OrderStatus, OrderType, Side, TimeInForce):
        conv.register_structure_hook(enum_type, structure_enum)
        conv.register_unstructure_hook(enum_type, lambda v: v.value)
    conv.register_structure_hook_factory(is_homogeneous_tuple, _tuple_hook(conv))
    _refdata_hooks(conv)
    return conv


converter = _build_converter()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, cattrs.BaseValidationError):
        return "; ".join(cattrs.transform_error(exc)) or str(exc)
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def decode(body: bytes | str, kind: type[T]) -> T:
    """A response body as ``kind``; ``ProtocolError`` (keeping the text) if it cannot be read."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(f"{kind.__name__} body is not JSON: {exc}", body) from None
    if not isinstance(raw, dict):
        raise ProtocolError(f"{kind.__name__} body is not a JSON object", body)
    try:
        result: T = converter.structure(raw, kind)
    except (cattrs.BaseValidationError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ProtocolError(f"malformed {kind.__name__}: {_describe(exc)}", body) from None
    return result


def encode_body(value: object, schema: str | None = None) -> bytes:
    """JSON bytes of a shape above (Decimals as exact numbers, refdata numbers as strings)."""
    raw = converter.unstructure(value)
    if schema is not None:
        raw = {"$schema": schema, **raw}
    return orjson.dumps(raw)


def parse_problem(status: int, reason: str, body: bytes) -> Problem:
    """An error answer as a ``Problem``, read defensively (§15.2: some say QFEX sends no
    problem+json): a field of the wrong type is ignored, a body that is not JSON becomes the
    detail (cut short), and the HTTP reason phrase stands in for a missing title (HTTP/2 and many
    HTTP/1.1 servers send none: then the standard phrase of ``status``)."""
    if not reason:
        try:
            reason = HTTPStatus(status).phrase
        except ValueError:
            reason = f"HTTP {status}"
    try:
        raw = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        raw = None
    if not isinstance(raw, dict):
        text = body.decode("utf-8", "replace").strip()
        return Problem(status=status, title=reason, detail=_text(text) or "")
    title, detail, kind, instance = (raw.get(k) for k in ("title", "detail", "type", "instance"))
    errors = raw.get("errors")
    items = []
    for item in errors if isinstance(errors, list) else ():
        if isinstance(item, dict):
            items.append(ProblemItem(_text(item.get("location")), _text(item.get("message")),
                                     item.get("value")))
    return Problem(
        status=status, title=_text(title) or reason, detail=_text(detail) or "",
        type=_text(kind) or "about:blank", instance=_text(instance), errors=tuple(items))


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return value if len(value) <= 2 * _PREVIEW else value[:2 * _PREVIEW] + "..."


def problem_body(problem: Problem) -> bytes:
    raw: dict[str, Any] = {"type": problem.type, "title": problem.title, "status": problem.status,
                           "detail": problem.detail}
    if problem.instance is not None:
        raw["instance"] = problem.instance
    if problem.errors:
        raw["errors"] = [{"location": e.location, "message": e.message, "value": e.value}
                         for e in problem.errors]
    return orjson.dumps(raw)
