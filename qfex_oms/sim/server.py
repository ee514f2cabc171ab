"""The trio shell around the engine: one reader and one writer task per websocket connection.

Every request is handled synchronously by the reader (decode, auth/rate-limit checks, engine call,
routing) so requests of all connections are applied one at a time in arrival order and nothing can
interleave inside a command. Replies are queued to per-connection writers, which apply injected
faults and never block the engine. Routing follows QFEX's account-wide push: an ``order_response``
goes to every connection of the account subscribed to ``order_responses`` (not only the sender), a
``fill_response`` to every one subscribed to ``fills``, a ``stop_order_response`` to every one
subscribed to ``stop_orders`` (CHOICES C42); direct answers (``ack``, ``err``, queries,
``subscribed``) go to the requester only.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from decimal import Decimal
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlsplit

import attrs
import orjson
import trio
from attrs import define, field
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest

from qfex_oms import wsfix  # noqa: F401  (trio-websocket #184, see the module)
from qfex_oms.logs import get_logger
from qfex_oms.protocol import (
    Channel,
    ErrorCode,
    OrderStatus,
    RequestError,
    decode_request,
    encode,
    incoming_echo,
)
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CHANNEL_OF_REPLY_KEY
from qfex_oms.protocol.rest import PUBLIC_KEY_HEADER
from qfex_oms.sim import choices, queries
from qfex_oms.sim.auth import NonceStore, check_auth, jwt_account
from qfex_oms.sim.engine import Engine, Event
from qfex_oms.sim.faults import Action, Disconnect, Faults
from qfex_oms.sim.ratelimit import RateLimiter
from qfex_oms.sim.settings import Account, SimSettings

log = get_logger("qfex_oms.sim")

_CHANNEL_OF_KEY = CHANNEL_OF_REPLY_KEY
_PUBLIC_KEY_HEADER = PUBLIC_KEY_HEADER.encode()
_conn_ids = count(1)


@define(slots=True, eq=False)
class Connection:
    ws: WebSocketConnection
    account: Account
    send_channel: trio.MemorySendChannel[tuple[str, str, float]]
    conn_id: int = field(factory=lambda: next(_conn_ids))
    authed: bool = False
    authed_event: trio.Event = field(factory=trio.Event)
    subscriptions: set[Channel] = field(factory=set)
    cancel_on_disconnect: bool = False
    closed_by_server: bool = False
    vanished: bool = False  # silently dropped: whatever the client sends next is lost
    nursery: trio.Nursery | None = None

    def push(self, kind: str, data: str) -> None:
        # try/except rather than contextlib.suppress: this runs once per outgoing frame.
        try:  # noqa: SIM105
            self.send_channel.send_nowait((kind, data, trio.current_time()))
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass


def _err(code: ErrorCode, message: str, incoming: Any, **extra: Any) -> str:
    payload = {"error_code": code.value, "message": message, "incoming_message": incoming, **extra}
    return orjson.dumps({"err": payload}).decode()


def public_key_of(request: WebSocketRequest) -> str | None:
    """``?api_key=`` (QFEX's docs) or the ``x-qfex-public-key`` upgrade header (QFEX's CLI)."""
    values = parse_qs(urlsplit(request.path).query).get("api_key")
    if values:
        return values[0]
    for name, value in request.headers:
        if name.lower() == _PUBLIC_KEY_HEADER:
            return value.decode("latin-1")
    return None


def jwt_of(request: WebSocketRequest) -> str | None:
    """``?jwt=`` (QFEX's AsyncAPI) or ``Authorization: Bearer`` (QFEX's CLI) on the upgrade."""
    values = parse_qs(urlsplit(request.path).query).get("jwt")
    if values:
        return values[0]
    for name, value in request.headers:
        if name.lower() == b"authorization" and value.lower().startswith(b"bearer "):
            return value[7:].decode("latin-1")
    return None


class SimServer:
    def __init__(self, settings: SimSettings, nursery: trio.Nursery) -> None:
        self.settings = settings
        self.accounts = {a.public_key: a for a in settings.accounts}
        self.engine = Engine(settings.accounts, settings.symbols, deposit=settings.deposit)
        self.nonces = {a.public_key: NonceStore(settings.nonce_window) for a in settings.accounts}
        self.limiter = RateLimiter(settings.rate_limits) if settings.rate_limits else None
        self.faults = Faults()
        self.connections: dict[str, set[Connection]] = {a: set() for a in self.accounts}
        self.closing = False
        self._nursery = nursery
        self._twap_scopes: dict[str, trio.CancelScope] = {}
        self._handlers: dict[type, Callable[[Connection, Any], None]] = {
            m.AddOrder: self._on_add_order,
            m.ModifyOrder: self._on_modify_order,
            m.CancelOrder: self._on_cancel_order,
            m.CancelAllOrders: self._on_cancel_all,
            m.AddTwap: self._on_add_twap,
            m.GetOrder: self._on_get_order,
            m.GetUserOrders: self._on_get_user_orders,
            m.GetUserTrades: self._on_get_user_trades,
            m.Subscribe: self._on_subscribe,
            m.Unsubscribe: self._on_unsubscribe,
            m.CancelOnDisconnect: self._on_cancel_on_disconnect,
            m.ClosePosition: self._on_close_position,
            m.GetUserLeverage: self._on_get_user_leverage,
            m.SetUserLeverage: self._on_set_user_leverage,
            m.GetAvailableLeverageLevels: self._on_get_available_levels,
            m.CancelStopOrder: self._on_cancel_stop_order,
            m.ModifyStopOrder: self._on_modify_stop_order,
        }
        if settings.funding_interval is not None:
            nursery.start_soon(self._run_funding, settings.funding_interval)

    # ------------------------------------------------------------------ connection lifecycle

    async def handle(self, request: WebSocketRequest) -> None:
        account = self.accounts.get(public_key_of(request) or "") or jwt_account(
            jwt_of(request) or "", self.accounts, time.time())
        if account is None:
            log.info("sim.handshake_rejected", reason="unknown or missing api key")
            await request.reject(choices.HANDSHAKE_REJECT_STATUS, body=b"unknown api key")
            return
        try:
            ws = await request.accept()
        except ConnectionClosed:
            return
        send, receive = trio.open_memory_channel[tuple[str, str, float]](math.inf)
        conn = Connection(ws, account, send)
        self.connections[account.public_key].add(conn)
        log.info("sim.connected", conn=conn.conn_id, account=account.public_key)
        try:
            async with trio.open_nursery() as nursery:
                conn.nursery = nursery
                nursery.start_soon(self._writer, conn, receive)
                nursery.start_soon(self._auth_deadline, conn)
                await self._reader(conn)
                nursery.cancel_scope.cancel()
        except Exception:
            # A broken transport must end this connection only, never the server.
            log.exception("sim.connection_failed", conn=conn.conn_id)
        finally:
            self.connections[account.public_key].discard(conn)
            send.close()
            self._after_disconnect(conn)

    def _after_disconnect(self, conn: Connection) -> None:
        reason = conn.ws.closed
        code = reason.code if reason is not None else None
        unexpected = conn.closed_by_server or code != choices.GRACEFUL_CLOSE_CODE
        log.info("sim.disconnected", conn=conn.conn_id, code=code, unexpected=unexpected)
        if conn.cancel_on_disconnect and unexpected and not self.closing:
            log.info("sim.cancel_on_disconnect", account=conn.account.public_key)
            account = conn.account.public_key
            self._route(self.engine.cancel_all(account, self.faults.refused_stop_cancels(account)))
            self._stop_ended_twaps()

    async def _reader(self, conn: Connection) -> None:
        while True:
            try:
                raw = await conn.ws.get_message()
            except ConnectionClosed:
                return
            self.on_message(conn, raw)

    async def _writer(
        self, conn: Connection, receive: trio.MemoryReceiveChannel[tuple[str, str, float]]
    ) -> None:
        faults, account = self.faults, conn.account.public_key
        held: tuple[str, str, float] | None = None
        try:
            while True:
                if held is None:
                    try:
                        item = await receive.receive()
                    except trio.EndOfChannel:
                        return
                else:
                    next_item: tuple[str, str, float] | None = None
                    with trio.move_on_after(choices.REORDER_FLUSH_SECS):
                        try:
                            next_item = await receive.receive()
                        except trio.EndOfChannel:
                            next_item = None
                    if next_item is None:  # nothing followed in time: deliver the held frame
                        frame, held = held[1], None
                        if not await self._send(conn, [frame]):
                            return
                        continue
                    item = next_item
                kind, data, produced = item
                if kind in choices.FAULT_EXEMPT_KEYS:
                    # Account pushes ride their own channels: the faults target the order flow.
                    await conn.ws.send_message(data)
                    continue
                frames = [data]
                if faults.active and kind != "authenticated":
                    latency = faults.latency_for(account)
                    if latency > 0:
                        await trio.sleep_until(produced + latency)
                    if faults.take(account, Action.DROP, kind):
                        continue
                    if held is None and faults.take(account, Action.REORDER, kind):
                        held = item
                        continue
                    if faults.take(account, Action.DUPLICATE, kind):
                        frames.append(data)
                if held is not None:
                    frames.append(held[1])
                    held = None
                if not await self._send(conn, frames):
                    return
        except ConnectionClosed:
            return

    async def _send(self, conn: Connection, frames: list[str]) -> bool:
        """Send frames, honouring the disconnect fault; False once the connection is gone."""
        account = conn.account.public_key
        for data in frames:
            if self.faults.active and (how := self.faults.disconnect_due(account)):
                await self._disconnect(conn, how)
                return False
            await conn.ws.send_message(data)
            if self.faults.active and (how := self.faults.count_frame(account)):
                await self._disconnect(conn, how)
                return False
        return True

    async def _disconnect(self, conn: Connection, how: Disconnect) -> None:
        if how is Disconnect.SILENT:
            await self._vanish(conn)
        else:
            await self._close(conn, choices.FAULT_DISCONNECT_CODE, "injected disconnect")

    async def _close(self, conn: Connection, code: int, reason: str) -> None:
        conn.closed_by_server = True
        await conn.ws.aclose(code, reason)

    async def _vanish(self, conn: Connection) -> None:
        """End the connection without a close frame: close the TCP stream under the websocket.

        trio-websocket has no public call for this (its ``aclose`` always sends a close frame), so
        the stream is reached through its private ``_stream``; should that name change, the
        connection is closed cleanly instead, which a test of silent drops would notice.
        """
        conn.closed_by_server = conn.vanished = True
        stream = getattr(conn.ws, "_stream", None)
        if stream is None:
            await self._close(conn, choices.FAULT_DISCONNECT_CODE, "injected disconnect")
            return
        await stream.aclose()

    async def _auth_deadline(self, conn: Connection) -> None:
        with trio.move_on_after(self.settings.auth_deadline):
            await conn.authed_event.wait()
        if not conn.authed:
            log.info("sim.auth_deadline", conn=conn.conn_id)
            await self._close(conn, choices.AUTH_TIMEOUT_CLOSE_CODE, choices.AUTH_TIMEOUT_CLOSE_REASON)

    async def _pinger(self, conn: Connection) -> None:
        interval, timeout = self.settings.ping_interval, self.settings.pong_timeout
        if interval is None:
            return
        try:
            while True:
                await trio.sleep(interval)
                with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
                    await conn.ws.ping()
                if scope.cancelled_caught:
                    await self._close(conn, choices.FAULT_DISCONNECT_CODE, "ping timeout")
                    return
        except ConnectionClosed:
            return

    async def drop(self, public_key: str | None) -> int:
        """Close connections abruptly (code 1011, counts as unexpected for cancel-on-disconnect)."""
        targets = [c for k, conns in self.connections.items() if public_key in (None, k)
                   for c in conns]
        for conn in targets:
            await self._close(conn, choices.FAULT_DISCONNECT_CODE, "dropped by the venue")
        return len(targets)

    # ------------------------------------------------------------------ requests

    def on_message(self, conn: Connection, raw: str | bytes) -> None:
        """Handle one client frame. Nothing a client sends may escape as an exception."""
        if conn.vanished:
            return
        try:
            try:
                request = decode_request(raw)
            except RequestError as exc:
                conn.push("err", _err(exc.code, exc.message, exc.incoming))
                return
            if not conn.authed:
                if isinstance(request, m.Auth):
                    self._on_auth(conn, request)
                else:
                    conn.push("err", _err(choices.NOT_AUTHENTICATED_CODE,
                                          choices.NOT_AUTHENTICATED_MESSAGE, incoming_echo(request)))
                return
            if isinstance(request, m.Auth):
                conn.push("err", _err(ErrorCode.ALREADY_AUTHENTICATED, "already authenticated",
                                      incoming_echo(request)))
                return
            if self.faults.active and self._lost_in_transit(conn, request):
                return
            retry = None
            if self.faults.active and self.faults.rate_limit(conn.account.public_key, request.TYPE):
                retry = 0.0
            elif self.limiter is not None:
                retry = self.limiter.charge(conn.account.public_key, request.TYPE,
                                            trio.current_time())
            if retry is not None:
                conn.push("err", _err(ErrorCode.RATE_LIMITED,
                                      "You have exceeded the allowed message rate.",
                                      incoming_echo(request),
                                      **{choices.RETRY_AFTER_FIELD: round(retry, 6)}))
                return
            try:
                self._handlers[type(request)](conn, request)
            except RequestError as exc:
                conn.push("err", _err(exc.code, exc.message, exc.incoming or incoming_echo(request)))
        except Exception:
            log.exception("sim.request_failed", conn=conn.conn_id)
            conn.push("err", _err(ErrorCode.SERVER_ERROR, "unexpected internal error", None))

    def _lost_in_transit(self, conn: Connection, request: m.Request) -> bool:
        """The ``lose_requests`` fault: the request is never handled, and its connection may die."""
        lost, drop = self.faults.lose_request(conn.account.public_key, request.TYPE)
        if lost:
            log.info("sim.request_lost", conn=conn.conn_id, type=request.TYPE, drop=drop)
        if drop and conn.nursery is not None:
            conn.closed_by_server = conn.vanished = True
            conn.send_channel.close()  # nothing more reaches the client on this connection
            conn.nursery.start_soon(self._vanish, conn)
        return lost

    def _on_auth(self, conn: Connection, request: m.Auth) -> None:
        account = conn.account
        problem = check_auth(request, account, self.nonces[account.public_key], time.time(),
                             self.settings.auth_skew)
        if problem is not None:
            log.info("sim.auth_failed", conn=conn.conn_id, reason=problem)
            conn.push("authenticated", encode(m.Authenticated(False)).decode())
            return
        conn.authed = True
        conn.authed_event.set()
        log.info("sim.authenticated", conn=conn.conn_id, account=account.public_key)
        conn.push("authenticated", encode(m.Authenticated(True)).decode())
        if conn.nursery is not None:
            conn.nursery.start_soon(self._pinger, conn)

    def _reply(self, conn: Connection, reply: m.Reply) -> None:
        conn.push(_key(reply), encode(reply).decode())

    def _route(self, events: list[Event]) -> None:
        """Deliver engine events account-wide, gated by each connection's subscriptions."""
        for account, reply in events:
            conns = self.connections.get(account)
            if not conns:
                continue
            key = _key(reply)
            channel = _CHANNEL_OF_KEY.get(key)
            data: str | None = None
            for conn in conns:
                if not conn.authed or (channel is not None and channel not in conn.subscriptions):
                    continue
                if data is None:
                    data = encode(reply).decode()
                conn.push(key, data)
        self.push_account_changes()

    def push_account_changes(self) -> None:
        """Push position_response / balance_response for whatever the last command changed, to the
        account's connections subscribed to ``positions`` / ``balances`` (CHOICES C31)."""
        ledger = self.engine.ledger
        for account, symbols in ledger.drain_changes().items():
            conns = [c for c in self.connections.get(account, ()) if c.authed]
            positions = [c for c in conns if Channel.POSITIONS in c.subscriptions]
            for symbol in sorted(symbols) if positions else ():
                data = encode(ledger.position_response(account, symbol)).decode()
                for conn in positions:
                    conn.push(m.PositionResponse.KEY, data)
            balances = [c for c in conns if Channel.BALANCES in c.subscriptions]
            if balances:
                data = encode(ledger.balance_response(account)).decode()
                for conn in balances:
                    conn.push(m.BalanceResponse.KEY, data)

    def set_mark(self, symbol: str, price: Decimal | None) -> None:
        self._route(self.engine.set_mark(symbol, price))  # stops it fires trade now (CHOICES C40)

    def apply_funding(self, symbol: str, rate: Decimal) -> None:
        self.engine.apply_funding(symbol, rate)
        self.push_account_changes()

    async def _run_funding(self, interval: float) -> None:
        """Settle funding for every symbol each ``interval`` seconds of trio's clock (CHOICES C28)."""
        while True:
            await trio.sleep(interval)
            for symbol in self.engine.symbols:
                self.apply_funding(symbol, self.settings.funding_rate)

    def _on_add_order(self, conn: Connection, request: m.AddOrder) -> None:
        self._route(self.engine.add_order(conn.account.public_key, request))

    def _on_modify_order(self, conn: Connection, request: m.ModifyOrder) -> None:
        self._route(self.engine.modify_order(conn.account.public_key, request))

    def _on_cancel_order(self, conn: Connection, request: m.CancelOrder) -> None:
        account = conn.account.public_key
        armed = self.faults.active and self.faults.fill_race_armed(account)
        events, raced = self.engine.cancel_order(account, request, fill_first=armed)
        if raced:
            self.faults.consume_fill_race(account)
        self._route(events)
        self._stop_ended_twaps()

    def _on_cancel_all(self, conn: Connection, request: m.CancelAllOrders) -> None:
        self._reply(conn, m.Ack(incoming_echo(request)))
        account = conn.account.public_key
        self._route(self.engine.cancel_all(account, self.faults.refused_stop_cancels(account)))
        self._stop_ended_twaps()

    def _on_cancel_stop_order(self, conn: Connection, request: m.CancelStopOrder) -> None:
        """``ack`` to the requester when the stop was cancelled, then the order_response (C43)."""
        account = conn.account.public_key
        events, cancelled = self.engine.cancel_stop(account, request,
                                                    self.faults.refused_stop_cancels(account))
        if cancelled and choices.STOP_CANCEL_ANSWERS_ACK:
            self._reply(conn, m.Ack(incoming_echo(request)))
        self._route(events)

    def _on_modify_stop_order(self, conn: Connection, request: m.ModifyStopOrder) -> None:
        """``ack`` to the requester when the stop changed, then MODIFIED and the push (C44)."""
        events, changed = self.engine.modify_stop(conn.account.public_key, request)
        if changed and choices.STOP_CANCEL_ANSWERS_ACK:
            self._reply(conn, m.Ack(incoming_echo(request)))
        self._route(events)

    def _on_add_twap(self, conn: Connection, request: m.AddTwap) -> None:
        events = self.engine.add_twap(conn.account.public_key, request)
        self._route(events)
        twap_id = events[0][1].twap_id  # type: ignore[union-attr]
        scope = trio.CancelScope()
        self._twap_scopes[twap_id] = scope
        self._nursery.start_soon(self._run_twap, twap_id, scope)

    async def _run_twap(self, twap_id: str, scope: trio.CancelScope) -> None:
        """Place the TWAP's children on trio's clock; intervals are divided by ``time_scale``."""
        twap = self.engine.twaps_by_id[twap_id]
        interval = twap.order_interval_secs / self.settings.time_scale
        try:
            with scope:
                for n in range(twap.num_orders):
                    if n or not choices.TWAP_FIRST_CHILD_IMMEDIATE:
                        await trio.sleep(interval)
                    self._route(self.engine.twap_child(twap_id))
                    self._stop_ended_twaps()
        finally:
            self._twap_scopes.pop(twap_id, None)

    def _stop_ended_twaps(self) -> None:
        for twap_id in self.engine.ended_twaps:
            scope = self._twap_scopes.get(twap_id)
            if scope is not None:
                scope.cancel()
        self.engine.ended_twaps.clear()

    def _on_get_order(self, conn: Connection, request: m.GetOrder) -> None:
        account = conn.account.public_key
        reply = queries.get_order(self.engine, account, request)
        stop = self.engine.stops.find(account, request.order_id)
        if reply.status is OrderStatus.NO_SUCH_ORDER and stop is not None and stop.symbol == request.symbol:
            reply = stop.response(stop.status)  # a stop's id answers the stop (CHOICES C45)
        self._reply(conn, reply)

    def _on_get_user_orders(self, conn: Connection, request: m.GetUserOrders) -> None:
        """Open orders and TWAPs (queries.py), plus the live stops where C45 lists them."""
        account = conn.account.public_key
        reply = queries.user_orders(self.engine, account, request)
        stops = self.engine.stops.listed(account, request.symbol)
        listing = self.engine.stops.rules.listing
        if stops and listing is not choices.StopListing.STOP_ORDERS_KEY:
            reply = attrs.evolve(reply, orders=reply.orders + tuple(s.response(s.status) for s in stops))
        if stops and listing is not choices.StopListing.ORDERS_KEY:
            reply = attrs.evolve(reply, stop_orders=tuple(s.push() for s in stops))
        self._reply(conn, reply)

    def _on_get_user_trades(self, conn: Connection, request: m.GetUserTrades) -> None:
        self._reply(conn, queries.user_trades(self.engine, conn.account.public_key, request))

    def _channels(self, request: m.Subscribe | m.Unsubscribe) -> tuple[Channel, ...]:
        unknown = [c for c in request.channels if not c.known]
        if unknown or not request.channels:
            raise RequestError(ErrorCode.INVALID_PARAMETER,
                               f"unknown or missing channels {[str(c) for c in unknown]}", None)
        return request.channels

    def _on_subscribe(self, conn: Connection, request: m.Subscribe) -> None:
        channels = self._channels(request)
        for channel in channels:
            conn.subscriptions.add(channel)
            self._reply(conn, m.Subscribed(channel.value))
        for channel in channels:  # every confirmation first, then the snapshots (C31)
            self._snapshot(conn, channel)

    def _snapshot(self, conn: Connection, channel: Channel) -> None:
        """What a new ``positions`` / ``balances`` subscriber gets after ``subscribed`` (C31)."""
        ledger, account = self.engine.ledger, conn.account.public_key
        if channel is Channel.POSITIONS:
            for symbol in self.engine.symbols:
                self._reply(conn, ledger.position_response(account, symbol))
        elif channel is Channel.BALANCES:
            self._reply(conn, ledger.balance_response(account))

    def _on_unsubscribe(self, conn: Connection, request: m.Unsubscribe) -> None:
        for channel in self._channels(request):
            conn.subscriptions.discard(channel)
            self._reply(conn, m.Unsubscribed(channel.value))

    def _on_cancel_on_disconnect(self, conn: Connection, request: m.CancelOnDisconnect) -> None:
        conn.cancel_on_disconnect = request.cancel_on_disconnect
        self._reply(conn, m.Ack(incoming_echo(request)))

    def _on_close_position(self, conn: Connection, request: m.ClosePosition) -> None:
        self._route(self.engine.close_position(conn.account.public_key, request))

    def _on_get_user_leverage(self, conn: Connection, request: m.GetUserLeverage) -> None:
        self._reply(conn, queries.user_leverage(self.engine, conn.account.public_key, request))

    def _on_get_available_levels(self, conn: Connection, request: m.GetAvailableLeverageLevels) -> None:
        self._reply(conn, queries.available_levels(self.engine, request))

    def _on_set_user_leverage(self, conn: Connection, request: m.SetUserLeverage) -> None:
        problem = self.engine.ledger.set_leverage(conn.account.public_key, request.symbol,
                                                  request.leverage)
        if problem is not None:
            raise RequestError(ErrorCode.INVALID_PARAMETER, problem, None)
        self._reply(conn, m.Ack(incoming_echo(request)))
        self.push_account_changes()


def _key(reply: m.Reply) -> str:
    """The top-level key a reply travels under (every reply the simulator sends has one)."""
    kind: type[Any] = type(reply)
    key: str = kind.KEY
    return key
