"""Why a request got no answer: the local statuses the manager branches on, one name each.

A ``StrEnum``, so each equals its string: ``CancelResult.status`` and ``Order.last_status`` carry
these beside QFEX's own statuses, and comparing with ``"TIMEOUT"`` keeps working.
"""

from __future__ import annotations

import enum


class SendOutcome(enum.StrEnum):
    NOT_SENT = "NOT_SENT"  # the deadline passed while the frame waited for the pacer: never on the wire
    HALTED = "HALTED"  # the kill switch (or the journal) stopped it before the wire
    TIMEOUT = "TIMEOUT"  # a frame may have gone out; no answer within the deadline
    SEND_FAILED = "SEND_FAILED"  # the socket refused the write: the connection is going
    DISCONNECTED = "DISCONNECTED"  # the connection dropped while the answer was awaited
    CLOSED = "CLOSED"  # the manager's block exited while the answer was awaited

    @property
    def never_sent(self) -> bool:
        """The exchange provably saw nothing: the request can be closed locally, exactly."""
        return self in (SendOutcome.NOT_SENT, SendOutcome.HALTED)


LOST = frozenset({SendOutcome.TIMEOUT, SendOutcome.SEND_FAILED, SendOutcome.DISCONNECTED,
                  SendOutcome.CLOSED})  # no answer came: nothing concluded, the book settles it later
