"""Stop orders (take-profit and stop-loss): their record, their transition table and their book.

QFEX keeps stops off the order book under their own id (``stop_order_id``) until the mark price
reaches the trigger; then each becomes a reduce-only market order (qfex-api.md §3.10, §14). The
core tracks them apart from orders: a stop is not an order (it has no fills, no leaves, and its
answers come under its own id), and what it turns into when it fires is tracked as an ordinary
``Order`` (``StopOrder.order``) whose fills count once, like any other.

The table is the order table's counterpart, with the edges the real world has:

* a trigger racing a cancel: the cancel's answer (CANCELLED, NO_SUCH_ORDER, a refusal) after the
  stop became an order leaves it TRIGGERED, and evidence that it fired (the order it became) after
  a CANCELLED moves it to TRIGGERED (the trigger came first; the order is real);
* a refused cancel or modify goes back to ACTIVE (a modify leaves the state alone: only a cancel
  has a pending state);
* NO_SUCH_ORDER is never a cancel: the stop may have fired, or been cancelled elsewhere; it is
  UNKNOWN until a snapshot (or the order it became) settles it;
* a lost request (timeout, failed send, disconnect) is never a rejection: UNKNOWN until settled;
* a push about a stop that has ended (duplicate, reordered) changes nothing;
* an ACTIVE stop the exchange refuses with no request of ours in flight was ended by it (the
  simulator's choice C40: a stop that fires with no position left to close ends REJECTED).

Moves not in the table are logged and dropped by the caller (``stop_replies.apply_stop_event``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import Decimal
from enum import StrEnum

from attrs import define

from qfex_oms.core.model import NO_TAGS, Order, own_client_id, strategy_of
from qfex_oms.protocol.enums import OrderType, Side

STOP_KINDS = frozenset({OrderType.TAKE_PROFIT, OrderType.STOP_LOSS})


class StopState(StrEnum):
    PENDING = "PENDING"  # add_order sent, not answered yet
    ACTIVE = "ACTIVE"  # staged at the exchange, waiting for its trigger
    PENDING_CANCEL = "PENDING_CANCEL"
    TRIGGERED = "TRIGGERED"  # became a market order (StopOrder.order once known)
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"  # an answer was lost, or NO_SUCH_ORDER: a snapshot settles it

    is_terminal: bool
    is_live: bool  # may still fire on the exchange (UNKNOWN counts: it might)


STOP_TERMINAL = frozenset({StopState.TRIGGERED, StopState.CANCELLED, StopState.REJECTED})
for _state in StopState:
    _state.is_terminal = _state in STOP_TERMINAL
    _state.is_live = _state not in STOP_TERMINAL


class StopEvent(StrEnum):
    ACK = "ACK"  # an ACK, a push or a reply that shows the stop staged
    REJECT = "REJECT"  # the add_order of the stop was refused
    CANCEL_SENT = "CANCEL_SENT"
    CANCELLED = "CANCELLED"
    CANCEL_REFUSED = "CANCEL_REFUSED"
    NO_SUCH_ORDER = "NO_SUCH_ORDER"  # the exchange does not know the id: fired or gone, never "cancelled"
    MODIFIED = "MODIFIED"
    MODIFY_REFUSED = "MODIFY_REFUSED"
    TRIGGERED = "TRIGGERED"  # the order it became is known
    LOST = "LOST"  # timeout, failed send or disconnect while in flight
    SETTLE_ACTIVE = "SETTLE_ACTIVE"  # a snapshot shows it staged


S, E = StopState, StopEvent

STOP_TRANSITIONS: dict[StopState, dict[StopEvent, StopState]] = {
    S.PENDING: {
        E.ACK: S.ACTIVE,
        E.REJECT: S.REJECTED,
        E.CANCELLED: S.CANCELLED,
        E.MODIFIED: S.ACTIVE,
        E.TRIGGERED: S.TRIGGERED,
        E.LOST: S.UNKNOWN,
        E.SETTLE_ACTIVE: S.ACTIVE,
    },
    S.ACTIVE: {
        E.ACK: S.ACTIVE,
        E.REJECT: S.REJECTED,  # the exchange ended it unasked (it fired with nothing to close)
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.CANCELLED: S.CANCELLED,
        E.CANCEL_REFUSED: S.ACTIVE,
        E.NO_SUCH_ORDER: S.UNKNOWN,
        E.MODIFIED: S.ACTIVE,
        E.MODIFY_REFUSED: S.ACTIVE,
        E.TRIGGERED: S.TRIGGERED,
        E.LOST: S.UNKNOWN,
        E.SETTLE_ACTIVE: S.ACTIVE,
    },
    S.PENDING_CANCEL: {
        E.ACK: S.PENDING_CANCEL,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.CANCELLED: S.CANCELLED,
        E.CANCEL_REFUSED: S.ACTIVE,
        E.NO_SUCH_ORDER: S.UNKNOWN,
        E.MODIFIED: S.PENDING_CANCEL,
        E.MODIFY_REFUSED: S.PENDING_CANCEL,
        E.TRIGGERED: S.TRIGGERED,
        E.LOST: S.UNKNOWN,
        E.SETTLE_ACTIVE: S.ACTIVE,
    },
    S.UNKNOWN: {
        E.ACK: S.ACTIVE,
        E.REJECT: S.REJECTED,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.CANCELLED: S.CANCELLED,
        E.CANCEL_REFUSED: S.UNKNOWN,
        E.NO_SUCH_ORDER: S.UNKNOWN,
        E.MODIFIED: S.ACTIVE,
        E.MODIFY_REFUSED: S.UNKNOWN,
        E.TRIGGERED: S.TRIGGERED,
        E.LOST: S.UNKNOWN,
        E.SETTLE_ACTIVE: S.ACTIVE,
    },
    # Terminal: late answers and stale pushes change nothing; only proof that it fired moves a
    # cancelled stop (the trigger won the race: the order it became exists).
    S.TRIGGERED: {
        E.ACK: S.TRIGGERED,
        E.CANCELLED: S.TRIGGERED,
        E.CANCEL_REFUSED: S.TRIGGERED,
        E.NO_SUCH_ORDER: S.TRIGGERED,
        E.MODIFIED: S.TRIGGERED,
        E.MODIFY_REFUSED: S.TRIGGERED,
        E.TRIGGERED: S.TRIGGERED,
    },
    S.CANCELLED: {
        E.ACK: S.CANCELLED,
        E.CANCELLED: S.CANCELLED,
        E.CANCEL_REFUSED: S.CANCELLED,
        E.NO_SUCH_ORDER: S.CANCELLED,
        E.MODIFIED: S.CANCELLED,
        E.MODIFY_REFUSED: S.CANCELLED,
        E.TRIGGERED: S.TRIGGERED,
    },
    S.REJECTED: {
        E.REJECT: S.REJECTED,
    },
}


def next_stop_state(state: StopState, event: StopEvent) -> StopState | None:
    """The state after ``event``, or None when the move is illegal."""
    return STOP_TRANSITIONS[state].get(event)


class StopAction(StrEnum):
    CANCEL = "cancel_stop_order"
    MODIFY = "modify_stop_order"


@define(slots=True, eq=False)
class StopRequest:
    """One ``cancel_stop_order`` or ``modify_stop_order`` in flight; ``status`` is its answer."""

    seq: int
    action: StopAction
    stop: StopOrder
    price: Decimal | None = None
    quantity: Decimal | None = None
    status: str | None = None
    done: bool = False


@define(slots=True, eq=False)
class StopOrder:
    """A take-profit or stop-loss. ``trigger_price`` is the wire ``price`` (``price`` reads it too);
    ``side`` is the side of the market order it becomes. ``parent_order_id``: the order it was
    staged from (``take_profit=``/``stop_loss=``), when that can be told. ``order``: the order it
    became when it fired, once known."""

    local_id: int
    symbol: str
    side: Side
    kind: OrderType
    trigger_price: Decimal
    quantity: Decimal
    client_order_id: str = ""
    stop_order_id: str | None = None
    parent_order_id: str | None = None
    state: StopState = StopState.PENDING
    last_status: str | None = None
    order: Order | None = None
    cancel_request: StopRequest | None = None
    modify_request: StopRequest | None = None
    # The strategy's cancel was never answered: owed until the stop ends (a resync sends it again).
    cancel_owed: bool = False
    needs_settlement: bool = False
    adopted: bool = False
    seq: int = 0  # core sequence of the last local action (snapshot fence)
    update_time: str | None = None
    # Attribution (issue 18), as ``Order.strategy``/``tags``: the strategy is the namespace of its
    # wire client id (``core.model.strategy_of``); tags are the ones given when it was placed.
    strategy: str | None = None
    tags: frozenset[str] = NO_TAGS

    @property
    def own_client_order_id(self) -> str:
        return own_client_id(self.client_order_id, self.strategy)

    @property
    def price(self) -> Decimal:
        return self.trigger_price

    @property
    def is_open(self) -> bool:
        return self.state.is_live

    def could_be(self, side: Side | None, kind: OrderType | None, price: Decimal | None,
                 quantity: Decimal | None) -> bool:
        """Whether a reply carrying these (None: not given) can describe this stop."""
        return ((side is None or side == self.side) and (kind is None or kind == self.kind)
                and (price is None or price == self.trigger_price)
                and (quantity is None or not quantity or quantity == self.quantity))

    def describe(self) -> dict[str, object]:
        return {"symbol": self.symbol, "stop_order_id": self.stop_order_id, "kind": str(self.kind),
                "client_order_id": self.client_order_id, "state": str(self.state)}


class StopBook:
    """Every stop the manager knows: by local id, by ``stop_order_id``, the ones waiting for their
    id by symbol (submit order), and the live ones by symbol. State changes go through
    ``set_state`` so the live index cannot drift; ``check_invariants`` proves it in tests."""

    __slots__ = ("_by_id", "_by_local", "_labels", "_live", "_next_local", "_pending")

    def __init__(self) -> None:
        self._next_local = 1
        self._by_local: dict[int, StopOrder] = {}
        self._by_id: dict[str, StopOrder] = {}
        self._pending: dict[str, list[StopOrder]] = {}
        self._live: dict[str, dict[int, StopOrder]] = {}
        self._labels: dict[tuple[str, str], frozenset[str]] = {}

    def label(self, symbol: str, client_order_id: str, tags: frozenset[str]) -> None:
        """The tags of the next stop placed under this wire client id (the shell's ``place``
        goes through ``stop_replies``, which knows nothing of tags)."""
        self._labels[(symbol, client_order_id)] = tags

    def __len__(self) -> int:
        return len(self._by_local)

    @property
    def local_index(self) -> Mapping[int, StopOrder]:
        """local id -> stop, live (the dict itself): empty when the book holds no stop, which the
        reply path tests on every ACK without a method call. Never write through it."""
        return self._by_local

    def new_stop(self, symbol: str, side: Side, kind: OrderType, trigger_price: Decimal,
                 quantity: Decimal, client_order_id: str = "", **extra: object) -> StopOrder:
        stop = StopOrder(self._next_local, symbol, side, kind, trigger_price, quantity, client_order_id,
                         **extra)  # type: ignore[arg-type]
        self._next_local += 1
        if stop.strategy is None:
            stop.strategy = strategy_of(client_order_id)
        if client_order_id and self._labels:
            stop.tags = self._labels.pop((symbol, client_order_id), stop.tags)
        self._by_local[stop.local_id] = stop
        if stop.stop_order_id is not None:
            self._by_id[stop.stop_order_id] = stop
        elif stop.state.is_live:
            self._pending.setdefault(symbol, []).append(stop)
        if stop.state.is_live:
            self._live.setdefault(symbol, {})[stop.local_id] = stop
        return stop

    def bind(self, stop: StopOrder, stop_order_id: str) -> None:
        """Give a stop its exchange id (its ACK, a push or a snapshot row named it)."""
        self._drop_pending(stop)
        if stop.stop_order_id is not None and self._by_id.get(stop.stop_order_id) is stop:
            del self._by_id[stop.stop_order_id]
        stop.stop_order_id = stop_order_id
        self._by_id[stop_order_id] = stop

    def set_state(self, stop: StopOrder, state: StopState) -> None:
        stop.state = state
        if state.is_live:
            self._live.setdefault(stop.symbol, {})[stop.local_id] = stop
            return
        self._drop_pending(stop)
        live = self._live.get(stop.symbol)
        if live is not None:
            live.pop(stop.local_id, None)
            if not live:
                del self._live[stop.symbol]

    def _drop_pending(self, stop: StopOrder) -> None:
        queue = self._pending.get(stop.symbol)
        if queue is not None and stop in queue:
            queue.remove(stop)
            if not queue:
                del self._pending[stop.symbol]

    def by_id(self, stop_order_id: str | None) -> StopOrder | None:
        return self._by_id.get(stop_order_id) if stop_order_id else None

    def by_local_id(self, local_id: int) -> StopOrder | None:
        return self._by_local.get(local_id)

    def knows(self, stop_order_id: str) -> bool:
        return stop_order_id in self._by_id

    def pending(self, symbol: str) -> list[StopOrder]:
        """Stops on ``symbol`` still waiting for their id, oldest first."""
        return list(self._pending.get(symbol, ()))

    def has_pending(self, symbol: str) -> bool:
        return symbol in self._pending

    def stops(self, symbol: str | None = None, open_only: bool = True) -> list[StopOrder]:
        if open_only:
            if symbol is not None:
                return list(self._live.get(symbol, {}).values())
            return [s for live in self._live.values() for s in live.values()]
        return [s for s in self._by_local.values() if symbol is None or s.symbol == symbol]

    def __iter__(self) -> Iterator[StopOrder]:
        return iter(list(self._by_local.values()))

    def check_invariants(self) -> list[str]:
        """What is wrong with the indices (empty when consistent); for tests."""
        problems = []
        for stop in self._by_local.values():
            live = stop.local_id in self._live.get(stop.symbol, {})
            if live != stop.state.is_live:
                problems.append(f"stop {stop.local_id} in {stop.state} live-indexed={live}")
            if stop.stop_order_id is not None and self._by_id.get(stop.stop_order_id) is not stop:
                problems.append(f"stop {stop.local_id} not indexed by its id {stop.stop_order_id}")
            pending = stop in self._pending.get(stop.symbol, ())
            if pending and (stop.stop_order_id is not None or not stop.state.is_live):
                problems.append(f"stop {stop.local_id} pending with an id or ended")
        return problems
