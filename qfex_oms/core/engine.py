"""OmsCore: the sans-IO order manager. Commands and decoded replies in; frames and events out.

Nothing here awaits or touches a socket: the trio shell calls a method, then drains
``take_frames()`` (to send, in order) and ``take_events()`` (to publish). That makes every race a
synchronous test: cancel before ACK, fill after CANCELLED, NO_SUCH_ORDER after a fill, duplicate and
reordered replies, an ``err`` for a cancel (design.md "Cancel resolution and reconciliation rules").

The class is assembled from layers, one module each: ``corestate`` (state, outputs, transition-table
moves), ``cancelling`` (cancels in flight), ``replies`` (applying what the exchange says) and this
one, the commands a strategy gives and what a lost connection does.
"""

from __future__ import annotations

from decimal import Decimal

from qfex_oms.core.corestate import CoreState
from qfex_oms.core.model import ModifyRequest, Order, Twap
from qfex_oms.core.replies import ReplyHandling
from qfex_oms.core.states import TwapEvent
from qfex_oms.errors import InvalidArgument
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderType, Side, TimeInForce
from qfex_oms.protocol.fastpath import intern_decimal


class OmsCore(ReplyHandling):
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

    def withdraw_modify(self, request: ModifyRequest, reason: str) -> None:
        """The modify's frame never left the process: drop it; the order is as it was."""
        self._finish_modify(request, reason)

    # ------------------------------------------------------------------ losses

    def connection_lost(self, *, cancel_on_disconnect: bool = False) -> None:
        """Everything in flight is now ambiguous; resting orders stay OPEN (a snapshot will tell).

        A modify cut off leaves the order's size in doubt (``Order.modify_in_doubt``): the exchange
        may have applied it, and the next report or snapshot row naming a size decides.
        ``cancel_on_disconnect`` (the session asked QFEX to cancel everything when it drops): every
        live TWAP may have been cancelled by the venue (``Twap.cancels_in_doubt``).
        """
        for request in list(self._cancel_by_seq().values()):
            self.cancel_lost(request, "DISCONNECTED")
        for order in list(self.tracker.pending_new()):
            self.order_lost(order, "DISCONNECTED")
        for modify in list(self._modifies.values()):
            modify.order.modify_in_doubt = (modify.quantity, modify.price)
            self._finish_modify(modify, "DISCONNECTED")
        for twap in self.tracker.twaps(open_only=True):
            if cancel_on_disconnect:
                twap.cancels_in_doubt += 1
            if twap.twap_id is None:
                self._twap_event(twap, TwapEvent.LOST, "DISCONNECTED")

    # Public hooks for the snapshot diff (same table, same events).
    apply_order_event = CoreState._order_event  # noqa: SLF001
    note_leaves = ReplyHandling._note_leaves  # noqa: SLF001
    apply_twap_event = CoreState._twap_event  # noqa: SLF001
