"""The core's shared state, its outputs, and the one place state moves happen.

OmsCore is built in layers, each a module of its own concern: this one (state, outputs, the
transition-table moves), ``cancelling`` (cancels in flight and how they end), ``replies`` (what the
exchange says), and ``engine`` (the commands a strategy gives). Every layer sees the same instance;
the split is for reading, not for separate objects.
"""

from __future__ import annotations

import structlog

from qfex_oms.core.events import Event, OrderUpdated, TwapUpdated, Unmatched
from qfex_oms.core.model import CancelRequest, ModifyRequest, Order, Twap
from qfex_oms.core.states import ORDER_TRANSITIONS, OrderEvent, TwapEvent, next_twap_state
from qfex_oms.core.tracker import OrderTracker
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, OrderStatus

log = structlog.get_logger("qfex_oms.core")

S = OrderStatus
ALREADY_CLOSED = "ALREADY_CLOSED"
CancelKey = tuple[str, CancelIdType, str]


class CoreState:
    def __init__(self, tracker: OrderTracker | None = None) -> None:
        self.tracker = tracker if tracker is not None else OrderTracker()
        self.seq = 0
        self._frames: list[m.Request] = []
        self._events: list[Event] = []
        # Cancels in flight, three ways: by the (symbol, id type, id) they sent, oldest first (how
        # an answer finds its request); by request seq, the keys each was sent under (to unregister
        # it); by order local_id, every request covering that order (including held ones).
        self._cancels: dict[CancelKey, list[CancelRequest]] = {}
        self._cancel_keys: dict[int, list[CancelKey]] = {}
        self._order_cancels: dict[int, list[CancelRequest]] = {}
        self._modifies: dict[str, ModifyRequest] = {}
        self._held: dict[str, list[m.FillResponse]] = {}  # fills whose order is not known yet
        # TWAP children naming a twap_id the book does not know yet, by that id (replies._link_twap_child).
        self._orphans: dict[str, list[Order]] = {}
        # The tracker's own index, read (never written) here on every reply without a method call.
        self._orders_by_id = self.tracker.order_id_index

    # ------------------------------------------------------------------ outputs

    def take_frames(self) -> list[m.Request]:
        frames, self._frames = self._frames, []
        return frames

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def held_fills(self) -> list[m.FillResponse]:
        """Fills not applied yet: their order_id fits several pending orders, or none of them."""
        return [f for fills in self._held.values() for f in fills]

    def _next_seq(self) -> int:
        self.seq += 1
        return self.seq

    # ------------------------------------------------------------------ state moves

    def _order_event(self, order: Order, event: OrderEvent, status: str | None) -> None:
        """Apply one move from the transition table; an illegal one is logged and dropped."""
        previous = order.state
        target = ORDER_TRANSITIONS[previous].get(event)
        if target is None:
            log.warning("illegal order transition dropped", **order.describe(), order_event=str(event),
                        status=status)
            self._events.append(Unmatched(order, f"illegal {event} in {previous}"))
            return
        if status is not None:
            order.last_status = _STATUS_TEXT.get(status) or str(status)
        if target.is_terminal:
            order.needs_settlement = False
            order.cancel_owed = False  # the exchange settled it: no cancel is owed any more
        if target is not previous:
            self.tracker.set_state(order, target)
        if target is not previous or event in _REPORTED_IN_PLACE:
            self._events.append(OrderUpdated(order, previous, target, order.last_status))
        if target.is_terminal and (target is not previous or event is _EV_CANCELLED) \
                and (self._cancels or order.local_id in self._order_cancels):
            self._target_ended(order, event, status)  # a no-op when no cancel could cover the order

    def _twap_event(self, twap: Twap, event: TwapEvent, status: str | None) -> None:
        previous = twap.state
        target = next_twap_state(previous, event)
        if target is None:
            log.warning("illegal TWAP transition dropped", **twap.describe(), twap_event=str(event))
            self._events.append(Unmatched(twap, f"illegal {event} in {previous}"))
            return
        if status is not None:
            twap.last_status = str(status)
        if target.is_terminal:
            twap.cancel_owed = False
        if target is not previous:
            self.tracker.set_twap_state(twap, target)
            self._events.append(TwapUpdated(twap, previous, target, twap.last_status))

    def order_lost(self, order: Order, reason: str) -> None:
        """No answer in time, a failed send or a disconnect: UNKNOWN until a snapshot settles it."""
        if order.state.is_live:
            order.needs_settlement = True
            self._order_event(order, OrderEvent.LOST, reason)

    def _target_ended(self, order: Order, event: OrderEvent, status: str | None) -> None:
        """Settle the cancels covering an order that just ended (see cancelling.CancelHandling)."""
        raise NotImplementedError


# Module-level aliases of the members the reply path uses (a global is ~10 ns to read, an enum
# member through its class ~80 ns on Python 3.11).
_EV_CANCELLED = OrderEvent.CANCELLED
_REPORTED_IN_PLACE = frozenset({OrderEvent.PARTIAL_FILL, OrderEvent.MODIFIED})
# The plain text of each status, shared: str() of a StrEnum member allocates a new string each call.
_STATUS_TEXT: dict[str, str] = {member: member.value for member in OrderStatus}
