"""Stop orders in the simulator (qfex-api.md §3.10, §14; CHOICES C39-C47): the stop book and its rules.

A ``StopDesk`` is composed into the ``Engine``. Stops live off the book, in the desk, until the mark
price (C26: pinned, else the last trade) crosses their trigger; then the engine turns them into a
reduce-only market order that trades through the matching engine like any other (C40). The desk is
pure and synchronous like the engine: every entry point appends ``(account, reply)`` events.

``settle`` runs after every engine command and every ``set_mark``: it stages the stops of parents
that filled (C39), cancels stops larger than the position they would close (C41), and fires the stops
whose trigger the mark crossed, until nothing more fires (a fired stop's trades move the mark).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Context, Decimal
from enum import Enum
from typing import TYPE_CHECKING

from attrs import define, field

from qfex_oms.logs import get_logger
from qfex_oms.protocol import numbers
from qfex_oms.protocol.enums import OrderStatus, OrderType, Side, TimeInForce
from qfex_oms.protocol.messages import (
    AddOrder,
    CancelStopOrder,
    ModifyStopOrder,
    OrderResponse,
    Reply,
    StopOrderResponse,
)
from qfex_oms.sim import choices
from qfex_oms.sim.records import ZERO, SimOrder
from qfex_oms.sim.settings import SymbolSpec
from qfex_oms.sim.validation import PRICED_TYPES, check_quantity

if TYPE_CHECKING:
    from qfex_oms.sim.engine import Engine

log = get_logger("qfex_oms.sim.stops")

Event = tuple[str, Reply]
_EXACT = Context(prec=2 * numbers.MAX_SIGNIFICANT_DIGITS + 2)
_STOP_TIF = TimeInForce(choices.STOP_TIME_IN_FORCE_NAME)
_PRICE_REFUSAL = {OrderType.TAKE_PROFIT: OrderStatus.INVALID_TAKEPROFIT_PRICE,
                  OrderType.STOP_LOSS: OrderStatus.INVALID_STOPLOSS_PRICE}


class StopState(Enum):
    ACTIVE = "ACTIVE"
    TRIGGERED = "TRIGGERED"  # became the market order whose order_id is the stop's id (C40)
    CANCELLED = "CANCELLED"
    REJECTED = "REJECTED"


@define(slots=True)
class StopRules:
    """The stop choices a test may switch at runtime (``venue.stop_rules``): C45 and C46."""

    listing: choices.StopListing = choices.STOP_LISTING
    cancel_all_covers_stops: bool = choices.CANCEL_ALL_COVERS_STOPS


@define(slots=True, eq=False)
class SimStop:
    """One stop order. ``side`` is the direction of the market order it becomes; ``price`` the trigger."""

    stop_order_id: str
    account: str
    user_id: str
    symbol: str
    side: Side
    kind: OrderType
    price: Decimal
    quantity: Decimal
    client_order_id: str
    created_at: float
    update_time: float
    parent_order_id: str | None = None
    state: StopState = StopState.ACTIVE
    status: OrderStatus = OrderStatus.ACK  # the last status its order_response carried

    @property
    def active(self) -> bool:
        return self.state is StopState.ACTIVE

    def response(self, status: OrderStatus) -> OrderResponse:
        """The ``order_response`` under the stop's id (qfex-api.md §14.5's shape); a cancelled stop
        shows quantity 0, as QFEX's cancel example does."""
        shown = ZERO if self.state is StopState.CANCELLED else self.quantity
        return OrderResponse(
            order_id=self.stop_order_id, symbol=self.symbol, status=status, side=self.side,
            type=self.kind, time_in_force=_STOP_TIF, quantity=shown, price=self.price,
            quantity_remaining=shown, client_order_id=self.client_order_id, take_profit=ZERO,
            stop_loss=ZERO, user_id=self.user_id, update_time=self.update_time,
        )

    def push(self) -> StopOrderResponse:
        """The ``stop_order_response`` (C42), ``update_time`` as an ISO 8601 UTC string."""
        when = datetime.fromtimestamp(self.update_time, UTC).isoformat().replace("+00:00", "Z")
        return StopOrderResponse(
            stop_order_id=self.stop_order_id, symbol=self.symbol, price=self.price,
            quantity=self.quantity, direction=self.side, stop_order_type=self.kind,
            client_order_id=self.client_order_id, user_id=self.user_id, update_time=when,
        )


def fires(side: Side, kind: OrderType, trigger: Decimal, mark: Decimal) -> bool:
    """Has the mark reached the trigger (C40)? A SELL stop closes a long: its stop-loss fires at or
    below the trigger, its take-profit at or above; a BUY stop mirrors that."""
    at_or_above = (side is Side.SELL) == (kind is OrderType.TAKE_PROFIT)
    return mark >= trigger if at_or_above else mark <= trigger


def closeable(position: Decimal, side: Side) -> Decimal:
    """How much an order of ``side`` can trade and only reduce the signed ``position`` (C25)."""
    return max(position, ZERO) if side is Side.SELL else max(-position, ZERO)


def _on_tick(value: Decimal, step: Decimal) -> bool:
    return _EXACT.remainder(value, step) == ZERO


def _new_id() -> str:
    return str(uuid.uuid4())


@define(slots=True, eq=False)
class StopDesk:
    engine: Engine
    rules: StopRules = field(factory=StopRules)
    by_id: dict[str, SimStop] = field(factory=dict)
    history: dict[str, list[SimStop]] = field(factory=dict)  # per account, oldest first
    live: dict[str, dict[str, SimStop]] = field(factory=dict)  # per account, by id, oldest first
    linked: dict[tuple[str, OrderType], SimStop] = field(factory=dict)  # (parent id, kind) -> stop
    parent_fills: list[tuple[SimOrder, Decimal]] = field(factory=list)

    # ------------------------------------------------------------------ reading

    def stops(self, account: str, open_only: bool = True) -> list[SimStop]:
        source = self.live.get(account, {}) if open_only else {
            s.stop_order_id: s for s in self.history.get(account, ())}
        return list(source.values())

    def listed(self, account: str, symbol: str | None) -> list[SimStop]:
        return [s for s in self.live.get(account, {}).values() if symbol in (None, s.symbol)]

    def find(self, account: str, stop_order_id: str) -> SimStop | None:
        stop = self.by_id.get(stop_order_id)
        return stop if stop is not None and stop.account == account else None

    # ------------------------------------------------------------------ staging

    def add(self, account: str, request: AddOrder) -> list[Event]:
        """A standalone stop (C39, C41): ACK and a push, or one refusal under a new stop id."""
        spec = self.engine.symbols.get(request.symbol)
        stop = self._new(account, request.symbol, request.side, request.order_type,
                         request.price or ZERO, request.quantity, request.client_order_id or "")
        status = self._standalone_status(spec, stop, request.price)
        if status is not None:
            stop.state, stop.status = StopState.REJECTED, status
            return [(account, stop.response(status))]
        self._activate(stop)
        return [(account, stop.response(OrderStatus.ACK)), (account, stop.push())]

    def _standalone_status(self, spec: SymbolSpec | None, stop: SimStop,
                           price: Decimal | None) -> OrderStatus | None:
        if spec is None:
            return OrderStatus.BAD_SYMBOL
        if not stop.kind.is_stop:
            return choices.UNSUPPORTED_ORDER_TYPE_STATUS
        if stop.quantity <= ZERO:
            return OrderStatus.QUANTITY_LESS_THAN_MIN_QUANTITY
        if not _on_tick(stop.quantity, spec.lot_size):
            return OrderStatus.INVALID_TICK_SIZE_PRECISION_QUANTITY
        return self._trigger_status(spec, stop, price, stop.quantity)

    def _trigger_status(self, spec: SymbolSpec, stop: SimStop, price: Decimal | None,
                        quantity: Decimal) -> OrderStatus | None:
        """Trigger on the tick, size within the position it closes, trigger not already crossed."""
        if price is None or price <= ZERO:
            return choices.MISSING_PRICE_STATUS
        if not _on_tick(price, spec.tick_size):
            return OrderStatus.INVALID_TICK_SIZE_PRECISION_PRICE
        if quantity > closeable(self._position(stop.account, stop.symbol), stop.side):
            return choices.STOP_EXCEEDS_POSITION_STATUS
        mark = self.engine.ledger.mark(stop.symbol)
        if mark is not None and fires(stop.side, stop.kind, price, mark):
            return _PRICE_REFUSAL[stop.kind]
        return None

    def check_attached(self, symbol: str, side: Side, order_type: OrderType, price: Decimal | None,
                       take_profit: Decimal, stop_loss: Decimal) -> OrderStatus | None:
        """A parent's take_profit / stop_loss on the wrong side of its reference price (C39)."""
        if take_profit <= ZERO and stop_loss <= ZERO:
            return None
        reference = price if order_type in PRICED_TYPES else self.engine.ledger.mark(symbol)
        if reference is None:
            reference = self.engine.books[symbol].side(side.opposite).best_price()
        closing = side.opposite
        for kind, trigger in ((OrderType.TAKE_PROFIT, take_profit), (OrderType.STOP_LOSS, stop_loss)):
            if trigger > ZERO and reference is not None and fires(closing, kind, trigger, reference):
                return _PRICE_REFUSAL[kind]
        return None

    def parent_filled(self, order: SimOrder, quantity: Decimal) -> None:
        """Note a fill of an order carrying take_profit / stop_loss; ``settle`` stages its stops."""
        self.parent_fills.append((order, quantity))

    def _stage_parent_fills(self, events: list[Event]) -> None:
        fills, self.parent_fills = self.parent_fills, []
        for parent, quantity in fills:
            for kind, trigger in ((OrderType.TAKE_PROFIT, parent.take_profit),
                                  (OrderType.STOP_LOSS, parent.stop_loss)):
                if trigger > ZERO:
                    self._grow_or_stage(parent, kind, trigger, quantity, events)

    def _grow_or_stage(self, parent: SimOrder, kind: OrderType, trigger: Decimal, quantity: Decimal,
                       events: list[Event]) -> None:
        side = parent.side.opposite
        room = closeable(self._position(parent.account, parent.symbol), side)
        stop = self.linked.get((parent.order_id, kind))
        if stop is not None and stop.active:
            grown = min(stop.quantity + quantity, room)
            if grown > stop.quantity:
                stop.quantity = grown
                self._changed(stop, OrderStatus.MODIFIED, events)
            return
        size = min(quantity, room)
        if size <= ZERO:
            log.info("sim.stop_not_staged", parent=parent.order_id, kind=str(kind), reason="flat")
            return
        client_id = parent.client_order_id if choices.ATTACHED_STOPS_INHERIT_CLIENT_ID else ""
        stop = self._new(parent.account, parent.symbol, side, kind, trigger, size, client_id)
        stop.parent_order_id = parent.order_id
        self.linked[(parent.order_id, kind)] = stop
        self._activate(stop)
        events.append((stop.account, stop.response(OrderStatus.ACK)))
        events.append((stop.account, stop.push()))

    # ------------------------------------------------------------------ after every command

    def settle(self, events: list[Event]) -> None:
        """Stage parents' stops, cancel oversized stops, fire crossed stops, until nothing moves."""
        while self.parent_fills or any(self.live.values()):
            self._stage_parent_fills(events)
            if choices.CANCEL_STOPS_EXCEEDING_POSITION:
                for stop in self._all_live():
                    if stop.quantity > closeable(self._position(stop.account, stop.symbol), stop.side):
                        self._end(stop, StopState.CANCELLED, OrderStatus.CANCELLED, events)
            due = [s for s in self._all_live() if self._due(s)]
            if not due:
                return
            for stop in due:
                if stop.active:
                    self._fire(stop, events)

    def _due(self, stop: SimStop) -> bool:
        mark = self.engine.ledger.mark(stop.symbol)
        return mark is not None and fires(stop.side, stop.kind, stop.price, mark)

    def _fire(self, stop: SimStop, events: list[Event]) -> None:
        size = min(stop.quantity, closeable(self._position(stop.account, stop.symbol), stop.side))
        if size <= ZERO:
            self._end(stop, StopState.REJECTED, choices.TRIGGERED_NOTHING_TO_CLOSE_STATUS, events)
            return
        self._retire(stop, StopState.TRIGGERED)
        log.info("sim.stop_triggered", stop=stop.stop_order_id, symbol=stop.symbol, quantity=str(size))
        self.engine.place_triggered(stop, size, events)

    # ------------------------------------------------------------------ requests

    def cancel(self, account: str, request: CancelStopOrder,
               refused: Iterable[str] = ()) -> tuple[list[Event], bool]:
        """``cancel_stop_order`` (C43, C47): the events, and whether the stop was cancelled."""
        stop = self.find(account, request.stop_order_id)
        if stop is None or not stop.active:
            return [(account, self._not_found(account, request.stop_order_id, stop,
                                              choices.STOP_NOT_FOUND_STATUS))], False
        if stop.stop_order_id in set(refused):
            return [(account, stop.response(choices.REFUSED_STOP_CANCEL_STATUS))], False
        events: list[Event] = []
        self._end(stop, StopState.CANCELLED, OrderStatus.CANCELLED, events)
        return events, True

    def modify(self, account: str, request: ModifyStopOrder) -> tuple[list[Event], bool]:
        """``modify_stop_order`` (C44): the events, and whether the stop changed."""
        stop = self.find(account, request.stop_order_id)
        if (stop is None or not stop.active or stop.symbol != request.symbol
                or request.side not in (None, stop.side) or request.order_type not in (None, stop.kind)):
            return [(account, self._not_found(account, request.stop_order_id, stop,
                                              choices.STOP_MODIFY_NOT_FOUND_STATUS))], False
        spec = self.engine.symbols[stop.symbol]
        quantity = request.quantity if request.quantity is not None else stop.quantity
        price = request.price if request.price is not None else stop.price
        status = check_quantity(spec, quantity) or self._trigger_status(spec, stop, price, quantity)
        if status is not None:
            return [(account, stop.response(status))], False
        stop.quantity, stop.price = quantity, price
        events: list[Event] = []
        self._changed(stop, OrderStatus.MODIFIED, events)
        return events, True

    def cancel_all(self, account: str, keep: Iterable[str] = ()) -> list[Event]:
        """``cancel_all_orders`` / cancel-on-disconnect over stops (C46), sparing ``keep`` (C47)."""
        events: list[Event] = []
        if not self.rules.cancel_all_covers_stops:
            return events
        spared = set(keep)
        for stop in list(self.live.get(account, {}).values()):
            if stop.stop_order_id not in spared:
                self._end(stop, StopState.CANCELLED, OrderStatus.CANCELLED, events)
        return events

    # ------------------------------------------------------------------ internals

    def _new(self, account: str, symbol: str, side: Side, kind: OrderType, price: Decimal,
             quantity: Decimal, client_order_id: str) -> SimStop:
        now = self.engine.clock()
        stop = SimStop(
            stop_order_id=_new_id(), account=account,
            user_id=self.engine.accounts[account].account.user_id, symbol=symbol, side=side,
            kind=kind, price=price, quantity=quantity, client_order_id=client_order_id,
            created_at=now, update_time=now,
        )
        self.by_id[stop.stop_order_id] = stop
        self.history.setdefault(account, []).append(stop)
        return stop

    def _activate(self, stop: SimStop) -> None:
        self.live.setdefault(stop.account, {})[stop.stop_order_id] = stop

    def _all_live(self) -> list[SimStop]:
        return [s for stops in self.live.values() for s in stops.values()]

    def _position(self, account: str, symbol: str) -> Decimal:
        return self.engine.ledger.accounts[account].positions[symbol].quantity

    def _changed(self, stop: SimStop, status: OrderStatus, events: list[Event]) -> None:
        stop.status, stop.update_time = status, self.engine.clock()
        events.append((stop.account, stop.response(status)))
        events.append((stop.account, stop.push()))

    def _retire(self, stop: SimStop, state: StopState) -> None:
        stop.state, stop.update_time = state, self.engine.clock()
        self.live.get(stop.account, {}).pop(stop.stop_order_id, None)

    def _end(self, stop: SimStop, state: StopState, status: OrderStatus, events: list[Event]) -> None:
        self._retire(stop, state)
        stop.status = status
        events.append((stop.account, stop.response(status)))

    def _not_found(self, account: str, requested: str, stop: SimStop | None,
                   status: OrderStatus) -> OrderResponse:
        """The refusal for a stop that is not live: the id sent echoed (C23), and what is known of it."""
        return OrderResponse(
            order_id=requested, symbol=stop.symbol if stop is not None else "", status=status,
            type=stop.kind if stop is not None else None, client_order_id="",
            user_id=self.engine.accounts[account].account.user_id, update_time=self.engine.clock(),
        )
