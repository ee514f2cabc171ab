"""The matching engine: orders, price-time matching, cancels, modifies and TWAP state.

Pure and synchronous: every command returns the replies it causes as ``(account, reply)`` pairs and
the server routes them (order_response to ``order_responses`` subscribers, fill_response to ``fills``
subscribers, ...). It never awaits, never reads a clock other than the injected ``wall_clock`` (used
for timestamps only) and so can be driven directly from unit tests. TWAP *scheduling* is the
server's job; the engine only places the next child when told to.

Hot-path lookups are O(1): orders by id, open orders by ``(symbol, client_order_id)`` per account,
active TWAPs by id and by ``(symbol, client_twap_id)``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable
from decimal import Decimal

from attrs import define, field

from qfex_oms.protocol import (
    CancelIdType,
    ErrorCode,
    OrderStatus,
    OrderType,
    RequestError,
    Side,
    TimeInForce,
)
from qfex_oms.protocol.messages import (
    AddOrder,
    AddTwap,
    CancelOrder,
    CancelStopOrder,
    ClosePosition,
    ModifyOrder,
    ModifyStopOrder,
    OrderResponse,
    Reply,
)
from qfex_oms.sim import choices
from qfex_oms.sim.book import Book, BookSide, crosses
from qfex_oms.sim.ledger import Ledger
from qfex_oms.sim.records import ZERO, SimOrder, SimTrade, SimTwap
from qfex_oms.sim.settings import DEFAULT_DEPOSIT, Account, SymbolSpec
from qfex_oms.sim.stops import SimStop, StopDesk
from qfex_oms.sim.validation import (
    PRICED_TYPES,
    check_new_order,
    check_price,
    check_quantity,
    check_twap,
    scale_twap_total,
    twap_child_quantities,
)

Event = tuple[str, Reply]
"""A reply for every connection of ``account`` (public key) that may receive that reply kind."""

_MARKET_PRICE = Decimal(choices.MARKET_ORDER_PRICE_TEXT)
_CLIENT_KINDS = frozenset({CancelIdType.CLIENT_ORDER_ID, CancelIdType.CLIENT_TWAP_ID})
_TRIGGERED_TYPE = OrderType(choices.TRIGGERED_ORDER_TYPE_NAME)
# Order types that trade at any price (no limit): a fired stop's order is one (C40).
_MARKET_TYPES = frozenset({OrderType.MARKET, _TRIGGERED_TYPE})


def _new_id() -> str:
    return str(uuid.uuid4())


@define(slots=True, eq=False)
class AccountState:
    account: Account
    orders: list[SimOrder] = field(factory=list)
    open_orders: dict[str, SimOrder] = field(factory=dict)
    open_by_client_id: dict[tuple[str, str], dict[str, SimOrder]] = field(factory=dict)
    trades: list[SimTrade] = field(factory=list)
    trades_by_order: dict[str, list[SimTrade]] = field(factory=dict)
    twaps: list[SimTwap] = field(factory=list)
    active_twaps: dict[str, SimTwap] = field(factory=dict)
    active_twaps_by_client: dict[tuple[str, str], SimTwap] = field(factory=dict)


def require_known_side(side: Side, incoming: dict[str, object] | None = None) -> None:
    if not side.known:
        raise RequestError(ErrorCode.INVALID_PARAMETER, f"unknown side {side!s}", incoming)


class Engine:
    def __init__(
        self,
        accounts: Iterable[Account],
        symbols: Iterable[SymbolSpec],
        wall_clock: Callable[[], float] = time.time,
        *,
        deposit: Decimal = DEFAULT_DEPOSIT,
    ) -> None:
        self.clock = wall_clock
        accounts = tuple(accounts)
        symbols = tuple(symbols)
        self.accounts: dict[str, AccountState] = {a.public_key: AccountState(a) for a in accounts}
        self.symbols: dict[str, SymbolSpec] = {s.symbol: s for s in symbols}
        # Positions, balances, marks, leverage: told of every fill and resting order (ledger.py).
        self.ledger = Ledger(accounts, symbols, deposit)
        self.books: dict[str, Book] = {s: Book(s) for s in self.symbols}
        self.orders_by_id: dict[str, SimOrder] = {}
        self.twaps_by_id: dict[str, SimTwap] = {}
        # TWAP ids that ended since the server last drained this list (it stops their timers).
        self.ended_twaps: list[str] = []
        # Stop orders, off the book until the mark crosses their trigger (stops.py, CHOICES C39-C47).
        self.stops = StopDesk(self)

    # ------------------------------------------------------------------ orders

    def add_order(self, account: str, request: AddOrder) -> list[Event]:
        require_known_side(request.side)
        if request.order_type.is_stop:
            events = self.stops.add(account, request)
        else:
            events = []
            self._place(
                account, request.symbol, request.side, request.order_type, request.order_time_in_force,
                request.quantity, request.price, request.client_order_id or "", events,
                take_profit=request.take_profit or ZERO, stop_loss=request.stop_loss or ZERO,
            )
        self.stops.settle(events)
        return events

    def _place(
        self,
        account: str,
        symbol: str,
        side: Side,
        order_type: OrderType,
        tif: TimeInForce,
        quantity: Decimal,
        price: Decimal | None,
        client_order_id: str,
        events: list[Event],
        *,
        take_profit: Decimal = ZERO,
        stop_loss: Decimal = ZERO,
        twap_id: str | None = None,
    ) -> SimOrder:
        state = self.accounts[account]
        spec = self.symbols.get(symbol)
        status = check_new_order(spec, order_type, tif, quantity, price)
        if status is None:
            status = self.stops.check_attached(symbol, side, order_type, price, take_profit, stop_loss)
        now = self.clock()
        shown_price = price if order_type in PRICED_TYPES else _MARKET_PRICE
        order = SimOrder(
            order_id=_new_id(), account=account, user_id=state.account.user_id, symbol=symbol,
            side=side, order_type=order_type, time_in_force=tif, quantity=quantity,
            price=shown_price if shown_price is not None else ZERO,
            client_order_id=client_order_id, remaining=quantity, created_at=now, update_time=now,
            take_profit=take_profit, stop_loss=stop_loss, twap_id=twap_id,
        )
        state.orders.append(order)
        self.orders_by_id[order.order_id] = order
        if status is None and not self.ledger.margin_ok(
            account, symbol, side, quantity, self._margin_price(symbol, side, order.order_type, price)
        ):
            status = choices.INSUFFICIENT_MARGIN_STATUS
        if status is not None:
            # Rejected at validation: no ACK, the rejection is the only answer.
            order.status = status
            events.append((account, order.response(status)))
            return order
        events.append((account, order.response(OrderStatus.ACK)))
        self._execute(order, events)
        return order

    def _margin_price(self, symbol: str, side: Side, order_type: OrderType,
                      price: Decimal | None) -> Decimal:
        """The price an order's margin is computed at (CHOICES C27)."""
        if order_type in PRICED_TYPES and price is not None:
            return price
        best = self.books[symbol].side(side.opposite).best_price()
        if best is not None:
            return best
        mark = self.ledger.mark(symbol)
        return mark if mark is not None else ZERO

    def _execute(self, order: SimOrder, events: list[Event]) -> None:
        """Match an acknowledged order, then rest or end it according to its type and TIF."""
        book = self.books[order.symbol]
        opposite = book.side(order.side.opposite)
        if order.order_type is OrderType.ALO:
            best = opposite.best_price()
            if best is not None and crosses(order.side, order.price, best):
                self._close(order, choices.ALO_WOULD_CROSS_STATUS, events)
            else:
                self._rest(order, book.side(order.side))
            return
        limit = None if order.order_type in _MARKET_TYPES else order.price
        if order.time_in_force is TimeInForce.FOK and not self._fok_fillable(order, opposite, limit):
            self._close(order, choices.UNFILLED_IOC_STATUS, events)
            return
        sweep: list[str] = []  # trade ids of an IOC sweep whose FILLED report is held (C24)
        while order.remaining > ZERO:
            passive = opposite.first_at_best()
            if passive is None or (limit is not None and not crosses(order.side, limit, passive.price)):
                break
            if passive.account == order.account:
                # Self-trade prevention: the passive order is cancelled (qfex-api.md §9).
                opposite.remove(passive)
                self._close(passive, OrderStatus.CANCELLED_STP, events)
                continue
            self._fill(order, passive, opposite, events, sweep)
        if sweep:
            events.append((order.account, order.response(OrderStatus.FILLED, sweep[-1])))
        if order.remaining > ZERO:
            if order.time_in_force is TimeInForce.GTC:
                self._rest(order, book.side(order.side))
            elif order.filled == ZERO:
                self._close(order, choices.UNFILLED_IOC_STATUS, events)
            else:
                # Partially filled IOC: its last FILLED (quantity_remaining > 0) is the final word.
                order.is_open = False

    def _fok_fillable(self, order: SimOrder, opposite: BookSide, limit: Decimal | None) -> bool:
        available = ZERO
        for passive in opposite.iter_priority():
            if limit is not None and not crosses(order.side, limit, passive.price):
                return False
            if passive.account != order.account:
                available += passive.remaining
                if available >= order.remaining:
                    return True
        return False

    def _fill(self, aggressor: SimOrder, passive: SimOrder, side: BookSide, events: list[Event],
              sweep: list[str]) -> None:
        quantity = min(aggressor.remaining, passive.remaining)
        price = passive.price
        now = self.clock()
        for order in (aggressor, passive):
            order.remaining -= quantity
            order.filled += quantity
            order.status = OrderStatus.FILLED
            order.update_time = now
        if passive.remaining == ZERO:
            side.remove(passive)
            self._unindex(passive)
        else:
            self.ledger.sync_order(passive)
        held = choices.IOC_SINGLE_FILLED_REPORT and aggressor.time_in_force is not TimeInForce.GTC
        for order in (aggressor, passive):
            trade_id = self._record_fill(order, price, quantity, aggressor.side, now, order is passive,
                                         events, report=not (held and order is aggressor))
            if held and order is aggressor:
                sweep.append(trade_id)

    def _record_fill(
        self,
        order: SimOrder,
        price: Decimal,
        quantity: Decimal,
        aggressor_side: Side,
        now: float,
        is_maker: bool,
        events: list[Event],
        report: bool = True,
    ) -> str:
        """Record one side of a trade; returns its trade id. ``report``: also send the FILLED
        order_response now (an IOC sweep sends its one report at the end instead, C24)."""
        trade = SimTrade(
            trade_id=_new_id(), account=order.account, user_id=order.user_id, symbol=order.symbol,
            price=price, quantity=quantity, side=order.side, aggressor_side=aggressor_side,
            order_id=order.order_id, client_order_id=order.client_order_id,
            order_type=order.order_type, time_in_force=order.time_in_force,
            order_price=order.price, remaining_quantity=order.remaining, timestamp=now,
            is_maker=is_maker,
            realised_pnl=self.ledger.fill(order.account, order.symbol, order.side, price, quantity),
        )
        if order.take_profit > ZERO or order.stop_loss > ZERO:
            self.stops.parent_filled(order, quantity)
        state = self.accounts[order.account]
        state.trades.append(trade)
        state.trades_by_order.setdefault(order.order_id, []).append(trade)
        if report:
            events.append((order.account, order.response(OrderStatus.FILLED, trade.trade_id)))
        events.append((order.account, trade.fill_response()))
        if order.twap_id is not None:
            twap = self.twaps_by_id[order.twap_id]
            twap.filled_quantity += quantity
            twap.notional += quantity * price
            twap.updated_at = now
        return trade.trade_id

    def _rest(self, order: SimOrder, side: BookSide) -> None:
        order.is_open = True
        side.add(order)
        state = self.accounts[order.account]
        state.open_orders[order.order_id] = order
        if order.client_order_id:
            key = (order.symbol, order.client_order_id)
            state.open_by_client_id.setdefault(key, {})[order.order_id] = order
        self.ledger.sync_order(order)

    def _unindex(self, order: SimOrder) -> None:
        order.is_open = False
        state = self.accounts[order.account]
        state.open_orders.pop(order.order_id, None)
        if order.client_order_id:
            key = (order.symbol, order.client_order_id)
            group = state.open_by_client_id.get(key)
            if group is not None:
                group.pop(order.order_id, None)
                if not group:
                    del state.open_by_client_id[key]
        self.ledger.sync_order(order)

    def _close(self, order: SimOrder, status: OrderStatus, events: list[Event]) -> None:
        """End an order that is no longer in the book and tell its owner."""
        self._unindex(order)
        order.status = status
        order.update_time = self.clock()
        events.append((order.account, order.response(status)))

    def _cancel_resting(self, order: SimOrder, status: OrderStatus, events: list[Event]) -> None:
        self.books[order.symbol].side(order.side).remove(order)
        self._close(order, status, events)

    # ------------------------------------------------------------------ modify / cancel

    def modify_order(self, account: str, request: ModifyOrder) -> list[Event]:
        order = self.orders_by_id.get(request.order_id)
        if (
            order is None or order.account != account or not order.is_open
            or order.symbol != request.symbol or order.side != request.side
            or order.order_type != request.order_type
        ):
            return [(account, self._not_found(account, request.order_id, request.symbol,
                                              OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER))]
        if order.filled > ZERO:
            return [(account, order.response(OrderStatus.CANNOT_MODIFY_PARTIAL_FILL))]
        spec = self.symbols[order.symbol]
        quantity = request.quantity if request.quantity is not None else order.quantity
        price = request.price if request.price is not None else order.price
        status = check_quantity(spec, quantity) or check_price(spec, price)
        if status is None and not self.ledger.margin_ok(
            account, order.symbol, order.side, quantity, price, freed=self.ledger.held_margin(order)
        ):
            status = choices.INSUFFICIENT_MARGIN_STATUS
        if status is not None:
            return [(account, order.response(status))]
        # A modify is a cancel/replace that keeps the order_id: it loses queue priority (C22).
        self.books[order.symbol].side(order.side).remove(order)
        self._unindex(order)
        order.quantity = order.remaining = quantity
        order.price = price
        if request.take_profit is not None:
            order.take_profit = request.take_profit
        if request.stop_loss is not None:
            order.stop_loss = request.stop_loss
        order.status = OrderStatus.MODIFIED
        order.update_time = self.clock()
        events: list[Event] = [(account, order.response(OrderStatus.MODIFIED))]
        self._execute(order, events)
        self.stops.settle(events)
        return events

    def cancel_order(
        self, account: str, request: CancelOrder, *, fill_first: bool = False
    ) -> tuple[list[Event], bool]:
        """Cancel by any of the four id kinds. Returns the events and whether ``fill_first`` applied.

        ``fill_first`` is the "fill races cancel" fault: every targeted order is filled in full
        against a synthetic counterparty before the cancel is looked at, so the cancel finds nothing.
        """
        kind = request.cancel_order_id_type
        if kind in (CancelIdType.TWAP_ID, CancelIdType.CLIENT_TWAP_ID):
            return self._cancel_twap(account, request), False
        state = self.accounts[account]
        if kind is CancelIdType.ORDER_ID:
            order = self.orders_by_id.get(request.order_id)
            targets = (
                [order]
                if order is not None and order.account == account and order.is_open
                and order.symbol == request.symbol
                else []
            )
        elif kind is CancelIdType.CLIENT_ORDER_ID:
            group = state.open_by_client_id.get((request.symbol, request.order_id))
            targets = list(group.values()) if group else []
        else:
            raise RequestError(ErrorCode.INVALID_PARAMETER,
                               f"unknown cancel_order_id_type {kind!s}", None)
        events: list[Event] = []
        raced = fill_first and bool(targets)
        if raced:
            for order in targets:
                self._synthetic_fill(order, events)
            self.stops.settle(events)
            targets = []
        if not targets:
            events.append((account, self._not_found(account, request.order_id, request.symbol,
                                                    OrderStatus.NO_SUCH_ORDER, kind)))
            return events, raced
        for order in targets:
            self._cancel_resting(order, OrderStatus.CANCELLED, events)
        return events, False

    def _synthetic_fill(self, order: SimOrder, events: list[Event]) -> None:
        """Fill the whole remainder at the order's price against a counterparty that is no account."""
        quantity = order.remaining
        self.books[order.symbol].side(order.side).remove(order)
        now = self.clock()
        order.remaining = ZERO
        order.filled += quantity
        order.status = OrderStatus.FILLED
        order.update_time = now
        self._unindex(order)
        self._record_fill(order, order.price, quantity, order.side.opposite, now, True, events)

    def _not_found(
        self,
        account: str,
        requested_id: str,
        symbol: str,
        status: OrderStatus,
        kind: CancelIdType = CancelIdType.ORDER_ID,
    ) -> OrderResponse:
        """The reply when nothing matches: the id sent is echoed in ``order_id`` (C23)."""
        return OrderResponse(
            order_id=requested_id,
            symbol=symbol,
            status=status,
            client_order_id=requested_id if kind in _CLIENT_KINDS else "",
            user_id=self.accounts[account].account.user_id,
            update_time=self.clock(),
        )

    def cancel_all(self, account: str, keep_stops: Iterable[str] = ()) -> list[Event]:
        """Cancel every open order of the account, end every active TWAP, then cancel its stops
        (CHOICES C46) but those in ``keep_stops`` (the refuse-stop-cancel fault, C47)."""
        state = self.accounts[account]
        events: list[Event] = []
        for order in list(state.open_orders.values()):
            self._cancel_resting(order, OrderStatus.CANCELLED, events)
        for twap in list(state.active_twaps.values()):
            self._end_twap(twap, choices.TWAP_CANCELLED)
            events.append((account, twap.response()))
        events.extend(self.stops.cancel_all(account, keep_stops))
        return events

    # ------------------------------------------------------------------ stop orders

    def cancel_stop(self, account: str, request: CancelStopOrder,
                    refused: Iterable[str] = ()) -> tuple[list[Event], bool]:
        """``cancel_stop_order``: the events and whether the stop was cancelled (CHOICES C43)."""
        return self.stops.cancel(account, request, refused)

    def modify_stop(self, account: str, request: ModifyStopOrder) -> tuple[list[Event], bool]:
        """``modify_stop_order``: the events and whether the stop changed (C44). A trigger the mark
        already crossed is refused (C41), so a modify never fires a stop by itself."""
        events, changed = self.stops.modify(account, request)
        self.stops.settle(events)
        return events, changed

    def place_triggered(self, stop: SimStop, quantity: Decimal, events: list[Event]) -> SimOrder:
        """The reduce-only market order a fired stop becomes (C40): the stop's id and client id, type
        STOP_MARKET, IOC; no margin check (it only reduces). Its fills are ordinary fills."""
        now = self.clock()
        order = SimOrder(
            order_id=stop.stop_order_id, account=stop.account, user_id=stop.user_id,
            symbol=stop.symbol, side=stop.side, order_type=_TRIGGERED_TYPE,
            time_in_force=TimeInForce.IOC, quantity=quantity, price=_MARKET_PRICE,
            client_order_id=stop.client_order_id, remaining=quantity, created_at=now, update_time=now,
        )
        self.accounts[stop.account].orders.append(order)
        self.orders_by_id[order.order_id] = order
        events.append((order.account, order.response(OrderStatus.ACK)))
        self._execute(order, events)
        return order

    # ------------------------------------------------------------------ account

    def close_position(self, account: str, request: ClosePosition) -> list[Event]:
        """QFEX's ``close_position``: a LIMIT IOC on the opposite side, sized to the position and
        priced near mark (CHOICES C29); a flat or unknown symbol gets one order_response."""
        client_id = request.client_order_id or ""
        spec = self.symbols.get(request.symbol)
        if spec is None:
            return [(account, self._no_close(account, request.symbol, client_id, OrderStatus.BAD_SYMBOL))]
        held = self.ledger.accounts[account].positions[request.symbol].quantity
        side = Side.SELL if held > ZERO else Side.BUY
        price = self.ledger.close_price(request.symbol, side) if held != ZERO else None
        if price is None:
            return [(account, self._no_close(account, request.symbol, client_id, choices.CLOSE_FLAT_STATUS))]
        events: list[Event] = []
        self._place(account, request.symbol, side, OrderType.LIMIT, TimeInForce.IOC,
                    min(abs(held), spec.max_quantity), price, client_id, events)
        self.stops.settle(events)
        return events

    def _no_close(self, account: str, symbol: str, client_id: str, status: OrderStatus) -> OrderResponse:
        return OrderResponse(
            order_id=_new_id(), symbol=symbol, status=status, type=OrderType.LIMIT,
            time_in_force=TimeInForce.IOC, quantity=ZERO, price=ZERO, quantity_remaining=ZERO,
            client_order_id=client_id, user_id=self.accounts[account].account.user_id,
            update_time=self.clock(),
        )

    def set_mark(self, symbol: str, price: Decimal | None) -> list[Event]:
        """Pin (or with None release) the mark price of a listed symbol; returns what the stops
        whose trigger it crossed did (CHOICES C40)."""
        if symbol not in self.symbols:
            raise KeyError(f"unknown symbol {symbol!r}")
        self.ledger.set_mark(symbol, price)
        events: list[Event] = []
        self.stops.settle(events)
        return events

    def apply_funding(self, symbol: str, rate: Decimal) -> None:
        if symbol not in self.symbols:
            raise KeyError(f"unknown symbol {symbol!r}")
        self.ledger.apply_funding(symbol, rate)

    # ------------------------------------------------------------------ TWAPs

    def add_twap(self, account: str, request: AddTwap) -> list[Event]:
        """Validate and register a TWAP; the server then calls ``twap_child`` on its schedule."""
        require_known_side(request.side)
        spec = self.symbols.get(request.symbol)
        problem = check_twap(spec, request)
        state = self.accounts[account]
        client_key = (request.symbol, request.client_twap_id or "")
        if problem is None and request.client_twap_id and client_key in state.active_twaps_by_client:
            problem = "client_twap_id is already used by an active TWAP on this symbol"
        if problem is not None or spec is None:
            raise RequestError(ErrorCode.INVALID_PARAMETER, problem or "invalid TWAP", None)
        total = scale_twap_total(spec, request.total_quantity)
        now = self.clock()
        twap = SimTwap(
            twap_id=_new_id(), account=account, user_id=state.account.user_id,
            symbol=request.symbol, side=request.side, total_quantity=total,
            num_orders=request.num_orders, order_interval_secs=request.order_interval_secs,
            reduce_only=request.reduce_only, client_twap_id=request.client_twap_id,
            child_quantities=twap_child_quantities(spec, total, request.num_orders),
            created_at=now, updated_at=now,
        )
        self.twaps_by_id[twap.twap_id] = twap
        state.twaps.append(twap)
        state.active_twaps[twap.twap_id] = twap
        if twap.client_twap_id:
            state.active_twaps_by_client[(twap.symbol, twap.client_twap_id)] = twap
        return [(account, twap.response())]

    def twap_child(self, twap_id: str) -> list[Event]:
        """Place the next child of an active TWAP (a MARKET IOC order); complete it after the last."""
        twap = self.twaps_by_id.get(twap_id)
        if twap is None or not twap.active:
            return []
        n = twap.children_placed + 1
        events: list[Event] = []
        client_id = choices.TWAP_CHILD_CLIENT_ID.format(twap_id=twap.twap_id, n=n)
        self._place(twap.account, twap.symbol, twap.side, OrderType.MARKET, TimeInForce.IOC,
                    twap.child_quantities[n - 1], None, client_id, events, twap_id=twap.twap_id)
        twap.children_placed = n
        self.stops.settle(events)
        if n >= twap.num_orders:
            self._end_twap(twap, choices.TWAP_COMPLETED)
            events.append((twap.account, twap.response()))
        return events

    def _end_twap(self, twap: SimTwap, status: str) -> None:
        twap.status = status
        twap.updated_at = self.clock()
        state = self.accounts[twap.account]
        state.active_twaps.pop(twap.twap_id, None)
        if twap.client_twap_id:
            state.active_twaps_by_client.pop((twap.symbol, twap.client_twap_id), None)
        self.ended_twaps.append(twap.twap_id)

    def _cancel_twap(self, account: str, request: CancelOrder) -> list[Event]:
        state = self.accounts[account]
        twap: SimTwap | None
        if request.cancel_order_id_type is CancelIdType.TWAP_ID:
            twap = state.active_twaps.get(request.order_id)
            if twap is not None and twap.symbol != request.symbol:
                twap = None
        else:
            twap = state.active_twaps_by_client.get((request.symbol, request.order_id))
        if twap is None:
            return [(account, self._not_found(account, request.order_id, request.symbol,
                                              OrderStatus.NO_SUCH_ORDER,
                                              request.cancel_order_id_type))]
        self._end_twap(twap, choices.TWAP_CANCELLED)
        return [(account, twap.cancel_response()), (account, twap.response())]
