"""One websocket connection to QFEX: connect, authenticate, subscribe, and paced sending.

The handshake reads frames itself, in order, before the manager's reader starts, so nothing the
exchange sends during it is lost: frames that are not handshake replies go to ``on_frame`` like any
other. Sending is paced by QFEX's weights in two buckets (general and cancel), so a burst of
strategy traffic waits here instead of being answered with ``RateLimited``; the kill switch skips
the pacer (``priority=True``). trio-websocket serialises concurrent sends with a FIFO lock.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import trio
import trio_websocket
from attrs import define, field, frozen

from qfex_oms import wsfix  # noqa: F401  (trio-websocket #184, see the module)
from qfex_oms.core.pacer import PacerSettings, TokenBucket, buckets_for
from qfex_oms.errors import AuthenticationError, ConnectError, Halted, InvalidArgument
from qfex_oms.logs import cap_frame, get_logger
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import Channel
from qfex_oms.protocol.errors import ProtocolError
from qfex_oms.protocol.limits import Bucket, weight_of
from qfex_oms.protocol.signing import make_auth

log = get_logger("qfex_oms.client.session")

FrameSink = Callable[[bytes | str], None]


def close_reason(exc: trio_websocket.ConnectionClosed) -> str:
    """``code N reason`` of a closed connection, as logs and errors show it."""
    reason = exc.reason
    if reason is None:
        return "no close reason"
    return f"code {reason.code} {reason.reason or ''}".rstrip()
# Every channel the manager keeps: its orders, its fills, and what the account holds.
SUBSCRIPTIONS = (Channel.ORDER_RESPONSES, Channel.FILLS, Channel.POSITIONS, Channel.BALANCES,
                 Channel.STOP_ORDERS)


@frozen
class Credentials:
    """An API key pair, or a JWT (``jwt``: QFEX's token from https://verify.qfex.com, sent instead of
    the HMAC signature; ``public_key`` still goes in the URL's ``?api_key=`` when given). Secrets are
    kept out of ``repr`` and every log line. ``account_id`` selects a subaccount."""

    public_key: str
    secret_key: str = field(default="", repr=False)
    account_id: str | None = None
    jwt: str | None = field(default=None, repr=False)

    @classmethod
    def from_env(cls, public_var: str = "QFEX_PUBLIC_KEY", secret_var: str = "QFEX_SECRET_KEY",
                 account_var: str = "QFEX_ACCOUNT_ID") -> Credentials:
        public, secret = os.environ.get(public_var), os.environ.get(secret_var)
        missing = [name for name, value in ((public_var, public), (secret_var, secret)) if not value]
        if missing:
            raise InvalidArgument(f"missing environment variable(s): {', '.join(missing)}")
        assert public is not None and secret is not None
        return cls(public, secret, os.environ.get(account_var) or None)


def auth_frame(credentials: Credentials) -> m.Auth:
    """The ``auth`` request: ``{"jwt": ...}`` with a JWT, else the HMAC form (qfex-api.md §2.3)."""
    if credentials.jwt:
        return m.Auth(jwt=credentials.jwt, account_id=credentials.account_id)
    return make_auth(credentials.public_key, credentials.secret_key, account_id=credentials.account_id)


def url_with_key(url: str, public_key: str, jwt: str | None = None) -> str:
    """QFEX wants the public key as ``?api_key=`` (qfex-api.md §2.1), or with a JWT the token as
    ``?jwt=`` (its AsyncAPI's ``jwt`` security scheme; the key too when there is one); any other
    query is kept. The URL with a JWT in it is never logged (``self.url`` is, without the query)."""
    parts = urlsplit(url)
    if parts.scheme not in ("ws", "wss"):
        raise InvalidArgument(f"the exchange URL must start with ws:// or wss://, got {url!r}")
    ours = [("api_key", public_key)] if public_key or not jwt else []
    if jwt:
        ours.append(("jwt", jwt))
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in ("api_key", "jwt")] + ours
    return urlunsplit(parts._replace(path=parts.path or "/", query=urlencode(query)))


@define(eq=False)
class Session:
    ws: trio_websocket.WebSocketConnection
    pacer: PacerSettings | None
    on_sent: Callable[[bytes], None] | None = None  # every frame written but auth
    _buckets: dict[Bucket, TokenBucket] = field(init=False)
    _locks: dict[Bucket, trio.Lock] = field(init=False)
    sent: int = 0
    _auth_sent: m.Auth | None = field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self._buckets = buckets_for(self.pacer, trio.current_time()) if self.pacer else {}
        self._locks = {b: trio.Lock() for b in Bucket}

    async def send(self, request: m.Request, *, priority: bool = False,
                   blocked: Callable[[m.Request], bool] | None = None) -> None:
        """Pace (unless ``priority``), then send. Raises trio_websocket.ConnectionClosed if it dropped."""
        await self.wait_turn(request, priority=priority, blocked=blocked)
        await self.write(request)

    async def wait_turn(self, request: m.Request, *, priority: bool = False,
                        blocked: Callable[[m.Request], bool] | None = None) -> None:
        """Wait until the pacer lets ``request`` go. Nothing reaches the wire here, so a caller cut
        off by its deadline in this call knows the exchange never saw the request.

        ``blocked`` is asked on reaching the head of the pacer's queue and again after the pacing
        wait, so a kill switch pulled while an order waited for its turn stops that order here,
        before it reaches the wire (raises ``Halted``), without spending tokens or holding back
        the requests queued behind it (the kill switch's own snapshot query among them).
        """
        if self.pacer is not None and not priority:
            bucket, weight = weight_of(type(request).TYPE)
            async with self._locks[bucket]:
                if blocked is not None and blocked(request):
                    raise Halted("trading is halted")
                tokens = self._buckets[bucket]
                delay = tokens.delay(trio.current_time(), weight)
                if delay > 0:
                    await trio.sleep(delay)
                if blocked is not None and blocked(request):
                    raise Halted("trading is halted")
                tokens.take(trio.current_time(), weight)
        if blocked is not None and blocked(request):
            raise Halted("trading is halted")

    async def write(self, request: m.Request) -> None:
        """Put ``request`` on the wire (journaled first through ``on_sent``)."""
        data = codec.encode(request)
        if self.on_sent is not None and not isinstance(request, m.Auth):
            self.on_sent(data)  # auth frames carry a signature: they are never journaled
        await self.ws.send_message(data.decode())
        self.sent += 1

    async def handshake(self, credentials: Credentials, *, cancel_on_disconnect: bool,
                        on_frame: FrameSink) -> None:
        """Authenticate, subscribe and opt in to cancel-on-disconnect; raise AuthenticationError."""
        auth = auth_frame(credentials)
        await self.send(auth, priority=True)
        self._auth_sent = auth
        await self._expect(lambda r: isinstance(r, m.Authenticated), on_frame, "authenticating")
        for channel in SUBSCRIPTIONS:
            await self.send(m.Subscribe((channel,)), priority=True)
        if cancel_on_disconnect:
            await self.send(m.CancelOnDisconnect(True), priority=True)
        wanted = {str(c) for c in SUBSCRIPTIONS}
        acked = not cancel_on_disconnect

        def done(reply: m.Reply) -> bool:
            nonlocal acked
            if isinstance(reply, m.Subscribed):
                wanted.discard(reply.channel)
            elif isinstance(reply, m.Ack) and (reply.incoming_message or {}).get("type") == \
                    m.CancelOnDisconnect.TYPE:
                acked = True
            return not wanted and acked

        await self._expect(done, on_frame, "subscribing")

    def _whose(self) -> str:
        auth = self._auth_sent
        if auth is None or auth.hmac is None:
            return ""
        account = f" (subaccount {auth.account_id})" if auth.account_id else ""
        return f" of public key {auth.hmac.public_key}{account}"

    def _clock(self) -> str:
        """The hint for a refused signature: it covers the local time, which the exchange checks."""
        auth = self._auth_sent
        if auth is None or auth.hmac is None:
            return "this machine's clock is off: sync it (NTP)"
        local = dt.datetime.fromtimestamp(auth.hmac.unix_ts, dt.UTC).isoformat().replace("+00:00", "Z")
        return (f"this machine's clock is off (the signature carries unix_ts {auth.hmac.unix_ts}, "
                f"{local}; QFEX accepts only a window around its own time): sync it (NTP), then "
                "`qfex-oms check` reports the skew")

    async def _expect(self, done: Callable[[m.Reply], bool], on_frame: FrameSink, stage: str) -> None:
        while True:
            try:
                raw = await self.ws.get_message()
            except trio_websocket.ConnectionClosed as exc:
                raise AuthenticationError(f"the exchange closed the connection while {stage}"
                                          f"{self._whose()}: {close_reason(exc)}") from None
            try:
                reply = codec.decode_reply(raw)
            except ProtocolError as exc:
                log.warning("malformed frame", error=str(exc), raw=cap_frame(exc.raw))
                continue
            if isinstance(reply, m.Authenticated) and not reply.authenticated:
                if self._auth_sent is not None and self._auth_sent.jwt:
                    raise AuthenticationError("the exchange refused the JWT: it may have expired or "
                                              "belong to another venue; fetch a new one (verify.qfex.com)")
                raise AuthenticationError(f"the exchange refused the signature{self._whose()}: the "
                                          f"secret key does not match the public key, or {self._clock()}")
            if isinstance(reply, m.Err) and stage == "authenticating":
                raise AuthenticationError(f"the exchange refused authentication{self._whose()}: "
                                          f"{reply.error_code} {reply.message or ''}".rstrip()
                                          + f"; check the keys, or {self._clock()}")
            if done(reply):
                return
            if not isinstance(reply, m.Subscribed | m.Ack | m.Authenticated):
                on_frame(raw)


async def connect(
    nursery: trio.Nursery, url: str, credentials: Credentials
) -> trio_websocket.WebSocketConnection:
    """Open the websocket; a refused upgrade becomes AuthenticationError naming the HTTP status."""
    try:
        return await trio_websocket.connect_websocket_url(
            nursery, url_with_key(url, credentials.public_key, credentials.jwt), message_queue_size=4096,
            max_message_size=64 * 1024 * 1024)
    except trio_websocket.ConnectionRejected as exc:
        raise rejected_upgrade(url, exc.status_code, credentials.public_key) from None


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


def is_loopback(url: str) -> bool:
    return urlsplit(url).hostname in LOOPBACK_HOSTS


def rejected_upgrade(url: str, status: int | None, public_key: str) -> AuthenticationError:
    """The exchange answered the websocket upgrade with an HTTP error: for 401/403 it refused the
    public key (sent as ``?api_key=``), before any signature was checked; with no public key, the
    JWT (``?jwt=``)."""
    host = urlsplit(url).netloc or "the exchange"
    if status in (401, 403) and not public_key:
        return AuthenticationError(f"{host} refused the JWT (HTTP {status}): it may have expired or "
                                   "belong to another venue; fetch a new one (verify.qfex.com)")
    if status in (401, 403):
        return AuthenticationError(
            f"{host} refused the public key {public_key} (HTTP {status}, before any signature was "
            "checked): check the public key, and that it belongs to this venue (UAT keys do not work "
            "on production, nor the other way round)")
    return AuthenticationError(f"{host} refused the websocket upgrade: HTTP {status}")


def connect_failure(url: str, exc: BaseException) -> ConnectError:
    """A network failure before any reply, as ``ConnectError``: nothing listening, DNS, TLS, or no
    answer in time; a loopback URL is most likely a simulator that is not running."""
    if isinstance(exc, trio.TooSlowError):
        why = "no answer in time"
    elif isinstance(exc, OSError):
        why = exc.strerror or str(exc) or type(exc).__name__
    else:
        why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    hint = ("is `qfex-oms sim` running? start one with `qfex-oms sim --port PORT` and pass the URL it "
            "prints to --url") if is_loopback(url) else "check the URL, the network and the venue's status"
    return ConnectError(f"could not connect to {url}: {why}; {hint}", url)
