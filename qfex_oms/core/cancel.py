"""Cancel intents and their resolution into exactly one ``cancel_order`` frame (or none).

A strategy says *what* to cancel: an order or TWAP it holds, or exactly one of ``order_id``,
``client_order_id``, ``twap_id``, ``client_twap_id`` with a symbol. Resolution validates that before
anything is sent and picks the wire mode. The one subtle rule (design.md "Cancel resolution"): an
order with no ``order_id`` yet (not ACKed) is cancelled by its client id only when no other live
order on the symbol shares that id; otherwise the cancel waits for the ACK and goes by order id, so
a strategy cancelling one order never takes its siblings down with it.

Several strategies on one account (issue 18) add a second rule. A cancel by client id ends every
order on the symbol sharing the id, the ones this manager does not know included (placed by another
process, lost before their ACK, placed before a restart without a journal). So a client-id frame
goes out only when every order it can reach is provably the intent's: every live member the book
knows is in the intent, and any member it does not know would be too (``unknown_members_in``):
the intent takes the whole symbol, or it is one strategy's and the id is in that strategy's
namespace (``core.model.strategy_of``: only that strategy names orders there). Everything else goes
by order id, one frame per order.
"""

from __future__ import annotations

from attrs import frozen

from qfex_oms.core.model import Order, Twap, strategy_of
from qfex_oms.core.stops import StopOrder
from qfex_oms.errors import InvalidArgument
from qfex_oms.protocol.enums import CancelIdType, Side


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


@frozen
class CancelScope:
    """A bulk intent (``oms.cancel_where``): every live order and TWAP matching all the filters
    given. ``tags``: those carrying every one of them. ``strategy=None`` is any owner, attributed
    or not; all four None is the whole account."""

    symbol: str | None = None
    side: Side | None = None
    strategy: str | None = None
    tags: frozenset[str] | None = None

    @property
    def whole_account(self) -> bool:
        return self.symbol is None and self.side is None and self.strategy is None and not self.tags

    def matches(self, subject: Order | Twap | StopOrder) -> bool:
        return ((self.symbol is None or subject.symbol == self.symbol)
                and (self.side is None or subject.side == self.side)
                and (self.strategy is None or subject.strategy == self.strategy)
                and (not self.tags or self.tags <= subject.tags))


def unknown_members_in(scope: CancelScope, symbol: str, client_order_id: str) -> bool:
    """Whether any order the book does not know that shares this wire client id on ``symbol`` is
    in ``scope``. Of such an order only its symbol and its id are known (not its side nor tags),
    and its id's namespace names its strategy."""
    if not client_order_id or scope.side is not None or scope.tags:
        return False
    if scope.symbol is not None and scope.symbol != symbol:
        return False
    return scope.strategy is None or strategy_of(client_order_id) == scope.strategy


def group_by_client_id(scope: CancelScope, in_scope: list[Order], live_members: list[Order]) -> bool:
    """Whether one client-id frame cancels exactly ``in_scope`` (orders of one symbol and id): the
    book's live members are all in it and the exchange's unknown ones would be."""
    if not in_scope:
        return False
    first = in_scope[0]
    return (len(live_members) == len(in_scope) and all(scope.matches(o) for o in live_members)
            and unknown_members_in(scope, first.symbol, first.client_order_id))


def order_wire_selector(order: Order, sharing: list[Order],
                        scope: CancelScope | None = None) -> tuple[CancelIdType, str] | None:
    """How to cancel one known order now, or None when the cancel must wait for its ACK.

    ``sharing`` is the list of live orders on the symbol with the same client id (order included).
    Its client id is used only when no other known order shares it and an order the book does not
    know that shared it would be its own strategy's (its namespace), or, for an order of no
    strategy cancelled account-wide, one of no strategy either (QFEX's rule, design.md). ``scope``,
    for a bulk intent, narrows that: such an order must also be in the scope.
    """
    if order.order_id is not None:
        return CancelIdType.ORDER_ID, order.order_id
    cid = order.client_order_id
    if not cid or not all(o is order for o in sharing):
        return None
    if order.strategy is not None and strategy_of(cid) != order.strategy:
        return None  # not in its own namespace (a TWAP child's name): others may share it
    if scope is not None and not unknown_members_in(scope, order.symbol, cid):
        return None
    return CancelIdType.CLIENT_ORDER_ID, cid


def twap_wire_selector(twap: Twap) -> tuple[CancelIdType, str]:
    if twap.twap_id is not None:
        return CancelIdType.TWAP_ID, twap.twap_id
    if twap.client_twap_id:
        return CancelIdType.CLIENT_TWAP_ID, twap.client_twap_id
    raise CancelError("this TWAP has neither a twap_id nor a client_twap_id to cancel by")
