"""Order and TWAP state machines as readable transition tables (after h11's ``_state.py``).

The tables hold every legal move, including the real-world edges that naive order managers get
wrong: a fill after a cancel was sent or after CANCELLED (late fill), a refused cancel rolling back
to OPEN, NO_SUCH_ORDER rolling back instead of ending the order, and UNKNOWN for anything that was
lost in flight (timeout, failed send, disconnect) until a snapshot settles it. A move that is not in
the table is logged and dropped by the caller, never raised inside the reader task.
"""

from __future__ import annotations

from enum import StrEnum


class OrderState(StrEnum):
    PENDING_NEW = "PENDING_NEW"
    OPEN = "OPEN"
    PENDING_CANCEL = "PENDING_CANCEL"
    FILLED = "FILLED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"

    # Plain attributes set below (not properties): they are read on every reply.
    is_terminal: bool
    is_live: bool  # may still rest on the exchange (UNKNOWN counts: it might)


TERMINAL = frozenset({OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED})
for _state in OrderState:
    _state.is_terminal = _state in TERMINAL
    _state.is_live = _state not in TERMINAL


class OrderEvent(StrEnum):
    ACK = "ACK"  # order_response ACK, or any reply that proves the order rests
    REJECT = "REJECT"  # the new order was refused (rejection status or err)
    PARTIAL_FILL = "PARTIAL_FILL"  # a fill with quantity still open on the book
    FULL_FILL = "FULL_FILL"  # nothing remains
    EXPIRE = "EXPIRE"  # IOC/FOK/MARKET done with quantity left: the rest is gone
    CANCEL_SENT = "CANCEL_SENT"
    CANCELLED = "CANCELLED"  # CANCELLED or CANCELLED_STP
    CANCEL_REFUSED = "CANCEL_REFUSED"  # REJECTED/RATE_LIMITED/err in reply to our cancel
    NO_SUCH_ORDER = "NO_SUCH_ORDER"  # the exchange does not know it: maybe filled, never "cancelled"
    MODIFIED = "MODIFIED"
    LOST = "LOST"  # timeout, failed send or disconnect while in flight
    SETTLE_OPEN = "SETTLE_OPEN"  # a snapshot shows it open


S, E = OrderState, OrderEvent

ORDER_TRANSITIONS: dict[OrderState, dict[OrderEvent, OrderState]] = {
    S.PENDING_NEW: {
        E.ACK: S.OPEN,
        E.REJECT: S.REJECTED,
        E.PARTIAL_FILL: S.OPEN,
        E.FULL_FILL: S.FILLED,
        E.EXPIRE: S.CANCELLED,
        E.CANCELLED: S.CANCELLED,
        E.MODIFIED: S.OPEN,
        E.LOST: S.UNKNOWN,
        E.SETTLE_OPEN: S.OPEN,
    },
    S.OPEN: {
        E.ACK: S.OPEN,
        E.PARTIAL_FILL: S.OPEN,
        E.FULL_FILL: S.FILLED,
        E.EXPIRE: S.CANCELLED,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.CANCELLED: S.CANCELLED,
        E.CANCEL_REFUSED: S.OPEN,
        E.NO_SUCH_ORDER: S.OPEN,
        E.MODIFIED: S.OPEN,
        E.LOST: S.UNKNOWN,
        E.SETTLE_OPEN: S.OPEN,
    },
    S.PENDING_CANCEL: {
        E.ACK: S.PENDING_CANCEL,
        E.PARTIAL_FILL: S.PENDING_CANCEL,
        E.FULL_FILL: S.FILLED,
        E.EXPIRE: S.CANCELLED,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.CANCELLED: S.CANCELLED,
        E.CANCEL_REFUSED: S.OPEN,
        E.NO_SUCH_ORDER: S.OPEN,
        E.MODIFIED: S.PENDING_CANCEL,
        E.LOST: S.UNKNOWN,
        E.SETTLE_OPEN: S.OPEN,
    },
    S.UNKNOWN: {
        E.ACK: S.OPEN,
        E.REJECT: S.REJECTED,
        E.PARTIAL_FILL: S.OPEN,
        E.FULL_FILL: S.FILLED,
        E.EXPIRE: S.CANCELLED,
        E.CANCEL_SENT: S.PENDING_CANCEL,
        E.CANCELLED: S.CANCELLED,
        E.CANCEL_REFUSED: S.UNKNOWN,
        E.NO_SUCH_ORDER: S.UNKNOWN,
        E.MODIFIED: S.OPEN,
        E.LOST: S.UNKNOWN,
        E.SETTLE_OPEN: S.OPEN,
    },
    # Terminal states: only a late fill moves them, and only a full one changes the state.
    S.CANCELLED: {
        E.PARTIAL_FILL: S.CANCELLED,
        E.FULL_FILL: S.FILLED,
        E.CANCELLED: S.CANCELLED,
        E.EXPIRE: S.CANCELLED,
        E.NO_SUCH_ORDER: S.CANCELLED,
        E.CANCEL_REFUSED: S.CANCELLED,
    },
    S.FILLED: {
        E.FULL_FILL: S.FILLED,
        E.NO_SUCH_ORDER: S.FILLED,
        E.CANCEL_REFUSED: S.FILLED,
    },
    S.REJECTED: {
        E.REJECT: S.REJECTED,
    },
}


def next_order_state(state: OrderState, event: OrderEvent) -> OrderState | None:
    """The state after ``event``, or None when the move is illegal."""
    return ORDER_TRANSITIONS[state].get(event)


class TwapState(StrEnum):
    PENDING_NEW = "PENDING_NEW"
    ACTIVE = "ACTIVE"
    PENDING_CANCEL = "PENDING_CANCEL"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"
    UNKNOWN = "UNKNOWN"

    @property
    def is_terminal(self) -> bool:
        return self in TWAP_TERMINAL


TWAP_TERMINAL = frozenset({TwapState.COMPLETED, TwapState.CANCELLED, TwapState.REJECTED})


class LocalStatus(StrEnum):
    """Statuses the core writes itself, where no exchange status applies: a request's or order's
    ``status`` is otherwise QFEX's own word (an ``OrderStatus`` or an ``err`` code). Equal to their
    text, so a caller comparing ``request.status == "ALREADY_CLOSED"`` keeps working."""

    ALREADY_CLOSED = "ALREADY_CLOSED"  # a cancel of something already ended: nothing was sent
    DISCONNECTED = "DISCONNECTED"  # in flight when the connection dropped
    MISSING_FROM_SNAPSHOT = "MISSING_FROM_SNAPSHOT"  # a complete snapshot no longer shows it open


class TwapEvent(StrEnum):
    ACCEPTED = "ACCEPTED"
    REJECT = "REJECT"
    CANCEL_SENT = "CANCEL_SENT"
    CANCELLED = "CANCELLED"
    CANCEL_REFUSED = "CANCEL_REFUSED"
    COMPLETED = "COMPLETED"
    LOST = "LOST"


T, TE = TwapState, TwapEvent

TWAP_TRANSITIONS: dict[TwapState, dict[TwapEvent, TwapState]] = {
    T.PENDING_NEW: {TE.ACCEPTED: T.ACTIVE, TE.REJECT: T.REJECTED, TE.CANCELLED: T.CANCELLED,
                    TE.COMPLETED: T.COMPLETED, TE.LOST: T.UNKNOWN},
    T.ACTIVE: {TE.ACCEPTED: T.ACTIVE, TE.CANCEL_SENT: T.PENDING_CANCEL, TE.CANCELLED: T.CANCELLED,
               TE.COMPLETED: T.COMPLETED, TE.CANCEL_REFUSED: T.ACTIVE, TE.LOST: T.UNKNOWN},
    T.PENDING_CANCEL: {TE.ACCEPTED: T.PENDING_CANCEL, TE.CANCEL_SENT: T.PENDING_CANCEL,
                       TE.CANCELLED: T.CANCELLED, TE.COMPLETED: T.COMPLETED,
                       TE.CANCEL_REFUSED: T.ACTIVE, TE.LOST: T.UNKNOWN},
    T.UNKNOWN: {TE.ACCEPTED: T.ACTIVE, TE.REJECT: T.REJECTED, TE.CANCEL_SENT: T.PENDING_CANCEL,
                TE.CANCELLED: T.CANCELLED, TE.COMPLETED: T.COMPLETED,
                TE.CANCEL_REFUSED: T.UNKNOWN, TE.LOST: T.UNKNOWN},
    T.COMPLETED: {TE.COMPLETED: T.COMPLETED, TE.CANCELLED: T.COMPLETED,
                  TE.CANCEL_REFUSED: T.COMPLETED},
    T.CANCELLED: {TE.CANCELLED: T.CANCELLED, TE.CANCEL_REFUSED: T.CANCELLED},
    T.REJECTED: {TE.REJECT: T.REJECTED},
}


def next_twap_state(state: TwapState, event: TwapEvent) -> TwapState | None:
    return TWAP_TRANSITIONS[state].get(event)
