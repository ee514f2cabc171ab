"""One strategy's view of a shared manager: ``oms.for_strategy("mm")`` (issue 18).

Several strategies share one account, one connection, one pacer and one book. Each gets a view
with the manager's API that sees only its own orders, TWAPs and stops: ``place_*`` fill in its
name (its client ids go on the wire in its namespace, ``mm:bid-1``, see ``core.model``),
``orders()``/``twaps()``/``stops()``/``events()`` filter on it, ``cancel(...)`` refuses what is
not its own, and ``cancel_all()`` cancels only its own, by id or by a client id only it can use
(``oms.cancel_where(strategy=...)``), never with ``cancel_all_orders``. The account's kill switch
stays ``oms.cancel_all()``. Account-level reads (positions, balance, reference data, leverage) are
the account's: a view passes them through.

A view is composed over the manager, not a subclass: it holds no state of its own but the name
and its halt, so any number of views of one manager agree with it and with each other.
Client ids a strategy gives (``client_order_id="bid-1"``, ``cancel(client_order_id="bid-1")``) are
its own; the wire id is ``order.client_order_id`` and the given one ``order.own_client_order_id``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from qfex_oms.client.events import (
    BalanceUpdated,
    Connected,
    Disconnected,
    Event,
    EventStream,
    HaltChanged,
    PositionMismatch,
    PositionUpdated,
    Reconnected,
)
from qfex_oms.client.results import CancelResult, KillReport
from qfex_oms.core import args
from qfex_oms.core.events import (
    CancelFinished,
    FillReceived,
    ModifyFinished,
    OrderUpdated,
    StopRequestFinished,
    StopUpdated,
    TwapUpdated,
)
from qfex_oms.core.model import Order, Twap, strategy_of, wire_client_id
from qfex_oms.core.refdata import Instrument
from qfex_oms.core.stops import StopOrder
from qfex_oms.errors import Halted, InvalidArgument
from qfex_oms.protocol import messages as m

if TYPE_CHECKING:
    from qfex_oms.client.manager import OrderManager
    from qfex_oms.core.account import Balance, Position

# Events about the account or the connection, which every strategy sees.
_ACCOUNT_EVENTS = (Connected, Disconnected, Reconnected, HaltChanged, PositionUpdated, BalanceUpdated,
                   PositionMismatch)
Subject = Order | Twap | StopOrder


class StrategyView:
    __slots__ = ("_halted", "_oms", "name")

    def __init__(self, oms: OrderManager, name: str) -> None:
        self._oms = oms
        self.name = name
        self._halted = False

    def __repr__(self) -> str:
        return f"StrategyView({self.name!r})"

    @property
    def manager(self) -> OrderManager:
        """The shared manager (account-wide: its ``cancel_all()`` is everyone's kill switch)."""
        return self._oms

    # ------------------------------------------------------------------ what is its own

    def owns(self, subject: Subject) -> bool:
        return subject.strategy == self.name

    def owns_event(self, event: Event) -> bool:
        """Whether ``events()`` of this view delivers it: its own orders', TWAPs', stops' and
        cancels' events, and the account's (connection, halt, positions, balance)."""
        if isinstance(event, OrderUpdated | FillReceived):
            return event.order.strategy == self.name
        if isinstance(event, TwapUpdated):
            return event.twap.strategy == self.name
        if isinstance(event, StopUpdated):
            return event.stop.strategy == self.name
        if isinstance(event, StopRequestFinished):
            return event.request.stop.strategy == self.name
        if isinstance(event, ModifyFinished):
            return event.request.order.strategy == self.name
        if isinstance(event, CancelFinished):
            request = event.request
            if request.twap is not None:
                return request.twap.strategy == self.name
            if request.targets:
                return any(o.strategy == self.name for o in request.targets)
            return strategy_of(request.value) == self.name
        return isinstance(event, _ACCOUNT_EVENTS)

    def _check_own(self, subject: Subject) -> None:
        if not self.owns(subject):
            owner = "no strategy" if subject.strategy is None else f"strategy {subject.strategy!r}"
            raise InvalidArgument(f"strategy {self.name!r} cannot touch an order of {owner}; "
                                  "nothing was sent")

    # ------------------------------------------------------------------ reads

    @property
    def halted(self) -> bool:
        """This strategy's ``cancel_all()`` halted it, or the account's kill switch did."""
        return self._halted or self._oms.halted

    @property
    def connected(self) -> bool:
        return self._oms.connected

    @property
    def closing(self) -> bool:
        return self._oms.closing

    async def wait_connected(self) -> None:
        await self._oms.wait_connected()

    def orders(self, symbol: str | None = None, open_only: bool = True) -> list[Order]:
        return [o for o in self._oms.orders(symbol, open_only) if o.strategy == self.name]

    def order(self, order_id: str) -> Order | None:
        order = self._oms.order(order_id)
        return order if order is not None and self.owns(order) else None

    def twaps(self, open_only: bool = False) -> list[Twap]:
        return [t for t in self._oms.twaps(open_only) if t.strategy == self.name]

    def stops(self, symbol: str | None = None, open_only: bool = True) -> list[StopOrder]:
        return [s for s in self._oms.stops(symbol, open_only) if s.strategy == self.name]

    def events(self, high_water: int | None = None) -> EventStream:
        """A subscription to this strategy's events and the account's (``owns_event``)."""
        return self._oms.events(high_water, accept=self.owns_event)

    def positions(self) -> dict[str, Position]:
        return self._oms.positions()

    def position(self, symbol: str) -> Position | None:
        return self._oms.position(symbol)

    def balance(self) -> Balance | None:
        return self._oms.balance()

    def instruments(self) -> dict[str, Instrument]:
        return self._oms.instruments()

    def instrument(self, symbol: str) -> Instrument | None:
        return self._oms.instrument(symbol)

    async def leverage(self) -> dict[str, m.LeverageLevel]:
        return await self._oms.leverage()

    async def leverage_levels(self) -> list[m.LeverageLevel]:
        return await self._oms.leverage_levels()

    # ------------------------------------------------------------------ orders

    def _refuse_if_halted(self) -> None:
        if self._halted:
            raise Halted(f"strategy {self.name!r} was halted by its cancel_all(); call resume() first")

    async def place_order(self, symbol: str, side: str, quantity: args.Number,
                          price: args.Number | None = None, *, tags: Iterable[str] | None = None,
                          **options: Any) -> Any:
        """``oms.place_order`` as this strategy (its namespace, its tags); returns an ``Order`` or,
        for TAKE_PROFIT/STOP_LOSS, a ``StopOrder``."""
        if "strategy" in options:
            raise InvalidArgument("a strategy's view places as that strategy; strategy= is not taken")
        self._refuse_if_halted()
        return await self._oms.place_order(symbol, side, quantity, price, strategy=self.name, tags=tags,
                                           **options)

    async def place_twap(self, symbol: str, side: str, *, tags: Iterable[str] | None = None,
                         **options: Any) -> Twap:
        if "strategy" in options:
            raise InvalidArgument("a strategy's view places as that strategy; strategy= is not taken")
        self._refuse_if_halted()
        return await self._oms.place_twap(symbol, side, strategy=self.name, tags=tags, **options)

    async def modify_order(self, order: Order, *, price: args.Number | None = None,
                           quantity: args.Number | None = None) -> Order:
        self._check_own(order)
        self._refuse_if_halted()
        return await self._oms.modify_order(order, price=price, quantity=quantity)

    async def modify_stop(self, stop: StopOrder, *, price: args.Number | None = None,
                          quantity: args.Number | None = None) -> StopOrder:
        self._check_own(stop)
        return await self._oms.modify_stop(stop, price=price, quantity=quantity)

    async def close_position(self, symbol: str, client_order_id: str | None = None) -> Order | None:
        """The account's position (positions are not per strategy); the closing order is this
        strategy's (its client id in this strategy's namespace)."""
        cid = None if client_order_id is None else wire_client_id(self.name, client_order_id)
        if cid is None:
            cid = wire_client_id(self.name, args.client_id_arg("client_order_id", None))
        return await self._oms.close_position(symbol, cid)

    async def wait_ended(self, *subjects: Order | Twap) -> bool:
        return await self._oms.wait_ended(*subjects)

    # ------------------------------------------------------------------ cancels

    async def cancel(self, target: Subject | None = None, *, order_id: str | None = None,
                     client_order_id: str | None = None, twap_id: str | None = None,
                     client_twap_id: str | None = None, symbol: str | None = None,
                     stop_order_id: str | None = None) -> CancelResult:
        """``oms.cancel`` of this strategy's own orders only. Client ids are the strategy's own
        (``bid-1``, sent as ``mm:bid-1``: only its orders can share that); an order, TWAP or stop
        given by id must be one the manager knows as this strategy's (an id it does not know
        cannot be proven to be): anything else is refused before a frame is sent."""
        given = [x for x in (target, order_id, client_order_id, twap_id, client_twap_id, stop_order_id)
                 if x is not None]
        if len(given) != 1:
            raise InvalidArgument("cancel takes exactly one selector")
        if target is not None:
            self._check_own(target)
            return await self._oms.cancel(target, symbol=symbol)
        if client_order_id is not None:
            return await self._oms.cancel(client_order_id=self._wire(client_order_id), symbol=symbol)
        if client_twap_id is not None:
            return await self._oms.cancel(client_twap_id=self._wire(client_twap_id), symbol=symbol)
        subject: Subject | None
        if order_id is not None:
            subject = self._oms.order(order_id)
        elif twap_id is not None:
            subject = next((t for t in self._oms.twaps() if t.twap_id == twap_id), None)
        else:
            subject = next((s for s in self._oms.stops(open_only=False)
                            if s.stop_order_id == stop_order_id), None)
        if subject is None:
            raise InvalidArgument(f"strategy {self.name!r} knows no order, TWAP or stop by that id; "
                                  "nothing was sent")
        self._check_own(subject)
        return await self._oms.cancel(subject, symbol=symbol)

    def _wire(self, client_id: str) -> str:
        if not isinstance(client_id, str) or not client_id:
            raise InvalidArgument(f"client ids must be non-empty strings, got {client_id!r}")
        return wire_client_id(self.name, client_id)

    async def cancel_where(self, symbol: str | None = None, side: str | None = None,
                           tags: Iterable[str] | None = None) -> KillReport:
        """``oms.cancel_where`` within this strategy."""
        return await self._oms.cancel_where(symbol=symbol, side=side, strategy=self.name, tags=tags)

    async def cancel_all(self) -> KillReport:
        """This strategy's kill switch: halt its new orders (``resume()`` lifts it), cancel its
        orders, TWAPs and stops, and check with a snapshot. Other strategies' orders and orders of
        no strategy are left alone; ``cancel_all_orders`` is never sent."""
        self._halted = True
        return await self._oms.cancel_where(strategy=self.name)

    def resume(self) -> None:
        self._halted = False
