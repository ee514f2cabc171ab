"""Cancels in flight: how an intent becomes one frame, how answers find their request, how it ends.

Several cancels may be in flight under one key (an id sent again, a group and a single cancel);
each key keeps them oldest first, as QFEX answers frames in order. A request ends CANCELLED only
when every order it covers has ended and it ended some; NO_SUCH_ORDER and refusals end it with
that status (design.md "Cancel resolution and reconciliation rules").
"""

from __future__ import annotations

from qfex_oms.core import cancel as cancel_rules
from qfex_oms.core.cancel import CancelError, CancelIntent
from qfex_oms.core.corestate import ALREADY_CLOSED, CancelKey, CoreState, S
from qfex_oms.core.events import CancelFinished
from qfex_oms.core.model import CancelRequest, Order, Twap
from qfex_oms.core.states import OrderEvent, OrderState, TwapEvent
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType

_CANCEL_STATUSES = frozenset({S.CANCELLED, S.CANCELLED_STP})


class CancelHandling(CoreState):
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
        if order.state.is_terminal:
            # Before joining a cancel still open over it: one on the wire waits for the exchange's
            # answer, which may never name this order if QFEX does not echo the id in NO_SUCH_ORDER.
            return self._finished_locally(order)
        existing = self._open_cancel_for(order)
        if existing is not None and not retry:
            return existing
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
        request.sends += 1
        # A frame sent later than the request was made (a retry, a cancel held for the ACK) is a new
        # local action: a snapshot requested before it must leave its orders alone.
        seq = request.seq if request.seq == self.seq else self._next_seq()
        if request.twap is not None:
            request.twap.seq = seq
            request.twap.cancels_in_doubt += 1  # until its answer comes (_twap_cancel_answered)
        for order in request.targets:
            order.seq = seq
            if order.order_id is not None:
                self._order_event(order, OrderEvent.CANCEL_SENT, None)
        self._frames.append(m.CancelOrder(order_id=request.value, symbol=request.symbol,
                                          cancel_order_id_type=request.mode))
        return request

    def cancel_all_sent(self) -> list[Order]:
        """The kill switch's ``cancel_all_orders`` was queued: every ACKed live order is now pending.

        The intent is durable like any cancel's: each order it covers by id owes its cancel
        (``cancel_owed``) until it ends, so a lost ``cancel_all_orders`` (a disconnect, a silent
        drop) leaves no order back in a quiet OPEN: a resync finding it open cancels it by id. No
        request is kept for it (one covering 10,000 orders would make each answer cost O(n)).
        Orders not ACKed yet are left to their ACK (the exchange may not have them). Every live
        TWAP may have been ended by it (``Twap.cancels_in_doubt``).
        """
        self._next_seq()
        pending = []
        for order in self.tracker.open_orders():
            order.seq = self.seq
            if order.order_id is not None:
                order.cancel_owed = True
                if order.state is not OrderState.UNKNOWN:
                    self._order_event(order, OrderEvent.CANCEL_SENT, None)
            pending.append(order)
        for twap in self.tracker.twaps(open_only=True):
            twap.seq = self.seq
            twap.cancels_in_doubt += 1
        self._frames.append(m.CancelAllOrders())
        return pending

    # ------------------------------------------------------------------ the requests in flight

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

    def _cancel_by_seq(self) -> dict[int, CancelRequest]:
        found = {r.seq: r for requests in self._cancels.values() for r in requests if not r.done}
        for requests in self._order_cancels.values():
            for request in requests:
                if not request.done:
                    found[request.seq] = request
        return found

    def _other_cancel_out(self, order: Order, request: CancelRequest) -> bool:
        return any(other is not request and other.frame_sent and not other.done
                   for other in self._order_cancels.get(order.local_id, ()))

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

    # ------------------------------------------------------------------ how they end

    def _answered(self, order: Order) -> CancelRequest | None:
        """The cancel an answer naming this order is for: one sent by its id, else its group's."""
        request = self._keyed((order.symbol, CancelIdType.ORDER_ID, order.order_id or ""))
        if request is None:
            request = self._keyed((order.symbol, CancelIdType.CLIENT_ORDER_ID, order.client_order_id))
            if request is not None and order not in request.targets:
                return None
        return request

    def _refused(self, request: CancelRequest, order: Order, status: str) -> None:
        """An answer about one order a cancel covers; it finishes once no other is in flight."""
        if order not in request.refused:
            request.refused.append(order)
        request.refusal = status
        if request.settled():
            self._finish_cancel(request, status)

    def _refuse_cancel(self, request: CancelRequest, code: str) -> None:
        """The whole cancel was refused (or never sent): what it put in PENDING_CANCEL is OPEN again,
        unless another cancel on the wire covers that order too (it stays pending for that one)."""
        for order in request.targets:
            if order.state is OrderState.PENDING_CANCEL and not self._other_cancel_out(order, request):
                self._order_event(order, OrderEvent.CANCEL_REFUSED, code)
        if request.twap is not None:
            self._twap_event(request.twap, TwapEvent.CANCEL_REFUSED, code)
        self._finish_cancel(request, code)

    def _target_ended(self, order: Order, event: OrderEvent, status: str | None) -> None:
        """An order ended: settle the cancels that cover it once none of their orders is left.

        The exchange's CANCELLED credits every cancel covering the order (a group cancel by client
        id also takes members it did not know). A rejected order (or one withdrawn before the wire)
        ends a cancel still held for its ACK with that status. A rejection, a fill or a snapshot
        settlement never ends a cancel on the wire: the exchange still answers it (NO_SUCH_ORDER, or
        CANCELLED for members a group cancel found), and that answer is its result.
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
            elif request.frame_sent:
                continue
            elif event is OrderEvent.REJECT:
                self._finish_cancel(request, str(status))
            else:
                self._finish_cancel(request, request.refusal or ALREADY_CLOSED)

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

    def _twap_cancel_done(self, twap: Twap, status: str) -> None:
        for mode, value in ((CancelIdType.TWAP_ID, twap.twap_id),
                            (CancelIdType.CLIENT_TWAP_ID, twap.client_twap_id)):
            request = self._keyed((twap.symbol, mode, value or ""))
            if request is not None:
                request.twap = twap
                self._twap_cancel_answered(request)
                self._finish_cancel(request, str(status))

    @staticmethod
    def _twap_cancel_answered(request: CancelRequest) -> None:
        """A TWAP cancel's frame was answered (or taken back): it is no longer a cancel that may
        have ended the TWAP unseen. CANCELLED ends the TWAP anyway; NO_SUCH_ORDER or a refusal
        says it found nothing to end (the TWAP had completed, say). One per request: an answer
        repeated finds the request done."""
        twap = request.twap
        if twap is not None and not request.done and twap.cancels_in_doubt > 0:
            twap.cancels_in_doubt -= 1

    def withdraw_cancel(self, request: CancelRequest, reason: str) -> None:
        """The frame just queued for ``request`` never left the process. If it was the request's only
        one, nothing was asked and the request ends; if an earlier frame went out (a retry joined a
        request another caller had sent), that one stands and the request waits for its answer."""
        request.sends = max(0, request.sends - 1)
        self._twap_cancel_answered(request)  # its frame never left: it ended nothing
        if request.sends == 0 and not request.done:
            self._refuse_cancel(request, reason)

    def cancel_lost(self, request: CancelRequest, reason: str) -> None:
        """No answer, and none will come (a failed write, a timeout, a disconnect). The strategy's
        intent outlives the request: every order it covers that the exchange has not answered for
        owes its cancel (``cancel_owed``) until it ends, and the resync sends it again if the order
        is still open (``resend_owed_cancel``). A held cancel (no ACK yet) is owed the same way."""
        owed = not request.done
        for order in request.targets:
            if owed and order.state.is_live and order not in request.refused:
                order.cancel_owed = True
            if order.state is OrderState.PENDING_CANCEL or order.cancel_requested:
                order.cancel_requested = False
                self.order_lost(order, reason)
        if request.twap is not None and not request.twap.state.is_terminal:
            request.twap.cancel_owed = owed or request.twap.cancel_owed
            self._twap_event(request.twap, TwapEvent.LOST, reason)
        self._finish_cancel(request, reason)

    def resend_owed_cancel(self, target: Order | Twap) -> CancelRequest | None:
        """The exchange shows an order (or TWAP) open whose cancel is owed: ask again, through the
        normal machinery (a new request by its id, so the answer correlates). A cancel is
        idempotent; an order is never resent. None when nothing was queued: not owed, ended, no id
        to cancel by yet (the ACK or a snapshot binds it first), or a cancel already in flight."""
        if not target.cancel_owed or target.state.is_terminal:
            return None
        if isinstance(target, Twap):
            if target.twap_id is None and not target.client_twap_id:
                return None
            before = self.seq
            request = self._cancel_twap(target, retry=False)
            return request if request.seq > before else None
        if target.order_id is None or self._open_cancel_for(target) is not None:
            return None
        return self._cancel_order(target, retry=False)
