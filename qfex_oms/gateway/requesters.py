"""Which client connection an ``err`` from QFEX answers.

QFEX sends an ``err`` only on the connection whose request it refuses: it is a reply, not a
report. The gateway sends every client's requests on its one connection, so it remembers who
asked. Each frame the manager writes while a handler runs for a client (in that handler's task:
the manager writes in its caller's task) is noted under the key its echo will carry, oldest first,
since QFEX answers one connection's requests in order. An ``err`` goes to the connection that sent
what it echoes, and to nobody else: not to the strategy that owns the order (an operator's cancel
of mm's order is the operator's to hear about), nor to that strategy's other connections.

Frames the manager writes on its own (a cancel by id it owes a group cancel on an ACK) have no
requester, and an ``err`` that arrives after its handler gave up (the manager's own deadline) has
none left: both fall back to the order's owner (``routing.err_owner``), as before. What the
gateway sends of its own accord for a client (the cancels it makes of a client's
``cancel_all_orders``, already acked; the kill switch; a cancel-on-disconnect, whose client went
away) is noted as nobody's (``asking(None)``): QFEX's refusals of it reach no client, since no
client sent what they echo.

Requests the gateway answers its clients itself (``GATEWAY_ANSWERS``: the manager's queries, its
leverage change, the kill switch's ``cancel_all_orders``) are nobody's either, as before: their
``err`` is the manager's answer, which the handler turns into its own reply to the client (an
``err`` echoing what the client sent; for the kill switch, the ``ack`` already given). Forwarding
QFEX's as well gave a client two errs for one query, the first echoing a request it never sent (a
``get_user_orders`` with the manager's paging).

Known limit: a note is forgotten when an ``err`` claims it or when its handler's block ends, not when
QFEX answers otherwise. If two connections send the same request (same type and ids: two of mm's
connections modifying one order) and QFEX accepts the first and refuses the second, the ``err`` goes to
the first when the manager reads both answers before the first handler resumes. Matching an err to
the request the manager resolved with it would close this; it has not been needed yet.

Pure bookkeeping: no I/O. The key is the echo's request type, symbol and ids (``_KEY_FIELDS``); the
echo's numbers are not compared, since QFEX may print them differently from what it was sent.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Generic, TypeVar

from attrs import define, field

Conn = TypeVar("Conn")
Key = tuple[str | None, ...]

_KEY_FIELDS = ("symbol", "cancel_order_id_type", "order_id", "client_order_id", "twap_id",
               "client_twap_id", "stop_order_id")
# The request types whose answers the manager waits for in its reply slots (``manager._REPLY_OF``):
# a refusal raises ``RequestFailed`` in the handler, which answers the client itself.
GATEWAY_ANSWERS = frozenset({"get_user_orders", "get_user_trades", "get_user_leverage",
                             "get_available_leverage_levels", "set_user_leverage", "cancel_all_orders"})


def echo_key(request: Any) -> Key | None:
    """The key of a request as written (``{"type", "params"}``) or as QFEX echoes it; None when it
    names no request (not an object, no type)."""
    if not isinstance(request, dict):
        return None
    kind, params = request.get("type"), request.get("params")
    if not isinstance(kind, str):
        return None
    if not isinstance(params, dict):
        params = {}
    return (kind, *(value if isinstance(value := params.get(name), str) else None
                    for name in _KEY_FIELDS))


@define(slots=True, eq=False)
class _Asking(Generic[Conn]):
    conn: Conn | None  # None: the gateway's own work for a client, answered to nobody
    keys: list[Key] = field(factory=list)
    # The block ended: a task spawned inside it (trio copies the spawner's context) still finds this
    # object in its context, but what it writes later is not ``conn``'s request, and a key noted
    # then would never be forgotten.
    over: bool = False


class Requesters(Generic[Conn]):
    """The requests in flight on the gateway's connection, by echo key, with who sent each."""

    def __init__(self) -> None:
        self._waiting: dict[Key, deque[_Asking[Conn]]] = {}
        self._current: ContextVar[_Asking[Conn] | None] = ContextVar("gateway_requester", default=None)

    @contextmanager
    def asking(self, conn: Conn | None) -> Iterator[None]:
        """Frames the manager writes in this block (this task) are ``conn``'s requests (None: no
        client's, and their errs go to nobody). On leaving, its requests still unanswered by an
        ``err`` are forgotten (answered otherwise, or lost)."""
        asking: _Asking[Conn] = _Asking(conn)
        token = self._current.set(asking)
        try:
            yield
        finally:
            self._current.reset(token)
            asking.over = True
            for key in asking.keys:
                self._forget(key, asking)

    def written(self, request: Any) -> None:
        """The manager wrote ``request`` (decoded): note its sender, if a client's handler wrote it."""
        asking = self._current.get()
        if asking is None or asking.over:
            return
        key = echo_key(request)
        if key is not None and key[0] not in GATEWAY_ANSWERS:
            self._waiting.setdefault(key, deque()).append(asking)
            asking.keys.append(key)

    def answered(self, incoming: Any) -> tuple[bool, Conn | None]:
        """Whether an ``err`` echoing ``incoming`` refuses a request noted here, and whose it is
        (None: the gateway's own); ``(False, None)``: nothing noted waits for it."""
        key = echo_key(incoming)
        queue = self._waiting.get(key) if key is not None else None
        if key is None or not queue:
            return False, None
        asking = queue.popleft()
        if not queue:
            del self._waiting[key]
        asking.keys.remove(key)
        return True, asking.conn

    def __len__(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    def _forget(self, key: Key, asking: _Asking[Conn]) -> None:
        queue = self._waiting.get(key)
        if queue is None:
            return
        try:
            queue.remove(asking)
        except ValueError:
            return
        if not queue:
            del self._waiting[key]
