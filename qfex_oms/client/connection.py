"""Keep one QFEX session alive, and tell the owner (the manager) as it comes and goes.

``Connection`` owns the supervisor task: connect, authenticate and subscribe (``session.py``), run
the reader (each frame straight to the owner, which never awaits application work), then hand the
new session to the owner, which starts its own per-connection tasks in the connection's nursery
and resyncs. When the connection drops the owner hears ``connection_down`` (everything in flight
becomes ambiguous) and the supervisor reconnects with jittered backoff.

The owner is anything with the four methods of ``ConnectionOwner``: the connection knows nothing
else of the manager, and the manager reaches the connection only through its public methods.
"""

from __future__ import annotations

import random
from contextvars import ContextVar
from typing import Protocol, cast

import trio
import trio_websocket
from attrs import define, frozen
from wsproto.utilities import LocalProtocolError

from qfex_oms.client.session import (
    Credentials,
    Session,
    close_reason,
    connect,
    connect_failure,
    rejected_upgrade,
    url_with_key,
)
from qfex_oms.client.wsconn import UpgradeRejected, WsClient, connect_ws
from qfex_oms.core.pacer import PacerSettings
from qfex_oms.errors import AuthenticationError, ConnectError, NotConnected, QfexOmsError
from qfex_oms.logs import get_logger

log = get_logger("qfex_oms.manager")

# LocalProtocolError: wsproto refusing a frame trio-websocket sent on a closing connection (its
# issue #184, fixed for pings by qfex_oms.wsfix): the connection is over, not the manager.
CONNECTION_ERRORS = (AuthenticationError, ConnectError, OSError, trio.TooSlowError,
                     trio_websocket.HandshakeError, trio_websocket.ConnectionClosed, LocalProtocolError)


# Which websocket client a connection opens: "wsproto" (qfex_oms.client.wsconn, the default: the
# connection's reader drives wsproto itself, one task switch per reply) or "trio-websocket" (its own
# reader task and channel; kept for side-by-side measurement, ``bench`` row 3, and as a fallback).
# A context variable, so a benchmark can open one manager on each in one trio run.
TRANSPORT: ContextVar[str] = ContextVar("qfex_oms_transport", default="wsproto")
MAX_MESSAGE_SIZE = 64 * 1024 * 1024  # as the trio-websocket path: a full snapshot fits


def sole_exception(exc: BaseException) -> BaseException:
    """The one exception inside (nested) one-member groups, which trio's strict nurseries make."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


@define
class ReconnectPolicy:
    initial: float = 0.5
    maximum: float = 30.0
    multiplier: float = 2.0
    jitter: float = 0.5  # +/- this fraction of the delay

    def delay(self, attempt: int) -> float:
        base = min(self.maximum, self.initial * self.multiplier ** max(0, attempt - 1))
        return base * (1 + random.uniform(-self.jitter, self.jitter))


@frozen
class ConnectionSettings:
    """The part of the manager's settings the connection uses."""

    handshake_timeout: float
    cancel_on_disconnect: bool
    pacer: PacerSettings | None
    reconnect: ReconnectPolicy | None


class ConnectionOwner(Protocol):
    """What a connection reports to. Each method is called in the connection's own tasks."""

    def frame_received(self, raw: bytes | str) -> None:
        """One frame from the exchange; must not await (it runs in the reader)."""

    def frame_written(self, data: bytes) -> None:
        """One frame just written to the socket (the journal records it)."""

    async def connection_up(self, session: Session, nursery: trio.Nursery, first: bool) -> None:
        """A session is authenticated and subscribed: start per-connection tasks in ``nursery`` and
        resync. Waiters of ``wait_connected`` are woken after this returns."""

    def connection_down(self, reason: str) -> None:
        """The session is gone; everything in flight on it is ambiguous."""


class Connection:
    """The supervisor of one QFEX connection at a time (see the module docstring)."""

    def __init__(self, url: str, credentials: Credentials, settings: ConnectionSettings,
                 owner: ConnectionOwner) -> None:
        self.url = url
        self.credentials = credentials  # read at every attempt: a test may swap it meanwhile
        self.settings = settings
        self._owner = owner
        self.session: Session | None = None
        self.closing = False
        self._ready = trio.Event()
        self._scope: trio.CancelScope | None = None
        self._closing_ws = False

    async def wait_connected(self) -> None:
        """Return once a connection is authenticated and subscribed (wrap it in a trio timeout).
        Raises ``NotConnected`` once the manager is closing."""
        while not self._ready.is_set() or self.closing:
            if self.closing:
                raise NotConnected("the order manager is closed")
            await self._ready.wait()

    async def supervise(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        attempt, first = 0, True
        while not self.closing:
            reason = "closed"
            try:
                reason = await self._run(first, task_status)
                attempt = 0
            except (*CONNECTION_ERRORS, BaseExceptionGroup) as caught:
                # The connection's nursery wraps what failed in it (a refused upgrade is raised
                # by trio-websocket's reader task, not by connect()): look inside.
                exc = sole_exception(caught)
                if not isinstance(exc, CONNECTION_ERRORS):
                    raise
                if first and not self._ready.is_set():  # never connected: tell the caller why
                    failure, chained = self._first_failure(exc)
                    raise failure from (exc if chained else None)
                reason = repr(exc)
            if first and self.session is None and not self._ready.is_set():
                return
            first = False
            self._lost(reason)
            if self.closing or self.settings.reconnect is None:
                return
            attempt += 1
            delay = self.settings.reconnect.delay(attempt)
            log.warning("disconnected; reconnecting", reason=reason, attempt=attempt, delay=round(delay, 3))
            await trio.sleep(delay)

    def _first_failure(self, exc: BaseException) -> tuple[QfexOmsError, bool]:
        """Why the very first connection failed, as the caller of ``open_order_manager`` sees it,
        and whether the original error is worth chaining (only when it is not already explained).
        The exchange refusing us is an ``AuthenticationError``; not reaching it (nothing listening,
        DNS, TLS, no answer in time) a ``ConnectError``, which names what to check."""
        if isinstance(exc, AuthenticationError):
            return exc, False
        if isinstance(exc, trio_websocket.ConnectionRejected):
            return rejected_upgrade(self.url, exc.status_code, self.credentials.public_key), False
        return connect_failure(self.url, exc), True

    async def _run(self, first: bool, task_status: trio.TaskStatus[None]) -> str:
        reason = "closed by the exchange"
        async with trio.open_nursery() as conn:
            with trio.fail_after(self.settings.handshake_timeout):
                ws = await self._open(conn)
                session = Session(cast(trio_websocket.WebSocketConnection, ws), self.settings.pacer,
                                  on_sent=self._owner.frame_written)
                try:
                    await session.handshake(self.credentials,
                                            cancel_on_disconnect=self.settings.cancel_on_disconnect,
                                            on_frame=self._owner.frame_received)
                except BaseException:
                    # Refused or too slow: close the socket too, not only the tasks.
                    with trio.CancelScope(shield=True), trio.move_on_after(2):
                        await ws.aclose()
                    raise
            closed = trio.Event()

            async def reader() -> None:
                nonlocal reason
                try:
                    if isinstance(ws, WsClient):
                        await ws.run_reader(self._owner.frame_received)  # wakes callers directly
                    while True:
                        self._owner.frame_received(await ws.get_message())
                except trio_websocket.ConnectionClosed as exc:
                    reason = close_reason(exc)
                closed.set()
                # On a close of our own (exit or restart) trio-websocket's reader must still finish
                # the close handshake that aclose() waits for, so close_socket tears down after it.
                if not self._closing_ws:
                    conn.cancel_scope.cancel()

            self.session = session
            self._scope, self._closing_ws = conn.cancel_scope, False
            conn.start_soon(reader)
            log.info("connected", url=self.url, public_key=self.credentials.public_key)
            await self._owner.connection_up(session, conn, first)
            self._ready.set()
            if first:
                task_status.started()
            await closed.wait()
        return reason

    async def _open(self, nursery: trio.Nursery) -> WsClient | trio_websocket.WebSocketConnection:
        """The websocket of one attempt, on the transport ``TRANSPORT`` names."""
        if TRANSPORT.get() == "trio-websocket":
            return await connect(nursery, self.url, self.credentials)
        key = self.credentials.public_key
        try:
            return await connect_ws(url_with_key(self.url, key, self.credentials.jwt),
                                    max_message_size=MAX_MESSAGE_SIZE)
        except UpgradeRejected as exc:
            raise rejected_upgrade(self.url, exc.status_code, key) from None

    def _lost(self, reason: str) -> None:
        self.session = None
        if self._ready.is_set():
            # Only a connection that was up gets a new event: a failed attempt keeps the one that
            # waiters are parked on, so the next success wakes them.
            self._ready = trio.Event()
        self._owner.connection_down(reason)

    async def restart(self, reason: str) -> None:
        """Close the current connection on purpose; the supervisor connects again."""
        log.warning("restarting the connection", reason=reason)
        await self.close_socket(1000, "resynchronise")

    async def close_socket(self, code: int, reason: str) -> None:
        """Close the connection on purpose: handshake first (bounded), then stop its tasks."""
        session, scope = self.session, self._scope
        if session is None:
            return
        self._closing_ws = True
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await session.ws.aclose(code, reason)
        if scope is not None:
            scope.cancel()

    async def close(self) -> None:
        """For good: no reconnect; ``wait_connected`` raises from now on."""
        self.closing = True
        await self.close_socket(1000, "closing")
        self._ready.set()  # wake wait_connected(), which sees ``closing`` and raises
