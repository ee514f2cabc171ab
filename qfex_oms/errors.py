"""The exceptions strategies see. Every one is a ``QfexOmsError``.

Two families: a bad argument or a refused request (nothing ambiguous happened), and an outcome we
cannot know yet (``OrderStatusUnknown``): the order stays tracked as UNKNOWN and a resync settles it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qfex_oms.core.model import Order, Twap
    from qfex_oms.core.stops import StopOrder


class QfexOmsError(Exception):
    """Base of every error raised by qfex_oms."""


class InvalidArgument(QfexOmsError, ValueError):
    """A strategy's argument is wrong. Raised before any frame is sent; nothing changed."""


class AuthenticationError(QfexOmsError):
    """The exchange refused the credentials or the connection during authentication."""


class ConnectError(QfexOmsError, ConnectionError):
    """The exchange could not be reached: nothing listening, a refused or failed TCP/TLS connection,
    a handshake that timed out. Not a verdict on the credentials (that is ``AuthenticationError``).
    ``url`` is where it tried; the message says what to check (for a loopback URL: is ``qfex-oms
    sim`` running?)."""

    def __init__(self, message: str, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class NotConnected(QfexOmsError):
    """No authenticated connection right now (reconnecting, or closed). Nothing was sent."""


class Halted(QfexOmsError):
    """The kill switch halted new orders; ``oms.resume()`` lifts it. Nothing was sent."""


class JournalUnavailable(Halted):
    """The journal cannot write, and the policy (``journal_failure``, default ``halt_new_orders``)
    halts new orders and changes until it can again; it lifts itself. Nothing was sent."""


class OrderRejected(QfexOmsError):
    """QFEX refused a new order; ``status`` is QFEX's status (or its ``err`` code)."""

    def __init__(self, order: Order | StopOrder, status: str | None) -> None:
        super().__init__(f"order {order.client_order_id} on {order.symbol} rejected: {status}")
        self.order = order
        self.status = status


class OrderStatusUnknown(QfexOmsError):
    """No answer in time, a failed send or a disconnect: the order is UNKNOWN until resync settles it.

    The order is still tracked; do not place it again before the manager has reconciled it.
    """

    def __init__(self, order: Order | Twap | StopOrder, reason: str) -> None:
        ident = order.describe()
        name = ident.get("client_order_id") or ident.get("client_twap_id")
        kind = "TWAP" if "twap_id" in ident and "client_order_id" not in ident else "order"
        super().__init__(f"{kind} {name} on {order.symbol}: outcome unknown ({reason})")
        self.order = order  # the Order, or the Twap for place_twap
        self.reason = reason


class ModifyRejected(QfexOmsError):
    def __init__(self, order: Order | StopOrder, status: str | None) -> None:
        ident = getattr(order, "order_id", None) or getattr(order, "stop_order_id", None)
        super().__init__(f"modify of {ident} refused: {status}")
        self.order = order
        self.status = status


class TwapRejected(QfexOmsError):
    def __init__(self, twap: Twap, status: str | None) -> None:
        super().__init__(f"TWAP {twap.client_twap_id} on {twap.symbol} rejected: {status}")
        self.twap = twap
        self.status = status


class RequestTimeout(QfexOmsError):
    """A request's deadline (``request_timeout``) passed: a query got no answer, or see ``NotSent``."""


class NotSent(RequestTimeout):
    """The deadline passed while the request still waited for the rate limiter: it was withdrawn and
    the exchange never saw it. Unlike ``OrderStatusUnknown`` nothing is ambiguous: an order is closed
    locally (REJECTED, ``last_status`` NOT_SENT), a TWAP likewise, a modify is dropped. Send it again
    if it is still wanted; a larger ``request_timeout`` lets bursts wait longer for their turn."""

    def __init__(self, what: str, subject: object = None) -> None:
        super().__init__(f"{what} was not sent: it waited longer than request_timeout for the rate "
                         "limiter, and was withdrawn (the exchange never saw it)")
        self.subject = subject  # the Order, Twap or ModifyRequest withdrawn, if any


class RequestFailed(QfexOmsError):
    """The exchange answered a query with an ``err`` frame."""

    def __init__(self, request_type: str, error_code: str, message: str | None) -> None:
        super().__init__(f"{request_type} failed: {error_code} {message or ''}".rstrip())
        self.request_type = request_type
        self.error_code = error_code


class RiskRefused(InvalidArgument):
    """A pre-trade risk limit refused the order (``core.risk``): nothing was journaled, nothing was
    sent. ``limit`` names the limit (a ``RiskLimits`` field), ``refusal`` holds the figures."""

    def __init__(self, limit: str, message: str, refusal: object = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.refusal = refusal
