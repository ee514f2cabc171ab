"""Each client request, answered as QFEX would, through the manager's public API and only ever on
the sender's own orders.

- Orders, TWAPs, stops: sent with the client's ids in its namespace (``namespace.wrap``); QFEX's
  answers reach the client through the gateway's tap (``server.upstream_frame``). A refusal before
  anything was sent (a bad argument, the kill switch's halt) is an ``err`` frame, as QFEX's own.
- Cancels by ``order_id``/``twap_id`` go out only for the client's own orders; anything else is
  answered ``NO_SUCH_ORDER`` by the gateway (another client's order does not exist for it). Cancels
  by client id go out inside the namespace, so they cannot match another client's order.
- ``cancel_all_orders``: ``ack``, then one cancel per own order, TWAP and stop; a key with
  ``may_kill_account`` pulls the manager's kill switch instead (account-wide, verified by a
  snapshot) and lifts its halt once it reported (``KILL_RESUMES``: QFEX's cancel_all_orders halts
  nothing, so neither does the gateway's).
- ``cancel_on_disconnect``: remembered per connection; when the client drops, only its own open
  orders (and those still being placed for it) are cancelled.
- ``close_position`` and ``set_user_leverage`` change the account, not one strategy's orders: only a
  key with ``may_kill_account`` may send them (``PermissionDenied`` otherwise: a documented code).
- Queries are answered from the manager's snapshots, filtered to the client's orders.
- An operator's key (``may_kill_account``) sees and cancels the whole account (``__init__.py``,
  "The operator's key"): queries unfiltered, cancels by id of any order, cancels by a client id
  that carries a namespace (``mm:bid-1``) sent as is; its own orders stay in its namespace, and
  modifies stay its own.

Every request that reaches the manager waits its turn in the fair queue (``fair.py``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs
import trio
from msgspec.structs import replace  # OrderResponse is a msgspec struct (protocol.messages)

from qfex_oms.core.model import Order, Twap
from qfex_oms.core.stops import StopOrder
from qfex_oms.errors import (
    Halted,
    InvalidArgument,
    ModifyRejected,
    OrderRejected,
    OrderStatusUnknown,
    QfexOmsError,
    RequestFailed,
    TwapRejected,
)
from qfex_oms.gateway.namespace import split, wrap
from qfex_oms.logs import get_logger
from qfex_oms.protocol import (
    CancelIdType,
    Channel,
    ErrorCode,
    OrderStatus,
    OrderType,
    TimeInForce,
    incoming_echo,
)
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.limits import weight_of

if TYPE_CHECKING:
    from qfex_oms.gateway.server import ClientConn, Gateway

log = get_logger("qfex_oms.gateway")

KILL_RESUMES = True
# How long a dropped client's cancel-on-disconnect waits for the QFEX connection to come back.
COD_PATIENCE_SECS = 60.0
_STOP_TYPES = (OrderType.TAKE_PROFIT, OrderType.STOP_LOSS)
_ORDER_REQUESTS = ("add_order", "modify_order", "add_twap", "close_position")
_ANSWERED_UPSTREAM = (OrderRejected, ModifyRejected, TwapRejected, OrderStatusUnknown)
Handler = Callable[["ClientConn", Any], Awaitable[None]]


def _own(value: str | None) -> str:
    return split(value)[1]


def _namespaced(client_id: str | None) -> bool:
    return split(client_id)[0] is not None


def _nonzero(value: Decimal | None) -> Decimal | None:
    return value if value else None  # QFEX: "Set 0 if unused"


class Handlers:
    def __init__(self, gateway: Gateway) -> None:
        self.gw = gateway
        self.oms = gateway.oms
        self.owners = gateway.owners
        self._local: dict[type, Callable[[ClientConn, Any], None]] = {
            m.Subscribe: self._subscribe, m.Unsubscribe: self._unsubscribe,
            m.CancelOnDisconnect: self._cancel_on_disconnect, m.CancelAllOrders: self._cancel_all,
        }
        self._queued: dict[type, Handler] = {
            m.AddOrder: self._add_order, m.CancelOrder: self._cancel_order,
            m.ModifyOrder: self._modify_order, m.AddTwap: self._add_twap, m.GetOrder: self._get_order,
            m.GetUserOrders: self._get_user_orders, m.GetUserTrades: self._get_user_trades,
            m.ClosePosition: self._close_position, m.GetUserLeverage: self._get_leverage,
            m.GetAvailableLeverageLevels: self._get_levels, m.SetUserLeverage: self._set_leverage,
            m.CancelStopOrder: self._cancel_stop, m.ModifyStopOrder: self._modify_stop,
        }

    # ------------------------------------------------------------------ dispatch

    def handle(self, conn: ClientConn, request: m.Request) -> None:
        local = self._local.get(type(request))
        if local is not None:
            local(conn, request)
            return
        handler = self._queued.get(type(request))
        if handler is None:
            conn.err(ErrorCode.INVALID_PARAMETER, f"{request.TYPE} is not served by the gateway",
                     incoming_echo(request))
            return
        self._submit(conn, conn, request, lambda: handler(conn, request))

    def _submit(self, conn: ClientConn, lane: object, request: m.Request,
                job: Callable[[], Awaitable[None]], *, its_own: bool = True) -> None:
        """Queue ``job`` in ``lane``; a refusal before anything was sent answers ``conn``.
        ``its_own``: the frames the job writes are ``conn``'s requests, QFEX's errs for them its
        replies (``requesters``); not for what the gateway sends of its own accord for a client."""
        asker = conn if its_own else None

        async def guarded() -> None:
            try:
                with self.gw.requesters.asking(asker):  # QFEX's errs for what the job writes
                    await job()
            except _ANSWERED_UPSTREAM:
                pass  # QFEX's own answer reached the client through the tap, or was lost as on QFEX
            except InvalidArgument as exc:
                order_like = request.TYPE in _ORDER_REQUESTS
                code = ErrorCode.INVALID_ORDER if order_like else ErrorCode.INVALID_PARAMETER
                conn.err(code, str(exc), incoming_echo(request))
            except Halted as exc:
                conn.err(ErrorCode.PERMISSION_DENIED, str(exc), incoming_echo(request))
            except RequestFailed as exc:
                conn.err(ErrorCode(exc.error_code), str(exc), incoming_echo(request))
            except QfexOmsError as exc:
                conn.err(ErrorCode.SERVER_ERROR, str(exc), incoming_echo(request))

        if not self.gw.fair.submit(lane, weight_of(request.TYPE)[0], guarded):
            conn.err(ErrorCode.RATE_LIMITED, "You have exceeded the allowed message rate.",
                     incoming_echo(request))

    def _refuse(self, conn: ClientConn, request: m.Request, why: str) -> None:
        conn.err(ErrorCode.PERMISSION_DENIED, why, incoming_echo(request))

    # ------------------------------------------------------------------ answered by the gateway

    def _channels(self, conn: ClientConn, request: m.Subscribe | m.Unsubscribe) -> tuple[Channel, ...]:
        if not request.channels or any(not c.known for c in request.channels):
            conn.err(ErrorCode.INVALID_PARAMETER, "unknown or missing channels", incoming_echo(request))
            return ()
        return request.channels

    def _subscribe(self, conn: ClientConn, request: m.Subscribe) -> None:
        channels = self._channels(conn, request)
        for channel in channels:
            conn.subscriptions.add(channel)
            conn.reply(m.Subscribed(channel.value))
        for channel in channels:  # the account's last reports, as QFEX sends a new subscriber
            if channel is Channel.POSITIONS:
                for data in self.gw.positions.values():
                    conn.push(data)
            elif channel is Channel.BALANCES and self.gw.balance is not None:
                conn.push(self.gw.balance)

    def _unsubscribe(self, conn: ClientConn, request: m.Unsubscribe) -> None:
        for channel in self._channels(conn, request):
            conn.subscriptions.discard(channel)
            conn.reply(m.Unsubscribed(channel.value))

    def _cancel_on_disconnect(self, conn: ClientConn, request: m.CancelOnDisconnect) -> None:
        conn.cancel_on_disconnect = request.cancel_on_disconnect
        conn.reply(m.Ack(incoming_echo(request)))

    def _cancel_all(self, conn: ClientConn, request: m.CancelAllOrders) -> None:
        conn.reply(m.Ack(incoming_echo(request)))
        if conn.key.may_kill_account:
            self._submit(conn, conn, request, self._kill, its_own=False)
            return
        for target in self.own_open(conn.strategy):
            self._submit(conn, conn, m.CancelAllOrders(), self._cancel_job(target), its_own=False)

    async def _kill(self) -> None:
        report = await self.oms.cancel_all()
        log.warning("gateway: account-wide kill switch", clean=report.clean)
        if KILL_RESUMES:
            self.oms.resume()

    def own_open(self, strategy: str) -> list[Order | Twap | StopOrder]:
        """The strategy's open orders, TWAPs and stops, as the manager's book has them now."""
        owns = self.owners.owns
        targets: list[Order | Twap | StopOrder] = [
            t for t in self.oms.twaps(open_only=True) if owns(strategy, t.client_twap_id, t.twap_id)]
        targets += [o for o in self.oms.orders(open_only=True) if o.twap_id is None
                    and owns(strategy, o.client_order_id, o.order_id)]
        targets += [s for s in self.oms.stops(open_only=True)
                    if owns(strategy, s.client_order_id, s.stop_order_id)]
        return targets

    def _cancel_job(self, target: Order | Twap | StopOrder) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            await self.oms.cancel(target)
        return job

    def cancel_own_on_disconnect(self, conn: ClientConn) -> None:
        """QFEX's cancel-on-disconnect, scoped to the client: its own open orders only."""
        targets = self.own_open(conn.strategy)
        log.info("gateway: cancel-on-disconnect", conn=conn.conn_id, strategy=conn.strategy,
                 orders=len(targets))
        for target in targets:
            self._submit(conn, ("cod", conn.conn_id), m.CancelAllOrders(), self._patient(target),
                         its_own=False)

    def _patient(self, target: Order | Twap | StopOrder) -> Callable[[], Awaitable[None]]:
        async def job() -> None:
            with trio.move_on_after(COD_PATIENCE_SECS):
                await self.oms.wait_connected()
            if not (target.state.is_terminal):
                await self.oms.cancel(target)
        return job

    # ------------------------------------------------------------------ through the manager

    def _placed_id(self, conn: ClientConn, client_id: str | None, field: str) -> str:
        """The wire id of a client's new order/TWAP: its own id in its namespace. An operator's
        own id may not itself look namespaced (``mm:x``): in its view, where other strategies'
        ids keep their prefix, its order would pass for mm's (``kill --strategy mm`` would take it)."""
        if conn.operator and _namespaced(client_id):
            raise InvalidArgument(f"{field} {client_id!r}: an operator key's own ids may not look like "
                                  "another strategy's (<strategy>:...)")
        return wrap(conn.strategy, client_id)

    def _wire_client_id(self, conn: ClientConn, client_id: str) -> str:
        """The wire id a cancel by client id names: the client's own id in its namespace; for an
        operator, an id already carrying a namespace names that strategy's orders as is."""
        return client_id if conn.operator and _namespaced(client_id) else wrap(conn.strategy, client_id)

    async def _add_order(self, conn: ClientConn, r: m.AddOrder) -> None:
        client_id = self._placed_id(conn, r.client_order_id, "client_order_id")
        if r.order_type in _STOP_TYPES:
            await self.oms.place_order(r.symbol, r.side, r.quantity, r.price, order_type=r.order_type,
                                       time_in_force=r.order_time_in_force, client_order_id=client_id)
            return
        price = None if r.order_type is OrderType.MARKET else r.price
        order: Order | Twap | StopOrder
        try:
            order = await self.oms.place_order(
                r.symbol, r.side, r.quantity, price, order_type=r.order_type,
                time_in_force=r.order_time_in_force, client_order_id=client_id,
                reduce_only=r.reduce_only, take_profit=_nonzero(r.take_profit),
                stop_loss=_nonzero(r.stop_loss))
        except OrderStatusUnknown as exc:
            if not conn.gone:
                raise
            order = exc.order  # lost, maybe live: the dropped client's cancel-on-disconnect owes it
        if conn.gone and conn.cancel_on_disconnect and not order.state.is_terminal:
            await self.oms.cancel(order)  # placed for a client that dropped meanwhile

    def _no_such(self, conn: ClientConn, order_id: str, symbol: str,
                 status: OrderStatus = OrderStatus.NO_SUCH_ORDER) -> None:
        conn.reply(m.OrderResponse(order_id=order_id, symbol=symbol, status=status, client_order_id=""))

    def _owned_order(self, conn: ClientConn, order_id: str, symbol: str,
                     cancel: bool = False) -> Order | None:
        """The client's own live order by id; for an operator's cancel, any live order."""
        order = self.oms.order(order_id)
        if order is None or order.symbol != symbol or order.state.is_terminal:
            return None
        if cancel and conn.operator:
            return order
        return order if self.owners.owns(conn.strategy, order.client_order_id, order.order_id) else None

    async def _cancel_order(self, conn: ClientConn, r: m.CancelOrder) -> None:
        kind = r.cancel_order_id_type
        if kind is CancelIdType.ORDER_ID:
            order = self._owned_order(conn, r.order_id, r.symbol, cancel=True)
            if order is not None:
                await self.oms.cancel(order)
            elif conn.operator and self.oms.order(r.order_id) is None:
                # Not in the gateway's book (placed around it, not yet seen): QFEX answers.
                await self.oms.cancel(order_id=r.order_id, symbol=r.symbol)
            else:
                self._no_such(conn, r.order_id, r.symbol)
        elif kind is CancelIdType.CLIENT_ORDER_ID:
            await self.oms.cancel(client_order_id=self._wire_client_id(conn, r.order_id), symbol=r.symbol)
        elif kind is CancelIdType.TWAP_ID:
            twap = next((t for t in self.oms.twaps(open_only=True) if t.twap_id == r.order_id
                         and t.symbol == r.symbol and self._sees(conn, t.client_twap_id, t.twap_id)), None)
            if twap is None:
                self._no_such(conn, r.order_id, r.symbol)
                return
            await self.oms.cancel(twap)
        elif kind is CancelIdType.CLIENT_TWAP_ID:
            await self.oms.cancel(client_twap_id=self._wire_client_id(conn, r.order_id), symbol=r.symbol)
        else:
            raise InvalidArgument(f"unknown cancel_order_id_type {kind!s}")

    async def _modify_order(self, conn: ClientConn, r: m.ModifyOrder) -> None:
        order = self._owned_order(conn, r.order_id, r.symbol)
        if order is None:
            self._no_such(conn, r.order_id, r.symbol, OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER)
            return
        await self.oms.modify_order(order, price=r.price, quantity=r.quantity)

    async def _add_twap(self, conn: ClientConn, r: m.AddTwap) -> None:
        await self.oms.place_twap(r.symbol, r.side, total_quantity=r.total_quantity, num_orders=r.num_orders,
                                  order_interval_secs=r.order_interval_secs, reduce_only=r.reduce_only,
                                  client_twap_id=self._placed_id(conn, r.client_twap_id, "client_twap_id"))

    async def _close_position(self, conn: ClientConn, r: m.ClosePosition) -> None:
        if not conn.key.may_kill_account:
            self._refuse(conn, r, "close_position changes the account: this key may not")
            return
        client_id = self._placed_id(conn, r.client_order_id, "client_order_id")
        known = self.oms.position(r.symbol)
        if known is not None and known.flat:
            # The manager sends nothing for a position it knows is flat: answer as QFEX answers
            # closing a flat position (one REJECTED order_response, the sim's CHOICES C29).
            conn.reply(m.OrderResponse(
                order_id=str(uuid.uuid4()), symbol=r.symbol, status=OrderStatus.REJECTED,
                type=OrderType.LIMIT, time_in_force=TimeInForce.IOC, quantity=Decimal(0),
                price=Decimal(0), quantity_remaining=Decimal(0), client_order_id=r.client_order_id or "",
                update_time=time.time()))
            return
        await self.oms.close_position(r.symbol, client_order_id=client_id)

    async def _set_leverage(self, conn: ClientConn, r: m.SetUserLeverage) -> None:
        if not conn.key.may_kill_account:
            self._refuse(conn, r, "set_user_leverage changes the account: this key may not")
            return
        await self.oms.set_leverage(r.symbol, int(r.leverage))
        conn.reply(m.Ack(incoming_echo(r)))

    async def _get_leverage(self, conn: ClientConn, r: m.GetUserLeverage) -> None:
        levels = tuple((await self.oms.leverage()).values())
        conn.reply(m.UserLeverageResponse(levels=levels))

    async def _get_levels(self, conn: ClientConn, r: m.GetAvailableLeverageLevels) -> None:
        conn.reply(m.AvailableLeverageLevelsResponse(levels=tuple(await self.oms.leverage_levels())))

    def _owned_stop(self, conn: ClientConn, stop_order_id: str, cancel: bool = False) -> StopOrder | None:
        """The client's own open stop by id; for an operator's cancel, any open stop."""
        return next((s for s in self.oms.stops(open_only=True) if s.stop_order_id == stop_order_id
                     and ((cancel and conn.operator)
                          or self.owners.owns(conn.strategy, s.client_order_id, s.stop_order_id))), None)

    async def _cancel_stop(self, conn: ClientConn, r: m.CancelStopOrder) -> None:
        stop = self._owned_stop(conn, r.stop_order_id, cancel=True)
        if stop is None:
            self._no_such(conn, r.stop_order_id, "")
            return
        result = await self.oms.cancel(stop)
        if result.ok:
            conn.reply(m.Ack(incoming_echo(r)))

    async def _modify_stop(self, conn: ClientConn, r: m.ModifyStopOrder) -> None:
        stop = self._owned_stop(conn, r.stop_order_id)
        if stop is None:
            self._no_such(conn, r.stop_order_id, r.symbol, OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER)
            return
        await self.oms.modify_stop(stop, price=r.price, quantity=r.quantity)
        conn.reply(m.Ack(incoming_echo(r)))

    # ------------------------------------------------------------------ queries, filtered

    def _sees(self, conn: ClientConn, client_id: str | None, exchange_id: str | None) -> bool:
        """Whether a client sees an order, TWAP, stop or trade: its own; an operator, all."""
        return conn.operator or self.owners.owns(conn.strategy, client_id, exchange_id)

    def _shown(self, conn: ClientConn, client_id: str | None) -> str:
        """The id as the client sees it: without its own namespace; another strategy's id (an
        operator's view) or an id outside every namespace, as on the wire."""
        if not conn.operator:
            return _own(client_id)
        strategy, own = split(client_id)
        return own if strategy == conn.strategy else client_id or ""

    async def _get_user_orders(self, conn: ClientConn, r: m.GetUserOrders) -> None:
        snapshot = await self.oms.fetch_open_orders(r.symbol)
        shown = self._shown
        orders = [replace(o, client_order_id=shown(conn, o.client_order_id)) for o in snapshot.orders
                  if self._sees(conn, o.client_order_id, o.order_id)]
        offset, limit = r.offset or 0, 1000 if r.limit is None else r.limit
        twaps = tuple(attrs.evolve(t, client_twap_id=shown(conn, t.client_twap_id)) for t in snapshot.twaps
                      if self._sees(conn, t.client_twap_id, t.twap_id))
        stops = tuple(attrs.evolve(s, client_order_id=shown(conn, s.client_order_id))
                      for s in snapshot.stop_orders if self._sees(conn, s.client_order_id, s.stop_order_id))
        conn.reply(m.AllOrdersResponse(orders=tuple(orders[offset:offset + limit]), twaps=twaps,
                                       stop_orders=stops))

    async def _get_order(self, conn: ClientConn, r: m.GetOrder) -> None:
        if conn.operator or self._owned_order(conn, r.order_id, r.symbol) is not None:
            snapshot = await self.oms.fetch_open_orders(r.symbol)
            for o in snapshot.orders:
                if o.order_id == r.order_id:
                    conn.reply(replace(o, client_order_id=self._shown(conn, o.client_order_id)))
                    return
        self._no_such(conn, r.order_id, r.symbol)

    async def _get_user_trades(self, conn: ClientConn, r: m.GetUserTrades) -> None:
        trades = [t for t in await self.oms.fetch_trades()
                  if self._sees(conn, t.client_order_id, t.order_id)
                  and (r.order_id is None or t.order_id == r.order_id)
                  and (r.start_ts is None or t.timestamp is None or t.timestamp >= r.start_ts)
                  and (r.end_ts is None or t.timestamp is None or t.timestamp <= r.end_ts)]
        offset, limit = r.offset or 0, 1000 if r.limit is None else r.limit
        page = tuple(attrs.evolve(t, client_order_id=self._shown(conn, t.client_order_id)
                                  if t.client_order_id else None)
                     for t in trades[offset:offset + limit])
        conn.reply(m.UserTradesResponse(trades=page))
