"""What the exchange says about TWAPs, applied: ``twap_response``, answers to TWAP cancels, children.

TWAP answers correlate by ``twap_id`` or ``(symbol, client_twap_id)``. A child order names its
TWAP's id in its client id; a child seen before its TWAP's id is known waits as an orphan
(``core.orphans``) until a ``twap_response``, a cancel answer or a snapshot row teaches the id.
Functions over the core; the pure TWAP rules are in ``twaps``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qfex_oms.core import cancelling
from qfex_oms.core import twaps as twap_rules
from qfex_oms.core.drops import wrong_symbol
from qfex_oms.core.model import Order, Twap
from qfex_oms.core.states import TwapEvent
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, OrderStatus

if TYPE_CHECKING:
    from qfex_oms.core.engine import OmsCore

_ENDS_CANCELS = frozenset({TwapEvent.CANCELLED, TwapEvent.COMPLETED, TwapEvent.REJECT})
_CANCEL_STATUSES = frozenset({OrderStatus.CANCELLED, OrderStatus.CANCELLED_STP})


def on_twap_response(core: OmsCore, r: m.TwapResponse) -> None:
    """A TWAP's report: found by id, else the first pending TWAP with its client id, else adopted."""
    twap = core.tracker.twap_by_id(r.twap_id)
    if twap is not None and twap.symbol != r.symbol:
        wrong_symbol(core, r, twap)
        return
    if twap is None:
        twap = core.tracker.first_pending_twap(r.symbol, r.client_twap_id)
        if twap is not None:
            learn_twap_id(core, twap, r.twap_id)
        else:
            twap = core.tracker.new_twap(twap_rules.twap_from_response(r))
            twap.adopted = True
            twap.seq = core.next_seq()  # learnt now: an older snapshot must not settle it
            claim_orphans(core, twap)
    twap_rules.note_progress(twap, r)
    event = twap_rules.event_for_status(r.status)
    core.apply_twap_event(twap, event, r.status)
    if event in _ENDS_CANCELS:
        cancelling.twap_cancel_done(core, twap, r.status)


def twap_cancel_answer(core: OmsCore, twap: Twap, status: OrderStatus) -> None:
    """An ``order_response`` naming a TWAP's id answers a cancel of it."""
    if status in _CANCEL_STATUSES:
        core.apply_twap_event(twap, TwapEvent.CANCELLED, status)
    else:
        twap.gone_before_cancel = twap.gone_before_cancel or status is OrderStatus.NO_SUCH_ORDER
        core.apply_twap_event(twap, TwapEvent.CANCEL_REFUSED, status)
    cancelling.twap_cancel_done(core, twap, status)


def twap_answer_by_client_id(core: OmsCore, r: m.OrderResponse) -> bool:
    """A TWAP cancel sent by client_twap_id is answered with an ``order_response`` whose
    ``order_id`` is the TWAP's id: when the book never learnt that id (its twap_response was
    lost), the answer is recognised by the cancel in flight under that client id, not adopted
    as a phantom order. It teaches the TWAP its id. (NO_SUCH_ORDER echoes the client id sent
    in ``order_id``: ``replies.answer_unknown_id`` answers that cancel, and it names no TWAP id.)"""
    request = core.cancels.oldest((r.symbol, CancelIdType.CLIENT_TWAP_ID, r.client_order_id or ""))
    twap = request.twap if request is not None else None
    if twap is None or twap.symbol != r.symbol:
        return False
    if twap.twap_id is None and r.order_id and core.tracker.twap_by_id(r.order_id) is None:
        learn_twap_id(core, twap, r.order_id)
    twap_cancel_answer(core, twap, r.status)
    return True


def learn_twap_id(core: OmsCore, twap: Twap, twap_id: str) -> None:
    """Give a TWAP its id; children already learnt under that id become its own."""
    core.tracker.bind_twap(twap, twap_id)
    claim_orphans(core, twap)


def claim_orphans(core: OmsCore, twap: Twap) -> None:
    """Children that named this TWAP's id before the book knew it (see ``link_twap_child``)."""
    for child in core.orphans.pop(twap.twap_id or "", ()):
        if child.symbol == twap.symbol:
            core.tracker.link_child(twap, child)
    twap_rules.note_child_fill(twap)


def link_twap_child(core: OmsCore, order: Order) -> None:
    """A child names its TWAP's id in its client id. A TWAP whose reports were all lost does
    not know its id: the child teaches it when it can be no other TWAP's (``_parent_by_shape``);
    otherwise the child waits (an orphan) for a twap_response or a snapshot row to bind it."""
    twap_id = twap_rules.parent_twap_id(order.client_order_id)
    if twap_id is None:
        return
    twap = core.tracker.twap_by_id(twap_id)
    if twap is None:
        twap = _parent_by_shape(core, order, twap_id)
        if twap is None:
            core.tracker.set_twap_id(order, twap_id)
            core.orphans.setdefault(twap_id, []).append(order)
            return
        learn_twap_id(core, twap, twap_id)
    if twap.symbol == order.symbol:  # a child on another symbol is not this TWAP's
        core.tracker.link_child(twap, order)


def _parent_by_shape(core: OmsCore, child: Order, twap_id: str) -> Twap | None:
    """The one live TWAP without an id that this child can belong to (symbol, side, its number
    within the TWAP's count, its size within the total), when no other unknown TWAP id is
    waiting on that symbol and side (it could be that one's). None when that is not decided."""
    number = twap_rules.child_number(child.client_order_id)
    fits = [t for t in core.tracker.twaps(open_only=True)
            if t.twap_id is None and t.symbol == child.symbol and t.side == child.side
            and (number is None or number <= t.num_orders) and child.quantity <= t.total_quantity]
    rivals = [other for other, kids in core.orphans.items() if other != twap_id and kids
              and kids[0].symbol == child.symbol and kids[0].side == child.side]
    return fits[0] if len(fits) == 1 and not rivals else None


def note_child_fill(core: OmsCore, order: Order) -> None:
    """A TWAP's filled quantity follows its children's (each counted once, see Order)."""
    twap = core.tracker.twap_by_id(order.twap_id)
    if twap is not None:
        twap_rules.note_child_fill(twap)
