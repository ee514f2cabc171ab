"""The simulator's REST side: a small ASGI app over the websocket server's engine, served by hypercorn.

Same process, same accounts, same ledger and the same HMAC rules as the trade socket (CHOICES
C32-C38). Each request is handled synchronously between two awaits, like a websocket frame, so it
sees the engine between commands, never inside one. Shapes come from ``qfex_oms.protocol.rest``,
the very classes the client decodes with (qfex-api.md §15).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

import trio
from hypercorn.config import Config
from hypercorn.trio import serve

from qfex_oms.logs import get_logger
from qfex_oms.protocol import rest as r
from qfex_oms.protocol.errors import ProtocolError
from qfex_oms.sim import choices
from qfex_oms.sim.auth import check_auth, jwt_account
from qfex_oms.sim.ledger import wire
from qfex_oms.sim.records import SimOrder, SimTrade
from qfex_oms.sim.server import SimServer

if TYPE_CHECKING:
    from hypercorn.typing import ASGIFramework

log = get_logger("qfex_oms.sim.rest")

Answer = tuple[int, bytes]
Handler = Callable[[str, "Request"], Answer]
_POSITIONS_SCHEMA = "https://api.qfex.com/schemas/PositionsBalanceResponseBody.json"


class RestFailure(Exception):
    """Answer with this problem (raised by a handler, turned into problem+json by the app)."""

    def __init__(self, status: int, detail: str, location: str | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.location = location


class Request:
    """What a handler reads: the query (last value wins), the lower-cased headers and the body."""

    __slots__ = ("body", "headers", "method", "path", "query")

    def __init__(self, scope: dict[str, Any], body: bytes) -> None:
        self.method: str = scope["method"]
        self.path: str = scope["path"]
        raw_query = scope.get("query_string", b"").decode("latin-1")
        self.query = dict(parse_qsl(raw_query, keep_blank_values=True))
        self.headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        self.body = body


def _problem(status: int, detail: str, location: str | None = None) -> Answer:
    title = HTTPStatus(status).phrase
    if status == choices.REST_AUTH_FAILED_STATUS:
        title = choices.REST_AUTH_FAILED_TITLE
    errors = (r.ProblemItem(location=location, message=detail),) if location else ()
    return status, r.problem_body(r.Problem(status=status, title=title, detail=detail, errors=errors))


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def _within(moment: datetime, start: datetime | None, end: datetime | None) -> bool:
    return (start is None or moment >= start) and (end is None or moment <= end)


class RestApp:
    """The ASGI application. ``server`` is the running websocket server whose engine it reads."""

    def __init__(self, server: SimServer) -> None:
        self.server = server
        self.engine = server.engine
        # path -> (method, private, handler)
        self.routes: dict[str, tuple[str, bool, Handler]] = {
            "/refdata": ("GET", False, self._refdata),
            "/user/positions": ("GET", True, self._positions),
            "/user/historic-orders": ("GET", True, self._historic_orders),
            "/user/historic-twaps": ("GET", True, self._historic_twaps),
            "/user/trade": ("GET", True, self._trades),
            "/user/leverage": ("POST", True, self._set_leverage),
        }

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        status, payload = (_problem(413, "request body too large") if body is None
                           else self.answer(Request(scope, body)))
        kind = r.JSON_CONTENT_TYPE if status < 400 else r.PROBLEM_CONTENT_TYPE
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", kind.encode()),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})

    def answer(self, request: Request) -> Answer:
        """Route, authenticate and run one request. Nothing a client sends escapes as an exception."""
        route = self.routes.get(request.path)
        if route is None:
            return _problem(404, f"no endpoint {request.path}")
        method, private, handler = route
        if request.method != method:
            return _problem(405, f"{request.path} takes {method}")
        try:
            account = self._authenticate(request) if private else ""
            return handler(account, request)
        except RestFailure as exc:
            return _problem(exc.status, exc.detail, exc.location)
        except r.QueryError as exc:
            return _problem(400, exc.message, exc.location)
        except Exception:
            log.exception("sim.rest_failed", path=request.path)
            return _problem(500, "unexpected internal error")

    def _authenticate(self, request: Request) -> str:
        """The public key of the account the headers authenticate (CHOICES C32)."""
        auth = r.auth_from_headers(request.headers)
        reason: str | None
        if isinstance(auth, str):
            reason = auth
        else:
            named = auth.hmac.public_key if auth.hmac is not None else None
            account = (self.server.accounts.get(named) if named is not None
                       else jwt_account(auth.jwt or "", self.server.accounts, time.time()))
            if account is None:
                reason = "unknown api key"
            else:
                reason = check_auth(auth, account, self.server.nonces[account.public_key],
                                    time.time(), self.server.settings.auth_skew)
                if reason is None:
                    return account.public_key
        log.info("sim.rest_auth_failed", path=request.path, reason=reason)
        raise RestFailure(choices.REST_AUTH_FAILED_STATUS, reason)

    # ------------------------------------------------------------------ endpoints

    def _refdata(self, _: str, request: Request) -> Answer:
        ticker = request.query.get("ticker")
        rows = [self._refdata_row(n, spec.symbol) for n, spec in enumerate(self.engine.symbols.values(), 1)
                if ticker is None or spec.symbol == ticker]
        return 200, r.encode_body(r.RefdataResponse(tuple(rows), choices.REFDATA_TYPE))

    def _refdata_row(self, number: int, symbol: str) -> r.RefdataSymbol:
        spec = self.engine.symbols[symbol]
        mark = self.engine.ledger.mark(symbol)
        return r.RefdataSymbol(
            symbol=symbol, tick_size=spec.tick_size, lot_size=spec.lot_size,
            min_price=spec.min_price, max_price=spec.max_price,
            min_quantity=spec.min_quantity, max_quantity=spec.max_quantity,
            clob_pair_id=str(number), underlier_price=Decimal(0) if mark is None else mark,
            price_change_24h=Decimal(0), default_max_leverage=spec.default_max_leverage,
            base_asset=symbol.split("-", 1)[0], quote_asset=choices.REFDATA_QUOTE_ASSET,
            margin_asset=choices.REFDATA_QUOTE_ASSET, order_time_in_force=spec.time_in_force,
            order_types=spec.order_types, market_hours=dict(choices.REFDATA_MARKET_HOURS),
            status=spec.status, product_category=spec.product_category,
        )

    def _positions(self, account: str, _: Request) -> Answer:
        ledger = self.engine.ledger
        rows = []
        for symbol in self.engine.symbols:  # flat ones too (CHOICES C34)
            view = ledger.position(account, symbol)
            rows.append(r.PositionPublic(
                symbol=symbol, position=view.quantity, average_price=view.average_price,
                realised_pnl=view.realised_pnl, unrealised_pnl=view.unrealised_pnl,
                net_funding=view.net_funding, open_orders=view.open_orders,
                open_quantity=view.open_quantity, leverage=view.leverage,
                initial_margin=view.initial_margin, maintenance_margin=view.maintenance_margin))
        b = ledger.balance(account)
        balance = r.BalancePublic(
            deposit=b.deposit, realised_pnl=b.realised_pnl, order_margin=b.order_margin,
            position_margin=b.position_margin, unrealised_pnl=b.unrealised_pnl,
            net_funding=b.net_funding, available_balance=b.available_balance)
        return 200, r.encode_body(r.PositionsBalance(balance, tuple(rows)), _POSITIONS_SCHEMA)

    def _historic_orders(self, account: str, request: Request) -> Answer:
        query = r.HistoricOrdersQuery.from_params(request.query)
        state = self.engine.accounts[account]
        closed = [o for o in state.orders if not o.is_open
                  and query.symbol in (None, o.symbol)
                  and query.client_order_id in (None, o.client_order_id)
                  and _within(_time(o.update_time), query.start, query.end)]
        closed.sort(key=lambda o: o.update_time, reverse=True)  # newest first (CHOICES C35)
        page = closed[query.offset:query.offset + query.limit]
        rows = tuple(_historic(o, state.trades_by_order.get(o.order_id, ())) for o in page)
        return 200, r.encode_body(r.HistoricOrdersPage(len(closed), rows))

    def _historic_twaps(self, account: str, request: Request) -> Answer:
        """Ended TWAPs, newest first (CHOICES C48: QFEX documents no row shape; ``HistoricTwap``)."""
        query = r.HistoricTwapsQuery.from_params(request.query)
        ended = [t for t in self.engine.accounts[account].twaps
                 if not t.active and query.symbol in (None, t.symbol)]
        ended.sort(key=lambda t: t.updated_at, reverse=True)
        rows = tuple(r.HistoricTwap(
            twap_id=t.twap_id, symbol=t.symbol, status=t.status, side=t.side,
            client_twap_id=t.client_twap_id, total_quantity=t.total_quantity,
            filled_quantity=t.filled_quantity, total_num_orders=t.num_orders,
            order_interval_secs=t.order_interval_secs, reduce_only=t.reduce_only,
            created_at=_time(t.created_at), updated_at=_time(t.updated_at)) for t in ended[:query.limit])
        return 200, r.encode_body(r.HistoricTwapsPage(len(ended), rows))

    def _trades(self, account: str, request: Request) -> Answer:
        query = r.TradesQuery.from_params(request.query)
        trades = [t for t in self.engine.accounts[account].trades
                  if query.exchange_order_id in (None, t.order_id) and query.symbol in (None, t.symbol)
                  and query.ordertype in (None, t.order_type.value)
                  and query.orderdirection in (None, t.side.value)
                  and _within(_time(t.timestamp), query.start, query.end)]
        trades.reverse()  # newest first (CHOICES C36)
        page = trades[query.offset:query.offset + query.limit]
        ledger = self.engine.ledger
        rows = tuple(_rest_trade(t, ledger.position(account, t.symbol).leverage) for t in page)
        return 200, r.encode_body(r.TradesPage(len(trades), rows))

    def _set_leverage(self, account: str, request: Request) -> Answer:
        try:
            wanted = r.decode(request.body, r.SetLeverage)
        except ProtocolError as exc:
            raise RestFailure(400, str(exc), "body") from None
        problem = self.engine.ledger.set_leverage(account, wanted.symbol, Decimal(wanted.leverage))
        if problem is not None:
            raise RestFailure(400, problem, "body.leverage")
        # The websocket side pushes the changed position and balance the same way (CHOICES C37).
        self.server.push_account_changes()
        return 200, r.encode_body(wanted)


def _historic(order: SimOrder, trades: Sequence[SimTrade]) -> r.HistoricOrder:
    filled = order.filled
    notional = sum((t.price * t.quantity for t in trades), Decimal(0))
    passive = sum((t.quantity for t in trades if t.is_maker), Decimal(0))
    times = [t.timestamp for t in trades]
    if filled == 0:
        state = choices.EXECUTION_NONE
    else:
        state = choices.EXECUTION_FILLED if filled >= order.quantity else choices.EXECUTION_PARTIAL
    return r.HistoricOrder(
        order_id=order.order_id, terminal_status=order.status, status_ts=_time(order.update_time),
        symbol=order.symbol, side=order.side, type=order.order_type, time_in_force=order.time_in_force,
        quantity=order.quantity, price=order.price, client_order_id=order.client_order_id,
        passive_qty=passive, filled_qty=filled,
        avg_price=wire(notional / filled, Decimal("1e-12")) if filled else None,
        first_fill_ts=_time(min(times)) if times else None,
        last_fill_ts=_time(max(times)) if times else None, execution_state=state,
    )


def _rest_trade(trade: SimTrade, leverage: Decimal) -> r.RestTrade:
    return r.RestTrade(
        id=trade.trade_id, order_timestamp=Decimal(repr(trade.timestamp)), symbol=trade.symbol,
        price=trade.price, quantity=trade.quantity, side=trade.side, fee=Decimal(choices.FEE),
        margin_used=wire(trade.price * trade.quantity / leverage), order_type=trade.order_type,
        tif=trade.time_in_force, order_id=trade.order_id, realised_pnl_change=wire(trade.realised_pnl),
    )


async def _read_body(receive: Any) -> bytes | None:
    """The whole request body, or None past ``REST_MAX_BODY`` (CHOICES C32)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > choices.REST_MAX_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def serve_rest(
    server: SimServer, host: str, port: int, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
) -> None:
    """Serve the REST app on ``http://host:port`` (0: a free port) until cancelled; ``nursery.start``
    returns the URL it listens on."""
    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("qfex_oms.sim.rest.hypercorn")
    config.graceful_timeout = 0.5

    async with trio.open_nursery() as nursery:
        # A plain ASGI callable; hypercorn's TypedDict events would add nothing but casts inside.
        app = cast("ASGIFramework", RestApp(server))
        binds: list[str] = await nursery.start(partial(serve, app, config))
        task_status.started(binds[0])
