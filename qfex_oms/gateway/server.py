"""The gateway: one QFEX connection (an ``OrderManager``) shared by local clients that speak QFEX's
own trade protocol, so a client written for QFEX trades through it by changing only its URL.

Per client connection: the upgrade names a key of the gateway's config (``?api_key=`` or QFEX's
CLI's ``x-qfex-public-key`` header, or a gateway token as ``?jwt=`` or ``Authorization: Bearer``,
``tokens.py``) or is refused with HTTP 401 as QFEX would; the ``auth`` frame (HMAC, or
``{"jwt": ...}`` with a token of that key) must verify within 60 s (``auth.py``); then each request
goes to ``handlers.py``. A reader decodes,
a writer sends from an unbounded-but-capped channel, so nothing upstream ever waits for a client.

Upstream frames are tapped as the manager reads them (``OrderManager.on_frame_received``, chained
after the journal's hook) and delivered to the owning strategy's connections with the namespace
stripped (``routing.py``); positions and balances go to every client (they are the account's).
An ``err`` is a reply: it goes to the connection whose request it refuses (``requesters.py``).
Everything else the manager reads (acks, query replies, ``subscribed``) answers the gateway itself.

The upstream connection dropping closes every client connection (code 1011), so clients see QFEX's
own disconnect semantics (in-flight answers lost, resync on reconnect); upgrades are refused with
HTTP 503 until the manager is connected again.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlsplit

import orjson
import trio
from attrs import define, field
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from qfex_oms import wsfix  # noqa: F401  (trio-websocket #184)
from qfex_oms.client.events import Connected, Disconnected
from qfex_oms.client.manager import OrderManager, open_order_manager
from qfex_oms.client.session import Credentials
from qfex_oms.gateway.auth import AUTH_DEADLINE_SECS, NonceStore, check_auth
from qfex_oms.gateway.config import ClientKey, GatewayConfig, check_listen
from qfex_oms.gateway.fair import FairQueue
from qfex_oms.gateway.handlers import Handlers
from qfex_oms.gateway.requesters import Requesters
from qfex_oms.gateway.routing import ID_FIELDS, Owners, echo_for, err_owner, rewrite
from qfex_oms.gateway.tokens import check_token, token_key
from qfex_oms.logs import get_logger
from qfex_oms.protocol import Channel, ErrorCode, RequestError, decode_request, encode, incoming_echo
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CHANNEL_OF_REPLY_KEY
from qfex_oms.protocol.limits import weight_of
from qfex_oms.protocol.rest import PUBLIC_KEY_HEADER

log = get_logger("qfex_oms.gateway")

UNKNOWN_KEY_STATUS = 401  # QFEX's answer to an unknown api key on the upgrade (the simulator's too)
UPSTREAM_DOWN_STATUS = 503  # no QFEX connection: come back later (clients reconnect with backoff)
GRACEFUL_CLOSE_CODE = 1000  # a client's own clean close: not a "disconnect" for cancel-on-disconnect
POLICY_CLOSE_CODE = 1008  # garbage before auth, the auth deadline, too many bad frames, too slow
UPSTREAM_LOST_CLOSE_CODE = 1011
# A client is cut off after this many undecodable or refused frames in a row once authenticated
# (one before authenticating): a confused client must not cost the others the gateway's time.
MAX_BAD_FRAMES = 20
# Frames waiting for a client that reads too slowly before it is cut off (the others never wait).
MAX_PENDING_FRAMES = 100_000
_CHANNEL_OF_KEY = CHANNEL_OF_REPLY_KEY
_PUBLIC_KEY_HEADER = PUBLIC_KEY_HEADER.encode()
_BEARER = "bearer "
_ids = count(1)


@define(slots=True, eq=False)
class ClientConn:
    ws: WebSocketConnection
    key: ClientKey
    send_channel: trio.MemorySendChannel[str]
    conn_id: int = field(factory=lambda: next(_ids))
    authed: bool = False
    authed_event: trio.Event = field(factory=trio.Event)
    subscriptions: set[Channel] = field(factory=set)
    cancel_on_disconnect: bool = False
    bad_frames: int = 0
    closed_by_gateway: bool = False
    gone: bool = False

    @property
    def strategy(self) -> str:
        return self.key.strategy

    @property
    def operator(self) -> bool:
        """The operator's key (``may_kill_account``): sees the whole account (``handlers.py``)."""
        return self.key.may_kill_account

    def push(self, data: str) -> bool:
        try:
            self.send_channel.send_nowait(data)
        except trio.WouldBlock:
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass
        return True

    def reply(self, reply: m.Reply) -> None:
        self.push(encode(reply).decode())

    def err(self, code: ErrorCode, message: str, incoming: Any) -> None:
        payload = {"error_code": code.value, "message": message, "incoming_message": incoming}
        self.push(orjson.dumps({"err": payload}).decode())


def public_key_of(request: WebSocketRequest) -> str | None:
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
        text = value.decode("latin-1")
        if name.lower() == b"authorization" and text.lower().startswith(_BEARER):
            return text[len(_BEARER):].strip()
    return None


def key_of(config: GatewayConfig, request: WebSocketRequest, now: float) -> ClientKey | None:
    """The client key an upgrade names: by its public key (a token beside it must be that key's),
    or by a valid gateway token alone; None: refused (HTTP 401)."""
    public, token = public_key_of(request), jwt_of(request)
    if public:
        key = config.key(public)
        if key is not None and token is not None and check_token(token, key, now) is not None:
            return None
        return key
    return token_key(token, config, now) if token else None


def _connection_event(event: object) -> bool:
    return isinstance(event, Connected | Disconnected)


class Gateway:
    """Clients in, one manager out. ``open_gateway`` builds and runs one."""

    def __init__(self, oms: OrderManager, config: GatewayConfig, nursery: trio.Nursery,
                 auth_deadline: float = AUTH_DEADLINE_SECS) -> None:
        self.oms = oms
        self.config = config
        self.auth_deadline = auth_deadline
        self.nursery = nursery
        self.url = ""
        self.fair = FairQueue(nursery)
        self.owners = Owners(oms, {c.strategy for c in config.clients})
        self.requesters: Requesters[ClientConn] = Requesters()  # who sent what, for QFEX's errs
        self.nonces = {c.public_key: NonceStore() for c in config.clients}
        self.clients: set[ClientConn] = set()
        self.by_strategy: dict[str, set[ClientConn]] = {c.strategy: set() for c in config.clients}
        self.operators: set[ClientConn] = set()  # connections of may_kill_account keys
        self.positions: dict[str, str] = {}  # symbol -> last position_response frame
        self.balance: str | None = None  # last balance_response frame
        self.handlers = Handlers(self)
        self.trace: list[tuple[str, Any]] | None = None  # tests: ("received"/"written", ...)
        self.closing = False  # a planned stop: clients' cancel-on-disconnect does not fire
        self._chain_hooks()

    # ------------------------------------------------------------------ upstream

    def _chain_hooks(self) -> None:
        received, sent = self.oms.on_frame_received, self.oms.on_frame_sent

        def on_received(raw: bytes | str) -> None:
            if received is not None:
                received(raw)
            self.upstream_frame(raw)

        def on_sent(data: bytes) -> None:
            if sent is not None:
                sent(data)
            self.upstream_written(data)

        self.oms.on_frame_received = on_received
        self.oms.on_frame_sent = on_sent

    def upstream_written(self, data: bytes) -> None:
        try:
            request = orjson.loads(data)
            kind = request.get("type")
        except (orjson.JSONDecodeError, AttributeError):
            return
        if self.trace is not None:
            self.trace.append(("written", data))
        self.requesters.written(request)
        self.fair.frame_written(weight_of(str(kind))[0])

    def upstream_frame(self, raw: bytes | str) -> None:
        """One frame QFEX sent the manager: deliver it to whoever it concerns. Never raises."""
        try:
            doc = orjson.loads(raw)
            if not isinstance(doc, dict) or len(doc) != 1:
                return
            key, body = next(iter(doc.items()))
            if not isinstance(body, dict):
                return
            if key in ID_FIELDS:
                client_field, id_field = ID_FIELDS[key]
                strategy = self.owners.owner(body.get(client_field), body.get(id_field))
                if self.operators:  # the account's every report, as QFEX sent it
                    self._to_operators(raw, strategy, _CHANNEL_OF_KEY.get(key))
                if strategy is not None:
                    rewrite(key, body)
                    self._deliver(strategy, orjson.dumps({key: body}).decode(), _CHANNEL_OF_KEY.get(key))
            elif key == "err":
                self._route_err(body)
            elif key == "position_response":
                data = raw if isinstance(raw, str) else raw.decode()
                self.positions[str(body.get("symbol"))] = data
                self._broadcast(data, Channel.POSITIONS)
            elif key == "balance_response":
                self.balance = raw if isinstance(raw, str) else raw.decode()
                self._broadcast(self.balance, Channel.BALANCES)
        except Exception:
            log.exception("gateway: could not route a frame from QFEX")

    def _route_err(self, body: dict[str, Any]) -> None:
        """An ``err`` is a reply: to the connection whose request it refuses (``requesters.py``),
        whoever owns the order it names; only one no client is waiting for goes to the owner."""
        claimed, asker = self.requesters.answered(body.get("incoming_message"))
        if claimed:
            if asker is not None and asker.authed and not asker.gone:
                echo_for(asker.strategy, body)
                self._push(asker, orjson.dumps({"err": body}).decode())
            return
        strategy = err_owner(self.owners, body)
        if strategy is not None:
            self._deliver(strategy, orjson.dumps({"err": body}).decode(), None)

    def _deliver(self, strategy: str, data: str, channel: Channel | None) -> None:
        for conn in self.by_strategy.get(strategy, ()):
            if conn.authed and (channel is None or channel in conn.subscriptions):
                self._push(conn, data)

    def _to_operators(self, raw: bytes | str, owner: str | None, channel: Channel | None) -> None:
        """An order/fill/TWAP/stop report to every operator connection, unchanged (its wire ids keep
        their ``<strategy>:`` namespace), but for an operator whose own order it is: that one gets
        it from ``_deliver``, with its own id, as any client."""
        data = raw if isinstance(raw, str) else raw.decode()
        for conn in self.operators:
            if conn.strategy != owner and conn.authed and (channel is None or channel in conn.subscriptions):
                self._push(conn, data)

    def _broadcast(self, data: str, channel: Channel) -> None:
        for conn in self.clients:
            if conn.authed and channel in conn.subscriptions:
                self._push(conn, data)

    def _push(self, conn: ClientConn, data: str) -> None:
        if not conn.push(data) and not conn.gone:
            log.warning("gateway: client too slow, cut off", conn=conn.conn_id, strategy=conn.strategy)
            conn.gone = True
            self.nursery.start_soon(self.close_client, conn, POLICY_CLOSE_CODE, "too slow")

    async def watch_upstream(self) -> None:
        """Close every client when QFEX's connection drops: they resync as they would on QFEX.
        Subscribed to the connection's events only: every order, position and balance event
        buffered here woke this task for nothing (several per request, on bench row 11's path)."""
        with self.oms.events(accept=_connection_event) as events:
            async for event in events:
                if isinstance(event, Disconnected):
                    log.warning("gateway: QFEX connection lost; closing clients", reason=event.reason)
                    for conn in list(self.clients):
                        self.nursery.start_soon(self.close_client, conn, UPSTREAM_LOST_CLOSE_CODE,
                                                "upstream connection lost")
                elif isinstance(event, Connected):
                    log.info("gateway: QFEX connection up")

    # ------------------------------------------------------------------ clients

    async def handle(self, request: WebSocketRequest) -> None:
        key = key_of(self.config, request, time.time())
        if key is None:
            log.info("gateway: upgrade refused", reason="unknown or missing api key, or an invalid token")
            await request.reject(UNKNOWN_KEY_STATUS, body=b"unknown api key")
            return
        if not self.oms.connected:
            await request.reject(UPSTREAM_DOWN_STATUS, body=b"the gateway is not connected to QFEX")
            return
        try:
            ws = await request.accept()
        except ConnectionClosed:
            return
        send, receive = trio.open_memory_channel[str](MAX_PENDING_FRAMES)
        conn = ClientConn(ws, key, send)
        self.clients.add(conn)
        self.by_strategy[key.strategy].add(conn)
        if key.may_kill_account:
            self.operators.add(conn)
        log.info("gateway: client connected", conn=conn.conn_id, strategy=key.strategy)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer, conn, receive)
                nursery.start_soon(self._auth_deadline, conn)
                await self._reader(conn)
                nursery.cancel_scope.cancel()
        except Exception:
            log.exception("gateway: client connection failed", conn=conn.conn_id)
        finally:
            conn.gone = True
            self.clients.discard(conn)
            self.by_strategy[key.strategy].discard(conn)
            self.operators.discard(conn)
            send.close()
            self._after_disconnect(conn)

    def _after_disconnect(self, conn: ClientConn) -> None:
        closed = conn.ws.closed
        code = closed.code if closed is not None else None
        unexpected = conn.closed_by_gateway or code != GRACEFUL_CLOSE_CODE
        dropped = self.fair.forget(conn)
        log.info("gateway: client disconnected", conn=conn.conn_id, code=code, unexpected=unexpected,
                 dropped_requests=dropped)
        if conn.cancel_on_disconnect and unexpected and conn.authed and not self.closing:
            self.handlers.cancel_own_on_disconnect(conn)

    async def _reader(self, conn: ClientConn) -> None:
        while True:
            try:
                raw = await conn.ws.get_message()
            except ConnectionClosed:
                return
            if not self.on_message(conn, raw):
                await self.close_client(conn, POLICY_CLOSE_CODE, "too many bad frames")
                return

    async def _writer(self, conn: ClientConn, receive: trio.MemoryReceiveChannel[str]) -> None:
        try:
            async for data in receive:
                await conn.ws.send_message(data)
        except ConnectionClosed:
            return

    async def _auth_deadline(self, conn: ClientConn) -> None:
        with trio.move_on_after(self.auth_deadline):
            await conn.authed_event.wait()
        if not conn.authed:
            log.info("gateway: auth deadline passed", conn=conn.conn_id)
            await self.close_client(conn, POLICY_CLOSE_CODE, "authentication timeout")

    async def close_client(self, conn: ClientConn, code: int, reason: str) -> None:
        conn.closed_by_gateway = True
        try:
            await conn.ws.aclose(code, reason)
        except Exception:  # a broken transport is already closed
            log.debug("gateway: close failed", conn=conn.conn_id)

    def on_message(self, conn: ClientConn, raw: str | bytes) -> bool:
        """Handle one client frame; False when the client must be cut off. Never raises."""
        try:
            try:
                request = decode_request(raw)
            except RequestError as exc:
                conn.err(exc.code, exc.message, exc.incoming)
                return self._bad(conn)
            if self.trace is not None:
                self.trace.append(("received", (conn.strategy, request)))
            if not conn.authed:
                if isinstance(request, m.Auth):
                    self._on_auth(conn, request)
                    return True
                conn.err(ErrorCode.PERMISSION_DENIED, "authenticate first", incoming_echo(request))
                return self._bad(conn)
            if isinstance(request, m.Auth):
                conn.err(ErrorCode.ALREADY_AUTHENTICATED, "already authenticated", incoming_echo(request))
                return True
            conn.bad_frames = 0
            self.handlers.handle(conn, request)
            return True
        except Exception:
            log.exception("gateway: request failed", conn=conn.conn_id)
            conn.err(ErrorCode.SERVER_ERROR, "unexpected internal error", None)
            return True

    def _bad(self, conn: ClientConn) -> bool:
        conn.bad_frames += 1
        return conn.bad_frames < (MAX_BAD_FRAMES if conn.authed else 1)

    def _on_auth(self, conn: ClientConn, request: m.Auth) -> None:
        key = conn.key
        problem = check_auth(request, key, self.nonces[key.public_key], time.time())
        if problem is not None:
            log.info("gateway: auth failed", conn=conn.conn_id, reason=problem)
            conn.reply(m.Authenticated(False))
            return
        conn.authed = True
        conn.authed_event.set()
        log.info("gateway: client authenticated", conn=conn.conn_id, strategy=key.strategy)
        conn.reply(m.Authenticated(True))


def _ssl_context(config: GatewayConfig) -> ssl.SSLContext | None:
    if config.certfile is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.certfile, config.keyfile)
    return context


@asynccontextmanager
async def open_gateway(upstream_url: str, credentials: Credentials, config: GatewayConfig,
                       *, auth_deadline: float = AUTH_DEADLINE_SECS,
                       on_ready: Callable[[Gateway], None] | None = None,
                       **manager_options: Any) -> AsyncIterator[Gateway]:
    """Connect to QFEX (``open_order_manager`` with ``manager_options``, e.g. ``journal=``), then
    listen for clients on ``config.host``/``config.port``; yield the gateway (``gateway.url``).

    Refuses (``GatewayConfigError``) to listen beyond loopback without TLS.
    """
    check_listen(config)
    context = _ssl_context(config)
    async with open_order_manager(upstream_url, credentials, **manager_options) as oms, \
            trio.open_nursery() as nursery:
        gateway = Gateway(oms, config, nursery, auth_deadline)
        learnt = gateway.owners.learn_from_book()
        server = await nursery.start(lambda task_status=trio.TASK_STATUS_IGNORED: serve_websocket(
            gateway.handle, config.host, config.port, context, handler_nursery=nursery,
            max_message_size=2 ** 22, task_status=task_status))
        nursery.start_soon(gateway.watch_upstream)
        port = server.port
        host = config.host if ":" not in config.host else f"[{config.host}]"
        gateway.url = f"{'wss' if context else 'ws'}://{host}:{port}"
        log.info("gateway listening", url=gateway.url, upstream=upstream_url, owned_ids=learnt)
        if on_ready is not None:
            on_ready(gateway)
        try:
            yield gateway
        finally:
            gateway.closing = True
            for conn in list(gateway.clients):
                with trio.CancelScope(shield=True), trio.move_on_after(1):
                    await gateway.close_client(conn, GRACEFUL_CLOSE_CODE, "gateway closing")
            nursery.cancel_scope.cancel()


__all__ = ["ClientConn", "Gateway", "open_gateway"]
