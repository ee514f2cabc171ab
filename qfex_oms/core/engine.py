"""OmsCore: the sans-IO order manager. Commands and decoded replies in; frames and events out.

Nothing here awaits or touches a socket: the trio shell calls a method, then drains
``take_frames()`` (to send, in order) and ``take_events()`` (to publish). That makes every race a
synchronous test: cancel before ACK, fill after CANCELLED, NO_SUCH_ORDER after a fill, duplicate and
reordered replies, an ``err`` for a cancel (design.md "Cancel resolution and reconciliation rules").

Correlation, since QFEX has no request ids: ACKs by ``(symbol, client_order_id)`` in submit order,
cancel answers by the id that was sent, ``err`` frames by their ``incoming_message`` echo, TWAP
answers by ``twap_id`` or ``(symbol, client_twap_id)``. Fills travel on their own channel and may
overtake the ACK: one for an id the book lacks binds only the one pending order it can describe, and
is otherwise held until an ``order_response`` names that id. Several cancels may be in flight under
one key (an id sent again, a group and a single cancel); each key keeps them oldest first, as QFEX
answers frames in order.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import structlog

from qfex_oms.core import cancel as cancel_rules
from qfex_oms.core import twaps as twap_rules
from qfex_oms.core.cancel import CancelError, CancelIntent
from qfex_oms.core.events import (
    CancelFinished,
    Event,
    FillReceived,
    ModifyFinished,
    OrderUpdated,
    RequestFailed,
    TwapUpdated,
    Unmatched,
)
from qfex_oms.core.model import CancelRequest, Fill, ModifyRequest, Order, Twap
from qfex_oms.core.states import (
    ORDER_TRANSITIONS,
    OrderEvent,
    OrderState,
    TwapEvent,
    next_twap_state,
)
from qfex_oms.core.tracker import OrderTracker
from qfex_oms.errors import InvalidArgument
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import NON_REJECTIONS, CancelIdType, OrderStatus, OrderType, Side, TimeInForce
from qfex_oms.protocol.fastpath import intern_decimal

log = structlog.get_logger("qfex_oms.core")

S = OrderStatus
_ENDS_AT_ONCE = frozenset({TimeInForce.IOC, TimeInForce.FOK})
# Statuses that only answer a cancel or a modify: never the first word about a new order.
_NEVER_ANSWERS_ADD = frozenset({S.NO_SUCH_ORDER, S.MODIFIED, S.CANNOT_MODIFY_PARTIAL_FILL,
                                S.CANNOT_MODIFY_NO_SUCH_ORDER})
_CANCEL_STATUSES = frozenset({S.CANCELLED, S.CANCELLED_STP})
ALREADY_CLOSED = "ALREADY_CLOSED"
CancelKey = tuple[str, CancelIdType, str]


class OmsCore:
    def __init__(self, tracker: OrderTracker | None = None) -> None:
        self.tracker = tracker if tracker is not None else OrderTracker()
        self.seq = 0
        self._frames: list[m.Request] = []
        self._events: list[Event] = []
        self._cancels: dict[CancelKey, list[CancelRequest]] = {}  # open, oldest first
        self._cancel_keys: dict[int, list[CancelKey]] = {}
        self._order_cancels: dict[int, list[CancelRequest]] = {}
        self._modifies: dict[str, ModifyRequest] = {}
        self._held: dict[str, list[m.FillResponse]] = {}  # fills whose order is not known yet
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

    # ------------------------------------------------------------------ commands

    def place_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        time_in_force: TimeInForce,
        quantity: Decimal,
        price: Decimal | None,
        client_order_id: str,
        *,
        reduce_only: bool | None = None,
        take_profit: Decimal | None = None,
        stop_loss: Decimal | None = None,
    ) -> Order:
        """Track a new order as PENDING_NEW and queue its ``add_order`` (arguments already validated)."""
        quantity, price = intern_decimal(quantity), intern_decimal(price)
        order = self.tracker.new_order(
            symbol, side, order_type, time_in_force, quantity, price, client_order_id,
            reduce_only=reduce_only, take_profit=take_profit, stop_loss=stop_loss,
            seq=self._next_seq(),
        )
        self._frames.append(m.AddOrder(
            symbol=symbol, side=side, order_type=order_type, order_time_in_force=time_in_force,
            quantity=quantity, price=price, client_order_id=client_order_id,
            take_profit=take_profit, stop_loss=stop_loss, reduce_only=reduce_only,
        ))
        return order

    def place_twap(
        self,
        symbol: str,
        side: Side,
        total_quantity: Decimal,
        num_orders: int,
        order_interval_secs: int,
        reduce_only: bool,
        client_twap_id: str,
    ) -> Twap:
        twap = self.tracker.new_twap(Twap(0, symbol, side, total_quantity, num_orders,
                                          order_interval_secs, reduce_only, client_twap_id,
                                          seq=self._next_seq()))
        self._frames.append(m.AddTwap(symbol=symbol, side=side, total_quantity=total_quantity,
                                      num_orders=num_orders, order_interval_secs=order_interval_secs,
                                      reduce_only=reduce_only, client_twap_id=client_twap_id))
        return twap

    def modify_order(self, order: Order, price: Decimal | None, quantity: Decimal | None) -> ModifyRequest:
        if order.order_id is None:
            raise InvalidArgument("cannot modify an order before its ACK: it has no order_id yet")
        if not order.state.is_live:
            raise InvalidArgument(f"cannot modify an order that is {order.state}")
        if order.order_id in self._modifies:
            raise InvalidArgument("a modify of this order is already in flight")
        request = ModifyRequest(self._next_seq(), order, price, quantity)
        order.seq = request.seq
        self._modifies[order.order_id] = request
        self._frames.append(m.ModifyOrder(order_id=order.order_id, symbol=order.symbol, side=order.side,
                                          order_type=order.order_type, price=price, quantity=quantity))
        return request

    def cancel(self, intent: CancelIntent, *, retry: bool = False) -> CancelRequest:
        """Resolve an intent into a cancel in flight; raises ``CancelError`` with nothing queued."""
        mode, value = intent.selector()
        target = intent.target
        if isinstance(target, Twap):
            return self._cancel_twap(target, retry)
        if isinstance(target, Order):
            return self._cancel_order(target, retry)
        assert mode is not None and value is not None and intent.symbol is not None
        symbol = intent.symbol
        if mode is CancelIdType.ORDER_ID:
            known = self.tracker.by_order_id(value)
            if known is not None:
                if known.symbol != symbol:
                    raise CancelError(f"order {value} is on {known.symbol}, not {symbol}")
                return self._cancel_order(known, retry)
            return self._cancel_unknown(symbol, mode, value, retry)
        if mode is CancelIdType.CLIENT_ORDER_ID:
            return self._cancel_client_id(symbol, value, retry)
        twap = (self.tracker.twap_by_id(value) if mode is CancelIdType.TWAP_ID
                else self.tracker.twap_by_client(symbol, value))
        if twap is not None and twap.symbol == symbol:
            return self._cancel_twap(twap, retry, (mode, value))
        return self._cancel_unknown(symbol, mode, value, retry)

    def _cancel_unknown(self, symbol: str, mode: CancelIdType, value: str, retry: bool) -> CancelRequest:
        """An id the book lacks goes as given; asking again joins the cancel already in flight."""
        existing = self._newest((symbol, mode, value))
        if existing is not None and not retry:
            return existing
        return self._send_cancel(existing or CancelRequest(self._next_seq(), mode, value, symbol), retry)

    def _cancel_order(self, order: Order, retry: bool) -> CancelRequest:
        if self.tracker.by_local_id(order.local_id) is not order:
            raise CancelError("this order is not tracked by this manager and has no id to send")
        existing = self._open_cancel_for(order)
        if existing is not None and not retry:
            return existing
        if order.state.is_terminal:
            return self._finished_locally(order)
        sharing = self.tracker.live_members(order.symbol, order.client_order_id)
        wire = cancel_rules.order_wire_selector(order, sharing)
        if existing is not None:
            if wire is None:
                return existing
            if not existing.frame_sent:
                # Held for the ACK (value still ""), but the sibling is gone: it can go now.
                existing.mode, existing.value = wire
                order.cancel_requested = False
            return self._send_cancel(existing, retry=True)
        if wire is None:
            request = CancelRequest(self._next_seq(), CancelIdType.ORDER_ID, "", order.symbol, [order])
            order.cancel_requested = True
            order.seq = request.seq
            self._attach(request, order)
            return request
        request = CancelRequest(self._next_seq(), wire[0], wire[1], order.symbol, [order])
        self._attach(request, order)
        return self._send_cancel(request, retry)

    def _cancel_client_id(self, symbol: str, client_order_id: str, retry: bool) -> CancelRequest:
        """Joins the group cancel in flight, unless a member was placed after it went (it missed it)."""
        existing = self._newest((symbol, CancelIdType.CLIENT_ORDER_ID, client_order_id))
        live = self.tracker.live_members(symbol, client_order_id)
        if existing is not None and not retry:
            if all(order in existing.targets for order in live):
                return existing
            existing = None
        request = existing or CancelRequest(self._next_seq(), CancelIdType.CLIENT_ORDER_ID,
                                            client_order_id, symbol, live)
        for order in live:
            self._attach(request, order)
            if order.order_id is None:
                # The exchange may not have it yet when the client-id cancel lands: cancel it by
                # order id on its ACK as well, so no member of the group survives.
                order.cancel_requested = True
        return self._send_cancel(request, retry)

    def _cancel_twap(self, twap: Twap, retry: bool,
                     selector: tuple[CancelIdType, str] | None = None) -> CancelRequest:
        """An explicit selector goes on the wire as given; a Twap object goes by its best id."""
        mode, value = selector or cancel_rules.twap_wire_selector(twap)
        existing = self._newest((twap.symbol, mode, value))
        if existing is not None and not retry:
            return existing
        if twap.state.is_terminal:
            request = CancelRequest(self._next_seq(), mode, value, twap.symbol, twap=twap,
                                    status=ALREADY_CLOSED, done=True)
            self._events.append(CancelFinished(request))
            return request
        request = existing or CancelRequest(self._next_seq(), mode, value, twap.symbol, twap=twap)
        twap.seq = request.seq
        self._twap_event(twap, TwapEvent.CANCEL_SENT, None)
        return self._send_cancel(request, retry)

    def _finished_locally(self, order: Order) -> CancelRequest:
        """Cancelling an order that already ended sends nothing: there is nothing left to cancel."""
        request = CancelRequest(self._next_seq(), CancelIdType.ORDER_ID, order.order_id or "",
                                order.symbol, [order], status=ALREADY_CLOSED, done=True)
        self._events.append(CancelFinished(request))
        return request

    def _send_cancel(self, request: CancelRequest, retry: bool) -> CancelRequest:
        if request.frame_sent and not retry:
            return request
        self._register(request, request.key)
        request.frame_sent = True
        # A frame sent later than the request was made (a retry, a cancel held for the ACK) is a new
        # local action: a snapshot requested before it must leave its orders alone.
        seq = request.seq if request.seq == self.seq else self._next_seq()
        if request.twap is not None:
            request.twap.seq = seq
        for order in request.targets:
            order.seq = seq
            if order.order_id is not None:
                self._order_event(order, OrderEvent.CANCEL_SENT, None)
        self._frames.append(m.CancelOrder(order_id=request.value, symbol=request.symbol,
                                          cancel_order_id_type=request.mode))
        return request

    def _register(self, request: CancelRequest, key: CancelKey) -> None:
        """Queue the request under a key it sent; another request under the same key stays queued."""
        requests = self._cancels.get(key)
        if requests is None:
            self._cancels[key] = [request]
        elif request not in requests:
            requests.append(request)
        keys = self._cancel_keys.get(request.seq)
        if keys is None:
            self._cancel_keys[request.seq] = [key]
        elif key not in keys:
            keys.append(key)

    def _keyed(self, key: CancelKey) -> CancelRequest | None:
        """The oldest open cancel sent under ``key``: the one an answer for that key is for."""
        requests = self._cancels.get(key)
        return requests[0] if requests else None

    def _newest(self, key: CancelKey) -> CancelRequest | None:
        requests = self._cancels.get(key)
        return requests[-1] if requests else None

    def _attach(self, request: CancelRequest, order: Order) -> None:
        if order not in request.targets:
            request.targets.append(order)
        requests = self._order_cancels.setdefault(order.local_id, [])
        if request not in requests:
            requests.append(request)

    def _open_cancel_for(self, order: Order) -> CancelRequest | None:
        for request in self._order_cancels.get(order.local_id, ()):
            if not request.done:
                return request
        return None

    def cancel_all_sent(self) -> list[Order]:
        """The kill switch's ``cancel_all_orders`` was queued: every ACKed live order is now pending."""
        self._next_seq()
        pending = []
        for order in self.tracker.open_orders():
            order.seq = self.seq
            if order.order_id is not None and order.state is not OrderState.UNKNOWN:
                self._order_event(order, OrderEvent.CANCEL_SENT, None)
            pending.append(order)
        for twap in self.tracker.twaps(open_only=True):
            twap.seq = self.seq
        self._frames.append(m.CancelAllOrders())
        return pending

    # ------------------------------------------------------------------ losses

    def order_lost(self, order: Order, reason: str) -> None:
        """No answer in time, a failed send or a disconnect: UNKNOWN until a snapshot settles it."""
        if order.state.is_live:
            order.needs_settlement = True
            self._order_event(order, OrderEvent.LOST, reason)

    def withdraw_cancel(self, request: CancelRequest, reason: str) -> None:
        """The cancel's frame never left the process: nothing was asked, so nothing is ambiguous."""
        self._refuse_cancel(request, reason)

    def withdraw_modify(self, request: ModifyRequest, reason: str) -> None:
        """The modify's frame never left the process: drop it; the order is as it was."""
        self._finish_modify(request, reason)

    def cancel_lost(self, request: CancelRequest, reason: str) -> None:
        for order in request.targets:
            if order.state is OrderState.PENDING_CANCEL or order.cancel_requested:
                order.cancel_requested = False
                self.order_lost(order, reason)
        if request.twap is not None and not request.twap.state.is_terminal:
            self._twap_event(request.twap, TwapEvent.LOST, reason)
        self._finish_cancel(request, reason)

    def connection_lost(self) -> None:
        """Everything in flight is now ambiguous; resting orders stay OPEN (a snapshot will tell)."""
        for request in list(self._cancel_by_seq().values()):
            self.cancel_lost(request, "DISCONNECTED")
        for order in list(self.tracker.pending_new()):
            self.order_lost(order, "DISCONNECTED")
        for request in list(self._modifies.values()):
            self._finish_modify(request, "DISCONNECTED")
        for twap in self.tracker.twaps(open_only=True):
            if twap.twap_id is None:
                self._twap_event(twap, TwapEvent.LOST, "DISCONNECTED")

    def _cancel_by_seq(self) -> dict[int, CancelRequest]:
        found = {r.seq: r for requests in self._cancels.values() for r in requests if not r.done}
        for requests in self._order_cancels.values():
            for request in requests:
                if not request.done:
                    found[request.seq] = request
        return found

    # ------------------------------------------------------------------ replies

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
        if r.update_time is not None:
            order.update_time = r.update_time
        _BY_STATUS.get(r.status, OmsCore._on_rejection_reply)(self, order, r)

    def _order_not_indexed(self, r: m.OrderResponse, by_id: Order | None) -> Order | None:
        """The order a reply is about when its id is not (yet) in the book, or None if it is about
        no order: a TWAP's cancel answer, or a cancel's answer for an id the book lacks."""
        if by_id is not None:
            self._answer_unknown_id(r)  # a cancel sent with the wrong symbol: not about this order
            return None
        twap = self.tracker.twap_by_id(r.order_id)
        if twap is not None:
            self._twap_cancel_answer(twap, r.status)
            return None
        order = self._bind_pending(r)
        if order is not None:
            return order
        status = r.status
        if status in _ADOPTING:
            order = self.adopt(_order_from_response(r))
            log.info("adopted order", **order.describe(), status=str(status))
            return order
        self._answer_unknown_id(r)
        return None

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

    def _on_filled_report(self, order: Order, r: m.OrderResponse) -> None:
        leaves = r.quantity_remaining
        if leaves is not None and (order.leaves_floor is None or leaves < order.leaves_floor):
            order.leaves_floor = leaves if leaves >= _ZERO else _ZERO
        self._order_event(order, self._fill_event(order, final_report=True), r.status)
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
        """Take an order learnt from the exchange into the book (placed elsewhere, a TWAP child)."""
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

    def _on_fill(self, f: m.FillResponse) -> None:
        if f.trade_id in self.tracker.trade_ids:
            log.debug("duplicate fill ignored", trade_id=f.trade_id, order_id=f.order_id)
            return
        order = self.tracker.by_order_id(f.order_id)
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
        if order.fills is None:
            order.fills = []
        order.fills.append(fill)
        order.fill_total += fill.quantity
        if order.twap_id is not None:
            twap = self.tracker.twap_by_id(order.twap_id)
            if twap is not None:
                twap_rules.note_child_fill(twap)
        self._events.append(FillReceived(order, fill))
        return True

    def _on_modified(self, order: Order, r: m.OrderResponse) -> None:
        if r.quantity is not None:
            order.quantity = r.quantity
            order.leaves_floor = r.quantity_remaining if r.quantity_remaining is not None else r.quantity
        if r.price is not None:
            order.price = r.price
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

    def _answered(self, order: Order) -> CancelRequest | None:
        """The cancel an answer naming this order is for: one sent by its id, else its group's."""
        request = self._keyed((order.symbol, CancelIdType.ORDER_ID, order.order_id or ""))
        if request is None:
            request = self._keyed((order.symbol, CancelIdType.CLIENT_ORDER_ID, order.client_order_id))
            if request is not None and order not in request.targets:
                return None
        return request

    def _no_such_order(self, order: Order) -> None:
        """Not a cancel: the order may have filled, or its fill may still be on the way."""
        request = self._answered(order)
        if order.state.is_live:
            order.needs_settlement = True
        self._order_event(order, OrderEvent.NO_SUCH_ORDER, S.NO_SUCH_ORDER)
        if request is not None:
            self._refused(request, order, str(S.NO_SUCH_ORDER))

    def _refused(self, request: CancelRequest, order: Order, status: str) -> None:
        """An answer about one order a cancel covers; it finishes once no other is in flight."""
        if order not in request.refused:
            request.refused.append(order)
        request.refusal = status
        if request.settled():
            self._finish_cancel(request, status)

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
                        self._twap_event(request.twap, TwapEvent.CANCEL_REFUSED, r.status)
                    self._finish_cancel(request, str(r.status))
                    return
        self._events.append(Unmatched(r, f"{r.status} for an unknown order"))
        log.warning("order_response matched nothing", order_id=r.order_id, symbol=r.symbol,
                    client_order_id=r.client_order_id, status=str(r.status))

    def _target_ended(self, order: Order, event: OrderEvent, status: str | None) -> None:
        """An order ended: settle the cancels that cover it once none of their orders is left.

        The exchange's CANCELLED credits every cancel covering the order (a group cancel by client
        id also takes members it did not know). A rejected order ends its cancels with the
        rejection. A fill or a snapshot settlement ends only a cancel still held for the ACK: nothing
        will answer it; one on the wire still gets its answer (NO_SUCH_ORDER).
        """
        credit = event is OrderEvent.CANCELLED and status in _CANCEL_STATUSES
        for request in self._covering(order, credit):
            if request.done:
                continue
            if credit and order not in request.cancelled:
                request.cancelled.append(order)
            if not request.settled():
                continue
            if credit:
                self._finish_cancel(request, request.refusal or str(S.CANCELLED))
            elif event is OrderEvent.REJECT:
                self._finish_cancel(request, str(status))
            elif not request.frame_sent:
                self._finish_cancel(request, request.refusal or ALREADY_CLOSED)

    def _covering(self, order: Order, credit: bool) -> list[CancelRequest]:
        requests = list(self._order_cancels.get(order.local_id, ()))
        if not self._cancels:
            return requests
        keys = [(order.symbol, CancelIdType.ORDER_ID, order.order_id or "")]
        if credit:
            keys.append((order.symbol, CancelIdType.CLIENT_ORDER_ID, order.client_order_id))
        for key in keys:
            request = self._keyed(key)
            if request is not None and request not in requests:
                self._attach(request, order)
                requests.append(request)
        return requests

    def _finish_cancel(self, request: CancelRequest, status: str) -> None:
        """CANCELLED only when every order it covers has ended and it ended some (else a TIMEOUT
        after a partial answer would read as success); otherwise the status given."""
        if request.done:
            return
        complete = bool(request.cancelled) and all(t.state.is_terminal for t in request.targets)
        request.status = str(S.CANCELLED) if complete else status
        request.done = True
        for key in self._cancel_keys.pop(request.seq, ()):
            requests = self._cancels.get(key)
            if requests is not None and request in requests:
                requests.remove(request)
                if not requests:
                    del self._cancels[key]
        for order in request.targets:
            order.cancel_requested = False
            requests = self._order_cancels.get(order.local_id)
            if requests is not None:
                requests[:] = [r for r in requests if r is not request]
                if not requests:
                    del self._order_cancels[order.local_id]
        self._events.append(CancelFinished(request))

    # ------------------------------------------------------------------ TWAPs

    def _on_twap_response(self, r: m.TwapResponse) -> None:
        twap = self.tracker.twap_by_id(r.twap_id)
        if twap is None:
            twap = self.tracker.first_pending_twap(r.symbol, r.client_twap_id)
            if twap is not None:
                self.tracker.bind_twap(twap, r.twap_id)
            else:
                twap = self.tracker.new_twap(twap_rules.twap_from_response(r))
                twap.adopted = True
        twap_rules.note_progress(twap, r)
        event = twap_rules.event_for_status(r.status)
        self._twap_event(twap, event, r.status)
        if event in (TwapEvent.CANCELLED, TwapEvent.COMPLETED, TwapEvent.REJECT):
            self._twap_cancel_done(twap, r.status)

    def _twap_cancel_answer(self, twap: Twap, status: OrderStatus) -> None:
        if status in (S.CANCELLED, S.CANCELLED_STP):
            self._twap_event(twap, TwapEvent.CANCELLED, status)
        else:
            self._twap_event(twap, TwapEvent.CANCEL_REFUSED, status)
        self._twap_cancel_done(twap, status)

    def _twap_cancel_done(self, twap: Twap, status: str) -> None:
        for mode, value in ((CancelIdType.TWAP_ID, twap.twap_id),
                            (CancelIdType.CLIENT_TWAP_ID, twap.client_twap_id)):
            request = self._keyed((twap.symbol, mode, value or ""))
            if request is not None:
                request.twap = twap
                self._finish_cancel(request, str(status))

    def _link_twap_child(self, order: Order) -> None:
        twap_id = twap_rules.parent_twap_id(order.client_order_id)
        twap = self.tracker.twap_by_id(twap_id)
        if twap is not None:
            self.tracker.link_child(twap, order)
        elif twap_id is not None:
            order.twap_id = twap_id

    # ------------------------------------------------------------------ errors

    def _on_err(self, e: m.Err) -> None:
        incoming = e.incoming_message if isinstance(e.incoming_message, dict) else {}
        kind = incoming.get("type")
        params = incoming.get("params") if isinstance(incoming.get("params"), dict) else {}
        code = str(e.error_code)
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
        self._refuse_cancel(request, code)
        return True

    def _refuse_cancel(self, request: CancelRequest, code: str) -> None:
        """The whole cancel was refused (or never sent): what it put in PENDING_CANCEL is OPEN again."""
        for order in request.targets:
            if order.state is OrderState.PENDING_CANCEL:
                self._order_event(order, OrderEvent.CANCEL_REFUSED, code)
        if request.twap is not None:
            self._twap_event(request.twap, TwapEvent.CANCEL_REFUSED, code)
        self._finish_cancel(request, code)

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
        if target is not previous:
            self.tracker.set_twap_state(twap, target)
            self._events.append(TwapUpdated(twap, previous, target, twap.last_status))

    # Public hooks for the snapshot diff (same table, same events).
    apply_order_event = _order_event
    note_leaves = _note_leaves
    apply_twap_event = _twap_event


# Module-level aliases of the members the reply path uses (a global is ~10 ns to read, an enum
# member through its class ~80 ns on Python 3.11).
_ZERO = Decimal(0)
_MARKET = OrderType.MARKET
_EV_ACK, _EV_CANCELLED = OrderEvent.ACK, OrderEvent.CANCELLED
_EV_FULL_FILL, _EV_PARTIAL_FILL, _EV_EXPIRE = OrderEvent.FULL_FILL, OrderEvent.PARTIAL_FILL, OrderEvent.EXPIRE
_REPORTED_IN_PLACE = frozenset({OrderEvent.PARTIAL_FILL, OrderEvent.MODIFIED})
_ORDER_RESPONSE = m.OrderResponse
# The plain text of each status, shared: str() of a StrEnum member allocates a new string each call.
_STATUS_TEXT: dict[str, str] = {member: member.value for member in OrderStatus}
_ADOPTING = frozenset({S.ACK, S.FILLED, S.CANCELLED, S.CANCELLED_STP, S.MODIFIED})
_BY_STATUS: dict[OrderStatus, Any] = {
    S.ACK: OmsCore._on_ack,
    S.FILLED: OmsCore._on_filled_report,
    S.CANCELLED: OmsCore._on_cancelled,
    S.CANCELLED_STP: OmsCore._on_cancelled,
    S.MODIFIED: OmsCore._on_modified,
    S.NO_SUCH_ORDER: OmsCore._on_no_such_order,
    S.CANNOT_MODIFY_PARTIAL_FILL: OmsCore._on_modify_refused,
    S.CANNOT_MODIFY_NO_SUCH_ORDER: OmsCore._on_modify_refused,
}


def _match_nothing(core: OmsCore, params: dict[str, Any], code: str) -> bool:
    return False


_ERR_MATCHERS = {
    "add_order": OmsCore._err_add_order,
    "cancel_order": OmsCore._err_cancel,
    "modify_order": OmsCore._err_modify,
    "add_twap": OmsCore._err_add_twap,
}

_HANDLERS: dict[type, Any] = {
    m.FillResponse: OmsCore._on_fill,
    m.TwapResponse: OmsCore._on_twap_response,
    m.Err: OmsCore._on_err,
}


def _order_from_response(r: m.OrderResponse) -> Order:
    return Order(0, r.symbol, r.side or Side.BUY, r.type or OrderType.LIMIT,
                 r.time_in_force or TimeInForce.GTC, r.quantity or Decimal(0), r.price,
                 r.client_order_id or "", order_id=r.order_id, state=OrderState.OPEN,
                 leaves_floor=r.quantity_remaining, update_time=r.update_time)


def _order_from_fill(f: m.FillResponse) -> Order:
    remaining = f.remaining_quantity if f.remaining_quantity is not None else Decimal(0)
    return Order(0, f.symbol, f.side, f.order_type or OrderType.LIMIT, f.tif or TimeInForce.GTC,
                 f.quantity + remaining, f.order_price, f.client_order_id or "", order_id=f.order_id,
                 state=OrderState.OPEN)
