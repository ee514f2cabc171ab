"""What the exchange says about stop orders, applied; and the stop commands. Functions over the core.

Where QFEX's sources disagree (qfex-api.md §14.9) every variant is accepted:

* A stop's state comes as ``order_response`` under the stop's id (``order_id`` = ``stop_order_id``,
  ``type`` TAKE_PROFIT/STOP_LOSS: ACK, MODIFIED, CANCELLED, NO_SUCH_ORDER, refusals), as
  ``stop_order_response`` pushes on the ``stop_orders`` channel (no status: "this stop is staged,
  as shown"), and as ``ack`` frames answering ``cancel_stop_order`` / ``modify_stop_order`` (what
  QFEX's CLI waits for). Any of them, in any order, once or twice, leads to the same book.
* ``ACK_SETTLES_STOP_REQUESTS``: an ``ack`` echoing our ``cancel_stop_order`` is the exchange's
  yes, so the stop is CANCELLED; one echoing ``modify_stop_order`` applies the asked price and
  quantity. QFEX's CLI reads the ack that way (§14.5, §10 #21); the ``order_response`` that may
  follow confirms it (a duplicate changes nothing). If the stop had fired meanwhile, the order it
  became moves it on to TRIGGERED (the table's late-trigger edge).
* How a fired stop's market order is told apart from an unrelated one is not documented (§14.7):
  it is linked (``link_triggered``) when its id is the stop's id, or its client id is the stop's
  (non-empty), or its type names the stop's kind (or STOP_MARKET) on the stop's symbol and side —
  only when exactly one live stop fits; otherwise it stays an ordinary adopted order.
* Stops staged from ``take_profit``/``stop_loss`` on a parent order: QFEX's stop record has no
  parent id (§14.1). ``link_parent`` links a stop to the order whose client id it carries (or, with
  no client id, the one order on its symbol whose take-profit/stop-loss price is the trigger).
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

from qfex_oms.core.events import StopRequestFinished, StopUpdated, Unmatched
from qfex_oms.core.model import Order
from qfex_oms.core.replies import order_not_indexed
from qfex_oms.core.states import LocalStatus
from qfex_oms.core.stop_rows import StopRow, row_from_push, row_from_response
from qfex_oms.core.stops import (
    STOP_KINDS,
    STOP_TRANSITIONS,
    StopAction,
    StopEvent,
    StopOrder,
    StopRequest,
    StopState,
)
from qfex_oms.errors import InvalidArgument
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import NON_REJECTIONS, OrderStatus, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from qfex_oms.core.engine import OmsCore

log = get_logger("qfex_oms.core.stops")

ACK_SETTLES_STOP_REQUESTS = True
_ZERO = Decimal(0)
_DISCONNECTED = str(LocalStatus.DISCONNECTED)
_TRIGGER_TYPES = STOP_KINDS | {OrderType.STOP_MARKET}


# ---------------------------------------------------------------------- state moves


def apply_stop_event(core: OmsCore, stop: StopOrder, event: StopEvent, status: str | None) -> bool:
    """One move of the stop table; an illegal one is logged and dropped (False)."""
    previous = stop.state
    target = STOP_TRANSITIONS[previous].get(event)
    if target is None:
        log.warning("illegal stop transition dropped", **stop.describe(), stop_event=str(event),
                    status=status)
        core.emit(Unmatched(stop, f"illegal {event} in {previous}"))
        return False
    if status is not None and (target is not previous or not previous.is_terminal):
        stop.last_status = str(status)
    if target.is_terminal:
        stop.cancel_owed = False
        stop.needs_settlement = False
    if target is not previous:
        core.stops.set_state(stop, target)
        core.emit(StopUpdated(stop, previous, target, stop.last_status))
    if target.is_terminal:
        for request in (stop.cancel_request, stop.modify_request):
            if request is not None and not request.done:
                finish_request(core, request, stop.last_status or str(target))
    return True


def finish_request(core: OmsCore, request: StopRequest, status: str) -> None:
    stop = request.stop
    if request.action is StopAction.CANCEL and stop.cancel_request is request:
        stop.cancel_request = None
    if request.action is StopAction.MODIFY and stop.modify_request is request:
        stop.modify_request = None
    if not request.done:
        request.status, request.done = status, True
        core.emit(StopRequestFinished(request))


# ---------------------------------------------------------------------- commands


def place_stop(core: OmsCore, symbol: str, side: Side, kind: OrderType, quantity: Decimal,
               trigger_price: Decimal, client_order_id: str, *, frame: bool = True) -> StopOrder:
    """Track a standalone stop as PENDING and queue its ``add_order`` (arguments validated)."""
    stop = core.stops.new_stop(symbol, side, kind, trigger_price, quantity, client_order_id,
                               seq=core.next_seq())
    if frame:
        core.send(m.AddOrder(symbol=symbol, side=side, order_type=kind,
                             order_time_in_force=STOP_TIME_IN_FORCE, quantity=quantity,
                             price=trigger_price, client_order_id=client_order_id or None))
    return stop


def cancel_stop(core: OmsCore, stop: StopOrder) -> StopRequest:
    """Queue a ``cancel_stop_order``, or join the one in flight. Raises ``InvalidArgument`` (with
    nothing queued) for a stop that has ended or has no id yet."""
    if not stop.state.is_live:
        raise InvalidArgument(f"cannot cancel a stop order that is {stop.state}")
    if stop.stop_order_id is None:
        raise InvalidArgument("cannot cancel a stop order before the exchange names it (no stop_order_id)")
    if stop.cancel_request is not None:
        return stop.cancel_request
    request = StopRequest(core.next_seq(), StopAction.CANCEL, stop)
    stop.seq = request.seq
    stop.cancel_request = request
    core.send(m.CancelStopOrder(stop_order_id=stop.stop_order_id))
    apply_stop_event(core, stop, StopEvent.CANCEL_SENT, None)
    return request


def modify_stop(core: OmsCore, stop: StopOrder, price: Decimal | None,
                quantity: Decimal | None) -> StopRequest:
    """Queue a ``modify_stop_order`` (the union of both documented shapes, §14.6)."""
    if not stop.state.is_live or stop.state is StopState.PENDING_CANCEL:
        raise InvalidArgument(f"cannot modify a stop order that is {stop.state}")
    if stop.stop_order_id is None:
        raise InvalidArgument("cannot modify a stop order before the exchange names it (no stop_order_id)")
    if stop.modify_request is not None:
        raise InvalidArgument("a modify of this stop order is already in flight")
    request = StopRequest(core.next_seq(), StopAction.MODIFY, stop, price, quantity)
    stop.seq = request.seq
    stop.modify_request = request
    core.send(m.ModifyStopOrder(stop_order_id=stop.stop_order_id, symbol=stop.symbol,
                                price=price if price is not None else stop.trigger_price,
                                quantity=quantity if quantity is not None else stop.quantity,
                                side=stop.side, order_type=stop.kind))
    return request


def request_lost(core: OmsCore, request: StopRequest, reason: str) -> None:
    """No answer, and none will come: never a refusal. A lost cancel is owed (a resync that finds
    the stop staged sends it again); the stop is UNKNOWN until settled."""
    stop = request.stop
    if request.done:
        return
    finish_request(core, request, reason)
    if request.action is StopAction.CANCEL and stop.state.is_live:
        stop.cancel_owed = True
        stop.needs_settlement = True
        apply_stop_event(core, stop, StopEvent.LOST, reason)


def withdraw_request(core: OmsCore, request: StopRequest, reason: str) -> None:
    """The request's frame never left the process: nothing was asked; the stop is as it was."""
    stop = request.stop
    finish_request(core, request, reason)
    if request.action is StopAction.CANCEL and stop.state is StopState.PENDING_CANCEL:
        apply_stop_event(core, stop, StopEvent.CANCEL_REFUSED, None)


def stop_lost(core: OmsCore, stop: StopOrder, reason: str) -> None:
    """The stop's add_order went unanswered: UNKNOWN (never REJECTED) until something settles it."""
    if stop.state is StopState.PENDING:
        stop.needs_settlement = True
        apply_stop_event(core, stop, StopEvent.LOST, reason)


def connection_lost(core: OmsCore) -> None:
    for stop in core.stops.stops():
        for request in (stop.cancel_request, stop.modify_request):
            if request is not None:
                request_lost(core, request, _DISCONNECTED)
        stop_lost(core, stop, _DISCONNECTED)


# ---------------------------------------------------------------------- replies


def claims(core: OmsCore, r: m.OrderResponse) -> bool:
    """Whether an ``order_response`` the order book does not index may be about a stop."""
    book = core.stops
    return book.knows(r.order_id) or r.type in STOP_KINDS or book.has_pending(r.symbol)


def on_order_response(core: OmsCore, r: m.OrderResponse) -> Order | None:
    """Apply an ``order_response`` about a stop; return the order it is about instead (for the
    order path to apply) when it is not a stop's: a fired stop's market order, or anything else."""
    stop = core.stops.by_id(r.order_id)
    if stop is not None and stop.symbol != r.symbol:
        core.emit(Unmatched(r, "names a tracked stop's id on another symbol"))
        log.warning("order_response names a stop's id on another symbol; dropped",
                    reply_symbol=r.symbol, **stop.describe())
        return None
    if stop is None:
        stop = _pending_stop(core, r)
        if stop is None:
            if r.type in STOP_KINDS and r.status is not OrderStatus.FILLED:
                row = row_from_response(r) if r.status in _ADOPTING_STATUSES else None
                if row is not None:
                    adopt_stop(core, row)
                else:
                    core.emit(Unmatched(r, f"{r.status} for an unknown stop order"))
                    log.info("stop order_response matched nothing", order_id=r.order_id,
                             symbol=r.symbol, status=str(r.status))
                return None
            return order_not_indexed(core, r, None)
    if r.status is OrderStatus.FILLED or (r.type is not None and r.type not in STOP_KINDS):
        return _fired_under_its_id(core, stop, r)
    _BY_STATUS.get(r.status, _on_refusal)(core, stop, r)
    return None


def _pending_stop(core: OmsCore, r: m.OrderResponse) -> StopOrder | None:
    """The pending stop an answer to its ``add_order`` describes (first in submit order), bound to
    the id it names unless it is a refusal.

    A report that shows a fill (FILLED, a trade id) never answers a stop's ``add_order``: a stop has
    no fills. It is the report of an order a stop fired into, which may carry a stop's type, side,
    trigger and size and no client id (§14.7): taking it for a pending sibling's ACK bound that
    sibling to the market order's id and TRIGGERED it, fired or not. It goes to the order path."""
    if r.status in _NEVER_ANSWERS_ADD or r.trade_id or not core.stops.has_pending(r.symbol):
        return None
    cid = r.client_order_id or ""
    for stop in core.stops.pending(r.symbol):
        if cid and stop.client_order_id and cid != stop.client_order_id:
            continue
        if r.type is not None and r.type not in STOP_KINDS:
            continue
        if stop.could_be(r.side, r.type, r.price, None):
            if r.order_id and r.status in NON_REJECTIONS:
                core.stops.bind(stop, r.order_id)
            return stop
    return None


def _on_ack(core: OmsCore, stop: StopOrder, r: m.OrderResponse) -> None:
    _note_size(stop, r.price, r.quantity)
    apply_stop_event(core, stop, StopEvent.ACK, r.status)
    _after_ack(core, stop)


def _on_modified(core: OmsCore, stop: StopOrder, r: m.OrderResponse) -> None:
    _note_size(stop, r.price, r.quantity)
    _modified(core, stop, r.status)


def _modified(core: OmsCore, stop: StopOrder, status: str) -> None:
    apply_stop_event(core, stop, StopEvent.MODIFIED, status)
    if stop.modify_request is not None:
        finish_request(core, stop.modify_request, str(OrderStatus.MODIFIED))


def _on_cancelled(core: OmsCore, stop: StopOrder, r: m.OrderResponse) -> None:
    apply_stop_event(core, stop, StopEvent.CANCELLED, r.status)
    if stop.cancel_request is not None:  # it fired first: the cancel is answered all the same
        finish_request(core, stop.cancel_request, str(r.status))


def _on_no_such_order(core: OmsCore, stop: StopOrder, r: m.OrderResponse) -> None:
    """Not a cancel: the stop may have fired (its order may still be on the way), or gone elsewhere."""
    if stop.state.is_live:
        stop.needs_settlement = True
    apply_stop_event(core, stop, StopEvent.NO_SUCH_ORDER, r.status)
    for request in (stop.cancel_request, stop.modify_request):
        if request is not None:
            finish_request(core, request, str(r.status))


def _on_refusal(core: OmsCore, stop: StopOrder, r: m.OrderResponse) -> None:
    status = str(r.status)
    if stop.state is StopState.PENDING or (stop.state is StopState.UNKNOWN and stop.stop_order_id is None):
        apply_stop_event(core, stop, StopEvent.REJECT, status)
    elif stop.cancel_request is not None:
        request = stop.cancel_request
        apply_stop_event(core, stop, StopEvent.CANCEL_REFUSED, status)
        finish_request(core, request, status)
    elif stop.modify_request is not None:
        request = stop.modify_request
        apply_stop_event(core, stop, StopEvent.MODIFY_REFUSED, status)
        finish_request(core, request, status)
    elif stop.state is StopState.ACTIVE:  # ended by the exchange (fired with nothing to close)
        apply_stop_event(core, stop, StopEvent.REJECT, status)
    else:
        core.emit(Unmatched(r, f"{status} for a stop order with no request in flight"))
        log.warning("stop refusal matched no request", **stop.describe(), status=status)


def _fired_under_its_id(core: OmsCore, stop: StopOrder, r: m.OrderResponse) -> Order | None:
    """A report under the stop's own id that is not a stop's (FILLED, or a type that is not
    TAKE_PROFIT/STOP_LOSS: the simulator's ACK of type STOP_MARKET): the market order it became
    shares its id. The order is adopted (fills count on it, once) and the report applied to it by
    the order path."""
    order = order_not_indexed(core, r, None)
    if order is not None and stop.order is None:
        trigger(core, stop, order)
    return order


def _after_ack(core: OmsCore, stop: StopOrder) -> None:
    """A cancel asked before the stop had its id (or lost) is sent now that it is staged."""
    if stop.cancel_owed and stop.state is StopState.ACTIVE and stop.cancel_request is None:
        cancel_stop(core, stop)


def on_push(core: OmsCore, r: m.StopOrderResponse) -> None:
    """A ``stop_order_response``: the stop is staged as shown (QFEX gives no status, §14.3)."""
    row = row_from_push(r)
    if row is None:
        log.warning("malformed stop_order_response dropped", stop_order_id=r.stop_order_id,
                    symbol=r.symbol, kind=str(r.stop_order_type), price=str(r.price),
                    quantity=str(r.quantity))
        core.emit(Unmatched(r, "malformed stop_order_response"))
        return
    stop = core.stops.by_id(row.stop_order_id)
    if stop is not None and stop.symbol != row.symbol:
        core.emit(Unmatched(r, "names a tracked stop's id on another symbol"))
        return
    if stop is None:
        stop = bind_or_adopt(core, row)
        if stop is None:
            return
    elif row.update_time and stop.update_time and row.update_time < stop.update_time:
        return  # older than what the book holds: reordered
    if stop.state.is_live:
        _note_size(stop, row.price, row.quantity)
        stop.update_time = row.update_time or stop.update_time
    apply_stop_event(core, stop, StopEvent.ACK, None)
    _after_ack(core, stop)


def on_ack(core: OmsCore, a: m.Ack) -> None:
    """An ``ack`` echoing one of our stop requests answers it (``ACK_SETTLES_STOP_REQUESTS``)."""
    incoming: Any = a.incoming_message
    params = incoming.get("params") if isinstance(incoming, dict) else None
    kind = incoming.get("type") if isinstance(incoming, dict) else None
    if not isinstance(params, dict) or kind not in (StopAction.CANCEL, StopAction.MODIFY):
        return
    stop_id = params.get("stop_order_id")
    stop = core.stops.by_id(stop_id if isinstance(stop_id, str) else None)
    if stop is None:
        log.info("ack for a stop request of an unknown stop", incoming=str(incoming)[:256])
        return
    if not ACK_SETTLES_STOP_REQUESTS:
        return
    if kind == StopAction.CANCEL:
        apply_stop_event(core, stop, StopEvent.CANCELLED, str(OrderStatus.CANCELLED))
        if stop.cancel_request is not None:
            finish_request(core, stop.cancel_request, str(OrderStatus.CANCELLED))
        return
    request = stop.modify_request
    if request is None:
        return  # a duplicate ack, or the order_response came first
    if stop.state.is_live:
        _note_size(stop, request.price, request.quantity)
    _modified(core, stop, str(OrderStatus.MODIFIED))


def on_err(core: OmsCore, params: dict[str, Any], kind: str, code: str) -> bool:
    """An ``err`` refusing one of our stop requests (or a stop's ``add_order``); False: not ours."""
    if kind == "add_order":
        if params.get("order_type") not in STOP_KINDS or not isinstance(params.get("symbol"), str):
            return False
        for pending in core.stops.pending(params["symbol"]):
            cid = params.get("client_order_id") or ""
            if not cid or cid == pending.client_order_id:
                return apply_stop_event(core, pending, StopEvent.REJECT, code)
        return False
    if kind not in (StopAction.CANCEL, StopAction.MODIFY):
        return False
    stop_id = params.get("stop_order_id")
    stop = core.stops.by_id(stop_id if isinstance(stop_id, str) else None)
    if stop is None:
        return False
    request = stop.cancel_request if kind == StopAction.CANCEL else stop.modify_request
    if request is None:
        return False
    refused = StopEvent.CANCEL_REFUSED if kind == StopAction.CANCEL else StopEvent.MODIFY_REFUSED
    apply_stop_event(core, stop, refused, code)
    finish_request(core, request, code)
    return True


# ---------------------------------------------------------------------- learning stops and triggers


def bind_or_adopt(core: OmsCore, row: StopRow) -> StopOrder | None:
    """The stop a row describes: a pending stop of ours it fits (bound to its id), else adopted."""
    for stop in core.stops.pending(row.symbol):
        if row.client_order_id and stop.client_order_id and row.client_order_id != stop.client_order_id:
            continue
        if stop.could_be(row.side, row.kind, row.price, row.quantity):
            core.stops.bind(stop, row.stop_order_id)
            return stop
    return adopt_stop(core, row)


def adopt_stop(core: OmsCore, row: StopRow) -> StopOrder:
    """A stop the book lacks (staged from a parent's take-profit/stop-loss, or placed elsewhere)."""
    stop = core.stops.new_stop(row.symbol, row.side, row.kind, row.price, row.quantity,
                               row.client_order_id, stop_order_id=row.stop_order_id,
                               state=StopState.ACTIVE, adopted=True, seq=core.next_seq(),
                               update_time=row.update_time, parent_order_id=row.parent_order_id)
    if stop.parent_order_id is None:
        link_parent(core, stop)
    core.emit(StopUpdated(stop, StopState.PENDING, stop.state, None))
    log.info("adopted stop order", **stop.describe(), parent_order_id=stop.parent_order_id)
    return stop


def link_parent(core: OmsCore, stop: StopOrder) -> None:
    """The order a staged stop came from: its take-profit or stop-loss is the stop's trigger, on
    the other side, and it shares the stop's client id when the stop has one."""
    tracker = core.tracker
    if stop.client_order_id:
        candidates = tracker.members(stop.symbol, stop.client_order_id)
    else:
        candidates = [o for o in tracker.orders() if o.symbol == stop.symbol]
    fits = [o for o in candidates if o.side is not stop.side and o.order_id is not None
            and (o.take_profit if stop.kind is OrderType.TAKE_PROFIT else o.stop_loss) == stop.trigger_price]
    if len(fits) == 1 or (stop.client_order_id and fits):
        stop.parent_order_id = fits[-1].order_id


def trigger(core: OmsCore, stop: StopOrder, order: Order) -> None:
    stop.order = order
    apply_stop_event(core, stop, StopEvent.TRIGGERED, stop.last_status)


def link_triggered(core: OmsCore, order: Order) -> None:
    """An order just adopted (no add_order of ours): if a stop fired into it, say so."""
    if order.order_id is None:
        return
    stop = core.stops.by_id(order.order_id)
    if stop is None or stop.symbol != order.symbol:
        stop = _the_stop_it_came_from(core, order)
    if stop is not None and stop.order is None:
        trigger(core, stop, order)


def _the_stop_it_came_from(core: OmsCore, order: Order) -> StopOrder | None:
    """The one stop that can have fired into ``order``, or None when it is not provably one.

    Every stop whose order is not known is a candidate unless it was refused: a live one (a
    pending or UNKNOWN one may be staged), a CANCELLED one (the trigger may have won the race, or
    a snapshot only missed it), a TRIGGERED one whose order is not known (a replayed note). A stop
    placed elsewhere that the book has not learnt of cannot be counted: that is §14.7's gap."""
    candidates = [s for s in core.stops.stops(order.symbol, open_only=False)
                  if s.order is None and s.side is order.side and s.state is not StopState.REJECTED]
    if order.client_order_id:
        by_cid = [s for s in candidates if s.client_order_id == order.client_order_id]
        if len(by_cid) == 1:
            return by_cid[0]
    if order.order_type in _TRIGGER_TYPES:
        fits = [s for s in candidates
                if order.order_type is OrderType.STOP_MARKET or s.kind is order.order_type]
        if len(fits) == 1:
            return fits[0]
    return None


def find_triggered_order(core: OmsCore, stop: StopOrder) -> Order | None:
    """The one adopted order, linked to no stop, that this stop can have fired into, and for which
    this stop is the one it can have come from (both ways unique: a guess is worse than nothing)."""
    linked = {id(s.order) for s in core.stops if s.order is not None}
    fits = [o for o in core.tracker.orders() if o.adopted and o.symbol == stop.symbol
            and o.side is stop.side and id(o) not in linked and _came_from(o, stop)]
    if len(fits) != 1:
        return None
    came_from = core.stops.by_id(fits[0].order_id)
    if came_from is None or came_from.symbol != stop.symbol:
        came_from = _the_stop_it_came_from(core, fits[0])
    return fits[0] if came_from is stop else None


def _came_from(order: Order, stop: StopOrder) -> bool:
    return (order.order_id == stop.stop_order_id
            or bool(stop.client_order_id and order.client_order_id == stop.client_order_id)
            or order.order_type is stop.kind or order.order_type is OrderType.STOP_MARKET)


def _note_size(stop: StopOrder, price: Decimal | None, quantity: Decimal | None) -> None:
    """A report's trigger and size as they stand (a cancel's report carries quantity 0: ignored)."""
    if price is not None and price > _ZERO:
        stop.trigger_price = price
    if quantity is not None and quantity > _ZERO:
        stop.quantity = quantity


# QFEX: "Required for legacy reasons, the value will not be read" (§14.2); GTC as its example.
STOP_TIME_IN_FORCE = TimeInForce.GTC
_ADOPTING_STATUSES = frozenset({OrderStatus.ACK, OrderStatus.MODIFIED})
_NEVER_ANSWERS_ADD = frozenset({OrderStatus.FILLED, OrderStatus.NO_SUCH_ORDER, OrderStatus.MODIFIED,
                                OrderStatus.CANCELLED, OrderStatus.CANNOT_MODIFY_PARTIAL_FILL,
                                OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER})
_BY_STATUS = {
    OrderStatus.ACK: _on_ack,
    OrderStatus.MODIFIED: _on_modified,
    OrderStatus.CANCELLED: _on_cancelled,
    OrderStatus.CANCELLED_STP: _on_cancelled,
    OrderStatus.NO_SUCH_ORDER: _on_no_such_order,
    OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER: _on_no_such_order,
}
