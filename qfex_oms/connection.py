"""The connection behind OrderManager: keep one QFEX session alive, and what happens as it comes and goes.

A supervisor task owns the connection: connect, authenticate and subscribe (session.py), then run
the reader (frames straight into the core, never awaiting application work), the follow-up sender
(cancels the reader's replies released, e.g. one held for an ACK) and the settler (reconciles
orders marked UNKNOWN or missing fills from a snapshot). When the connection drops, everything in
flight is marked ambiguous and it reconnects with jittered backoff, re-authenticates, re-subscribes
and resyncs. OrderManager (manager.py) inherits this; the split is for reading, the state is one.
"""

from __future__ import annotations

import random

import structlog
import trio
import trio_websocket
from attrs import define
from wsproto.utilities import LocalProtocolError

from qfex_oms.errors import AuthenticationError, NotConnected, RequestTimeout
from qfex_oms.errors import RequestFailed as RequestFailedError
from qfex_oms.events import Connected, Disconnected, Reconnected
from qfex_oms.protocol import messages as m
from qfex_oms.session import Session, connect

log = structlog.get_logger("qfex_oms.manager")

FILL_GAP_GRACE = 0.25  # seconds a FILLED report's fill_response may lag before its trade is fetched
NOT_SENT = "NOT_SENT"  # one of _transmit's outcomes: the frame provably never reached the wire
# LocalProtocolError: wsproto refusing a frame trio-websocket sent on a closing connection (its
# issue #184, fixed for pings by qfex_oms.wsfix): the connection is over, not the manager.
_CONNECTION_ERRORS = (AuthenticationError, OSError, trio.TooSlowError, trio_websocket.HandshakeError,
                      trio_websocket.ConnectionClosed, LocalProtocolError)


def _sole(exc: BaseException) -> BaseException:
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



class ConnectionSupervisor:
    """The connection half of OrderManager (its methods run on the same instance)."""

    async def wait_connected(self) -> None:
        """Return once a connection is authenticated and subscribed (wrap it in a trio timeout)."""
        while not self._ready.is_set() or self._closing:
            if self._closing:
                raise NotConnected("the order manager is closed")
            await self._ready.wait()

    async def _supervise(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        attempt, first = 0, True
        while not self._closing:
            reason = "closed"
            try:
                reason = await self._run_connection(first, task_status)
                attempt = 0
            except (*_CONNECTION_ERRORS, BaseExceptionGroup) as caught:
                # The connection's nursery wraps what failed in it (a refused upgrade is raised
                # by trio-websocket's reader task, not by connect()): look inside.
                exc = _sole(caught)
                if not isinstance(exc, _CONNECTION_ERRORS):
                    raise
                if first and not self._ready.is_set():  # never connected: tell the caller why
                    if isinstance(exc, AuthenticationError):
                        raise exc from None
                    if isinstance(exc, trio_websocket.ConnectionRejected):
                        raise AuthenticationError(f"the exchange refused the connection: "
                                                  f"HTTP {exc.status_code}") from None
                    raise AuthenticationError(f"could not connect to {self.url}: {exc!r}") from exc
                reason = repr(exc)
            if first and self._session is None and not self._ready.is_set():
                return
            first = False
            self._connection_lost(reason)
            if self._closing or self.settings.reconnect is None:
                return
            attempt += 1
            delay = self.settings.reconnect.delay(attempt)
            log.warning("disconnected; reconnecting", reason=reason, attempt=attempt, delay=round(delay, 3))
            await trio.sleep(delay)

    async def _run_connection(self, first: bool, task_status: trio.TaskStatus[None]) -> str:
        reason = "closed by the exchange"
        async with trio.open_nursery() as conn:
            with trio.fail_after(self.settings.handshake_timeout):
                ws = await connect(conn, self.url, self.credentials)
                session = Session(ws, self.settings.pacer, on_sent=self._frame_sent)
                try:
                    await session.handshake(self.credentials,
                                            cancel_on_disconnect=self.settings.cancel_on_disconnect,
                                            on_frame=self._on_frame)
                except BaseException:
                    # Refused or too slow: close the socket too, not only the tasks.
                    with trio.CancelScope(shield=True), trio.move_on_after(2):
                        await ws.aclose()
                    raise
            send, recv = trio.open_memory_channel[list[m.Request]](float("inf"))
            self._followups = send
            self._session = session
            conn.start_soon(self._follow_up_sender, session, recv)
            closed = trio.Event()

            async def reader() -> None:
                nonlocal reason
                try:
                    while True:
                        self._on_frame(await ws.get_message())
                except trio_websocket.ConnectionClosed as exc:
                    reason = f"code {exc.reason.code} {exc.reason.reason or ''}".rstrip()
                closed.set()
                # On a close of our own (exit or restart) trio-websocket's reader must still finish
                # the close handshake that aclose() waits for, so _close_ws tears down after it.
                if not self._closing_ws:
                    conn.cancel_scope.cancel()

            self._conn_scope, self._closing_ws = conn.cancel_scope, False
            conn.start_soon(reader)
            self._publish(Connected(self.url))
            log.info("connected", url=self.url, public_key=self.credentials.public_key)
            if not first or self.resync_on_connect:
                self.resync_on_connect = False
                await self._resync_after_connect()
            conn.start_soon(self._settler)
            self._ready.set()
            if first:
                task_status.started()
            await closed.wait()
        return reason

    async def _resync_after_connect(self) -> None:
        """Reconcile on a new connection. A failure here must not end the manager: the connection
        drops again (the supervisor reconnects) or the settler retries the snapshot later."""
        try:
            with trio.move_on_after(self.settings.request_timeout * 3) as scope:
                diff = await self.reconcile()
                self._publish(Reconnected(diff))
                log.info("resynced after reconnect", adopted=len(diff.adopted),
                         settled=len(diff.settled), fills=len(diff.fills_added))
            if scope.cancelled_caught:
                self._want_settle()
        except (RequestTimeout, RequestFailedError, NotConnected) as exc:
            log.warning("resync failed; it will be retried", error=str(exc))
            self._want_settle()

    def _connection_lost(self, reason: str) -> None:
        self._session = None
        self._followups = None
        if self._ready.is_set():
            # Only a connection that was up gets a new event: a failed attempt keeps the one that
            # waiters are parked on, so the next success wakes them.
            self._ready = trio.Event()
        self.core.connection_lost()
        self._fail_all_slots(reason)
        self._flush()
        self._publish(Disconnected(reason))

    async def _follow_up_sender(self, session: Session,
                                recv: trio.MemoryReceiveChannel[list[m.Request]]) -> None:
        """Sends what the reader's replies triggered (a cancel held until its order's ACK)."""
        async for frames in recv:
            for frame in frames:  # one at a time, so a failure knows exactly what went out
                while (outcome := await self._transmit(session, [frame])) == NOT_SENT:
                    # Not sent, so it must still go; but let a dropped connection end this task.
                    await trio.lowlevel.checkpoint()
                    if self._session is not session:
                        return
                if outcome is not None:
                    return

    async def _settler(self) -> None:
        """Reconcile, soon after something was marked for settlement, in the background."""
        while True:
            await self._settle_wanted.wait()
            await trio.sleep(0.05)
            self._settle_wanted = trio.Event()
            if not self._settle_needed:
                # Only fill gaps: give the missing fill_responses a moment before asking.
                await trio.sleep(FILL_GAP_GRACE)
                self._fill_gaps = {o for o in self._fill_gaps if o.fill_total < o.filled_quantity}
                if not self._fill_gaps:
                    continue
            self._settle_needed = False
            self._fill_gaps = set()
            try:
                diff = await self.reconcile()
                log.info("settled from snapshot", settled=len(diff.settled), adopted=len(diff.adopted))
            except (RequestTimeout, RequestFailedError, NotConnected) as exc:
                log.warning("settlement failed; will retry on the next trigger", error=str(exc))

    async def _restart_connection(self, reason: str) -> None:
        log.warning("restarting the connection", reason=reason)
        await self._close_ws(1000, "resynchronise")

    async def _close_ws(self, code: int, reason: str) -> None:
        """Close the connection on purpose: handshake first (bounded), then stop its tasks."""
        session, scope = self._session, self._conn_scope
        if session is None:
            return
        self._closing_ws = True
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await session.ws.aclose(code, reason)
        if scope is not None:
            scope.cancel()

    async def _close(self) -> None:
        self._closing = True
        await self._close_ws(1000, "closing")
        # Calls still in flight get no answer now: wake them at once rather than at their deadline.
        self._fail_all_slots("the order manager is closed")
        for event in self._waiters.values():
            event.set()
        self._waiters.clear()
        self._ready.set()  # wait_connected() sees _closing and raises
        for stream in list(self._streams):
            stream.close()
