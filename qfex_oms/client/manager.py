"""OrderManager: the public API on top of one QFEX connection, the pure core and a resync loop.

Structure (design.md "Connection, reconnect, journal"): ``open_order_manager`` owns a nursery; in it
a ``Connection`` (``connection.py``) keeps one session alive and reports to the manager through the
four methods of ``ConnectionOwner``; per connection the manager runs a follow-up sender and a
``Settler``. Callers wait through ``Waiters`` and ``ReplySlots`` (``waits.py``). The reader
decodes a frame, applies it to the core synchronously and hands events to per-subscriber buffers:
it never awaits application work. Strategy calls run in the strategies' own tasks: they
queue frames through the core, send them (paced), and wait on the order's state with a deadline. A
lost answer never becomes REJECTED: the order goes UNKNOWN and the settler reconciles it from a
``get_user_orders`` + ``get_user_trades`` snapshot.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, NoReturn, overload

import trio
import trio_websocket
from attrs import define, field
from wsproto.utilities import LocalProtocolError

from qfex_oms.client import killswitch
from qfex_oms.client.connection import (
    Connection,
    ConnectionSettings,
    ReconnectPolicy,
    sole_exception,
)
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
from qfex_oms.client.marketdata import MarketData, open_market_data
from qfex_oms.client.metrics import OmsMetrics, OmsStatistics
from qfex_oms.client.outcomes import SendOutcome
from qfex_oms.client.reconcile import PAGE, Reconciler
from qfex_oms.client.reference import ReferenceData, rest_url_for
from qfex_oms.client.rest import RestClient
from qfex_oms.client.results import CancelResult, KillReport
from qfex_oms.client.risk import PreTradeRisk, market_data_prices
from qfex_oms.client.session import Credentials, Session
from qfex_oms.client.settler import Settler
from qfex_oms.client.stops import STOP_REQUEST_TYPES, Shell, StopOrders, is_stop_type
from qfex_oms.client.waits import ReplySlots, Slot, Waiters
from qfex_oms.core import args
from qfex_oms.core.account import Account, Balance, Position, PositionCheck
from qfex_oms.core.cancel import CancelIntent, CancelScope
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.events import (
    CancelFinished,
    FillReceived,
    ModifyFinished,
    OrderUpdated,
    RequestErrored,
    StopRequestFinished,
    StopUpdated,
    TwapUpdated,
    Unmatched,
)
from qfex_oms.core.model import CancelRequest, Order, Twap, valid_strategy, wire_client_id
from qfex_oms.core.pacer import PacerSettings
from qfex_oms.core.refdata import Instrument
from qfex_oms.core.replay import attribution_note, replay
from qfex_oms.core.risk import RiskLimits
from qfex_oms.core.snapshot import SnapshotDiff
from qfex_oms.core.states import OrderEvent, OrderState, TwapEvent, TwapState
from qfex_oms.core.stops import StopOrder, StopRequest, StopState
from qfex_oms.errors import (
    Halted,
    InvalidArgument,
    JournalUnavailable,
    ModifyRejected,
    NotConnected,
    NotSent,
    OrderRejected,
    OrderStatusUnknown,
    RequestTimeout,
    TwapRejected,
)
from qfex_oms.errors import RequestFailed as RequestFailedError
from qfex_oms.journal import Journal, JournalFailurePolicy
from qfex_oms.logs import cap_frame, get_logger
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderType, Side
from qfex_oms.protocol.errors import ProtocolError

if TYPE_CHECKING:
    from qfex_oms.client.strategy_view import StrategyView

log = get_logger("qfex_oms.client.manager")

_REPLY_OF = {"get_user_orders": "all_orders_response", "get_user_trades": "user_trades_response",
             "cancel_all_orders": "ack:cancel_all_orders",
             "get_user_leverage": "user_leverage_response",
             "get_available_leverage_levels": "available_leverage_levels_response",
             "set_user_leverage": "ack:set_user_leverage"}
# Replies that answer a query (matched to their caller in order) rather than report on an order.
_QUERY_REPLIES = (m.AllOrdersResponse, m.UserTradesResponse, m.UserLeverageResponse,
                  m.AvailableLeverageLevelsResponse)
_GATED = (m.AddOrder, m.AddTwap, m.ModifyOrder)


def _close_answer(event: object, symbol: str, client_order_id: str
                  ) -> Order | m.OrderResponse | RequestErrored | None:
    """The order ``close_position`` made (adopted from its answer), or QFEX's refusal of it: an
    ``order_response`` (a flat position, a bad symbol) or an ``err`` echoing it (RateLimited)."""
    if isinstance(event, OrderUpdated):
        order = event.order
        if order.symbol == symbol and order.client_order_id == client_order_id:
            return order
    if isinstance(event, Unmatched) and isinstance(event.reply, m.OrderResponse):
        reply = event.reply
        if reply.symbol == symbol and reply.client_order_id == client_order_id:
            log.info("close_position refused", symbol=symbol, status=str(reply.status))
            return reply
    if isinstance(event, RequestErrored) and event.request_type == m.ClosePosition.TYPE:
        params = (event.incoming or {}).get("params")
        if isinstance(params, dict) and params.get("symbol") == symbol \
                and params.get("client_order_id") in (client_order_id, None):
            return event
    return None


def _done(request: CancelRequest | StopRequest) -> Callable[[], bool]:
    return lambda: request.done


def _ended(subject: Order | Twap) -> bool:
    return subject.state.is_terminal


def _strategy_arg(value: object) -> str | None:
    if value is None:
        return None
    if not valid_strategy(value):
        raise InvalidArgument(f"strategy must be 1-16 letters, digits, _ or - (not 'twap'), got {value!r}")
    return value  # type: ignore[return-value]


def _tags_arg(value: Iterable[str] | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = (value,)
    try:
        tags = frozenset(value)
    except TypeError:
        raise InvalidArgument(f"tags must be strings, got {value!r}") from None
    if not all(isinstance(t, str) and t for t in tags):
        raise InvalidArgument(f"tags must be non-empty strings, got {sorted(map(repr, tags))}")
    return tags


def _positive(instance: object, attribute: Any, value: float) -> None:
    if not value > 0:
        raise InvalidArgument(f"{attribute.name} must be a positive number of seconds, got {value!r}")


@define
class ManagerSettings:
    request_timeout: float = field(default=10.0, validator=_positive)
    handshake_timeout: float = field(default=20.0, validator=_positive)  # inside QFEX's 60 s auth deadline
    cancel_on_disconnect: bool = False
    pacer: PacerSettings | None = field(factory=PacerSettings)
    reconnect: ReconnectPolicy | None = field(factory=ReconnectPolicy)
    kill_timeout: float = field(default=10.0, validator=_positive)
    cancel_retries: int = 3
    event_high_water: int = 10_000
    client_id_prefix: str = ""
    trades_lookback: float = 60.0
    journal: str | None = None  # path of the SQLite journal; None keeps no journal
    journal_retention: float | None = None  # seconds: on start, compact orders closed longer ago
    position_grace: float = field(default=2.0, validator=_positive)  # before a PositionMismatch
    # QFEX's REST API: "auto" derives it from a QFEX trade URL (trade.qfex.com -> api.qfex.com),
    # None goes without (reference data then defers to the exchange); or give the base URL.
    rest_url: str | None = "auto"
    validate_orders: bool = True  # refuse what the reference data says QFEX would refuse
    refdata_refresh: float = field(default=300.0, validator=_positive)
    journal_failure: JournalFailurePolicy = field(default=JournalFailurePolicy.DEFAULT,
                                                  converter=JournalFailurePolicy)
    risk: RiskLimits | None = None  # pre-trade limits (core/risk.py); None checks nothing
    # QFEX's market data (MDS) opened beside the trade connection as ``oms.market_data``: its URL
    # (wss://mds.qfex.com, a simulator's venue.mds_url) and the symbols to follow. With ``risk``, its
    # prices feed the price band, refused when older than ``market_data_max_age`` seconds.
    market_data: str | None = None
    market_data_symbols: tuple[str, ...] = field(default=(), converter=tuple)
    market_data_max_age: float = field(default=5.0, validator=_positive)
    statistics: bool = False  # count events for oms.statistics() (one more event subscriber)


class OrderManager:
    """The public API (design.md "Public API"); ``open_order_manager`` makes and runs one."""

    def __init__(self, url: str, credentials: Credentials, settings: ManagerSettings) -> None:
        self.url = url
        self.settings = settings
        self.connection = Connection(url, credentials, ConnectionSettings(
            settings.handshake_timeout, settings.cancel_on_disconnect, settings.pacer, settings.reconnect),
            owner=self)
        self.core = OmsCore()
        self.halted = False  # the kill switch's halt, lifted by resume()
        self.journal_halted = False  # the journal cannot write (policy halt_new_orders); lifts itself
        self._journal_error: str | None = None
        self.journal: Journal | None = None  # the crash-safe journal, when ``journal=`` was given
        self.reference = ReferenceData(
            rest_url_for(url) if settings.rest_url == "auto" else settings.rest_url,
            refresh=settings.refdata_refresh, timeout=settings.request_timeout,
            validate=settings.validate_orders)
        self.account = Account()
        # Pre-trade risk: refuses before the frame exists; ``oms.risk.use_prices(...)`` feeds it marks.
        self.risk = None if settings.risk is None else PreTradeRisk(self, settings.risk)
        self.market_data: MarketData | None = None  # open when ``market_data=`` was given
        self.metrics: OmsMetrics | None = None  # counting when ``statistics=True``
        self.position_check = PositionCheck(grace=settings.position_grace)
        self.waiters = Waiters()
        self.replies = ReplySlots()
        self.settler = Settler()
        self._streams: list[EventStream] = []
        self._followups: trio.MemorySendChannel[list[m.Request]] | None = None
        self.reconciler = Reconciler(self.core, self._query, self.flush, self._journal_note,
                                     trades_since=int(time.time() - settings.trades_lookback))
        self.stop_orders = StopOrders(Shell(
            self.core, self.reference, settings.client_id_prefix, self._usable_session,
            self._refuse_if_halted, self._transmit, self._wait_for, self._lapsed, self._never_sent,
            self.flush, self.settler.want))
        self.on_frame_received: Callable[[bytes | str], None] | None = None
        self.on_frame_sent: Callable[[bytes], None] | None = None
        self.on_settled: Callable[[bytes], None] | None = None  # a snapshot's conclusions (journal)
        self.resync_on_connect = False

    # ================================================================== public API

    @property
    def credentials(self) -> Credentials:
        return self.connection.credentials

    @credentials.setter
    def credentials(self, value: Credentials) -> None:
        self.connection.credentials = value  # used from the next connection attempt on

    @property
    def connected(self) -> bool:
        return self.connection.session is not None

    @property
    def closing(self) -> bool:
        """True once the manager's block is exiting: no answer will come any more."""
        return self.connection.closing

    @property
    def _session(self) -> Session | None:
        return self.connection.session

    async def wait_connected(self) -> None:
        """Return once a connection is authenticated and subscribed (wrap it in a trio timeout)."""
        await self.connection.wait_connected()

    @overload
    async def place_order(  # type: ignore[overload-overlap]
        self, symbol: str, side: str, quantity: args.Number, price: args.Number | None = None, *,
        order_type: Literal["TAKE_PROFIT", "STOP_LOSS"], time_in_force: str | None = None,
        client_order_id: str | None = None, strategy: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> StopOrder: ...

    @overload
    async def place_order(
        self, symbol: str, side: str, quantity: args.Number, price: args.Number | None = None, *,
        order_type: str = "LIMIT", time_in_force: str | None = None, client_order_id: str | None = None,
        reduce_only: bool | None = None, take_profit: args.Number | None = None,
        stop_loss: args.Number | None = None, strategy: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> Order: ...

    async def place_order(
        self,
        symbol: str,
        side: str,
        quantity: args.Number,
        price: args.Number | None = None,
        *,
        order_type: str = "LIMIT",
        time_in_force: str | None = None,
        client_order_id: str | None = None,
        reduce_only: bool | None = None,
        take_profit: args.Number | None = None,
        stop_loss: args.Number | None = None,
        strategy: str | None = None,
        tags: Iterable[str] | None = None,
    ) -> Order | StopOrder:
        """Place an order; return it once QFEX has ACKed it (or already filled/ended it).

        Raises ``OrderRejected`` with QFEX's status, ``OrderStatusUnknown`` when the answer was lost
        (the order stays tracked as UNKNOWN), ``InvalidArgument``/``Halted``/``NotConnected`` before
        anything is sent. ``order_type="TAKE_PROFIT"``/``"STOP_LOSS"`` stages a standalone stop
        (``price`` is its trigger) and returns a ``StopOrder`` (``client.stops``); ``take_profit``/
        ``stop_loss`` on an ordinary order stage stops QFEX links to it (``oms.stops()``, each
        with ``parent_order_id``).

        ``strategy`` names the strategy that owns it (``for_strategy``): its client id goes on the
        wire as ``<strategy>:<client_order_id>`` (``order.client_order_id``; the id as given is
        ``order.own_client_order_id``), so two strategies' ``bid-1`` never meet. ``tags``: free-form
        labels (``cancel_where(tags=...)``).
        """
        owner, labels = _strategy_arg(strategy), _tags_arg(tags)
        if is_stop_type(order_type):
            if take_profit is not None or stop_loss is not None or reduce_only is not None:
                raise InvalidArgument(f"a {order_type} order takes no take_profit, stop_loss or reduce_only")
            checked = self.stop_orders.check(symbol, side, order_type, quantity, price, time_in_force,
                                             self._wire_id("client_order_id", client_order_id, owner))
            if labels:
                self.core.stops.label(checked[0], checked[5], labels)
                self._journal_note(attribution_note("order", checked[0], checked[5], labels))
            return await self.stop_orders.place(*checked)
        kind, tif = args.order_type_and_tif(order_type, time_in_force)
        fields = {
            "symbol": args.symbol_arg(symbol),
            "side": args.enum_arg("side", side, Side),
            "order_type": kind,
            "time_in_force": tif,
            "quantity": args.decimal_arg("quantity", quantity),
            "price": self._price_arg(kind, price),
            "client_order_id": self._wire_id("client_order_id", client_order_id, owner),
            "reduce_only": None if reduce_only is None else bool(reduce_only),
            "take_profit": None if take_profit is None else args.decimal_arg("take_profit", take_profit),
            "stop_loss": None if stop_loss is None else args.decimal_arg("stop_loss", stop_loss),
        }
        self.reference.check(fields["symbol"], kind, tif, fields["quantity"], fields["price"])
        self._refuse_if_halted("new orders")
        session = self._usable_session()
        if self.risk is not None:
            self.risk.check_order(fields["symbol"], fields["side"], fields["quantity"], fields["price"],
                                  kind, fields["reduce_only"])
        if labels:
            self._journal_note(attribution_note("order", fields["symbol"], fields["client_order_id"], labels))
        order = self.core.place_order(**fields, strategy=owner, tags=labels)
        outcome = await self._transmit(session, self.core.take_frames())
        if outcome is not None and outcome.never_sent:
            self.core.apply_order_event(order, OrderEvent.REJECT, outcome)
            self._never_sent(outcome, f"order {order.client_order_id} on {order.symbol}", order)
        if outcome is not None:
            self._lost(order, outcome)
        if not await self._wait_for(order, lambda: order.state is not OrderState.PENDING_NEW):
            self._lost(order, self._lapsed())
        if order.state is OrderState.REJECTED:
            log.info("order rejected", **order.describe(), status=order.last_status)
            raise OrderRejected(order, order.last_status)
        if order.state is OrderState.UNKNOWN:
            raise OrderStatusUnknown(order, order.last_status or "UNKNOWN")
        return order

    async def modify_order(self, order: Order, *, price: args.Number | None = None,
                           quantity: args.Number | None = None) -> Order:
        """Change price and/or quantity; raises ``ModifyRejected`` with CANNOT_MODIFY_* otherwise."""
        if price is None and quantity is None:
            raise InvalidArgument("modify_order needs a new price, a new quantity, or both")
        if self.core.tracker.by_local_id(order.local_id) is not order:
            raise InvalidArgument("this order is not tracked by this manager")
        new_price = None if price is None else args.decimal_arg("price", price)
        new_qty = None if quantity is None else args.decimal_arg("quantity", quantity)
        self._refuse_if_halted("order changes")
        session = self._usable_session()
        if self.risk is not None:
            self.risk.check_modify(order, new_price, new_qty)
        request = self.core.modify_order(order, new_price, new_qty)
        outcome = await self._transmit(session, self.core.take_frames())
        if outcome is not None and outcome.never_sent:
            self.core.withdraw_modify(request, outcome)
            self._never_sent(outcome, f"modify of {order.order_id}", request)
        if outcome is None and await self._wait_for(request, lambda: request.done):
            if request.status != "MODIFIED":
                raise ModifyRejected(order, request.status)
            return order
        self.settler.want()
        raise OrderStatusUnknown(order, outcome or self._lapsed())

    async def cancel(
        self,
        target: Order | Twap | StopOrder | None = None,
        *,
        order_id: str | None = None,
        client_order_id: str | None = None,
        twap_id: str | None = None,
        client_twap_id: str | None = None,
        symbol: str | None = None,
        stop_order_id: str | None = None,
    ) -> CancelResult:
        """Cancel by exactly one selector; return once QFEX answered for every order it covers.

        A cancel of an order not yet ACKed is held and sent on the ACK when another live order
        shares its client id. Concurrent cancels of one order send one frame. ``RateLimited``
        answers are retried with backoff (a cancel is idempotent). A ``StopOrder`` or
        ``stop_order_id=`` sends ``cancel_stop_order`` (``client.stops``).
        """
        if isinstance(target, StopOrder) or stop_order_id is not None:
            if (target is not None and stop_order_id is not None) or any(
                    x is not None for x in (order_id, client_order_id, twap_id, client_twap_id)):
                raise InvalidArgument("cancel takes exactly one selector")
            stop = self.stop_orders.resolve(target if isinstance(target, StopOrder) else None,
                                            stop_order_id, symbol)
            return await self.stop_orders.cancel(stop)
        intent = CancelIntent(target, order_id, client_order_id, twap_id, client_twap_id, symbol)
        intent.selector()
        session = self._usable_session()
        request = self.core.cancel(intent)
        for attempt in range(self.settings.cancel_retries + 1):
            outcome = await self._transmit(session, self.core.take_frames())
            if outcome is SendOutcome.NOT_SENT:
                self.core.withdraw_cancel(request, outcome)  # back to OPEN if nothing was asked
                self.flush()
                if request.done:
                    break
                outcome = None  # an earlier frame of this request is out: wait for its answer
            if outcome is None and not await self._wait_for(request, _done(request)):
                outcome = self._lapsed()
            if outcome is not None:
                # The intent is owed (design.md): the core sends it again after the resync if the
                # order is still open. ``CancelResult.owed`` tells the caller; ``wait_ended`` waits.
                self.core.cancel_lost(request, outcome)
                self.flush()
                self.settler.want()
                break
            if request.status != "RateLimited" or attempt == self.settings.cancel_retries:
                break
            await trio.sleep(0.2 * 2 ** attempt)
            session = self._usable_session()
            request = self.core.cancel(intent, retry=True)
        return CancelResult.of(request)

    async def wait_ended(self, *subjects: Order | Twap) -> bool:
        """Wait until every order and TWAP given has ended (filled, cancelled, rejected); wrap it in a
        trio timeout. Returns early, False, if the manager closes first. After a cancel whose answer
        was lost (``CancelResult.owed``), this is how to learn how the owed cancel ended."""
        for subject in subjects:
            while not _ended(subject) and not self.closing:
                await self.waiters.next_change(subject)
        return all(_ended(s) for s in subjects)

    async def place_twap(self, symbol: str, side: str, *, total_quantity: args.Number, num_orders: int,
                         order_interval_secs: int, reduce_only: bool = False,
                         client_twap_id: str | None = None, strategy: str | None = None,
                         tags: Iterable[str] | None = None) -> Twap:
        """Start a TWAP; return it once QFEX answered with its ``twap_response``. ``strategy`` and
        ``tags`` as for ``place_order`` (its children are its strategy's)."""
        owner, labels = _strategy_arg(strategy), _tags_arg(tags)
        checked = (args.symbol_arg(symbol), args.enum_arg("side", side, Side),
                   args.decimal_arg("total_quantity", total_quantity),
                   args.int_arg("num_orders", num_orders, 2),
                   args.int_arg("order_interval_secs", order_interval_secs, 30), bool(reduce_only),
                   self._wire_id("client_twap_id", client_twap_id, owner))
        self._refuse_if_halted("new orders")
        session = self._usable_session()
        if self.risk is not None:
            self.risk.check_twap(checked[0], checked[1], checked[2], checked[3], checked[5])
        if labels:
            self._journal_note(attribution_note("twap", checked[0], checked[6], labels))
        twap = self.core.place_twap(*checked, strategy=owner, tags=labels)
        outcome = await self._transmit(session, self.core.take_frames())
        if outcome is not None and outcome.never_sent:
            self.core.apply_twap_event(twap, TwapEvent.REJECT, outcome)
            self._never_sent(outcome, f"TWAP {twap.client_twap_id} on {twap.symbol}", twap)
        if outcome is None and await self._wait_for(twap, lambda: twap.state is not TwapState.PENDING_NEW):
            if twap.state is TwapState.REJECTED:
                raise TwapRejected(twap, twap.last_status)
            return twap
        reason = outcome or self._lapsed()
        self.core.apply_twap_event(twap, TwapEvent.LOST, reason)  # never REJECTED: it may be running
        self.flush()
        self.settler.want()
        raise OrderStatusUnknown(twap, reason)

    async def cancel_all(self) -> KillReport:
        """The kill switch: halt, cancel everything, verify with a snapshot. Shielded and bounded."""
        self._set_halted(True, "cancel_all")
        with trio.CancelScope(shield=True):
            report = await killswitch.run(self)
        return report

    def resume(self) -> None:
        """Lift the halt set by ``cancel_all()``."""
        self._set_halted(False, "resume")

    def for_strategy(self, name: str) -> StrategyView:
        """The manager as one strategy sees it: its own orders, TWAPs, stops and events, places
        filled in with its name, and a ``cancel_all`` of its own (``client.strategy_view``). The
        account-wide kill switch stays ``oms.cancel_all()``."""
        from qfex_oms.client.strategy_view import StrategyView  # the view imports this module

        owner = _strategy_arg(name)
        if owner is None:
            raise InvalidArgument("for_strategy needs the strategy's name")
        return StrategyView(self, owner)

    async def cancel_where(self, symbol: str | None = None, side: str | None = None,
                           strategy: str | None = None, tags: Iterable[str] | None = None) -> KillReport:
        """Cancel every live order, TWAP and stop matching all the filters given (``tags``: those
        carrying every one), with the fewest frames that touch nothing else: a client-id frame only
        when its members on the exchange are exactly the intent's, order ids otherwise
        (``core.cancelling.cancel_where``), ``cancel_all_orders`` only for the whole account (no
        filter: the kill switch's cancel, without its halt). Then a snapshot shows what is left,
        and a second round cancels what it revealed (an order of the strategy the book did not
        know, adopted from it). Shielded and bounded by ``kill_timeout``, like the kill switch."""
        scope = CancelScope(None if symbol is None else args.symbol_arg(symbol),
                            None if side is None else args.enum_arg("side", side, Side),
                            _strategy_arg(strategy), _tags_arg(tags) or None)
        with trio.CancelScope(shield=True):
            if scope.whole_account:
                report = await killswitch.run(self)
            else:
                report = await self._cancel_scope(scope)
        return report

    async def _cancel_scope(self, scope: CancelScope) -> KillReport:
        started = trio.current_time()
        orders = [o for o in self.core.tracker.open_orders(scope.symbol) if scope.matches(o)]
        seen = {o.local_id for o in orders}
        twaps = [t for t in self.core.tracker.twaps(open_only=True) if scope.matches(t)]
        stops = [s for s in self.core.stops.stops(scope.symbol) if scope.matches(s)]
        answered = checked = False
        with trio.move_on_after(self.settings.kill_timeout):
            for _ in range(2):
                answered = await self._cancel_round(scope)
                try:
                    await self.reconcile()
                    checked = True
                except (RequestTimeout, RequestFailedError, NotConnected) as exc:
                    log.warning("cancel_where could not check a snapshot", error=str(exc))
                    checked = False
                    break
                # Orders the snapshot revealed (adopted): a set of local ids, not a scan of a list
                # per order (quadratic over a strategy's thousands, as the kill switch's was).
                revealed = [o for o in self.core.tracker.open_orders(scope.symbol)
                            if scope.matches(o) and o.local_id not in seen]
                orders += revealed
                seen.update(o.local_id for o in revealed)
                if not self._left_in(scope):
                    break
        left = self._left_in(scope)
        return KillReport(
            cancelled_orders=tuple(o for o in orders if o.state is OrderState.CANCELLED),
            cancelled_twaps=tuple(t for t in twaps if t.state is TwapState.CANCELLED),
            still_open=tuple(o for o in left if isinstance(o, Order)),
            still_open_twaps=tuple(t for t in left if isinstance(t, Twap)),
            ack_received=answered, snapshot_checked=checked,
            elapsed=trio.current_time() - started,
            cancelled_stops=tuple(s for s in stops if s.state is StopState.CANCELLED),
            still_open_stops=tuple(s for s in left if isinstance(s, StopOrder)))

    def _left_in(self, scope: CancelScope) -> list[Order | Twap | StopOrder]:
        tracker = self.core.tracker
        return [*(o for o in tracker.open_orders(scope.symbol) if scope.matches(o)),
                *(t for t in tracker.twaps(open_only=True) if scope.matches(t)),
                *(s for s in self.core.stops.stops(scope.symbol) if scope.matches(s))]

    async def _cancel_round(self, scope: CancelScope) -> bool:
        """One round of ``cancel_where``: queue, send (paced, in the cancel bucket), wait for the
        answers. Returns whether every cancel was answered; a lost one is owed (resent after the
        resync), as for ``cancel``."""
        requests = self.core.cancel_where(scope)
        stop_requests = []
        for stop in self.core.stops.stops(scope.symbol):
            if scope.matches(stop) and stop.stop_order_id is not None and stop.cancel_request is None:
                try:
                    stop_requests.append(self.core.cancel_stop(stop))
                except InvalidArgument as exc:  # ended meanwhile
                    log.info("stop not cancelled", error=str(exc), **stop.describe())
        frames = self.core.take_frames()
        if not frames:
            self.flush()
            return all(r.done for r in requests)
        outcome = await self._transmit(self._usable_session(), frames)
        if outcome is not None:
            for request in requests:
                if outcome is SendOutcome.NOT_SENT:
                    self.core.withdraw_cancel(request, outcome)
                elif not request.done:
                    self.core.cancel_lost(request, outcome)
            for stop_request in stop_requests:
                if outcome is SendOutcome.NOT_SENT:
                    self.core.withdraw_stop_request(stop_request, outcome)
                else:
                    self.core.stop_request_lost(stop_request, outcome)
            self.flush()
            self.settler.want()
            return False
        for request in requests:
            await self._wait_for(request, _done(request))
        for stop_request in stop_requests:
            await self._wait_for(stop_request, _done(stop_request))
        return all(r.done for r in requests) and all(r.done for r in stop_requests)

    def orders(self, symbol: str | None = None, open_only: bool = True) -> list[Order]:
        if open_only:
            return self.core.tracker.open_orders(symbol)
        return [o for o in self.core.tracker.orders() if symbol is None or o.symbol == symbol]

    def order(self, order_id: str) -> Order | None:
        return self.core.tracker.by_order_id(order_id)

    def open_quantity(self, symbol: str) -> tuple[Decimal, Decimal]:
        """The remaining quantity of the open orders on ``symbol``, as (buys, sells); orders a TWAP
        placed are left out (``twaps()`` has their TWAP's remainder). Constant time: the book keeps
        the sums as orders change (what pre-trade risk reads on every order)."""
        return self.core.tracker.open_quantity(symbol)

    def open_quantities(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``open_quantity`` of every symbol with an open order."""
        return self.core.tracker.open_quantities()

    def instruments(self) -> dict[str, Instrument]:
        """Every symbol's reference data as last loaded from QFEX's REST API (empty without it)."""
        return dict(self.reference.instruments.by_symbol)

    def instrument(self, symbol: str) -> Instrument | None:
        """One symbol's reference data: tick and lot sizes, limits, ``round_price``/``round_quantity``."""
        return self.reference.instrument(symbol)

    def positions(self) -> dict[str, Position]:
        """Every position as the exchange last reported it, by symbol (signed: negative = short)."""
        return dict(self.account.positions)

    def position(self, symbol: str) -> Position | None:
        """One symbol's position as last reported; None before any report for it."""
        return self.account.positions.get(symbol)

    def balance(self) -> Balance | None:
        """The account's balance as last reported; None before the first report."""
        return self.account.balance

    async def close_position(self, symbol: str, client_order_id: str | None = None) -> Order | None:
        """Flatten ``symbol`` with QFEX's ``close_position`` (a reduce-only LIMIT IOC on the other
        side, priced near mark, sized to the position); return the order QFEX made once it answered
        (its fills follow as events). Returns None, sending nothing, when the last report says the
        position is flat, and None when QFEX refuses because it is (its REJECTED answer); any other
        refusal (BAD_SYMBOL, say, or an ``err`` such as RateLimited) raises ``RequestFailed`` with
        QFEX's status or code. Not halted by the kill switch: closing reduces risk."""
        symbol = args.symbol_arg(symbol)
        cid = args.client_id_arg("client_order_id", client_order_id, self.settings.client_id_prefix)
        known = self.account.positions.get(symbol)
        if known is not None and known.flat:
            return None
        session = self._usable_session()
        with self.events() as stream:
            outcome = await self._transmit(session, [m.ClosePosition(symbol, cid)])
            if outcome is not None and outcome.never_sent:
                raise NotSent(f"close_position on {symbol}")
            if outcome is SendOutcome.SEND_FAILED:
                raise NotConnected(f"close_position on {symbol} could not be sent; nothing was closed")
            with trio.move_on_after(self.settings.request_timeout):
                async for event in stream:
                    answer = _close_answer(event, symbol, cid)
                    if isinstance(answer, Order):
                        return answer
                    if isinstance(answer, RequestErrored):
                        raise RequestFailedError("close_position", answer.error_code, answer.message)
                    if answer is not None:
                        if answer.status == "REJECTED":  # the refusal of a flat position (C29)
                            return None
                        raise RequestFailedError("close_position", str(answer.status),
                                                 f"QFEX refused to close {symbol}")
        raise RequestTimeout(f"no answer to close_position on {symbol} within "
                             f"{self.settings.request_timeout} s; the position may be closing")

    async def leverage(self) -> dict[str, m.LeverageLevel]:
        """The account's leverage per symbol (``get_user_leverage``, every page)."""
        rows = await self._leverage_pages(m.GetUserLeverage)
        return {row.symbol: row for row in rows}

    async def leverage_levels(self) -> list[m.LeverageLevel]:
        """The leverage levels QFEX allows, per symbol (``get_available_leverage_levels``)."""
        return await self._leverage_pages(m.GetAvailableLeverageLevels)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """Set ``symbol``'s leverage; raises ``RequestFailed`` with QFEX's code when it refuses
        (a level it does not allow), ``InvalidArgument`` before sending for a non-positive one."""
        level = args.int_arg("leverage", leverage, 1)
        await self._query(m.SetUserLeverage(args.symbol_arg(symbol), Decimal(level)))

    async def _leverage_pages(self, kind: type[m.GetUserLeverage] | type[m.GetAvailableLeverageLevels]
                              ) -> list[m.LeverageLevel]:
        rows: list[m.LeverageLevel] = []
        while True:
            page = await self._query(kind(limit=PAGE, offset=len(rows)))
            rows.extend(page.levels)
            if len(page.levels) < PAGE:
                return rows

    async def modify_stop(self, stop: StopOrder, *, price: args.Number | None = None,
                          quantity: args.Number | None = None) -> StopOrder:
        """Change a stop's trigger and/or size (``modify_stop_order``); ``ModifyRejected`` with
        QFEX's status when it refuses, ``OrderStatusUnknown`` when the answer was lost."""
        return await self.stop_orders.modify(stop, price, quantity)

    def stops(self, symbol: str | None = None, open_only: bool = True) -> list[StopOrder]:
        """Take-profit and stop-loss orders: staged or in doubt (``open_only``), or every one known."""
        return self.stop_orders.stops(symbol, open_only)

    def twaps(self, open_only: bool = False) -> list[Twap]:
        return self.core.tracker.twaps(open_only=open_only)

    def statistics(self) -> OmsStatistics:
        """Counts and latencies of this manager's orders, cancels, rejects, fills and reconnects (a
        frozen ``OmsStatistics``); needs ``statistics=True`` (one more event subscriber)."""
        if self.metrics is None:
            raise InvalidArgument("statistics() needs open_order_manager(..., statistics=True)")
        return self.metrics.statistics()

    def events(self, high_water: int | None = None, *,
               accept: Callable[[Event], bool] | None = None) -> EventStream:
        """A new subscription: every event from now on, in order, none dropped (of those
        ``accept`` keeps, when given: a strategy's view keeps its own)."""
        stream = EventStream(high_water or self.settings.event_high_water, owner=self._streams,
                             accept=accept)
        self._streams.append(stream)
        return stream

    async def reconcile(self) -> SnapshotDiff:
        """Fetch open orders and recent trades and settle the book against them now (see
        ``client.reconcile``: a paged snapshot proves only what it shows)."""
        return await self.reconciler.reconcile()

    async def fetch_open_orders(self, symbol: str | None = None) -> m.AllOrdersResponse:
        """Every open order and active TWAP, all pages merged (see ``reconcile`` on paging)."""
        return (await self.reconciler.fetch_open_orders_paged(symbol))[0]

    async def fetch_trades(self) -> list[m.Trade]:
        return await self.reconciler.fetch_trades()

    # ================================================================== sending and waiting

    def _price_arg(self, kind: OrderType, price: args.Number | None) -> Any:
        if kind is OrderType.MARKET:
            if price is not None:
                raise InvalidArgument("MARKET orders take no price")
            return None
        if price is None:
            raise InvalidArgument(f"{kind} orders need a price")
        return args.decimal_arg("price", price)

    def _wire_id(self, name: str, value: str | None, strategy: str | None) -> str:
        """The client id sent to QFEX: given, or generated (``client_id_prefix`` + 32 hex digits),
        inside ``strategy``'s namespace when there is one (``core.model``), at most 64 characters."""
        if strategy is None:
            return args.client_id_arg(name, value, self.settings.client_id_prefix)
        own = f"{self.settings.client_id_prefix}{uuid.uuid4().hex}" if value is None else value
        if not isinstance(own, str) or not own:
            raise InvalidArgument(f"{name} must be a non-empty string, got {value!r}")
        room = args.MAX_CLIENT_ID_LENGTH - len(strategy) - 1
        if len(own) > room:
            raise InvalidArgument(f"{name} of strategy {strategy!r} must be at most {room} characters "
                                  f"(its wire id carries the {strategy!r}: prefix), got {value!r}")
        return args.client_id_arg(name, wire_client_id(strategy, own))

    def _usable_session(self) -> Session:
        if self._session is None:
            raise NotConnected("not connected to the exchange (reconnecting or closed); nothing was sent")
        return self._session

    def _gate(self, request: m.Request) -> bool:
        return (self.halted or self.journal_halted) and isinstance(request, _GATED)

    async def _transmit(self, session: Session, frames: list[m.Request], *,
                        priority: bool = False) -> SendOutcome | None:
        """Send frames, shielded so a cancelled caller never leaves half the work undone.

        Returns None when sent, else why not: HALTED (stopped before the wire by the kill switch),
        NOT_SENT (the deadline passed while the first frame still waited for the pacer: the exchange
        saw nothing), TIMEOUT (it passed later: a frame may have gone out) or SEND_FAILED.
        """
        timeout = self.settings.request_timeout
        deadline = trio.current_time() + timeout
        paced = session.pacer is not None and not priority
        written, writing = 0, False
        # One scope (entering one costs microseconds on the cancel path): shielded from the caller,
        # its deadline bounds the wait for the pacer, then each write gets a fresh bound of its own,
        # so a deadline lapsing as a frame's turn comes cannot leave that frame half-decided.
        with trio.CancelScope(shield=True, deadline=deadline) as scope:
            for frame in frames:
                try:
                    await session.wait_turn(frame, priority=priority, blocked=self._gate)
                    if scope.cancel_called:
                        break  # the deadline lapsed just as its turn came: it is not written
                    if paced:
                        scope.deadline = trio.current_time() + timeout
                    writing = True
                    await session.write(frame)
                    writing, written = False, written + 1
                    if paced:
                        scope.deadline = deadline
                except Halted:
                    return SendOutcome.HALTED
                except (trio_websocket.ConnectionClosed, trio.BrokenResourceError,
                        trio.ClosedResourceError, LocalProtocolError):
                    # LocalProtocolError: wsproto refusing a frame on a connection trio-websocket
                    # is already closing (its issue #184); like ConnectionClosed, the send failed.
                    return SendOutcome.SEND_FAILED
        if written == len(frames):
            return None
        return SendOutcome.NOT_SENT if written == 0 and not writing else SendOutcome.TIMEOUT

    async def _wait_for(self, obj: object, predicate: Callable[[], bool]) -> bool:
        """Wait (up to ``request_timeout``) until ``predicate`` holds; the reader wakes us per event."""
        if predicate():
            return True
        with trio.move_on_after(self.settings.request_timeout):
            while not predicate() and not self.closing:
                await self.waiters.next_change(obj)
        return predicate()

    def _lapsed(self) -> SendOutcome:
        """Why a wait ended without its answer: the manager closing, or the deadline."""
        return SendOutcome.CLOSED if self.closing else SendOutcome.TIMEOUT

    def _never_sent(self, outcome: SendOutcome, what: str, subject: object) -> NoReturn:
        """Raise for a request that provably never reached the wire (the core has already closed it
        locally: exact, not a guess)."""
        self.flush()
        if outcome is SendOutcome.HALTED:
            raise Halted(f"the kill switch halted trading before this {what} was sent")
        raise NotSent(what, subject)

    def _lost(self, order: Order, reason: str) -> NoReturn:
        self.core.order_lost(order, reason)
        self.flush()
        self.settler.want()
        raise OrderStatusUnknown(order, reason)

    async def _query(self, request: m.Request, *, priority: bool = False) -> Any:
        session = self._usable_session()
        key = _REPLY_OF[type(request).TYPE]
        slot = self.replies.expect(key)
        outcome = await self._transmit(session, [request], priority=priority)
        if outcome is SendOutcome.NOT_SENT:
            self.replies.withdraw(key, slot)
            raise NotSent(type(request).TYPE)
        if outcome is not None:
            raise NotConnected(f"{type(request).TYPE} could not be sent: {outcome}")
        with trio.move_on_after(self.settings.request_timeout):
            await slot.event.wait()
        if not slot.event.is_set():
            # Replies carry no request id, so after a lost answer this kind's replies can no longer be
            # matched to callers: a stale snapshot given to a newer caller could settle live orders as
            # gone. Start a fresh connection instead (its resync rebuilds the picture); every waiting
            # slot fails with NotConnected when the old one goes.
            await self.connection.restart(f"no answer to {type(request).TYPE}")
            raise RequestTimeout(f"no answer to {type(request).TYPE} within "
                                 f"{self.settings.request_timeout} s; reconnecting to resynchronise")
        if slot.error is not None:
            raise slot.error
        return slot.value

    async def send_now(self, frames: list[m.Request], *, expect_ack: str | None = None
                       ) -> tuple[SendOutcome | None, Slot | None]:
        """Send what the core queued ahead of strategy traffic, skipping the pacer (the kill
        switch's path; design.md "never queued behind ordinary traffic"). With ``expect_ack``, a
        slot for that request type's ``ack`` is registered before the frame leaves. The events the
        core queued with it (the kill switch's: one per open order) are delivered once the frame is
        written, not before: routing 10,000 of them held the halt back by ~15 ms (bench row 5)."""
        session = self._usable_session()
        slot = None if expect_ack is None else self.replies.expect(f"ack:{expect_ack}")
        try:
            return await self._transmit(session, frames, priority=True), slot
        finally:
            self.flush()

    def _refuse_if_halted(self, what: str) -> None:
        if self.halted:
            raise Halted(f"the kill switch halted {what}; call resume() first")
        if self.journal_halted:
            raise JournalUnavailable(f"the journal cannot write ({self._journal_error}): {what} are "
                                     "halted until it can (cancels and the kill switch still work)")

    def _journal_note(self, note: bytes) -> None:
        if self.on_settled is not None:
            self.on_settled(note)

    def journal_health_changed(self, healthy: bool, error: str | None) -> None:
        """The journal's health changed (the journal calls this in the trio thread)."""
        if healthy:
            log.warning("journal writes again", halted=self.journal_halted)
            if self.journal_halted:
                self.journal_halted = False
                self.publish(HaltChanged(False, "journal_writes_again"))
            return
        self._journal_error = error
        if self.settings.journal_failure is JournalFailurePolicy.CONTINUE:
            log.error("journal cannot write; trading goes on without crash safety", error=error)
            return
        log.error("journal cannot write; new orders halted", error=error)
        self.journal_halted = True
        self.publish(HaltChanged(True, f"journal_unavailable: {error}"))

    def _set_halted(self, halted: bool, reason: str) -> None:
        if self.halted != halted:
            self.halted = halted
            log.warning("trading halted" if halted else "trading resumed", reason=reason)
            self.publish(HaltChanged(halted, reason))

    # ================================================================== reader side (never awaits)

    def frame_received(self, raw: bytes | str) -> None:
        """``ConnectionOwner``: one frame from the exchange, applied at once; never awaits."""
        if self.on_frame_received is not None:
            self.on_frame_received(raw)
        try:
            reply = codec.decode_reply(raw)
        except ProtocolError as exc:
            log.warning("malformed frame from the exchange", error=str(exc), raw=cap_frame(exc.raw))
            return
        kind = type(reply)
        if kind in _QUERY_REPLIES:
            if not self.replies.resolve(kind.KEY, reply):
                log.warning("unexpected reply with no request waiting", kind=kind.KEY)
            return
        if kind is m.Ack:
            incoming = reply.incoming_message or {}  # type: ignore[union-attr]
            self.replies.resolve(f"ack:{incoming.get('type')}", reply)
            if incoming.get("type") in STOP_REQUEST_TYPES:  # the answer to a stop cancel/modify
                self.core.on_reply(reply)
                self.flush()
            return
        if kind is m.PositionResponse or kind is m.BalanceResponse:
            self._on_account(reply)  # type: ignore[arg-type]
            return
        if kind is m.Err:
            log.warning("exchange error", error_code=str(reply.error_code),  # type: ignore[union-attr]
                        message=reply.message, incoming=reply.incoming_message)  # type: ignore[union-attr]
        self.core.on_reply(reply)
        self.flush()

    def _on_account(self, reply: m.PositionResponse | m.BalanceResponse) -> None:
        now = time.time()
        if isinstance(reply, m.BalanceResponse):
            self.publish(BalanceUpdated(self.account.on_balance(reply, now)))
            return
        position = self.account.on_position(reply, now)
        self.position_check.on_report(position.symbol, position.quantity)
        self.publish(PositionUpdated(position))
        self._report_mismatches()

    def _report_mismatches(self) -> None:
        for symbol, implied, reported in self.position_check.due(time.monotonic()):
            log.warning("position mismatch: the fills counted imply one position, the exchange "
                        "reports another", symbol=symbol, implied_by_fills=str(implied),
                        reported=str(reported))
            self.publish(PositionMismatch(symbol, implied, reported))

    def frame_written(self, data: bytes) -> None:
        """``ConnectionOwner``: one frame written."""
        # Looked up per frame, so a hook set after the connection opened still sees every frame.
        if self.on_frame_sent is not None:
            self.on_frame_sent(data)

    def flush(self) -> None:
        """Deliver what the core produced: follow-up frames to the sender, events to their routes."""
        frames = self.core.take_frames()
        if frames:
            if self._followups is not None:
                self._followups.send_nowait(frames)
            else:
                log.warning("follow-up frames dropped: not connected", count=len(frames))
        for event in self.core.take_events():
            self._route(event)

    def _route(self, event: Any) -> None:
        if isinstance(event, OrderUpdated | FillReceived):
            self.waiters.wake(event.order)
            if isinstance(event, FillReceived):
                fill = event.fill
                self.position_check.on_fill(fill.symbol, fill.side, fill.quantity)
            if isinstance(event, OrderUpdated):
                order = event.order
                if order.needs_settlement:
                    self.settler.want()
                elif order.fill_total < order.filled_quantity:
                    self.settler.fill_gap(order)
        elif isinstance(event, CancelFinished | ModifyFinished):
            self.waiters.wake(event.request)
        elif isinstance(event, TwapUpdated):
            self.waiters.wake(event.twap)
        elif isinstance(event, StopUpdated):
            self.waiters.wake(event.stop)
            if event.stop.needs_settlement:
                self.settler.want()
        elif isinstance(event, StopRequestFinished):
            self.waiters.wake(event.request)
        elif isinstance(event, RequestErrored) and event.request_type in _REPLY_OF:
            self.replies.resolve(_REPLY_OF[event.request_type],
                          error=RequestFailedError(event.request_type, event.error_code, event.message))
        self.publish(event)

    def publish(self, event: Event) -> None:
        """Hand an event to every subscriber of ``events()`` (the guard publishes its trips here)."""
        for stream in self._streams:
            stream.push(event)

    # ================================================================== connection lifecycle

    async def connection_up(self, session: Session, nursery: trio.Nursery, first: bool) -> None:
        """``ConnectionOwner``: start this connection's follow-up sender and settler, and resync."""
        send, recv = trio.open_memory_channel[list[m.Request]](float("inf"))
        self._followups = send
        nursery.start_soon(self._follow_up_sender, session, recv)
        self.publish(Connected(self.url))
        if not first or self.resync_on_connect:
            self.resync_on_connect = False
            await self._resync_after_connect()
        nursery.start_soon(self.settler.run, self._settle_now)
        nursery.start_soon(self._watch_positions)

    def connection_down(self, reason: str) -> None:
        """``ConnectionOwner``: everything in flight is now ambiguous."""
        self._followups = None
        self.core.connection_lost(cancel_on_disconnect=self.settings.cancel_on_disconnect)
        self.replies.fail_all(reason)
        self.flush()
        self.publish(Disconnected(reason))

    async def _resync_after_connect(self) -> None:
        """Reconcile on a new connection. A failure here must not end the manager: the connection
        drops again (the supervisor reconnects) or the settler retries the snapshot later."""
        try:
            with trio.move_on_after(self.settings.request_timeout * 3) as scope:
                diff = await self.reconcile()
                self.publish(Reconnected(diff))
                log.info("resynced after reconnect", adopted=len(diff.adopted),
                         settled=len(diff.settled), fills=len(diff.fills_added))
            if scope.cancelled_caught:
                self.settler.want()
        except (RequestTimeout, RequestFailedError, NotConnected) as exc:
            log.warning("resync failed; it will be retried", error=str(exc))
            self.settler.want()

    async def _watch_positions(self) -> None:
        """A disagreement is reported once it has lasted the grace period, report or no report."""
        while True:
            await trio.sleep(self.settings.position_grace / 2)
            self._report_mismatches()

    async def _settle_now(self) -> None:
        diff = await self.reconcile()
        log.info("settled from snapshot", settled=len(diff.settled), adopted=len(diff.adopted))

    async def _follow_up_sender(self, session: Session,
                                recv: trio.MemoryReceiveChannel[list[m.Request]]) -> None:
        """Sends what the reader's replies triggered (a cancel held until its order's ACK)."""
        async for frames in recv:
            for frame in frames:  # one at a time, so a failure knows exactly what went out
                while (outcome := await self._transmit(session, [frame])) == SendOutcome.NOT_SENT:
                    # Not sent, so it must still go; but let a dropped connection end this task.
                    await trio.lowlevel.checkpoint()
                    if self._session is not session:
                        return
                if outcome == SendOutcome.TIMEOUT:
                    # A write stuck past its deadline: the socket is wedged. A fresh connection
                    # turns every cancel in flight into an owed one, sent again after the resync.
                    await self.connection.restart("a follow-up write timed out")
                if outcome is not None:
                    return

    async def aclose(self) -> None:
        """Close for good (``open_order_manager`` does it on exit): calls still in flight get no
        answer now, so they are woken at once rather than at their deadline."""
        await self.connection.close()
        self.replies.fail_all("the order manager is closed")
        self.waiters.wake_all()
        for stream in list(self._streams):
            stream.close()


@asynccontextmanager
async def open_order_manager(
    url: str, credentials: Credentials, **options: Any
) -> AsyncIterator[OrderManager]:
    """Connect, authenticate and subscribe; yield the manager; stop every task on exit.

    Options are the fields of ``ManagerSettings`` (``request_timeout``, ``cancel_on_disconnect``,
    ``pacer``, ``reconnect``, ``kill_timeout``, ...). An authentication failure raises
    ``AuthenticationError`` naming the cause.
    """
    try:
        settings = ManagerSettings(**options)
    except TypeError as exc:
        raise InvalidArgument(f"unknown order manager option: {exc}") from None
    oms = OrderManager(url, credentials, settings)
    try:
        async with AsyncExitStack() as stack, trio.open_nursery() as nursery:
            journal = None
            if settings.journal is not None:
                journal = await _recover(oms, settings.journal)
                await nursery.start(journal.run)
            try:
                rest = await _open_rest(oms, credentials, stack)
                oms.reconciler.rest = rest
                await nursery.start(oms.reference.run, rest)
                async with AsyncExitStack() as extras:  # inside the nursery: their scopes nest in it
                    await _open_extras(oms, extras, nursery)
                    await nursery.start(oms.connection.supervise)
                    yield oms
            finally:
                await oms.aclose()
                if journal is not None:
                    with trio.CancelScope(shield=True):
                        await journal.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        # A strict nursery wraps the one error (an AuthenticationError, or the caller's own
        # exception from the block) in a group: raise it as itself, as trio-websocket does.
        _raise_unwrapped(group)


async def _open_extras(oms: OrderManager, stack: AsyncExitStack, nursery: trio.Nursery) -> None:
    """What the options add beside the trade connection: market data (and, with ``risk``, its prices
    for the price band) and the event counts behind ``oms.statistics()``."""
    settings = oms.settings
    if settings.market_data is not None:
        if not settings.market_data_symbols:
            raise InvalidArgument("market_data needs market_data_symbols: the symbols to follow")
        oms.market_data = await stack.enter_async_context(
            open_market_data(settings.market_data, settings.market_data_symbols))
        if oms.risk is not None:
            oms.risk.use_prices(market_data_prices(oms.market_data, settings.market_data_max_age))
    if settings.statistics:
        oms.metrics = OmsMetrics(oms)
        await nursery.start(oms.metrics.run)


async def _open_rest(oms: OrderManager, credentials: Credentials,
                     stack: AsyncExitStack) -> RestClient | None:
    """The manager's one REST client (reference data, order history), when QFEX's REST API is known
    for this venue (``rest_url``); it closes with the manager."""
    if oms.reference.rest_url is None:
        return None
    client = RestClient(oms.reference.rest_url, credentials, timeout=oms.settings.request_timeout)
    return await stack.enter_async_context(client)


def _raise_unwrapped(group: BaseExceptionGroup[BaseException]) -> NoReturn:
    """Raise the one error a strict nursery wrapped as itself, keeping its own context."""
    exc = sole_exception(group)
    if exc is group:
        raise group
    context = exc.__context__
    try:
        raise exc  # the group was only a wrapper
    finally:
        exc.__context__ = context
        del exc, context


async def _recover(oms: OrderManager, path: str) -> Journal:
    """Open the journal, rebuild the book from it, and hook it to every frame sent and received."""
    journal = await trio.to_thread.run_sync(
        lambda: Journal.open(path, account=_journal_identity(oms.credentials), venue=oms.url))
    if oms.settings.journal_retention is not None:
        compaction = await journal.compact_async(oms.settings.journal_retention)
        log.info("journal compacted", **compaction.describe())
    if journal.report.damaged:
        log.warning("journal tail was damaged; recovered up to the last good record",
                    **journal.report.describe())
    records = await trio.to_thread.run_sync(journal.records)
    if records:
        stats = replay(oms.core, ((r.direction, r.raw) for r in records))
        oms.resync_on_connect = True
        lookback = int(records[0].ts - oms.settings.trades_lookback)
        oms.reconciler.trades_since = min(oms.reconciler.trades_since, lookback)
        log.info("book rebuilt from journal", path=path, commands=stats.commands, replies=stats.replies,
                 skipped=stats.skipped, orders=len(oms.core.tracker))
    oms.on_frame_sent = journal.append_sent
    oms.on_frame_received = journal.append_received
    oms.on_settled = journal.append_note
    journal.on_health_change = oms.journal_health_changed
    oms.journal = journal
    return journal


def _journal_identity(credentials: Credentials) -> str:
    """A sub-account keeps a book of its own: its journal is not the primary account's."""
    if credentials.account_id is None:
        return credentials.public_key
    return f"{credentials.public_key}/{credentials.account_id}"
