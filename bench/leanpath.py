"""Prototypes of the lean cancel path, measured side by side with the manager as it is (issue 19).

The manager's ``cancel`` is owned elsewhere, so the change is prototyped here and installed on one
manager instance; ``bench`` runs it interleaved with an unchanged manager on the reference venue,
each on its own connection. What the lean path changes, each without weakening a guarantee:

- **One deadline scope per request.** ``_transmit`` enters a shielded scope for the send, then
  ``_wait_for`` enters a second one for the wait. Here one scope does both: shielded, with the
  send's deadline, while the frame goes out (so a caller cancelled mid-send never leaves it
  half-decided, and a deadline lapsing in the pacer's queue still means NOT_SENT); then unshielded,
  with a fresh ``request_timeout`` deadline, for the wait. A caller cancelled during the send is
  cancelled at the wait's first checkpoint, as before.
- **No scheduler pass for the pacer when its bucket is free and has the tokens** (``wait_turn``
  below, ``TokenBucket.try_take``): the lock is taken only when someone is queued or must sleep.
- Everything else (the core's calls, journal-before-wire through ``Session.write``, the NOT_SENT /
  lost distinction, the RateLimited retry) is the manager's own code, called as it is.

Judged in a second pass (bench/README.md): over eight interleaved runs the one-scope cancel was
no faster than the manager's two scopes (-0.02x to +0.13x, median +0.02x), so the manager keeps
``_transmit`` + ``_wait_for``; the prototype stays here as the record of what was measured.

Tried and dropped: parking waiting tasks directly (``wait_task_rescheduled``) instead of a
``trio.Event`` per wait in ``client/waits.py``: no difference the bench could see in two runs.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import trio
import trio_websocket
from wsproto.utilities import LocalProtocolError

from qfex_oms import OrderManager
from qfex_oms.client.outcomes import SendOutcome
from qfex_oms.client.results import CancelResult
from qfex_oms.client.session import Session
from qfex_oms.core.cancel import CancelIntent
from qfex_oms.core.model import CancelRequest
from qfex_oms.errors import Halted
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.limits import weight_of

SEND_ERRORS = (trio_websocket.ConnectionClosed, trio.BrokenResourceError, trio.ClosedResourceError,
               LocalProtocolError)


async def send_and_wait(oms: OrderManager, session: Session, frames: list[m.Request], subject: object,
                        done: Callable[[], bool]) -> tuple[SendOutcome | None, bool]:
    """``_transmit`` then ``_wait_for`` under one scope. Returns (the send's outcome as
    ``_transmit`` gives it, whether ``done()`` holds at the end)."""
    timeout = oms.settings.request_timeout
    deadline = trio.current_time() + timeout
    paced = session.pacer is not None
    written, writing = 0, False
    outcome: SendOutcome | None = None
    with trio.CancelScope(shield=True, deadline=deadline) as scope:
        for frame in frames:
            try:
                await wait_turn(session, frame, oms._gate)
                if scope.cancel_called:
                    break
                if paced:
                    scope.deadline = trio.current_time() + timeout
                writing = True
                await session.write(frame)
                writing, written = False, written + 1
                if paced:
                    scope.deadline = deadline
            except Halted:
                return SendOutcome.HALTED, done()
            except SEND_ERRORS:
                return SendOutcome.SEND_FAILED, done()
        if written != len(frames):
            outcome = SendOutcome.NOT_SENT if written == 0 and not writing else SendOutcome.TIMEOUT
            return outcome, done()
        # Sent: the same scope bounds the wait for the answer, and the caller may cancel it again.
        scope.shield = False
        scope.deadline = trio.current_time() + timeout
        while not done() and not oms.closing:
            await oms.waiters.next_change(subject)
    return None, done()


async def wait_turn(session: Session, request: m.Request, blocked: Callable[[m.Request], bool]) -> None:
    """``Session.wait_turn`` with a fast path: when the bucket's lock is free (so nobody is queued
    ahead) and its tokens are there, take them without acquiring the lock, which costs a
    scheduler pass. ``blocked`` is asked first, as on the slow path; the write that follows is the
    checkpoint."""
    if session.pacer is not None:
        bucket, weight = weight_of(type(request).TYPE)
        if not session._locks[bucket].locked():
            if blocked(request):
                raise Halted("trading is halted")
            if session._buckets[bucket].try_take(trio.current_time(), weight):
                return
    await session.wait_turn(request, blocked=blocked)


def _done(request: CancelRequest) -> Callable[[], bool]:
    return lambda: request.done


async def lean_cancel(oms: OrderManager, target: Any = None, *, order_id: str | None = None,
                      client_order_id: str | None = None, twap_id: str | None = None,
                      client_twap_id: str | None = None, symbol: str | None = None) -> CancelResult:
    """``OrderManager.cancel`` with ``send_and_wait`` in place of ``_transmit`` + ``_wait_for``."""
    intent = CancelIntent(target, order_id, client_order_id, twap_id, client_twap_id, symbol)
    intent.selector()
    session = oms._usable_session()
    request = oms.core.cancel(intent)
    for attempt in range(oms.settings.cancel_retries + 1):
        outcome, answered = await send_and_wait(oms, session, oms.core.take_frames(), request,
                                                _done(request))
        if outcome is SendOutcome.NOT_SENT:
            oms.core.withdraw_cancel(request, outcome)
            oms.flush()
            if request.done:
                break
            outcome = None
            answered = await oms._wait_for(request, _done(request))
        if outcome is None and not answered:
            outcome = oms._lapsed()
        if outcome is not None:
            oms.core.cancel_lost(request, outcome)
            oms.flush()
            oms.settler.want()
            break
        if request.status != "RateLimited" or attempt == oms.settings.cancel_retries:
            break
        await trio.sleep(0.2 * 2 ** attempt)
        session = oms._usable_session()
        request = oms.core.cancel(intent, retry=True)
    return CancelResult.of(request)


def install(oms: OrderManager) -> None:
    """The lean cancel on this one manager."""
    oms.cancel = types.MethodType(lean_cancel, oms)  # type: ignore[method-assign]
