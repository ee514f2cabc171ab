"""What the exchange says, applied: order_response, fill_response, twap_response and err.

Correlation, since QFEX has no request ids: ACKs by ``(symbol, client_order_id)`` in submit order,
cancel answers by the id that was sent, ``err`` frames by their ``incoming_message`` echo, TWAP
answers by ``twap_id`` or ``(symbol, client_twap_id)``. Fills travel on their own channel and may
overtake the ACK: one for an id the book lacks binds only the one pending order it can describe, and
is otherwise held until an ``order_response`` names that id. ``order_response`` is most of the
traffic, so its path is written for speed (bench row 1): see the comments where it shows.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from qfex_oms.core import twaps as twap_rules
from qfex_oms.core.cancelling import CancelHandling
from qfex_oms.core.corestate import _EV_CANCELLED, S, log
from qfex_oms.core.events import FillReceived, ModifyFinished, RequestFailed, Unmatched
from qfex_oms.core.model import Fill, ModifyRequest, Order, Twap
from qfex_oms.core.states import OrderEvent, OrderState, TwapEvent
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import NON_REJECTIONS, CancelIdType, OrderStatus, OrderType, Side, TimeInForce

_ENDS_AT_ONCE = frozenset({TimeInForce.IOC, TimeInForce.FOK})
# Statuses that only answer a cancel or a modify: never the first word about a new order.
_NEVER_ANSWERS_ADD = frozenset({S.NO_SUCH_ORDER, S.MODIFIED, S.CANNOT_MODIFY_PARTIAL_FILL,
                                S.CANNOT_MODIFY_NO_SUCH_ORDER})


class ReplyHandling(CancelHandling):
    def on_reply(self, reply: m.Reply) -> None:
        """Apply one decoded reply. ``order_response`` is handled inline: it is most of the traffic."""
        if type(reply) is not _ORDER_RESPONSE:
            handler = _HANDLERS.get(type(reply))
            if handler is not None:
                handler(self, reply)
            return
        r: m.OrderResponse = reply
        order_id = r.order_id
        order = self._orders_by_id.get(order_id) if order_id else None
        if order is None or order.symbol != r.symbol:
            order = self._order_not_indexed(r, order)
            if order is None:
                return
        quantity, price = r.quantity, r.price
        if (quantity is not None and quantity != order.quantity) or \
                (price is not None and price != order.price):
            self._resized(order, r)  # rare: a modify it did not hear of, or a MARKET order's price
        if r.update_time is not None:
            order.update_time = r.update_time
        _BY_STATUS.get(r.status, ReplyHandling._on_rejection_reply)(self, order, r)

    def _resized(self, order: Order, r: m.OrderResponse) -> None:
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
        if status is S.FILLED:
            request = self._modifies.get(order.order_id or "")
            doubt = (request.quantity, request.price) if request is not None else order.modify_in_doubt
            if doubt is None:
                return
            quantity = quantity if quantity == doubt[0] else None
            price = price if price == doubt[1] else None
            if quantity is None and price is None:
                return
        if order.order_type is _MARKET:
            price = None  # a MARKET order's wire price is a protection price, not its own
        if quantity is not None and quantity != order.quantity:
            order.quantity = quantity
            leaves = r.quantity_remaining
            order.leaves_floor = None if leaves is None else max(leaves, _ZERO)
        if price is not None:
            order.price = price
        if quantity is not None or status is not S.FILLED:
            order.modify_in_doubt = None

    def _order_not_indexed(self, r: m.OrderResponse, by_id: Order | None) -> Order | None:
        """The order a reply is about when its id is not (yet) in the book, or None if it is about
        no order: a TWAP's cancel answer, or a cancel's answer for an id the book lacks."""
        if by_id is not None:
            if r.status is S.NO_SUCH_ORDER or r.status not in NON_REJECTIONS:
                self._answer_unknown_id(r)  # a cancel sent with the wrong symbol: not about this order
            else:
                self._wrong_symbol(r, by_id)
            return None
        twap = self.tracker.twap_by_id(r.order_id)
        if twap is not None:
            if twap.symbol != r.symbol:
                self._wrong_symbol(r, twap)
            else:
                self._twap_cancel_answer(twap, r.status)
            return None
        order = self._bind_pending(r)
        if order is not None:
            return order
        status = r.status
        if status in _TWAP_CANCEL_DONE and self._twap_answer_by_client_id(r):
            return None
        if status in _ADOPTING:
            if self.tracker.pending_elsewhere(r.symbol, r.client_order_id):
                self._wrong_symbol(r, None)
                return None
            order = self.adopt(order_from_response(r))
            log.info("adopted order", **order.describe(), status=str(status))
            return order
        self._answer_unknown_id(r)
        return None

    def _wrong_symbol(self, reply: Any, tracked: Order | Twap | None) -> None:
        """A reply naming an id the book holds on another symbol (the order_id of a tracked order,
        or the client id of an order still waiting for its ACK) is malformed for that order: a
        phantom adopted from it would take the id, and a snapshot row for the real order would then
        be read as the phantom's. Logged and dropped; the tracked order is left as it was."""
        self._events.append(Unmatched(reply, "names a tracked id on another symbol"))
        log.warning("reply names a tracked id on another symbol; dropped", reply_type=type(reply).__name__,
                    reply_symbol=getattr(reply, "symbol", None), order_id=getattr(reply, "order_id", None),
                    client_order_id=getattr(reply, "client_order_id", None),
                    tracked=tracked.describe() if tracked is not None else "a pending order")

    # One handler per status, found by a dict lookup (see _BY_STATUS): comparing against enum members
    # one by one costs ~80 ns per member access on Python 3.11, and this runs for every reply.
    # ACK and FILLED inline _note_leaves and _after_ack's common case (no cancel waits for this
    # order): they run for most replies, and a Python call costs about 60 ns.
    def _on_ack(self, order: Order, r: m.OrderResponse) -> None:
        leaves = r.quantity_remaining
        if leaves is not None and (order.leaves_floor is None or leaves < order.leaves_floor):
            order.leaves_floor = leaves if leaves >= _ZERO else _ZERO
        self._order_event(order, _EV_ACK, r.status)
        if order.local_id in self._order_cancels:
            self._after_ack(order)
        else:
            order.cancel_requested = False
            if order.cancel_owed:  # its cancel was lost (held for this ACK, say): ask now
                self.resend_owed_cancel(order)

    def _on_filled_report(self, order: Order, r: m.OrderResponse) -> None:
        leaves = r.quantity_remaining
        if leaves is not None and (order.leaves_floor is None or leaves < order.leaves_floor):
            order.leaves_floor = leaves if leaves >= _ZERO else _ZERO
        self._order_event(order, self._fill_event(order, final_report=True), r.status)
        if order.twap_id is not None:  # its fill_response may be lost: the report is the news
            self._note_child_fill(order)
        if order.local_id in self._order_cancels:
            self._after_ack(order)
        else:
            order.cancel_requested = False

    def _on_cancelled(self, order: Order, r: m.OrderResponse) -> None:
        self._order_event(order, _EV_CANCELLED, r.status)

    def _on_no_such_order(self, order: Order, r: m.OrderResponse) -> None:
        self._no_such_order(order)

    def _on_modify_refused(self, order: Order, r: m.OrderResponse) -> None:
        self._refuse_modify(order, r.status)

    def _on_rejection_reply(self, order: Order, r: m.OrderResponse) -> None:
        self._rejection(order, r.status)

    def _bind_pending(self, r: m.OrderResponse) -> Order | None:
        """The answer to an add_order: the first pending order (submit order) that it can describe.

        NO_SUCH_ORDER and the modify answers never answer an add, and a refusal naming an id we
        cancelled before knowing it answers that cancel: neither may take a pending order.
        """
        status = r.status
        if status in _NEVER_ANSWERS_ADD:
            return None
        rejection = status not in NON_REJECTIONS
        if rejection and r.order_id and self._keyed((r.symbol, CancelIdType.ORDER_ID, r.order_id)):
            return None
        queue = self.tracker.pending(r.symbol, r.client_order_id)
        if not queue:
            return None
        order = queue[0]
        if len(queue) > 1:
            order = next((o for o in queue if o.could_be(r.side, r.type, r.time_in_force, r.price,
                                                         r.quantity)), order)
        if r.order_id and not rejection:
            self.bind(order, r.order_id)
        return order

    def bind(self, order: Order, order_id: str) -> None:
        """Give a pending order its exchange id; what waited for that id applies to it now."""
        self.tracker.bind(order, order_id)
        if self._cancels or self._held:
            self._id_learnt(order)

    def adopt(self, order: Order) -> Order:
        """Take an order learnt from the exchange into the book (placed elsewhere, a TWAP child).

        Learning it is a local action (``seq``): a snapshot requested before may predate the order
        (its fill overtook the snapshot's answer) and must not settle it as missing."""
        order.seq = self._next_seq()
        self.tracker.adopt(order)
        self._link_twap_child(order)
        self._id_learnt(order)
        return order

    def _id_learnt(self, order: Order) -> None:
        """A cancel sent by this id before the core knew it covers the order; held fills apply."""
        order_id = order.order_id
        if order_id is None:
            return
        if self._cancels:
            for request in self._cancels.get((order.symbol, CancelIdType.ORDER_ID, order_id), ()):
                self._attach(request, order)
        if self._held:
            for f in self._held.pop(order_id, ()):
                self._on_fill(f)

    def _after_ack(self, order: Order) -> None:
        """A cancel that waited for this order's ACK goes out now, by order id."""
        if order.local_id not in self._order_cancels:
            order.cancel_requested = False
            return
        if order.order_id is None or not order.state.is_live:
            return
        request = self._open_cancel_for(order)
        if request is None:
            order.cancel_requested = False
            return
        if order.cancel_requested:
            order.cancel_requested = False
            key = (order.symbol, CancelIdType.ORDER_ID, order.order_id)
            if request.mode is CancelIdType.ORDER_ID and not request.frame_sent:
                request.value = order.order_id
                self._send_cancel(request, retry=False)
            else:
                self._register(request, key)
                order.seq = self._next_seq()
                self._frames.append(m.CancelOrder(order_id=order.order_id, symbol=order.symbol,
                                                  cancel_order_id_type=CancelIdType.ORDER_ID))
        if request.frame_sent and order.state is OrderState.OPEN:
            self._order_event(order, OrderEvent.CANCEL_SENT, None)

    def _fill_event(self, order: Order, *, final_report: bool) -> OrderEvent:
        """FILLED can be partial: the state follows the remaining quantity and the time in force.

        ``order.remaining_quantity <= 0``, written out: the property pair costs two calls and two
        ``max`` on every fill."""
        filled, quantity, floor = order.fill_total, order.quantity, order.leaves_floor
        if filled >= quantity or (floor is not None and floor <= _ZERO):
            return _EV_FULL_FILL
        ends_now = order.time_in_force in _ENDS_AT_ONCE or order.order_type is _MARKET
        return _EV_EXPIRE if final_report and ends_now else _EV_PARTIAL_FILL

    def _note_leaves(self, order: Order, leaves: Decimal | None) -> None:
        if leaves is not None and (order.leaves_floor is None or leaves < order.leaves_floor):
            order.leaves_floor = leaves if leaves >= _ZERO else _ZERO

    # ------------------------------------------------------------------ fills

    def _on_fill(self, f: m.FillResponse) -> None:
        if not (f.quantity > _ZERO and f.price > _ZERO):
            malformed_fill(f.trade_id, f.order_id, f.symbol, f.quantity, f.price)
            return
        if f.trade_id in self.tracker.trade_ids:
            self.duplicate_trade(f.trade_id, f.order_id, f.quantity, f.price)
            return
        order = self.tracker.by_order_id(f.order_id)
        if order is not None and order.symbol != f.symbol:
            self._wrong_symbol(f, order)
            return
        if order is None:
            order = self._place_fill(f)
            if order is None:
                return
        self.record_fill(order, Fill(f.trade_id, f.order_id, f.symbol, f.side, f.price, f.quantity,
                                     f.fee, f.timestamp))
        self._note_leaves(order, f.remaining_quantity)
        self._order_event(order, self._fill_event(order, final_report=False), S.FILLED)
        self._after_ack(order)

    def _place_fill(self, f: m.FillResponse) -> Order | None:
        """Find the order of a fill that overtook its ACK, or hold the fill (None) until it is known.

        Fills do not come in submit order, so the first pending order sharing the client id may be a
        sibling: bind only the one pending order the fill can describe. Several (or none, e.g. the
        exchange wrote the price differently) fit: hold it; the ACK that names the id releases it.
        """
        pending = self.tracker.pending(f.symbol, f.client_order_id)
        if not pending and self.tracker.pending_elsewhere(f.symbol, f.client_order_id):
            self._wrong_symbol(f, None)  # a real trade of it is learnt from the next snapshot's trades
            return None
        if not pending:
            order = self.adopt(_order_from_fill(f))
            log.info("adopted order from a fill", **order.describe())
            return order
        least = f.quantity + (f.remaining_quantity or 0)
        fitting = [o for o in pending if o.could_be(f.side, f.order_type, f.tif, f.order_price, least)]
        if len(fitting) == 1:
            self.bind(fitting[0], f.order_id)
            return fitting[0]
        held = self._held.setdefault(f.order_id, [])
        if all(h.trade_id != f.trade_id for h in held):
            held.append(f)
        log.info("fill held until its order is known", order_id=f.order_id, trade_id=f.trade_id,
                 client_order_id=f.client_order_id, candidates=len(fitting))
        return None

    def record_fill(self, order: Order, fill: Fill) -> bool:
        """Count a fill once, by trade id. Returns False for a duplicate."""
        if fill.trade_id in self.tracker.trade_ids:
            return False
        self.tracker.trade_ids.add(fill.trade_id)
        if order.adopted:
            order.grow_to_trades(fill.quantity)
        if order.fills is None:
            order.fills = []
        order.fills.append(fill)
        order.fill_total += fill.quantity
        if order.twap_id is not None:
            self._note_child_fill(order)
        self._events.append(FillReceived(order, fill))
        return True

    def _note_child_fill(self, order: Order) -> None:
        """A TWAP's filled quantity follows its children's (each counted once, see Order)."""
        twap = self.tracker.twap_by_id(order.twap_id)
        if twap is not None:
            twap_rules.note_child_fill(twap)

    def duplicate_trade(self, trade_id: str, order_id: str, quantity: Decimal, price: Decimal) -> None:
        """A trade id seen again: dropped. The same numbers are a replay (debug); other numbers mean
        the exchange contradicts itself, which someone must look at (warning, naming both)."""
        first = self._recorded_fill(trade_id, order_id)
        if first is None or (first.quantity, first.price, first.order_id) == (quantity, price, order_id):
            log.debug("duplicate fill ignored", trade_id=trade_id, order_id=order_id)
            return
        log.warning("duplicate trade_id with other numbers dropped", trade_id=trade_id,
                    first={"order_id": first.order_id, "quantity": str(first.quantity),
                           "price": str(first.price)},
                    second={"order_id": order_id, "quantity": str(quantity), "price": str(price)})

    def _recorded_fill(self, trade_id: str, order_id: str) -> Fill | None:
        """The fill counted under ``trade_id`` (its order first; all orders on this rare path)."""
        named = self.tracker.by_order_id(order_id)
        for order in ([named] if named is not None else []) + list(self.tracker.orders()):
            for fill in order.fills or ():
                if fill.trade_id == trade_id:
                    return fill
        return None

    # ------------------------------------------------------------------ answers to modifies and cancels

    def _on_modified(self, order: Order, r: m.OrderResponse) -> None:
        """The new size and price were taken by ``_resized`` (with the leaves of the new size);
        a MODIFIED naming the size the book already has only lowers the leaves."""
        self._note_leaves(order, r.quantity_remaining)
        order.modify_in_doubt = None
        self._order_event(order, OrderEvent.MODIFIED, S.MODIFIED)
        request = self._modifies.get(order.order_id or "")
        if request is not None:
            self._finish_modify(request, str(S.MODIFIED))

    def _refuse_modify(self, order: Order, status: OrderStatus) -> None:
        order.last_status = str(status)
        request = self._modifies.get(order.order_id or "")
        if request is None:
            self._events.append(Unmatched(order, f"{status} with no modify in flight"))
            return
        if status is S.CANNOT_MODIFY_NO_SUCH_ORDER:
            order.needs_settlement = True
        self._finish_modify(request, str(status))

    def _finish_modify(self, request: ModifyRequest, status: str) -> None:
        self._modifies.pop(request.order.order_id or "", None)
        request.status, request.done = status, True
        self._events.append(ModifyFinished(request))

    def _no_such_order(self, order: Order) -> None:
        """Not a cancel: the order may have filled, or its fill may still be on the way."""
        request = self._answered(order)
        if order.state.is_live:
            order.needs_settlement = True
        self._order_event(order, OrderEvent.NO_SUCH_ORDER, S.NO_SUCH_ORDER)
        if request is not None:
            self._refused(request, order, str(S.NO_SUCH_ORDER))

    def _rejection(self, order: Order, status: OrderStatus) -> None:
        """A new order refused (its cancels end with it, see _target_ended), or a cancel refused."""
        if order.state in (OrderState.PENDING_NEW, OrderState.UNKNOWN) and order.order_id is None:
            self._order_event(order, OrderEvent.REJECT, status)
            return
        request = self._answered(order)
        if request is not None:
            self._order_event(order, OrderEvent.CANCEL_REFUSED, status)
            self._refused(request, order, str(status))
        elif order.order_id is not None and order.order_id in self._modifies:
            self._refuse_modify(order, status)
        else:
            self._events.append(Unmatched(order, f"{status} for an order with no request in flight"))
            log.warning("rejection matched no request", **order.describe(), status=str(status))

    def _answer_unknown_id(self, r: m.OrderResponse) -> None:
        """NO_SUCH_ORDER or a refusal naming an id we do not hold as an order: a cancel's answer."""
        for mode in CancelIdType:
            for value in (r.order_id, r.client_order_id):
                request = self._keyed((r.symbol, mode, value or ""))
                if request is not None:
                    for order in request.targets:
                        if order.state is OrderState.PENDING_CANCEL:
                            event = (OrderEvent.NO_SUCH_ORDER if r.status is S.NO_SUCH_ORDER
                                     else OrderEvent.CANCEL_REFUSED)
                            order.needs_settlement = r.status is S.NO_SUCH_ORDER
                            self._order_event(order, event, r.status)
                    if request.twap is not None:
                        self._twap_cancel_answered(request)
                        self._twap_event(request.twap, TwapEvent.CANCEL_REFUSED, r.status)
                    self._finish_cancel(request, str(r.status))
                    return
        self._events.append(Unmatched(r, f"{r.status} for an unknown order"))
        log.warning("order_response matched nothing", order_id=r.order_id, symbol=r.symbol,
                    client_order_id=r.client_order_id, status=str(r.status))

    # ------------------------------------------------------------------ TWAPs

    def _on_twap_response(self, r: m.TwapResponse) -> None:
        twap = self.tracker.twap_by_id(r.twap_id)
        if twap is not None and twap.symbol != r.symbol:
            self._wrong_symbol(r, twap)
            return
        if twap is None:
            twap = self.tracker.first_pending_twap(r.symbol, r.client_twap_id)
            if twap is not None:
                self.learn_twap_id(twap, r.twap_id)
            else:
                twap = self.tracker.new_twap(twap_rules.twap_from_response(r))
                twap.adopted = True
                twap.seq = self._next_seq()  # learnt now: an older snapshot must not settle it
                self.claim_orphans(twap)
        twap_rules.note_progress(twap, r)
        event = twap_rules.event_for_status(r.status)
        self._twap_event(twap, event, r.status)
        if event in (TwapEvent.CANCELLED, TwapEvent.COMPLETED, TwapEvent.REJECT):
            self._twap_cancel_done(twap, r.status)

    def _twap_cancel_answer(self, twap: Twap, status: OrderStatus) -> None:
        if status in (S.CANCELLED, S.CANCELLED_STP):
            self._twap_event(twap, TwapEvent.CANCELLED, status)
        else:
            twap.gone_before_cancel = twap.gone_before_cancel or status is S.NO_SUCH_ORDER
            self._twap_event(twap, TwapEvent.CANCEL_REFUSED, status)
        self._twap_cancel_done(twap, status)

    def _twap_answer_by_client_id(self, r: m.OrderResponse) -> bool:
        """A TWAP cancel sent by client_twap_id is answered with an ``order_response`` whose
        ``order_id`` is the TWAP's id: when the book never learnt that id (its twap_response was
        lost), the answer is recognised by the cancel in flight under that client id, not adopted
        as a phantom order. It teaches the TWAP its id. (NO_SUCH_ORDER echoes the client id sent
        in ``order_id``: ``_answer_unknown_id`` answers that cancel, and it names no TWAP id.)"""
        request = self._keyed((r.symbol, CancelIdType.CLIENT_TWAP_ID, r.client_order_id or ""))
        twap = request.twap if request is not None else None
        if twap is None or twap.symbol != r.symbol:
            return False
        if twap.twap_id is None and r.order_id and self.tracker.twap_by_id(r.order_id) is None:
            self.learn_twap_id(twap, r.order_id)
        self._twap_cancel_answer(twap, r.status)
        return True

    def learn_twap_id(self, twap: Twap, twap_id: str) -> None:
        """Give a TWAP its id; children already learnt under that id become its own."""
        self.tracker.bind_twap(twap, twap_id)
        self.claim_orphans(twap)

    def claim_orphans(self, twap: Twap) -> None:
        """Children that named this TWAP's id before the book knew it (see ``_link_twap_child``)."""
        for child in self._orphans.pop(twap.twap_id or "", ()):
            if child.symbol == twap.symbol:
                self.tracker.link_child(twap, child)
        twap_rules.note_child_fill(twap)

    def _link_twap_child(self, order: Order) -> None:
        """A child names its TWAP's id in its client id. A TWAP whose reports were all lost does
        not know its id: the child teaches it when it can be no other TWAP's (``_parent_by_shape``);
        otherwise the child waits (an orphan) for a twap_response or a snapshot row to bind it."""
        twap_id = twap_rules.parent_twap_id(order.client_order_id)
        if twap_id is None:
            return
        twap = self.tracker.twap_by_id(twap_id)
        if twap is None:
            twap = self._parent_by_shape(order, twap_id)
            if twap is None:
                order.twap_id = twap_id
                self._orphans.setdefault(twap_id, []).append(order)
                return
            self.learn_twap_id(twap, twap_id)
        if twap.symbol == order.symbol:  # a child on another symbol is not this TWAP's
            self.tracker.link_child(twap, order)

    def _parent_by_shape(self, child: Order, twap_id: str) -> Twap | None:
        """The one live TWAP without an id that this child can belong to (symbol, side, its number
        within the TWAP's count, its size within the total), when no other unknown TWAP id is
        waiting on that symbol and side (it could be that one's). None when that is not decided."""
        number = twap_rules.child_number(child.client_order_id)
        fits = [t for t in self.tracker.twaps(open_only=True)
                if t.twap_id is None and t.symbol == child.symbol and t.side == child.side
                and (number is None or number <= t.num_orders) and child.quantity <= t.total_quantity]
        rivals = [other for other, kids in self._orphans.items() if other != twap_id and kids
                  and kids[0].symbol == child.symbol and kids[0].side == child.side]
        return fits[0] if len(fits) == 1 and not rivals else None

    # ------------------------------------------------------------------ errors

    def _on_err(self, e: m.Err) -> None:
        """An ``err`` is matched to its request by the echo. The echo is the exchange's text of
        what it got: a request type or an id that is not a string (a list, an object) names no
        request of ours, so the ``err`` matches nothing; it is logged (capped) and the book is
        left as it was."""
        incoming = e.incoming_message if isinstance(e.incoming_message, dict) else {}
        kind = incoming.get("type")
        params = incoming.get("params") if isinstance(incoming.get("params"), dict) else {}
        code = str(e.error_code)
        wrong = [name for name in _ECHOED_IDS if params.get(name) is not None
                 and not isinstance(params[name], str)]
        if not isinstance(kind, str) and kind is not None:
            wrong.append("type")
            kind = None
        if wrong:
            log.warning("err echoes fields of the wrong type; it matches no request", fields=wrong,
                        error_code=code, incoming=_capped(incoming))
            matched = False
        else:
            matched = _ERR_MATCHERS.get(kind or "", _match_nothing)(self, params, code)
        if not matched:
            self._events.append(RequestFailed(kind, code, e.message, e.incoming_message))

    def _err_add_order(self, params: dict[str, Any], code: str) -> bool:
        order = self.tracker.first_pending(str(params.get("symbol")), params.get("client_order_id"))
        if order is None:
            return False
        self._order_event(order, OrderEvent.REJECT, code)
        return True

    def _err_cancel(self, params: dict[str, Any], code: str) -> bool:
        try:
            key = (str(params.get("symbol")), CancelIdType(params.get("cancel_order_id_type")),
                   str(params.get("order_id")))
        except ValueError:
            return False
        request = self._keyed(key)
        if request is None:
            return False
        member = self.tracker.by_order_id(key[2]) if key[1] is CancelIdType.ORDER_ID else None
        if member is not None and key != request.key and member in request.targets:
            # The frame a group cancel sent by id for one member: only that member was refused.
            if member.state is OrderState.PENDING_CANCEL:
                self._order_event(member, OrderEvent.CANCEL_REFUSED, code)
            self._refused(request, member, code)
            return True
        self._twap_cancel_answered(request)
        self._refuse_cancel(request, code)
        return True

    def _err_modify(self, params: dict[str, Any], code: str) -> bool:
        request = self._modifies.get(str(params.get("order_id")))
        if request is None:
            return False
        request.order.last_status = code
        self._finish_modify(request, code)
        return True

    def _err_add_twap(self, params: dict[str, Any], code: str) -> bool:
        twap = self.tracker.first_pending_twap(str(params.get("symbol")), params.get("client_twap_id"))
        if twap is None:
            return False
        self._twap_event(twap, TwapEvent.REJECT, code)
        return True


# Module-level aliases of the members the reply path uses (a global is ~10 ns to read, an enum
# member through its class ~80 ns on Python 3.11).
_ZERO = Decimal(0)
_MARKET = OrderType.MARKET
_EV_ACK = OrderEvent.ACK
_EV_FULL_FILL, _EV_PARTIAL_FILL, _EV_EXPIRE = OrderEvent.FULL_FILL, OrderEvent.PARTIAL_FILL, OrderEvent.EXPIRE
_ORDER_RESPONSE = m.OrderResponse
_ADOPTING = frozenset({S.ACK, S.FILLED, S.CANCELLED, S.CANCELLED_STP, S.MODIFIED})
_TWAP_CANCEL_DONE = frozenset({S.CANCELLED, S.CANCELLED_STP})
# Reports that carry the order's size as it stands (FILLED only for a modify in doubt: _resized).
_REPORTS_SIZE = frozenset({S.ACK, S.MODIFIED, S.CANCELLED, S.CANCELLED_STP, S.CANNOT_MODIFY_PARTIAL_FILL,
                           S.FILLED})
# The dispatch tables name the class's own private methods (SLF001 noqa: not another's privates).
_BY_STATUS: dict[OrderStatus, Any] = {
    S.ACK: ReplyHandling._on_ack,  # noqa: SLF001
    S.FILLED: ReplyHandling._on_filled_report,  # noqa: SLF001
    S.CANCELLED: ReplyHandling._on_cancelled,  # noqa: SLF001
    S.CANCELLED_STP: ReplyHandling._on_cancelled,  # noqa: SLF001
    S.MODIFIED: ReplyHandling._on_modified,  # noqa: SLF001
    S.NO_SUCH_ORDER: ReplyHandling._on_no_such_order,  # noqa: SLF001
    S.CANNOT_MODIFY_PARTIAL_FILL: ReplyHandling._on_modify_refused,  # noqa: SLF001
    S.CANNOT_MODIFY_NO_SUCH_ORDER: ReplyHandling._on_modify_refused,  # noqa: SLF001
}


# The echoed params a matcher reads: each must be a string (or absent) to name anything of ours.
_ECHOED_IDS = ("symbol", "client_order_id", "order_id", "client_twap_id", "twap_id",
               "cancel_order_id_type")
_LOG_CAP = 512


def _capped(value: object) -> str:
    """A hostile echo can be any size: log its first bytes and mark the cut."""
    text = repr(value)
    return text if len(text) <= _LOG_CAP else f"{text[:_LOG_CAP]}...[cut {len(text) - _LOG_CAP} chars]"


def malformed_fill(trade_id: str, order_id: str, symbol: str, quantity: Decimal, price: Decimal) -> None:
    """A fill or trade of no size, a negative one, or at no price is no fill: logged and dropped."""
    log.warning("malformed fill dropped: quantity and price must be positive", trade_id=trade_id,
                order_id=order_id, symbol=symbol, quantity=str(quantity), price=str(price))


def _match_nothing(core: ReplyHandling, params: dict[str, Any], code: str) -> bool:
    return False


_ERR_MATCHERS = {
    "add_order": ReplyHandling._err_add_order,  # noqa: SLF001
    "cancel_order": ReplyHandling._err_cancel,  # noqa: SLF001
    "modify_order": ReplyHandling._err_modify,  # noqa: SLF001
    "add_twap": ReplyHandling._err_add_twap,  # noqa: SLF001
}

_HANDLERS: dict[type, Any] = {
    m.FillResponse: ReplyHandling._on_fill,  # noqa: SLF001
    m.TwapResponse: ReplyHandling._on_twap_response,  # noqa: SLF001
    m.Err: ReplyHandling._on_err,  # noqa: SLF001
}


def order_from_response(r: m.OrderResponse) -> Order:
    """An order learnt from a reply (placed elsewhere, or a TWAP child); also used by snapshots."""
    return Order(0, r.symbol, r.side or Side.BUY, r.type or OrderType.LIMIT,
                 r.time_in_force or TimeInForce.GTC, r.quantity or Decimal(0), r.price,
                 r.client_order_id or "", order_id=r.order_id, state=OrderState.OPEN,
                 leaves_floor=r.quantity_remaining, update_time=r.update_time)


def _order_from_fill(f: m.FillResponse) -> Order:
    remaining = f.remaining_quantity if f.remaining_quantity is not None else Decimal(0)
    return Order(0, f.symbol, f.side, f.order_type or OrderType.LIMIT, f.tif or TimeInForce.GTC,
                 f.quantity + remaining, f.order_price, f.client_order_id or "", order_id=f.order_id,
                 state=OrderState.OPEN)
