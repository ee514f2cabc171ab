"""Stop orders in the trio shell: place, cancel and modify take-profit / stop-loss orders.

The manager composes one ``StopOrders`` and forwards ``place_order(order_type="STOP_LOSS" |
"TAKE_PROFIT")``, ``cancel(stop)`` / ``cancel(stop_order_id=...)``, ``modify_stop`` and ``stops``
to it. The rules are the orders' (design.md): a bad argument fails before any frame; a lost answer
is never a rejection (the stop goes UNKNOWN and the settler reconciles it); NO_SUCH_ORDER is never
a cancel. What the exchange's answers mean, in every variant its sources allow (``order_response``
under the stop's id, ``ack``, both, pushes on ``stop_orders``), is the core's (``core.stop_replies``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any, NoReturn

from attrs import frozen

from qfex_oms.client.outcomes import SendOutcome
from qfex_oms.client.reference import ReferenceData
from qfex_oms.client.results import CancelResult
from qfex_oms.core import args
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.stops import STOP_KINDS, StopAction, StopEvent, StopOrder, StopRequest, StopState
from qfex_oms.errors import InvalidArgument, ModifyRejected, OrderRejected, OrderStatusUnknown
from qfex_oms.logs import get_logger
from qfex_oms.protocol.enums import OrderType, Side

log = get_logger("qfex_oms.client.stops")

STOP_ORDER_TYPES = frozenset(str(kind) for kind in STOP_KINDS)
# The requests whose ``ack`` the core reads as their answer (core.stop_replies.on_ack).
STOP_REQUEST_TYPES = frozenset(str(action) for action in StopAction)


def is_stop_type(order_type: object) -> bool:
    return isinstance(order_type, str) and order_type.upper() in STOP_ORDER_TYPES


@frozen
class Shell:
    """What the manager lends the stop calls: its core and reference data, and its sending and
    waiting machinery (bound methods), so no module reaches into another's private names."""

    core: OmsCore
    reference: ReferenceData
    client_id_prefix: str
    usable_session: Callable[[], Any]
    refuse_if_halted: Callable[[str], None]
    transmit: Callable[[Any, list[Any]], Awaitable[SendOutcome | None]]
    wait_for: Callable[[object, Callable[[], bool]], Awaitable[bool]]
    lapsed: Callable[[], SendOutcome]
    never_sent: Callable[[SendOutcome, str, object], NoReturn]
    flush: Callable[[], None]
    want_settlement: Callable[[], None]


class StopOrders:
    """The stop-order half of the manager's API (see the module docstring)."""

    def __init__(self, shell: Shell) -> None:
        self._oms = shell

    def stops(self, symbol: str | None = None, open_only: bool = True) -> list[StopOrder]:
        """Stops as the manager knows them: staged, pending or in doubt (``open_only``), or all."""
        return self._oms.core.stops.stops(symbol, open_only)

    def stop(self, stop_order_id: str) -> StopOrder | None:
        return self._oms.core.stops.by_id(stop_order_id)

    # ------------------------------------------------------------------ place

    def check(self, symbol: str, side: str, order_type: str, quantity: args.Number,
              price: args.Number | None, time_in_force: str | None,
              client_order_id: str | None) -> tuple[str, Side, OrderType, Decimal, Decimal, str]:
        """Validate a standalone stop's arguments; raise ``InvalidArgument`` before any frame."""
        kind = OrderType(order_type.upper())
        if price is None:
            raise InvalidArgument(f"{kind} orders need a trigger price (price=)")
        if time_in_force is not None and str(time_in_force).upper() not in ("GTC", "IOC"):
            raise InvalidArgument(f"{kind} orders take no time_in_force (QFEX does not read it), "
                                  f"got {time_in_force!r}")
        checked = (args.symbol_arg(symbol), args.enum_arg("side", side, Side), kind,
                   args.decimal_arg("quantity", quantity), args.decimal_arg("price", price),
                   args.client_id_arg("client_order_id", client_order_id,
                                      self._oms.client_id_prefix))
        self._check_reference(checked[0], checked[3], checked[4])
        return checked

    def _check_reference(self, symbol: str, quantity: Decimal, trigger: Decimal) -> None:
        """QFEX: a stop's quantity "must respect lot size but not min/max limits", its trigger the
        tick size but not the price bands (qfex-api.md §14.2, §14.6)."""
        reference = self._oms.reference
        instrument = reference.instrument(symbol) if reference.validate and reference.usable else None
        if instrument is None:
            return
        if instrument.lot_size and quantity % instrument.lot_size:
            raise InvalidArgument(f"{symbol}: lot_size: quantity {quantity} is not a multiple of "
                                  f"{instrument.lot_size} (reference data; nothing was sent)")
        if instrument.tick_size and trigger % instrument.tick_size:
            raise InvalidArgument(f"{symbol}: tick_size: trigger {trigger} is not a multiple of "
                                  f"{instrument.tick_size} (reference data; nothing was sent)")

    async def place(self, symbol: str, side: Side, kind: OrderType, quantity: Decimal, trigger: Decimal,
                    client_order_id: str) -> StopOrder:
        """Stage a standalone stop; return it once QFEX has ACKed it (ACTIVE). ``OrderRejected``
        with QFEX's status; ``OrderStatusUnknown`` when the answer was lost (UNKNOWN, tracked)."""
        oms = self._oms
        oms.refuse_if_halted("new orders")
        session = oms.usable_session()
        stop = oms.core.place_stop(symbol, side, kind, quantity, trigger, client_order_id)
        outcome = await oms.transmit(session, oms.core.take_frames())
        if outcome is not None and outcome.never_sent:
            oms.core.apply_stop_event(stop, StopEvent.REJECT, str(outcome))
            oms.never_sent(outcome, f"stop order {client_order_id} on {symbol}", stop)
        if outcome is None and await oms.wait_for(stop, lambda: stop.state is not StopState.PENDING):
            if stop.state is StopState.REJECTED:
                log.info("stop order rejected", **stop.describe(), status=stop.last_status)
                raise OrderRejected(stop, stop.last_status)
            if stop.state is not StopState.UNKNOWN:
                return stop
        reason = outcome or oms.lapsed()
        oms.core.stop_lost(stop, str(reason))
        oms.flush()
        oms.want_settlement()
        raise OrderStatusUnknown(stop, str(reason))

    # ------------------------------------------------------------------ cancel and modify

    def resolve(self, stop: StopOrder | None, stop_order_id: str | None, symbol: str | None) -> StopOrder:
        """The tracked stop a cancel names; ``InvalidArgument`` for one this manager does not know."""
        if stop is not None:
            if self._oms.core.stops.by_local_id(stop.local_id) is not stop:
                raise InvalidArgument("this stop order is not tracked by this manager")
            return stop
        if not isinstance(stop_order_id, str) or not stop_order_id:
            raise InvalidArgument(f"stop_order_id must be a non-empty string, got {stop_order_id!r}")
        found = self._oms.core.stops.by_id(stop_order_id)
        if found is None:
            raise InvalidArgument(f"stop order {stop_order_id} is not known to this manager "
                                  "(reconcile first); nothing was sent")
        if symbol is not None and symbol != found.symbol:
            raise InvalidArgument(f"stop order {stop_order_id} is on {found.symbol}, not {symbol}")
        return found

    async def cancel(self, stop: StopOrder) -> CancelResult:
        """Send ``cancel_stop_order``; return once QFEX answered (any variant) or the answer was
        lost (then the cancel is owed: sent again after the resync if the stop is still staged)."""
        oms = self._oms
        if not stop.state.is_live:
            return CancelResult.of_stop(stop, "ALREADY_CLOSED")
        session = oms.usable_session()
        request = oms.core.cancel_stop(stop)
        outcome = await self._send(session, request)
        if outcome is None:
            return CancelResult.of_stop(stop, request.status or "PENDING")
        return CancelResult.of_stop(stop, str(outcome))

    async def modify(self, stop: StopOrder, price: args.Number | None, quantity: args.Number | None
                     ) -> StopOrder:
        """Send ``modify_stop_order``; ``ModifyRejected`` with QFEX's status when it refuses,
        ``OrderStatusUnknown`` when the answer was lost."""
        oms = self._oms
        if price is None and quantity is None:
            raise InvalidArgument("modify_stop needs a new price, a new quantity, or both")
        if oms.core.stops.by_local_id(stop.local_id) is not stop:
            raise InvalidArgument("this stop order is not tracked by this manager")
        new_price = None if price is None else args.decimal_arg("price", price)
        new_qty = None if quantity is None else args.decimal_arg("quantity", quantity)
        self._check_reference(stop.symbol, new_qty or stop.quantity, new_price or stop.trigger_price)
        oms.refuse_if_halted("order changes")
        session = oms.usable_session()
        request = oms.core.modify_stop(stop, new_price, new_qty)
        outcome = await self._send(session, request)
        if outcome is None:
            if request.status != "MODIFIED":
                raise ModifyRejected(stop, request.status)
            return stop
        raise OrderStatusUnknown(stop, str(outcome))

    async def _send(self, session: object, request: StopRequest) -> SendOutcome | None:
        """Send what the core queued for ``request`` and wait for its answer; None once answered."""
        oms = self._oms
        outcome = await oms.transmit(session, oms.core.take_frames())
        if outcome is not None and outcome.never_sent:
            oms.core.withdraw_stop_request(request, str(outcome))
            oms.flush()
            return outcome
        if outcome is None and not await oms.wait_for(request, lambda: request.done):
            outcome = oms.lapsed()
        if outcome is not None:
            oms.core.stop_request_lost(request, str(outcome))
            oms.flush()
            oms.want_settlement()
        return outcome

