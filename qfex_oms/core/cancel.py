"""Cancel intents and their resolution into exactly one ``cancel_order`` frame (or none).

A strategy says *what* to cancel: an order or TWAP it holds, or exactly one of ``order_id``,
``client_order_id``, ``twap_id``, ``client_twap_id`` with a symbol. Resolution validates that before
anything is sent and picks the wire mode. The one subtle rule (design.md "Cancel resolution"): an
order with no ``order_id`` yet (not ACKed) is cancelled by its client id only when no other live
order on the symbol shares that id; otherwise the cancel waits for the ACK and goes by order id, so
a strategy cancelling one order never takes its siblings down with it.
"""

from __future__ import annotations

from attrs import frozen

from qfex_oms.core.model import Order, Twap
from qfex_oms.errors import InvalidArgument
from qfex_oms.protocol.enums import CancelIdType


class CancelError(InvalidArgument):
    """A cancel intent that cannot become a frame; nothing was sent."""


@frozen
class CancelIntent:
    target: Order | Twap | None = None
    order_id: str | None = None
    client_order_id: str | None = None
    twap_id: str | None = None
    client_twap_id: str | None = None
    symbol: str | None = None

    def selector(self) -> tuple[CancelIdType | None, str | None]:
        """The one selector given, validated; ``(None, None)`` means ``target`` is the selector."""
        given = [
            (mode, value)
            for mode, value in (
                (CancelIdType.ORDER_ID, self.order_id),
                (CancelIdType.CLIENT_ORDER_ID, self.client_order_id),
                (CancelIdType.TWAP_ID, self.twap_id),
                (CancelIdType.CLIENT_TWAP_ID, self.client_twap_id),
            )
            if value is not None
        ]
        if self.target is not None:
            if given:
                raise CancelError("give either an order/TWAP or one id selector, not both")
            if self.symbol is not None and self.symbol != self.target.symbol:
                raise CancelError(f"symbol {self.symbol!r} does not match the order's {self.target.symbol!r}")
            return None, None
        if not given:
            raise CancelError("cancel needs an order, a TWAP, or one of order_id, client_order_id, "
                              "twap_id, client_twap_id")
        if len(given) > 1:
            names = ", ".join(str(mode) for mode, _ in given)
            raise CancelError(f"cancel takes exactly one selector, got {names}")
        mode, value = given[0]
        if not isinstance(value, str) or not value:
            raise CancelError(f"{mode} must be a non-empty string")
        if not self.symbol or not isinstance(self.symbol, str):
            raise CancelError(f"cancel by {mode} needs the symbol")
        return mode, value


def order_wire_selector(order: Order, sharing: list[Order]) -> tuple[CancelIdType, str] | None:
    """How to cancel one known order now, or None when the cancel must wait for its ACK.

    ``sharing`` is the list of live orders on the symbol with the same client id (order included).
    """
    if order.order_id is not None:
        return CancelIdType.ORDER_ID, order.order_id
    if order.client_order_id and all(o is order for o in sharing):
        return CancelIdType.CLIENT_ORDER_ID, order.client_order_id
    return None


def twap_wire_selector(twap: Twap) -> tuple[CancelIdType, str]:
    if twap.twap_id is not None:
        return CancelIdType.TWAP_ID, twap.twap_id
    if twap.client_twap_id:
        return CancelIdType.CLIENT_TWAP_ID, twap.client_twap_id
    raise CancelError("this TWAP has neither a twap_id nor a client_twap_id to cancel by")
