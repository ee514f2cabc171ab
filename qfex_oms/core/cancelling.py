"""Cancels in flight: how an intent becomes one frame, how answers end it, what a lost one owes.

Functions over the core (``OmsCore``), which owns the cancel book (``core.cancels``, which requests
are out) and the outputs. A request ends CANCELLED only when every order it covers has ended and
it ended some; NO_SUCH_ORDER and refusals end it with that status (design.md "Cancel resolution and
reconciliation rules"). The core's public cancel methods call these; the reply handlers call the
ones that end a request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from qfex_oms.core import cancel as cancel_rules
from qfex_oms.core.cancel import CancelError, CancelIntent, CancelScope
from qfex_oms.core.events import CancelFinished
from qfex_oms.core.model import CancelRequest, Order, Twap
from qfex_oms.core.states import LocalStatus, OrderEvent, OrderState, TwapEvent
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, OrderStatus

if TYPE_CHECKING:
    from qfex_oms.core.engine import OmsCore

ALREADY_CLOSED = str(LocalStatus.ALREADY_CLOSED)
_CANCELLED = str(OrderStatus.CANCELLED)
_CANCEL_STATUSES = frozenset({OrderStatus.CANCELLED, OrderStatus.CANCELLED_STP})


def cancel(core: OmsCore, intent: CancelIntent, *, retry: bool = False) -> CancelRequest:
    """Resolve an intent into a cancel in flight; raises ``CancelError`` with nothing queued."""
    mode, value = intent.selector()
    target = intent.target
    if isinstance(target, Twap):
        return _cancel_twap(core, target, retry)
    if isinstance(target, Order):
        return _cancel_order(core, target, retry)
    assert mode is not None and value is not None and intent.symbol is not None
    symbol = intent.symbol
    if mode is CancelIdType.ORDER_ID:
        known = core.tracker.by_order_id(value)
        if known is not None:
            if known.symbol != symbol:
                raise CancelError(f"order {value} is on {known.symbol}, not {symbol}")
            return _cancel_order(core, known, retry)
        return _cancel_unknown(core, symbol, mode, value, retry)
    if mode is CancelIdType.CLIENT_ORDER_ID:
        return _cancel_client_id(core, symbol, value, retry)
    twap = (core.tracker.twap_by_id(value) if mode is CancelIdType.TWAP_ID
            else core.tracker.twap_by_client(symbol, value))
    if twap is not None and twap.symbol == symbol:
        return _cancel_twap(core, twap, retry, (mode, value))
    return _cancel_unknown(core, symbol, mode, value, retry)


def _cancel_unknown(core: OmsCore, symbol: str, mode: CancelIdType, value: str, retry: bool) -> CancelRequest:
    """An id the book lacks goes as given; asking again joins the cancel already in flight."""
    existing = core.cancels.newest((symbol, mode, value))
    if existing is not None and not retry:
        return existing
    return send_cancel(core, existing or CancelRequest(core.next_seq(), mode, value, symbol), retry)


def cancel_where(core: OmsCore, scope: CancelScope) -> list[CancelRequest]:
    """Every live order and TWAP in ``scope``, with the fewest frames that touch nothing outside it.

    Orders are grouped by (symbol, wire client id): a group of several goes as one client-id frame
    when that frame's members on the exchange are exactly the group (``cancel.group_by_client_id``),
    otherwise each order goes by its order id (or waits for its ACK, or by its client id alone
    when that is provably its own). TWAPs go by their ids. The whole account is the shell's (one
    ``cancel_all_orders``, ``OmsCore.cancel_all_sent``), not this.
    """
    requests: list[CancelRequest] = []
    groups: dict[tuple[str, str], list[Order]] = {}
    for order in core.tracker.open_orders(scope.symbol):
        if scope.matches(order):
            groups.setdefault((order.symbol, order.client_order_id), []).append(order)
    for (symbol, cid), group in groups.items():
        live = core.tracker.live_members(symbol, cid)
        if len(group) > 1 and cancel_rules.group_by_client_id(scope, group, live):
            requests.append(_cancel_client_id(core, symbol, cid, retry=False))
            continue
        for order in group:
            request = _cancel_order(core, order, retry=False, scope=scope)
            if request not in requests:
                requests.append(request)
    for twap in core.tracker.twaps(open_only=True):
        if scope.matches(twap):
            requests.append(_cancel_twap(core, twap, retry=False))
    return requests


def _cancel_order(core: OmsCore, order: Order, retry: bool,
                  scope: CancelScope | None = None) -> CancelRequest:
    """By its order id, by its client id when no sibling shares it, or held for its ACK."""
    if core.tracker.by_local_id(order.local_id) is not order:
        raise CancelError("this order is not tracked by this manager and has no id to send")
    if order.state.is_terminal:
        # Before joining a cancel still open over it: one on the wire waits for the exchange's
        # answer, which may never name this order if QFEX does not echo the id in NO_SUCH_ORDER.
        return _finished_locally(core, order)
    book = core.cancels
    existing = book.open_for(order)
    if existing is not None and not retry:
        return existing
    sharing = core.tracker.live_members(order.symbol, order.client_order_id)
    wire = cancel_rules.order_wire_selector(order, sharing, scope)
    if existing is not None:
        if wire is None:
            return existing
        if not existing.frame_sent:
            # Held for the ACK (value still ""), but the sibling is gone: it can go now.
            existing.mode, existing.value = wire
            order.cancel_requested = False
        return send_cancel(core, existing, retry=True)
    if wire is None:
        request = CancelRequest(core.next_seq(), CancelIdType.ORDER_ID, "", order.symbol, [order])
        order.cancel_requested = True
        order.seq = request.seq
        book.attach(request, order)
        return request
    request = CancelRequest(core.next_seq(), wire[0], wire[1], order.symbol, [order])
    book.attach(request, order)
    return send_cancel(core, request, retry)


def _cancel_client_id(core: OmsCore, symbol: str, client_order_id: str, retry: bool) -> CancelRequest:
    """Joins the group cancel in flight, unless a member was placed after it went (it missed it)."""
    existing = core.cancels.newest((symbol, CancelIdType.CLIENT_ORDER_ID, client_order_id))
    live = core.tracker.live_members(symbol, client_order_id)
    if existing is not None and not retry:
        if all(order in existing.targets for order in live):
            return existing
        existing = None
    request = existing or CancelRequest(core.next_seq(), CancelIdType.CLIENT_ORDER_ID,
                                        client_order_id, symbol, live)
    for order in live:
        core.cancels.attach(request, order)
        if order.order_id is None:
            # The exchange may not have it yet when the client-id cancel lands: cancel it by
            # order id on its ACK as well, so no member of the group survives.
            order.cancel_requested = True
    return send_cancel(core, request, retry)


def _cancel_twap(core: OmsCore, twap: Twap, retry: bool,
                 selector: tuple[CancelIdType, str] | None = None) -> CancelRequest:
    """An explicit selector goes on the wire as given; a Twap object goes by its best id."""
    mode, value = selector or cancel_rules.twap_wire_selector(twap)
    existing = core.cancels.newest((twap.symbol, mode, value))
    if existing is not None and not retry:
        return existing
    if twap.state.is_terminal:
        request = CancelRequest(core.next_seq(), mode, value, twap.symbol, twap=twap,
                                status=ALREADY_CLOSED, done=True)
        core.emit(CancelFinished(request))
        return request
    request = existing or CancelRequest(core.next_seq(), mode, value, twap.symbol, twap=twap)
    twap.seq = request.seq
    core.apply_twap_event(twap, TwapEvent.CANCEL_SENT, None)
    return send_cancel(core, request, retry)


def _finished_locally(core: OmsCore, order: Order) -> CancelRequest:
    """Cancelling an order that already ended sends nothing: there is nothing left to cancel."""
    request = CancelRequest(core.next_seq(), CancelIdType.ORDER_ID, order.order_id or "",
                            order.symbol, [order], status=ALREADY_CLOSED, done=True)
    core.emit(CancelFinished(request))
    return request


def send_cancel(core: OmsCore, request: CancelRequest, retry: bool) -> CancelRequest:
    """Queue the request's frame (once, unless ``retry``) and put what it covers in PENDING_CANCEL."""
    if request.frame_sent and not retry:
        return request
    core.cancels.register(request, request.key)
    request.frame_sent = True
    request.sends += 1
    # A frame sent later than the request was made (a retry, a cancel held for the ACK) is a new
    # local action: a snapshot requested before it must leave its orders alone.
    seq = request.seq if request.seq == core.seq else core.next_seq()
    if request.twap is not None:
        request.twap.seq = seq
        request.twap.cancels_in_doubt += 1  # until its answer comes (twap_cancel_answered)
    for order in request.targets:
        order.seq = seq
        if order.order_id is not None:
            core.apply_order_event(order, OrderEvent.CANCEL_SENT, None)
    core.send(m.CancelOrder(order_id=request.value, symbol=request.symbol,
                            cancel_order_id_type=request.mode))
    return request


def cancel_all_sent(core: OmsCore) -> list[Order]:
    """See ``OmsCore.cancel_all_sent``: every ACKed live order now owes its cancel and is pending."""
    seq = core.next_seq()
    pending = []
    for order in core.tracker.open_orders():
        order.seq = seq
        if order.order_id is not None:
            order.cancel_owed = True
            if order.state is not OrderState.UNKNOWN:
                core.apply_order_event(order, OrderEvent.CANCEL_SENT, None)
        pending.append(order)
    for twap in core.tracker.twaps(open_only=True):
        twap.seq = seq
        twap.cancels_in_doubt += 1
    core.send(m.CancelAllOrders())
    return pending


# ---------------------------------------------------------------------- how they end

def answered(core: OmsCore, order: Order) -> CancelRequest | None:
    """The cancel an answer naming this order is for: one sent by its id, else its group's."""
    request = core.cancels.oldest((order.symbol, CancelIdType.ORDER_ID, order.order_id or ""))
    if request is None:
        request = core.cancels.oldest((order.symbol, CancelIdType.CLIENT_ORDER_ID, order.client_order_id))
        if request is not None and order not in request.targets:
            return None
    return request


def refused(core: OmsCore, request: CancelRequest, order: Order, status: str) -> None:
    """An answer about one order a cancel covers; it finishes once no other is in flight."""
    if order not in request.refused:
        request.refused.append(order)
    request.refusal = status
    if request.settled():
        finish_cancel(core, request, status)


def refuse_cancel(core: OmsCore, request: CancelRequest, code: str) -> None:
    """The whole cancel was refused (or never sent): what it put in PENDING_CANCEL is OPEN again,
    unless another cancel on the wire covers that order too (it stays pending for that one)."""
    for order in request.targets:
        if order.state is OrderState.PENDING_CANCEL and not core.cancels.other_out(order, request):
            core.apply_order_event(order, OrderEvent.CANCEL_REFUSED, code)
    if request.twap is not None:
        core.apply_twap_event(request.twap, TwapEvent.CANCEL_REFUSED, code)
    finish_cancel(core, request, code)


def target_ended(core: OmsCore, order: Order, event: OrderEvent, status: str | None) -> None:
    """An order ended: settle the cancels that cover it once none of their orders is left.

    The exchange's CANCELLED credits every cancel covering the order (a group cancel by client
    id also takes members it did not know). A rejected order (or one withdrawn before the wire)
    ends a cancel still held for its ACK with that status. A rejection, a fill or a snapshot
    settlement never ends a cancel on the wire: the exchange still answers it (NO_SUCH_ORDER, or
    CANCELLED for members a group cancel found), and that answer is its result.
    """
    credit = event is OrderEvent.CANCELLED and status in _CANCEL_STATUSES
    for request in core.cancels.covering(order, credit):
        if request.done:
            continue
        if credit and order not in request.cancelled:
            request.cancelled.append(order)
        if not request.settled():
            continue
        if credit:
            finish_cancel(core, request, request.refusal or _CANCELLED)
        elif request.frame_sent:
            continue
        elif event is OrderEvent.REJECT:
            finish_cancel(core, request, str(status))
        else:
            finish_cancel(core, request, request.refusal or ALREADY_CLOSED)


def finish_cancel(core: OmsCore, request: CancelRequest, status: str) -> None:
    """CANCELLED only when every order it covers has ended and it ended some (else a TIMEOUT
    after a partial answer would read as success); otherwise the status given."""
    if request.done:
        return
    complete = bool(request.cancelled) and all(t.state.is_terminal for t in request.targets)
    request.status = _CANCELLED if complete else status
    request.done = True
    core.cancels.remove(request)
    for order in request.targets:
        order.cancel_requested = False
    core.emit(CancelFinished(request))


def twap_cancel_done(core: OmsCore, twap: Twap, status: str) -> None:
    """The TWAP ended or its cancel was answered: end the cancels sent by either of its ids."""
    for mode, value in ((CancelIdType.TWAP_ID, twap.twap_id),
                        (CancelIdType.CLIENT_TWAP_ID, twap.client_twap_id)):
        request = core.cancels.oldest((twap.symbol, mode, value or ""))
        if request is not None:
            request.twap = twap
            twap_cancel_answered(request)
            finish_cancel(core, request, str(status))


def twap_cancel_answered(request: CancelRequest) -> None:
    """A TWAP cancel's frame was answered (or taken back): it is no longer a cancel that may
    have ended the TWAP unseen. CANCELLED ends the TWAP anyway; NO_SUCH_ORDER or a refusal
    says it found nothing to end (the TWAP had completed, say). One per request: an answer
    repeated finds the request done."""
    twap = request.twap
    if twap is not None and not request.done and twap.cancels_in_doubt > 0:
        twap.cancels_in_doubt -= 1


# ---------------------------------------------------------------------- withdrawn, lost, owed

def withdraw_cancel(core: OmsCore, request: CancelRequest, reason: str) -> None:
    """See ``OmsCore.withdraw_cancel``."""
    request.sends = max(0, request.sends - 1)
    twap_cancel_answered(request)  # its frame never left: it ended nothing
    if request.sends == 0 and not request.done:
        refuse_cancel(core, request, reason)


def cancel_lost(core: OmsCore, request: CancelRequest, reason: str) -> None:
    """See ``OmsCore.cancel_lost``."""
    owed = not request.done
    for order in request.targets:
        if owed and order.state.is_live and order not in request.refused:
            order.cancel_owed = True
        if order.state is OrderState.PENDING_CANCEL or order.cancel_requested:
            order.cancel_requested = False
            core.order_lost(order, reason)
    if request.twap is not None and not request.twap.state.is_terminal:
        request.twap.cancel_owed = owed or request.twap.cancel_owed
        core.apply_twap_event(request.twap, TwapEvent.LOST, reason)
    finish_cancel(core, request, reason)


def resend_owed_cancel(core: OmsCore, target: Order | Twap) -> CancelRequest | None:
    """See ``OmsCore.resend_owed_cancel``."""
    if not target.cancel_owed or target.state.is_terminal:
        return None
    if isinstance(target, Twap):
        if target.twap_id is None and not target.client_twap_id:
            return None
        before = core.seq
        request = _cancel_twap(core, target, retry=False)
        return request if request.seq > before else None
    if target.order_id is None or core.cancels.open_for(target) is not None:
        return None
    return _cancel_order(core, target, retry=False)
