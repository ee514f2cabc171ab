"""What the exchange says about an order, applied: the handlers of ``order_response``.

Correlation, since QFEX has no request ids: ACKs by ``(symbol, client_order_id)`` in submit order,
cancel answers by the id that was sent. ``OmsCore.on_reply`` finds the order a report names and
calls the handler for its status from ``BY_STATUS`` (a dict lookup: comparing against enum members
one by one costs ~80 ns per member access on Python 3.11). ``order_response`` is most of the
traffic, so this path is written for speed (bench row 1): see the comments where it shows. Fills
are in ``fills``, TWAPs in ``twap_replies``, ``err`` frames in ``err_replies``.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING

from qfex_oms.core import cancelling, twap_replies
from qfex_oms.core.drops import wrong_symbol
from qfex_oms.core.events import Unmatched
from qfex_oms.core.model import Order
from qfex_oms.core.states import OrderEvent, OrderState, TwapEvent
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import NON_REJECTIONS, CancelIdType, OrderStatus, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from qfex_oms.core.engine import OmsCore

log = get_logger("qfex_oms.core")

Handler = Callable[["OmsCore", Order, m.OrderResponse], None]


def resized(core: OmsCore, order: Order, r: m.OrderResponse) -> None:
    """A report naming another size or price than the book's: the exchange's order changed (a
    modify whose answer was lost, or one still in flight). Its quantity and price are taken, and
    its leaves with them: ``filled = quantity - leaves`` holds only when both come from the same
    report, so the leaves floor of the old size is dropped.

    Only reports that describe the order as it stands count: ACK, MODIFIED, CANCELLED, a modify
    refused for a partial fill. A FILLED report's ``quantity`` may be the fill's size on QFEX
    (undocumented): it is taken only when it names the size of a modify in doubt. A report older
    than one applied (``update_time``) says nothing new.
    """
    status = r.status
    if status not in _REPORTS_SIZE:
        return
    if r.update_time is not None and order.update_time is not None and r.update_time < order.update_time:
        return
    quantity, price = r.quantity, r.price
    if status is OrderStatus.FILLED:
        doubt = modify_unanswered(core, order)
        if doubt is None:
            return
        quantity = quantity if quantity == doubt[0] else None
        price = price if price == doubt[1] else None
        if quantity is None and price is None:
            return
    if order.order_type is _MARKET:
        price = None  # a MARKET order's wire price is a protection price, not its own
    if quantity is not None and quantity != order.quantity:
        if _placed_size_learnt(core, order, r, quantity):
            order.quantity = quantity  # _on_ack lowers the floor with the ACK's leaves, if ever
        else:
            order.quantity = quantity
            leaves = r.quantity_remaining
            order.leaves_floor = None if leaves is None else max(leaves, _ZERO)
    if price is not None:
        order.price = price
    if quantity is not None or status is not OrderStatus.FILLED:
        order.modify_in_doubt = None


def _placed_size_learnt(core: OmsCore, order: Order, r: m.OrderResponse, quantity: Decimal) -> bool:
    """An ACK naming a larger size for an order adopted from later news (a fill that overtook it):
    the size it was placed with, learnt late, not a resize. The adopted size was a lower bound, and
    the leaves seen so far (a fill's) are of this same size and newer than the ACK's (the order
    as placed): the floor stays. Taking the ACK's leaves made an ended order's remaining grow back,
    and a resting one's filled quantity fall below what its fills said."""
    return (r.status is _ACK and order.adopted and quantity > order.quantity
            and modify_unanswered(core, order) is None)


def modify_unanswered(core: OmsCore, order: Order) -> tuple[Decimal | None, Decimal | None] | None:
    """The (quantity, price) of a modify of this order that was never answered: still in flight, or
    cut off by a disconnect (``Order.modify_in_doubt``). None when there is none."""
    request = core.modify_in_flight(order.order_id)
    return (request.quantity, request.price) if request is not None else order.modify_in_doubt


def size_in_doubt(core: OmsCore, order: Order) -> Decimal | None:
    """The other size the exchange's order may have: the one an unanswered modify asked for, when
    it differs from the book's. QFEX refuses to modify a partly filled order, so the exchange's
    order has one of the two sizes, and leaves or fills cannot be measured against the book's
    size alone (``fills.note_fill_leaves``, ``snapshot.settle_gone``)."""
    doubt = modify_unanswered(core, order)
    if doubt is None or doubt[0] is None or doubt[0] == order.quantity:
        return None
    floor = order.leaves_floor
    if floor is not None and floor < order.quantity:
        return None  # leaves of the book's size showed a fill: the modify was refused, or came after
    return doubt[0]


def take_size(order: Order, quantity: Decimal, leaves: Decimal | None) -> None:
    """The exchange's order has this size: the leaves of the old one are dropped (``filled =
    quantity - leaves`` holds only for leaves of the same size) and no modify is in doubt."""
    order.quantity = quantity
    order.leaves_floor = None if leaves is None else max(leaves, _ZERO)
    order.modify_in_doubt = None


def order_not_indexed(core: OmsCore, r: m.OrderResponse, by_id: Order | None) -> Order | None:
    """The order a reply is about when its id is not (yet) in the book, or None if it is about
    no order: a TWAP's cancel answer, or a cancel's answer for an id the book lacks."""
    if by_id is not None:
        if r.status is OrderStatus.NO_SUCH_ORDER or r.status not in NON_REJECTIONS:
            answer_unknown_id(core, r)  # a cancel sent with the wrong symbol: not about this order
        else:
            wrong_symbol(core, r, by_id)
        return None
    tracker = core.tracker
    twap = core.twaps_by_id.get(r.order_id) if r.order_id else None
    if twap is not None:
        if twap.symbol != r.symbol:
            wrong_symbol(core, r, twap)
        else:
            twap_replies.twap_cancel_answer(core, twap, r.status)
        return None
    if r.status is _ACK and r.order_id:
        # The commonest case (bench row 1): the ACK of the one order pending under its client id,
        # bound here (core.bind, in fewer calls); one naming a larger size is bound unless it looks
        # like another order's; several pending under one id, or none, take _bind_pending's rule.
        order = tracker.bind_sole_pending(r.symbol, r.client_order_id, r.order_id, r.quantity)
        if order is not None:
            if core.cancels.by_key or core.held:
                core.id_learnt(order)
            return order
        queue = tracker.pending(r.symbol, r.client_order_id)
        if len(queue) == 1 and not answers_another(core, r, queue[0]):
            order = queue[0]
            core.bind(order, r.order_id)  # takes it off the queue
            return order
    pending = _bind_pending(core, r)
    if pending is not None:
        return pending
    status = r.status
    if status in _TWAP_CANCEL_DONE and twap_replies.twap_answer_by_client_id(core, r):
        return None
    if status in _ADOPTING:
        if core.tracker.pending_elsewhere(r.symbol, r.client_order_id):
            wrong_symbol(core, r, None)
            return None
        adopted = core.adopt(order_from_response(r))
        log.info("adopted order", **adopted.describe(), status=str(status))
        return adopted
    answer_unknown_id(core, r)
    return None


# ACK and FILLED inline note_leaves and after_ack's common case (no cancel waits for this order):
# they run for most replies, and a Python call costs about 60 ns.
def _on_ack(core: OmsCore, order: Order, r: m.OrderResponse) -> None:
    leaves = r.quantity_remaining
    if leaves is not None and (order.leaves_floor is None or leaves < order.leaves_floor):
        totals = core.tracker.open_totals  # kept only for pre-trade risk (core.open_totals)
        if totals is None:
            order.leaves_floor = leaves if leaves >= _ZERO else _ZERO
        else:
            totals.lower_floor(order, leaves)
    core.apply_order_event(order, _EV_ACK, r.status)
    if order.local_id in core.cancels.by_order:
        after_ack(core, order)
    else:
        if order.extra is not None:  # else it is False already: the property call skipped
            order.cancel_requested = False
        if order.cancel_owed:  # its cancel was lost (held for this ACK, say): ask now
            core.resend_owed_cancel(order)


def _on_filled_report(core: OmsCore, order: Order, r: m.OrderResponse) -> None:
    leaves = r.quantity_remaining
    if leaves is not None and (order.leaves_floor is None or leaves < order.leaves_floor):
        totals = core.tracker.open_totals
        if totals is None:
            order.leaves_floor = leaves if leaves >= _ZERO else _ZERO
        else:
            totals.lower_floor(order, leaves)
    core.apply_order_event(order, fill_event(order, final_report=True), r.status)
    if order.twap_id is not None:  # its fill_response may be lost: the report is the news
        twap_replies.note_child_fill(core, order)
    if order.local_id in core.cancels.by_order:
        after_ack(core, order)
    elif order.extra is not None:  # else it is False already: the property call skipped
        order.cancel_requested = False


def _on_cancelled(core: OmsCore, order: Order, r: m.OrderResponse) -> None:
    core.apply_order_event(order, _EV_CANCELLED, r.status)


def _on_no_such_order(core: OmsCore, order: Order, r: m.OrderResponse) -> None:
    """Not a cancel: the order may have filled, or its fill may still be on the way."""
    request = cancelling.answered(core, order)
    if order.state.is_live:
        order.needs_settlement = True
    core.apply_order_event(order, OrderEvent.NO_SUCH_ORDER, OrderStatus.NO_SUCH_ORDER)
    if request is not None:
        cancelling.refused(core, request, order, str(OrderStatus.NO_SUCH_ORDER))


def _on_modified(core: OmsCore, order: Order, r: m.OrderResponse) -> None:
    """The new size and price were taken by ``resized`` (with the leaves of the new size);
    a MODIFIED naming the size the book already has only lowers the leaves."""
    share = core.tracker.open_share(order)
    order.note_leaves(r.quantity_remaining)
    core.tracker.reshare(order, share)
    order.modify_in_doubt = None
    core.apply_order_event(order, OrderEvent.MODIFIED, OrderStatus.MODIFIED)
    request = core.modify_in_flight(order.order_id)
    if request is not None:
        core.finish_modify(request, str(OrderStatus.MODIFIED))


def _on_modify_refused(core: OmsCore, order: Order, r: m.OrderResponse) -> None:
    _refuse_modify(core, order, r.status)


def _refuse_modify(core: OmsCore, order: Order, status: OrderStatus) -> None:
    order.last_status = str(status)
    request = core.modify_in_flight(order.order_id)
    if request is None:
        core.emit(Unmatched(order, f"{status} with no modify in flight"))
        return
    if status is OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER and order.state.is_live:
        # Gone, perhaps filled: settle it. Unless a report already ended it (a CANCELLED_STP that
        # overtook the modify): then it is settled, and late fills apply on their own.
        order.needs_settlement = True
    core.finish_modify(request, str(status))


def on_rejection(core: OmsCore, order: Order, r: m.OrderResponse) -> None:
    """A new order refused (its cancels end with it, see cancelling.target_ended), or a cancel
    or a modify refused. Every status without a handler of its own in ``BY_STATUS``."""
    status = r.status
    if order.state in (OrderState.PENDING_NEW, OrderState.UNKNOWN) and order.order_id is None:
        core.apply_order_event(order, OrderEvent.REJECT, status)
        return
    request = cancelling.answered(core, order)
    if request is not None:
        core.apply_order_event(order, OrderEvent.CANCEL_REFUSED, status)
        cancelling.refused(core, request, order, str(status))
    elif core.modify_in_flight(order.order_id) is not None:
        _refuse_modify(core, order, status)
    else:
        core.emit(Unmatched(order, f"{status} for an order with no request in flight"))
        log.warning("rejection matched no request", **order.describe(), status=str(status))


def answers_another(core: OmsCore, r: m.OrderResponse, order: Order) -> bool:
    """Whether an answer naming a larger size than the pending ``order`` it would bind is another
    order's: it does not look like ``order`` otherwise either (side, type, time in force, price),
    or it is the late answer of an earlier order under the same client id that a resync settled
    without ever learning its id (its size exactly the answer's). Bound to the pending order, such
    an answer resized it and its remaining grew (state machine, twice). Otherwise the answer stays
    the pending order's: how QFEX reads the numbers it is sent is not documented (qfex-api.md §12),
    and an exchange that rounds a size may echo one a hair larger than sent; refusing that would
    leave the strategy's order waiting and adopt a twin of it. Only asked when the sizes differ that
    way, so the scan of the client id's members is rare."""
    if not order.could_be(r.side, r.type, r.time_in_force, r.price, None):
        return True
    return any(o.order_id is None and not o.state.is_live and o.quantity == r.quantity
               for o in core.tracker.members(r.symbol, r.client_order_id or ""))


def _bind_pending(core: OmsCore, r: m.OrderResponse) -> Order | None:
    """The answer to an add_order: the first pending order (submit order) that it can describe,
    unless the answer names a larger size and is another order's (``answers_another``).

    NO_SUCH_ORDER and the modify answers never answer an add, and a refusal naming an id we
    cancelled before knowing it answers that cancel: neither may take a pending order.
    """
    status = r.status
    if status in _NEVER_ANSWERS_ADD:
        return None
    rejection = status not in NON_REJECTIONS
    if rejection and r.order_id and core.cancels.oldest((r.symbol, CancelIdType.ORDER_ID, r.order_id)):
        return None
    queue = core.tracker.pending(r.symbol, r.client_order_id)
    if not queue:
        return None
    order = queue[0]
    if len(queue) > 1:
        fitting = [o for o in queue if o.could_be(r.side, r.type, r.time_in_force, r.price, r.quantity)]
        # The reply's quantity is a lower bound (a FILLED report may carry the fill's size), but a
        # pending order was never modified: one of exactly that size is the better description.
        order = next((o for o in fitting if o.quantity == r.quantity), fitting[0] if fitting else order)
    if r.quantity is not None and r.quantity > order.quantity and answers_another(core, r, order):
        return None  # another order's answer (a settled one's, late): adopted below, never bound
    if r.order_id and not rejection:
        core.bind(order, r.order_id)
    return order


def after_ack(core: OmsCore, order: Order) -> None:
    """A cancel that waited for this order's ACK goes out now, by order id."""
    if order.local_id not in core.cancels.by_order:
        order.cancel_requested = False
        return
    if order.order_id is None or not order.state.is_live:
        return
    request = core.cancels.open_for(order)
    if request is None:
        order.cancel_requested = False
        return
    if order.cancel_requested:
        order.cancel_requested = False
        key = (order.symbol, CancelIdType.ORDER_ID, order.order_id)
        if request.mode is CancelIdType.ORDER_ID and not request.frame_sent:
            request.value = order.order_id
            cancelling.send_cancel(core, request, retry=False)
        else:
            core.cancels.register(request, key)
            order.seq = core.next_seq()
            core.send(m.CancelOrder(order_id=order.order_id, symbol=order.symbol,
                                    cancel_order_id_type=CancelIdType.ORDER_ID))
    if request.frame_sent and order.state is OrderState.OPEN:
        core.apply_order_event(order, OrderEvent.CANCEL_SENT, None)


def fill_event(order: Order, *, final_report: bool) -> OrderEvent:
    """FILLED can be partial: the state follows the remaining quantity and the time in force.

    ``order.remaining_quantity <= 0``, written out: the property pair costs two calls and two
    ``max`` on every fill."""
    filled, quantity, floor = order.fill_total, order.quantity, order.leaves_floor
    if filled >= quantity or (floor is not None and floor <= _ZERO):
        return _EV_FULL_FILL
    ends_now = order.time_in_force in _ENDS_AT_ONCE or order.order_type is _MARKET
    return _EV_EXPIRE if final_report and ends_now else _EV_PARTIAL_FILL


def answer_unknown_id(core: OmsCore, r: m.OrderResponse) -> None:
    """NO_SUCH_ORDER or a refusal naming an id we do not hold as an order: a cancel's answer."""
    no_such = r.status is OrderStatus.NO_SUCH_ORDER
    for mode in CancelIdType:
        for value in (r.order_id, r.client_order_id):
            request = core.cancels.oldest((r.symbol, mode, value or ""))
            if request is None:
                continue
            for order in request.targets:
                if order.state is OrderState.PENDING_CANCEL:
                    order.needs_settlement = no_such
                    event = OrderEvent.NO_SUCH_ORDER if no_such else OrderEvent.CANCEL_REFUSED
                    core.apply_order_event(order, event, r.status)
            if request.twap is not None:
                cancelling.twap_cancel_answered(request)
                core.apply_twap_event(request.twap, TwapEvent.CANCEL_REFUSED, r.status)
            cancelling.finish_cancel(core, request, str(r.status))
            return
    core.emit(Unmatched(r, f"{r.status} for an unknown order"))
    log.warning("order_response matched nothing", order_id=r.order_id, symbol=r.symbol,
                client_order_id=r.client_order_id, status=str(r.status))


def order_from_response(r: m.OrderResponse) -> Order:
    """An order learnt from a reply (placed elsewhere, or a TWAP child); also used by snapshots."""
    return Order(0, r.symbol, r.side or Side.BUY, r.type or OrderType.LIMIT,
                 r.time_in_force or TimeInForce.GTC, r.quantity or Decimal(0), r.price,
                 r.client_order_id or "", order_id=r.order_id, state=OrderState.OPEN,
                 leaves_floor=r.quantity_remaining, update_time=r.update_time)


# Module-level aliases of the members the reply path uses (a global is ~10 ns to read, an enum
# member through its class ~80 ns on Python 3.11).
_ZERO = Decimal(0)
_MARKET = OrderType.MARKET
_ACK = OrderStatus.ACK
_EV_ACK, _EV_CANCELLED = OrderEvent.ACK, OrderEvent.CANCELLED
_EV_FULL_FILL, _EV_PARTIAL_FILL, _EV_EXPIRE = OrderEvent.FULL_FILL, OrderEvent.PARTIAL_FILL, OrderEvent.EXPIRE
_ENDS_AT_ONCE = frozenset({TimeInForce.IOC, TimeInForce.FOK})
_ADOPTING = frozenset({OrderStatus.ACK, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.CANCELLED_STP,
                       OrderStatus.MODIFIED})
_TWAP_CANCEL_DONE = frozenset({OrderStatus.CANCELLED, OrderStatus.CANCELLED_STP})
# Statuses that only answer a cancel or a modify: never the first word about a new order.
_NEVER_ANSWERS_ADD = frozenset({OrderStatus.NO_SUCH_ORDER, OrderStatus.MODIFIED,
                                OrderStatus.CANNOT_MODIFY_PARTIAL_FILL,
                                OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER})
# Reports that carry the order's size as it stands (FILLED only for a modify in doubt: resized).
_REPORTS_SIZE = frozenset({OrderStatus.ACK, OrderStatus.MODIFIED, OrderStatus.CANCELLED,
                           OrderStatus.CANCELLED_STP, OrderStatus.CANNOT_MODIFY_PARTIAL_FILL,
                           OrderStatus.FILLED})

# One handler per status; every other status is a refusal (on_rejection).
BY_STATUS: dict[OrderStatus, Handler] = {
    OrderStatus.ACK: _on_ack,
    OrderStatus.FILLED: _on_filled_report,
    OrderStatus.CANCELLED: _on_cancelled,
    OrderStatus.CANCELLED_STP: _on_cancelled,
    OrderStatus.MODIFIED: _on_modified,
    OrderStatus.NO_SUCH_ORDER: _on_no_such_order,
    OrderStatus.CANNOT_MODIFY_PARTIAL_FILL: _on_modify_refused,
    OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER: _on_modify_refused,
}
