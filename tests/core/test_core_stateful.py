"""Stateful property test of the sans-IO core (``OmsCore``) against a tiny fake QFEX exchange.

The machine plays strategy and exchange at once. Commands go to the core; every frame the core emits
is checked against the wire reference (qfex-api.md §3.1, §3.2) and handed to a fake exchange that
holds the orders (order_id, symbol, client_order_id, quantity, remaining, open/closed) and answers
the way QFEX does (§4.2, §4.3): ACK with a fresh uuid, per-trade ``fill_response`` + ``FILLED``
``order_response`` sharing a ``trade_id``, CANCELLED per order a cancel hits (a client-id cancel hits
every open order on the symbol with that id), NO_SUCH_ORDER echoing the id sent when nothing matches,
rejections as an ``order_response`` or an ``err`` echoing the request, CANCELLED_STP out of the blue.

Delivery model. Replies wait in ``pending``. ``order_response``/``err``/snapshot replies share one
ordered channel (one websocket: QFEX answers in order), ``fill_response``s travel separately and may
overtake anything, across orders too. ``deliver`` keeps that realism; ``deliver_out_of_order``
delivers any reply (an ACK after its own CANCELLED, say), ``duplicate`` delivers a reply and queues a
copy, ``drop`` loses one, ``reconnect`` calls ``connection_lost()`` and resyncs from a snapshot
(``apply_snapshot`` with the exchange's open orders and all its trades), ``request_snapshot`` queues
a snapshot answer in the ordered channel (taken with ``fence = core.seq``).

What is provable. QFEX has no request ids: pending orders are matched to replies by ``(symbol,
client_order_id)`` in submit order, and the client-id pool here is tiny on purpose. Once a reply that
binds a pending order is dropped, reordered within the ordered channel, duplicated as an id-less
rejection, or kept across a reconnect, which local order is which exchange order is no longer
decidable for that key. Such keys are *tainted*: the identity checks (local order <-> exchange
order, quantities measured against the exchange, who cancelled what) are skipped for them, while
the "must never break" checks (tracker indices, fill dedup, monotone quantities, terminal states,
frame validity) still run for every order. With nothing in flight and nothing lost since the last
resync, every untainted order must match the exchange exactly and every cancel must have finished.

Fills overtake ACKs, so a fill for an id the core cannot place yet is held by the core
(``held_fills()``): delivered, not lost, counted once it applies. A snapshot that cannot tell which
of several pending orders an exchange order is reports it in ``SnapshotDiff.unresolved``; its key is
undecidable from then on and is tainted like the others.

Issue 11 widened the machine: orders placed by another connection (``stranger_places``, adopted
by the core; their ``fill_response`` may be dropped after the FILLED report, so the snapshot's
trades are the news), paged snapshots that shift (a resting row missing, ``complete=False``, then a
targeted ``get_order`` per unconfirmed order), cancels cut off between the frame and its answer
(fate ``cut``: the exchange got it, the socket died before the answer) and replies naming another
symbol (``misnamed_reply``). Invariants: no order CANCELLED while the exchange holds it open, no
filled quantity beyond the exchange's, no adopted order larger than the exchange's, and an order
whose cancel was cut off is never confirmed back to OPEN by a resync that finds it open: its
cancel goes again. ``QFEX_STATEFUL_EXAMPLES`` sets the example count for long runs.

Bugs the machine found are pinned by the regression tests at the bottom.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from collections.abc import Callable
from decimal import Decimal

import messagekit
import pytest
from attrs import define
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qfex_oms.core import (
    CancelError,
    CancelFinished,
    CancelIntent,
    CancelRequest,
    FillReceived,
    OmsCore,
    Order,
    OrderState,
    OrderUpdated,
    apply_snapshot,
)
from qfex_oms.core.events import Unmatched
from qfex_oms.core.snapshot import SETTLED_MISSING, settle_from_order_query
from qfex_oms.errors import InvalidArgument
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.codec import decode_request, encode, incoming_echo
from qfex_oms.protocol.enums import CancelIdType, ErrorCode, OrderStatus, OrderType, Side, TimeInForce

SYMBOLS = ("AAPL-USD", "TSLA-USD")
CLIENT_IDS = ("c0", "c1", "c2")
STRANGER_IDS = ("s0", "s1")  # client ids of another connection of the account
PRICE = Decimal(100)
USER = "0020ce8e-eaee-480e-8d7f-b9241d756ee5"
UNKNOWN_ORDER_ID = str(uuid.UUID(int=0xDEAD, version=4))
Key = tuple[str, str]

ADD_FATES = st.sampled_from(("ack",) * 8 + ("reject", "reject_no_id", "err", "lost"))
# "withdrawn": the shell's pacer held the frame past its deadline, so it never left (NOT_SENT).
# "cut": the exchange got the frame, then the socket died before its answer came back.
CANCEL_FATES = st.sampled_from(("ok",) * 8 + ("refuse_err", "refuse_status", "lost", "cut", "withdrawn"))
SIDES = st.sampled_from((Side.BUY, Side.SELL))
QUANTITIES = st.integers(1, 5)
REJECTION = OrderStatus.QUANTITY_GREATER_THAN_MAX_QUANTITY
GTC_LIMIT = (TimeInForce.GTC, OrderType.LIMIT)
IOC_KINDS = ((TimeInForce.IOC, OrderType.LIMIT), (TimeInForce.IOC, OrderType.MARKET))
ORDER_KINDS = (GTC_LIMIT, *IOC_KINDS)
_ENDS_AT_ONCE = (TimeInForce.IOC, TimeInForce.FOK)


# --------------------------------------------------------------------------- the fake exchange


@define(eq=False)
class ExOrder:
    order_id: str
    local_id: int  # ground truth: the local order whose add_order created it
    symbol: str
    side: Side
    order_type: OrderType
    tif: TimeInForce
    quantity: Decimal
    price: Decimal | None
    client_order_id: str
    remaining: Decimal
    is_open: bool = True
    updated: float = 0.0  # the exchange's update_time: a report older than one applied is stale

    @property
    def key(self) -> Key:
        return (self.symbol, self.client_order_id)

    @property
    def filled(self) -> Decimal:
        return self.quantity - self.remaining

    def response(self, status: OrderStatus, trade_id: str | None = None) -> m.OrderResponse:
        return m.OrderResponse(
            order_id=self.order_id, symbol=self.symbol, status=status, side=self.side,
            type=self.order_type, time_in_force=self.tif, quantity=self.quantity,
            price=self.price if self.price is not None else Decimal(0),
            quantity_remaining=self.remaining, client_order_id=self.client_order_id,
            take_profit=Decimal(0), stop_loss=Decimal(0), user_id=USER, trade_id=trade_id,
            update_time=self.updated,
        )


@define(eq=False)
class SnapshotReply:
    """get_user_orders + get_user_trades as captured at ``version`` (exchange state counter)."""

    fence: int
    version: int
    orders: m.AllOrdersResponse
    trades: tuple[m.Trade, ...]
    complete: bool = True  # False: several pages, and a resting row fell between two of them


@define(eq=False)
class Pending:
    reply: m.OrderResponse | m.FillResponse | m.Err | SnapshotReply
    channel: str  # "orders" (ordered: order_response, err, snapshot) or "fills" (free)
    key: Key | None  # the (symbol, client_order_id) whose local orders this reply can bind
    add_answer: bool = False  # the first answer to an add_order: it binds (or rejects) a pending order
    add_rejection: bool = False  # an add_order answer without a usable order_id


_ADOPTING = (OrderStatus.ACK, OrderStatus.FILLED, OrderStatus.CANCELLED, OrderStatus.CANCELLED_STP)


def _signature(order: Order) -> tuple[object, ...]:
    return (order.local_id, order.symbol, order.order_id, order.state, order.quantity, order.fill_total,
            order.leaves_floor, len(order.fills or ()), order.cancel_owed, order.needs_settlement)


def _order_id(n: int) -> str:
    return str(uuid.UUID(int=n, version=4))


# --------------------------------------------------------------------------- the machine


class CoreAgainstFakeExchange(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = OmsCore()
        self.orders: list[Order] = []
        self.by_local: dict[int, Order] = {}
        self.truth: dict[int, str | None] = {}  # local_id -> exchange order_id (None: never on the book)
        self.rejected: set[int] = set()  # local ids the exchange rejected
        self.ex: dict[str, ExOrder] = {}
        self.trades: list[m.Trade] = []
        self.pending: list[Pending] = []
        self.delivered_trades: set[str] = set()
        self.requests: list[CancelRequest] = []
        self.prev_remaining: dict[int, Decimal] = {}
        self.tainted: set[Key] = set()
        self.lossy: set[Key] = set()  # keys that lost a reply since the last resync
        self.dropped = False  # a reply was lost since the last resync
        self.version = 0
        self.next_id = 1
        self.fill_events = 0
        # The requests whose CancelFinished was published, by id(); kept alive so no id is reused
        # (the core makes requests of its own: an owed cancel sent again after a resync).
        self.finished: dict[int, CancelRequest] = {}
        self.cut_off: set[int] = set()  # local ids whose cancel the strategy asked and lost (owed)
        self.modified: set[int] = set()  # local ids the exchange resized (their remaining may grow)
        # Local id -> the size a modify asked for, until its answer reaches the core. Lost, it leaves
        # the size undecidable: "modified, then filled" and "filled part, modify refused, the rest
        # cancelled unheard" look alike (one trade, order gone), and the core settles FILLED.
        self.size_doubt: dict[int, Decimal] = {}
        self.modify_answers: dict[int, tuple[int, m.OrderResponse]] = {}  # id(answer) -> local id

    # ------------------------------------------------------------------ helpers

    def _fresh(self) -> int:
        self.next_id += 1
        return self.next_id

    def _push(self, reply: m.OrderResponse | m.FillResponse | m.Err | SnapshotReply, key: Key | None,
              **flags: bool) -> None:
        channel = "fills" if isinstance(reply, m.FillResponse) else "orders"
        self.pending.append(Pending(reply, channel, key, **flags))

    def _check_frame(self, frame: m.Request) -> None:
        assert decode_request(encode(frame)) == frame, f"codec round trip changed {frame!r}"
        if isinstance(frame, m.AddOrder):
            assert frame.symbol in SYMBOLS
            assert frame.side.known and frame.order_type.known and frame.order_time_in_force.known
            assert isinstance(frame.quantity, Decimal) and frame.quantity > 0
            assert isinstance(frame.client_order_id, str) and frame.client_order_id
        elif isinstance(frame, m.CancelOrder):
            assert isinstance(frame.order_id, str) and frame.order_id, f"cancel without an id: {frame!r}"
            assert frame.symbol in SYMBOLS
            assert frame.cancel_order_id_type in (CancelIdType.ORDER_ID, CancelIdType.CLIENT_ORDER_ID)
        else:
            raise AssertionError(f"unexpected frame {frame!r}")

    def _flush(self, cancel_fate: str = "ok") -> None:
        """Send what the core queued (cancels released by an ACK, retries) to the exchange."""
        frames = self.core.take_frames()
        lost = False
        for frame in frames:
            self._check_frame(frame)
            assert isinstance(frame, m.CancelOrder), f"core sent {frame!r} on its own"
            if cancel_fate in ("lost", "cut"):
                lost = True
                if cancel_fate == "cut":
                    self._exchange_cancel(frame, "ok")  # its answer dies with the socket below
            else:
                self._exchange_cancel(frame, cancel_fate)
        if lost:
            self._reconnect(keep_inflight=False)

    def _taint(self, key: Key | None) -> None:
        if key is not None:
            self.tainted.add(key)

    # ------------------------------------------------------------------ exchange side

    def _exchange_add(self, frame: m.AddOrder, order: Order, fate: str, ioc_fill: int, split: bool) -> None:
        self.version += 1
        key = (frame.symbol, frame.client_order_id or "")
        if fate in ("reject", "reject_no_id"):
            self.truth[order.local_id] = None
            self.rejected.add(order.local_id)
            oid = _order_id(self._fresh()) if fate == "reject" else ""
            self._push(m.OrderResponse(
                order_id=oid, symbol=frame.symbol, status=REJECTION, side=frame.side,
                type=frame.order_type, time_in_force=frame.order_time_in_force, quantity=frame.quantity,
                price=frame.price, quantity_remaining=frame.quantity, client_order_id=frame.client_order_id,
                user_id=USER), key, add_answer=True, add_rejection=True)
            return
        if fate == "err":
            self.truth[order.local_id] = None
            self.rejected.add(order.local_id)
            self._push(m.Err(ErrorCode.INVALID_ORDER, "invalid order", incoming_echo(frame)), key,
                       add_answer=True, add_rejection=True)
            return
        x = ExOrder(_order_id(self._fresh()), order.local_id, frame.symbol, frame.side, frame.order_type,
                    frame.order_time_in_force, frame.quantity, frame.price, frame.client_order_id or "",
                    frame.quantity)
        self.ex[x.order_id] = x
        self.truth[order.local_id] = x.order_id
        self._push(x.response(OrderStatus.ACK), key, add_answer=True)
        if x.tif in _ENDS_AT_ONCE:
            filled = min(Decimal(ioc_fill), x.quantity)
            parts = [Decimal(1), filled - 1] if split and filled >= 2 else [filled] if filled else []
            for part in parts:
                self._trade(x, part)
            x.is_open = False
            if not parts:
                self._push(x.response(OrderStatus.CANCELLED), x.key)

    def _trade(self, x: ExOrder, quantity: Decimal) -> None:
        self.version += 1
        trade_id = f"t{self._fresh()}"
        x.remaining -= quantity
        x.updated = float(self.version)
        if x.remaining == 0:
            x.is_open = False
        price = x.price if x.price is not None else PRICE
        self.trades.append(m.Trade(trade_id, x.symbol, price, quantity, x.side, x.order_id, fee=Decimal(0),
                                   order_type=x.order_type, tif=x.tif, client_order_id=x.client_order_id))
        self._push(m.FillResponse(
            trade_id=trade_id, order_id=x.order_id, symbol=x.symbol, price=price, quantity=quantity,
            side=x.side, client_order_id=x.client_order_id, remaining_quantity=x.remaining,
            aggressor_side=x.side, fee=Decimal(0), order_type=x.order_type, tif=x.tif, order_price=x.price,
            execution_type="NEW", user_id=USER), x.key)
        self._push(x.response(OrderStatus.FILLED, trade_id), x.key)

    def _exchange_cancel(self, frame: m.CancelOrder, fate: str) -> None:
        self.version += 1
        mode = frame.cancel_order_id_type
        if mode is CancelIdType.ORDER_ID:
            x = self.ex.get(frame.order_id)
            key = x.key if x is not None else None
            targets = [x] if x is not None and x.is_open and x.symbol == frame.symbol else []
        else:
            assert mode is CancelIdType.CLIENT_ORDER_ID
            key = (frame.symbol, frame.order_id)
            targets = [x for x in self.ex.values()
                       if x.is_open and x.symbol == frame.symbol and x.client_order_id == frame.order_id]
        by_id = mode is CancelIdType.ORDER_ID
        if fate == "refuse_err" or (fate == "refuse_status" and not (targets and by_id)):
            self._push(m.Err(ErrorCode.RATE_LIMITED, "too many requests", incoming_echo(frame)), key)
            return
        if fate == "refuse_status":
            self._push(targets[0].response(OrderStatus.RATE_LIMITED), key)
            return
        if not targets:  # the id sent is echoed in order_id, like the simulator (its choice C23)
            self._push(m.OrderResponse(
                order_id=frame.order_id, symbol=frame.symbol, status=OrderStatus.NO_SUCH_ORDER,
                client_order_id=frame.order_id if mode is CancelIdType.CLIENT_ORDER_ID else "",
                user_id=USER), key)
            return
        for x in targets:
            x.is_open = False
            x.updated = float(self.version)
            self._push(x.response(OrderStatus.CANCELLED), x.key)

    def _capture(self, shifted: int | None = None) -> SnapshotReply:
        """The snapshot as QFEX would page it; ``shifted`` loses one resting row between two pages."""
        rows = [self._row(x) for x in self.ex.values() if x.is_open]
        if shifted is not None and rows:
            del rows[shifted % len(rows)]
        return SnapshotReply(self.core.seq, self.version, m.AllOrdersResponse(orders=tuple(rows)),
                             tuple(self.trades), complete=shifted is None)

    @staticmethod
    def _row(x: ExOrder) -> m.OrderResponse:
        return x.response(OrderStatus.ACK if x.filled == 0 else OrderStatus.FILLED)

    # ------------------------------------------------------------------ delivery

    def _realistic(self) -> list[int]:
        """Indices deliverable now: the head of the ordered channel and any fill."""
        found, head = [], False
        for i, p in enumerate(self.pending):
            if p.channel == "orders":
                if not head:
                    found.append(i)
                    head = True
            else:
                found.append(i)
        return found

    def _deliver(self, p: Pending) -> None:
        reply = p.reply
        answered = self.modify_answers.pop(id(reply), None)
        if answered is not None:
            self.size_doubt.pop(answered[0], None)
        if isinstance(reply, SnapshotReply):
            self._apply_snapshot(reply, disconnected=False)
            return
        if isinstance(reply, m.FillResponse):
            self.delivered_trades.add(reply.trade_id)
        self.core.on_reply(reply)
        self._flush()

    @rule()
    def keep_open_totals(self) -> None:
        """Pre-trade risk starts keeping the open totals (``core.open_totals``) at any moment: counted
        from the book then, kept by every later step; ``check_invariants`` recomputes them."""
        self.core.tracker.keep_open_totals()

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63))
    def deliver(self, pick: int) -> None:
        choices = self._realistic()
        if choices:
            self._deliver(self.pending.pop(choices[pick % len(choices)]))

    @precondition(lambda self: self.pending)
    @rule(picks=st.lists(st.integers(0, 63), min_size=2, max_size=6))
    def deliver_several(self, picks: list[int]) -> None:
        for pick in picks:
            choices = self._realistic()
            if not choices:
                return
            self._deliver(self.pending.pop(choices[pick % len(choices)]))

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63))
    def deliver_out_of_order(self, pick: int) -> None:
        index = pick % len(self.pending)
        p = self.pending[index]
        if index not in self._realistic():
            self._taint(p.key)
            if p.channel == "orders":  # it overtook everything ahead of it in the ordered channel
                for ahead in self.pending[:index]:
                    if ahead.channel == "orders":
                        self._taint(ahead.key)
        self._deliver(self.pending.pop(index))

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63))
    def duplicate(self, pick: int) -> None:
        choices = self._realistic()
        if not choices:
            return
        p = self.pending.pop(choices[pick % len(choices)])
        if p.add_rejection:  # an id-less rejection seen again rejects the next pending sibling
            self._taint(p.key)
        self.pending.append(Pending(p.reply, p.channel, p.key, p.add_answer, p.add_rejection))
        self._deliver(p)

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63), any_reply=st.booleans())
    def drop(self, pick: int, any_reply: bool) -> None:
        choices = [i for i, p in enumerate(self.pending) if any_reply or not p.add_answer]
        if not choices:
            return
        p = self.pending.pop(choices[pick % len(choices)])
        self.dropped = True
        if p.key is not None:
            self.lossy.add(p.key)
        if p.add_answer:  # the next sibling's ACK will bind this order: undecidable from then on
            self._taint(p.key)

    # ------------------------------------------------------------------ strategy commands

    def _place(self, symbol: str, side: Side, kind: tuple[TimeInForce, OrderType], qty: int, cid: str,
               fate: str, ioc_fill: int = 0, split: bool = False) -> None:
        tif, order_type = kind
        price = None if order_type is OrderType.MARKET else PRICE
        order = self.core.place_order(symbol, side, order_type, tif, Decimal(qty), price, cid)
        assert order.state is OrderState.PENDING_NEW and order.order_id is None
        self.orders.append(order)
        self.by_local[order.local_id] = order
        frames = self.core.take_frames()
        assert len(frames) == 1
        (frame,) = frames
        self._check_frame(frame)
        assert frame == m.AddOrder(symbol, side, order_type, tif, Decimal(qty), price, cid)
        if fate == "lost":  # the send failed: the socket is gone, reconnect and resync
            self.truth[order.local_id] = None
            self._reconnect(keep_inflight=False)
        else:
            self._exchange_add(frame, order, fate, ioc_fill, split)

    @rule(symbol=st.sampled_from(SYMBOLS), side=SIDES, qty=QUANTITIES, cid=st.sampled_from(CLIENT_IDS),
          fate=ADD_FATES)
    def place_gtc(self, symbol: str, side: Side, qty: int, cid: str, fate: str) -> None:
        self._place(symbol, side, GTC_LIMIT, qty, cid, fate)

    @rule(symbol=st.sampled_from(SYMBOLS), side=SIDES, kind=st.sampled_from(IOC_KINDS), qty=QUANTITIES,
          cid=st.sampled_from(CLIENT_IDS), fate=ADD_FATES, ioc_fill=st.integers(0, 5), split=st.booleans())
    def place_ioc(self, symbol: str, side: Side, kind: tuple[TimeInForce, OrderType], qty: int, cid: str,
                  fate: str, ioc_fill: int, split: bool) -> None:
        self._place(symbol, side, kind, qty, cid, fate, ioc_fill, split)

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 63), side=SIDES, kind=st.sampled_from(ORDER_KINDS), qty=QUANTITIES,
          fate=ADD_FATES, ioc_fill=st.integers(0, 5), split=st.booleans())
    def place_sibling(self, pick: int, side: Side, kind: tuple[TimeInForce, OrderType], qty: int,
                      fate: str, ioc_fill: int, split: bool) -> None:
        """Another order under the (symbol, client_order_id) of a recent one: QFEX ids are not unique."""
        recent = self.orders[-4:]
        model = recent[pick % len(recent)]
        self._place(model.symbol, side, kind, qty, model.client_order_id, fate, ioc_fill, split)

    def _cancel(self, intent: CancelIntent, retry: bool, fate: str) -> CancelRequest:
        request = self.core.cancel(intent, retry=retry)
        if not any(request is r for r in self.requests):
            self.requests.append(request)
        if fate == "withdrawn":
            # What the manager does when _transmit says NOT_SENT: these frames never reach the exchange.
            frames = self.core.take_frames()
            for frame in frames:
                self._check_frame(frame)
            if frames:
                self.core.withdraw_cancel(request, "NOT_SENT")
            self._flush()
            return request
        self._flush(fate)
        return request

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 63), retry=st.booleans(), fate=CANCEL_FATES)
    def cancel_order(self, pick: int, retry: bool, fate: str) -> None:
        order = self.orders[pick % len(self.orders)]
        self._cancel(CancelIntent(order), retry, fate)

    @precondition(lambda self: any(not r.done for r in self.requests))
    @rule(fate=CANCEL_FATES)
    def retry_timer_fires(self, fate: str) -> None:
        """The shell's retry timer: every cancel still unanswered is asked again with ``retry=True``."""
        for request in [r for r in self.requests if not r.done]:
            if request.mode is CancelIdType.CLIENT_ORDER_ID and request.value:
                intent = CancelIntent(client_order_id=request.value, symbol=request.symbol)
            else:
                live = [o for o in request.targets if o.state.is_live]
                if not live:
                    continue
                intent = CancelIntent(live[0])
            self._cancel(intent, True, fate)
            if fate == "lost":
                return

    @rule(symbol=st.sampled_from(SYMBOLS), cid=st.sampled_from(CLIENT_IDS), retry=st.booleans(),
          fate=CANCEL_FATES)
    def cancel_client_order_id(self, symbol: str, cid: str, retry: bool, fate: str) -> None:
        self._cancel(CancelIntent(client_order_id=cid, symbol=symbol), retry, fate)

    @rule(pick=st.integers(0, 63), wrong_symbol=st.booleans(), retry=st.booleans(),
          fate=CANCEL_FATES)
    def cancel_order_id(self, pick: int, wrong_symbol: bool, retry: bool, fate: str) -> None:
        ids = [*self.ex, UNKNOWN_ORDER_ID]
        order_id = ids[pick % len(ids)]
        x = self.ex.get(order_id)
        symbol = x.symbol if x is not None else SYMBOLS[0]
        if wrong_symbol:
            symbol = SYMBOLS[1] if symbol == SYMBOLS[0] else SYMBOLS[0]
        known = self.core.tracker.by_order_id(order_id)
        try:
            self._cancel(CancelIntent(order_id=order_id, symbol=symbol), retry, fate)
        except CancelError:
            assert known is not None and known.symbol != symbol
            assert self.core.take_frames() == []

    @precondition(lambda self: any(o.state is OrderState.PENDING_NEW for o in self.orders))
    @rule(pick=st.integers(0, 63))
    def ack_timeout(self, pick: int) -> None:
        waiting = [o for o in self.orders if o.state is OrderState.PENDING_NEW]
        self.core.order_lost(waiting[pick % len(waiting)], "TIMEOUT")
        self._flush()

    @precondition(lambda self: any(not r.done for r in self.requests))
    @rule(pick=st.integers(0, 63))
    def cancel_timeout(self, pick: int) -> None:
        waiting = [r for r in self.requests if not r.done]
        request = waiting[pick % len(waiting)]
        # The strategy's cancel of every order no answer came for is cut off: it is owed.
        self.cut_off.update(o.local_id for o in request.targets
                            if o.state.is_live and o not in request.refused)
        self.core.cancel_lost(request, "TIMEOUT")
        self._flush()

    # ------------------------------------------------------------------ hostile and foreign replies

    @rule(symbol=st.sampled_from(SYMBOLS), side=SIDES, qty=QUANTITIES, cid=st.sampled_from(STRANGER_IDS),
          announced=st.booleans())
    def stranger_places(self, symbol: str, side: Side, qty: int, cid: str, announced: bool) -> None:
        """Another connection of the account places an order; its order_responses may reach us."""
        self.version += 1
        x = ExOrder(_order_id(self._fresh()), -1, symbol, side, OrderType.LIMIT, TimeInForce.GTC,
                    Decimal(qty), PRICE, cid, Decimal(qty))
        self.ex[x.order_id] = x
        if announced:
            self._push(x.response(OrderStatus.ACK), x.key)

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63))
    def misnamed_reply(self, pick: int) -> None:
        """A copy of a reply about one of our orders, naming the other symbol: the book must not move."""
        replies = [p.reply for p in self.pending if isinstance(p.reply, (m.OrderResponse, m.FillResponse))
                   and (not isinstance(p.reply, m.OrderResponse) or p.reply.status in _ADOPTING)]
        if not replies:
            return
        reply = replies[pick % len(replies)]
        x = self.ex.get(reply.order_id)
        if x is None or x.local_id < 0:
            return  # a stranger's: nothing tells a misnamed one from a real one
        other = SYMBOLS[1] if reply.symbol == SYMBOLS[0] else SYMBOLS[0]
        tracker, cid = self.core.tracker, reply.client_order_id or ""
        tracked = tracker.by_order_id(reply.order_id)
        if tracked is None and (not tracker.pending(reply.symbol, cid) or tracker.pending(other, cid)):
            return  # no order of ours can be told to be the one it names
        before = [_signature(o) for o in tracker.orders()]
        self.core.on_reply(messagekit.replace(reply, symbol=other))
        assert [_signature(o) for o in tracker.orders()] == before, "a misnamed reply moved the book"
        assert self.core.take_frames() == []

    # ------------------------------------------------------------------ exchange activity

    @precondition(lambda self: any(x.is_open for x in self.ex.values()))
    @rule(pick=st.integers(0, 63), qty=st.integers(1, 5))
    def exchange_fills(self, pick: int, qty: int) -> None:
        resting = [x for x in self.ex.values() if x.is_open]
        x = resting[pick % len(resting)]
        self._trade(x, min(Decimal(qty), x.remaining))

    @precondition(lambda self: any(x.is_open for x in self.ex.values()))
    @rule(pick=st.integers(0, 63))
    def exchange_cancels_stp(self, pick: int) -> None:
        resting = [x for x in self.ex.values() if x.is_open]
        x = resting[pick % len(resting)]
        self.version += 1
        x.is_open = False
        self._push(x.response(OrderStatus.CANCELLED_STP), x.key)

    # ------------------------------------------------------------------ reconciliation

    @precondition(lambda self: self.orders)
    @rule(shifted=st.none() | st.integers(0, 63))
    def request_snapshot(self, shifted: int | None) -> None:
        """get_user_orders + get_user_trades on the live connection: answered in the ordered channel.
        ``shifted``: several pages, and an order leaving between two of them hid a resting one."""
        self._push(self._capture(shifted), None)

    @precondition(lambda self: self.orders)
    @rule(pick=st.integers(0, 63), qty=QUANTITIES, fate=st.sampled_from(("ok", "ok", "lost", "cut")))
    def modify(self, pick: int, qty: int, fate: str) -> None:
        """A quantity modify; its answer may be lost (in flight until the disconnect) or cut off.
        The book must then learn the new size from a later report or row, with its own leaves."""
        live = [o for o in self.orders if o.state is OrderState.OPEN and o.order_id is not None
                and o.order_id == self.truth.get(o.local_id)]
        if not live:
            return
        order = live[pick % len(live)]
        try:
            self.core.modify_order(order, None, Decimal(qty))
        except InvalidArgument:
            return  # a modify of it already in flight
        (frame,) = self.core.take_frames()
        assert isinstance(frame, m.ModifyOrder) and frame.order_id == order.order_id
        x = self.ex[order.order_id or ""]
        self.version += 1
        if x.is_open and x.filled == 0:
            x.quantity = x.remaining = Decimal(qty)
            x.updated = float(self.version)
            self.modified.add(x.local_id)
            answer = x.response(OrderStatus.MODIFIED)
        elif x.is_open:
            answer = x.response(OrderStatus.CANNOT_MODIFY_PARTIAL_FILL)
        else:
            answer = m.OrderResponse(order_id=x.order_id, symbol=x.symbol,
                                     status=OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER, user_id=USER)
        self.size_doubt[x.local_id] = Decimal(qty)
        if fate == "ok":
            self._push(answer, x.key)
            self.modify_answers[id(answer)] = (x.local_id, answer)
        elif fate == "lost":
            self.dropped = True
            self.lossy.add(x.key)
        else:
            self._reconnect(keep_inflight=False)

    @precondition(lambda self: self.orders)
    @rule(keep_inflight=st.booleans(), shifted=st.none() | st.integers(0, 63))
    def reconnect(self, keep_inflight: bool, shifted: int | None) -> None:
        self._reconnect(keep_inflight, shifted)

    def _reconnect(self, keep_inflight: bool, shifted: int | None = None) -> None:
        # Every cancel in flight (sent, or held for an ACK) is cut off by the disconnect: owed.
        self.cut_off.update(o.local_id for o in self.core.tracker.orders()
                            if o.state is OrderState.PENDING_CANCEL or o.cancel_requested)
        self.core.connection_lost()
        for request in self.requests:  # every request in flight fails with the socket
            assert request.done, request
        for order in self.core.tracker.orders():  # nothing is left "in flight"
            if (order.symbol, order.client_order_id) in self.tainted:
                continue
            assert order.state not in (OrderState.PENDING_NEW, OrderState.PENDING_CANCEL), order.describe()
        if keep_inflight:  # replies of the dead socket still arriving: not QFEX, but must not break
            for p in self.pending:
                self._taint(p.key)
        else:
            self.pending.clear()
        # Every request has failed and the snapshot below settles every order: what was lost is moot.
        self.dropped = False
        self.lossy.clear()
        self._flush()
        self._apply_snapshot(self._capture(shifted), disconnected=True)

    def _apply_snapshot(self, snap: SnapshotReply, *, disconnected: bool) -> None:
        tracker = self.core.tracker
        waiting = Counter((o.symbol, o.client_order_id) for o in tracker.pending_new())
        touched = {o.local_id: o.seq for o in tracker.orders()}
        diff = apply_snapshot(self.core, snap.fence, snap.orders, snap.trades, complete=snap.complete)
        unresolved = set(diff.unresolved)
        for order_id in unresolved:  # several pending orders fit it: which is which is undecidable
            key = self.ex[order_id].key
            assert key in self.tainted or waiting[key] >= 2, f"gave up on {order_id} with one candidate"
            self._taint(key)
        self.delivered_trades.update(t.trade_id for t in snap.trades if t.order_id not in unresolved)
        if snap.complete:
            assert diff.unconfirmed == [], "a complete snapshot leaves nothing unconfirmed"
        unbound = self._query_unconfirmed(diff.unconfirmed)
        for local_id in unbound:
            # No id to ask by: only a later complete snapshot settles it, and until then the replies
            # of a sibling under its client id may bind it (submit order): undecidable, like a drop.
            order = tracker.by_local_id(local_id)
            if order is not None:
                self._taint((order.symbol, order.client_order_id))
        current = snap.version == self.version and not any(p.channel == "orders" for p in self.pending)
        frames = self.core.take_frames()
        if current:
            self._check_owed(snap.fence, touched, frames, unbound)
            self._check_settled(snap.fence, disconnected, unbound)
        for frame in frames:  # what the core asked after the resync (owed cancels) goes out now
            self._check_frame(frame)
            assert isinstance(frame, m.CancelOrder), f"core sent {frame!r} on its own"
            self._exchange_cancel(frame, "ok")
        self._flush()

    def _query_unconfirmed(self, unconfirmed: list[Order]) -> set[int]:
        """What the shell does after a partial snapshot: get_order for each order it did not show,
        answered from the exchange as it is now. Returns the orders with no id to ask by."""
        unbound = set()
        for order in unconfirmed:
            if order.order_id is None:
                unbound.add(order.local_id)
                continue
            x = self.ex.get(order.order_id)
            rows = (self._row(x),) if x is not None and x.is_open and x.symbol == order.symbol else ()
            settle_from_order_query(self.core, self.core.seq, order, m.AllOrdersResponse(orders=rows))
        return unbound

    def _check_owed(self, fence: int, touched: dict[int, int], frames: list[m.Request],
                    unbound: set[int]) -> None:
        """A cancel cut off is owed: an order the exchange still holds open gets it again, never a
        quiet OPEN (design.md "A cancel intent is owed until the exchange settles it")."""
        cancelled_ids = {f.order_id for f in frames if isinstance(f, m.CancelOrder)}
        for local_id in list(self.cut_off):
            order = self.core.tracker.by_local_id(local_id)
            if order is None or order.state.is_terminal:
                self.cut_off.discard(local_id)
                continue
            if (order.symbol, order.client_order_id) in self.tainted or touched.get(local_id, 0) > fence:
                continue
            x = self.ex.get(self.truth.get(local_id) or order.order_id or "")
            if x is None or not x.is_open or local_id in unbound:
                continue
            assert order.cancel_owed, f"the cut-off cancel of {order.describe()} was forgotten"
            assert order.state is OrderState.PENDING_CANCEL, f"owed but {order.describe()}"
            in_flight = self.core.cancels.open_for(order) is not None
            assert x.order_id in cancelled_ids or in_flight, f"owed cancel not sent: {order.describe()}"

    def _check_settled(self, fence: int, disconnected: bool, unbound: set[int]) -> None:
        """The snapshot is the exchange's current state: the book must now agree with it."""
        tracker = self.core.tracker
        for x in self.ex.values():
            if x.local_id < 0:
                self._check_stranger_settled(x, fence)
                continue
            if x.key in self.tainted or x.local_id in unbound:
                continue
            local = self.by_local[x.local_id]
            if local.seq > fence:
                continue
            assert local.order_id in (None, x.order_id)
            if x.is_open:
                assert local.order_id == x.order_id, f"{x.order_id} rests but its order is not bound"
                assert local.state.is_live, f"{x.order_id} rests on the exchange, locally {local.state}"
                assert local.remaining_quantity == x.remaining
            else:
                assert local.state.is_terminal, f"{x.order_id} is closed, locally {local.state}"
                assert local.filled_quantity == x.filled
                assert (local.state is OrderState.FILLED) == (x.remaining == 0) or \
                    self._filled_undecidable(local, x)
            assert tracker.by_order_id(x.order_id) in (None, local)
        for order in self.orders:
            if (order.symbol, order.client_order_id) in self.tainted or order.seq > fence:
                continue
            if order.local_id in unbound:
                continue
            if self.truth[order.local_id] is None:
                assert order.state in (OrderState.REJECTED, OrderState.CANCELLED), order.describe()
            if disconnected:
                assert order.state in (OrderState.OPEN, OrderState.FILLED, OrderState.CANCELLED,
                                       OrderState.REJECTED) or (
                    order.state is OrderState.PENDING_CANCEL and order.cancel_owed), order.describe()
                assert not order.needs_settlement and not order.cancel_requested, order.describe()

    def _check_stranger_settled(self, x: ExOrder, fence: int) -> None:
        """Another connection's order, as the book adopted it (if it knows it at all)."""
        local = self.core.tracker.by_order_id(x.order_id)
        if local is None or local.seq > fence:  # unknown, or learnt or cancelled after the snapshot
            return
        assert local.quantity <= x.quantity, f"adopted {local.describe()} grew past the exchange's"
        if x.is_open:
            assert local.state.is_live, f"{x.order_id} rests on the exchange, locally {local.state}"
            assert local.remaining_quantity == x.remaining, local.describe()
        else:
            assert local.state.is_terminal, f"{x.order_id} is closed, locally {local.state}"
            assert local.filled_quantity == x.filled, local.describe()

    # ------------------------------------------------------------------ invariants

    def _check_transition(self, event: OrderUpdated) -> None:
        order, previous, state = event.order, event.previous, event.state
        if previous.is_terminal:
            assert state is previous or (previous, state) == (OrderState.CANCELLED, OrderState.FILLED), (
                f"terminal {previous} moved to {state}: {order.describe()}")
        if state is previous:
            return
        clean = (order.symbol, order.client_order_id) not in self.tainted and not order.adopted
        x = self.ex.get(self.truth.get(order.local_id) or "") if clean else None
        if state is OrderState.CANCELLED:
            assert event.status in ("CANCELLED", "CANCELLED_STP", "FILLED", SETTLED_MISSING), event
            if not clean:
                return
            if event.status == SETTLED_MISSING:
                assert x is None or not x.is_open, f"settled as gone but rests: {order.describe()}"
            elif event.status == "FILLED":  # an IOC/MARKET that filled part and expired the rest
                assert order.time_in_force in _ENDS_AT_ONCE or order.order_type is OrderType.MARKET
                assert x is not None and not x.is_open
            else:
                assert x is not None and not x.is_open and x.remaining > 0, (
                    f"CANCELLED although the exchange did not cancel it: {order.describe()}")
        elif state is OrderState.REJECTED and clean:
            assert order.local_id in self.rejected, f"REJECTED without a rejection: {order.describe()}"
        elif state is OrderState.FILLED and clean:
            assert x is not None and (x.remaining == 0 or self._filled_undecidable(order, x)), (
                f"FILLED but not filled: {order.describe()}")

    @invariant()
    def book_agrees_with_exchange(self) -> None:
        tracker = self.core.tracker
        assert tracker.check_invariants() == []
        for event in self.core.take_events():
            if isinstance(event, OrderUpdated):
                self._check_transition(event)
            elif isinstance(event, FillReceived):
                self.fill_events += 1
            elif isinstance(event, Unmatched) and isinstance(event.reply, m.FillResponse):
                self._fill_deferred(event.reply)
            elif isinstance(event, CancelFinished):
                assert event.request.done, event
                assert id(event.request) not in self.finished, f"finished twice: {event.request!r}"
                self.finished[id(event.request)] = event.request
        fills = 0
        for order in tracker.orders():
            own = order.fills or []
            fills += len(own)
            assert len({f.trade_id for f in own}) == len(own)
            assert order.fill_total == sum((f.quantity for f in own), Decimal(0))
            filled, remaining = order.filled_quantity, order.remaining_quantity
            assert filled >= 0 and remaining >= 0, order.describe()
            before = self.prev_remaining.get(order.local_id)
            assert before is None or remaining <= before or order.local_id in self.modified, (
                f"remaining grew {before} -> {remaining}")
            self.prev_remaining[order.local_id] = remaining
            key = (order.symbol, order.client_order_id)
            if order.client_order_id in STRANGER_IDS:
                self._check_stranger(order)
                continue
            if key in self.tainted:
                continue
            assert not order.adopted, f"adopted {order.describe()} though this core placed every order"
            assert filled <= order.quantity, order.describe()
            truth = self.truth.get(order.local_id)
            assert order.order_id in (None, truth), f"{order.describe()} bound to the wrong exchange order"
            x = self.ex.get(truth) if truth else None
            if x is not None:
                assert filled <= x.filled, f"{order.describe()} claims more than the exchange filled"
            if order.state is OrderState.FILLED:
                assert x is not None and (x.remaining == 0 or self._filled_undecidable(order, x)), (
                    order.describe())
            elif order.state is OrderState.CANCELLED:
                assert x is None or not x.is_open, order.describe()
            elif order.state is OrderState.REJECTED:
                assert order.local_id in self.rejected, order.describe()
        held = {f.trade_id for f in self.core.held_fills()}
        assert tracker.trade_ids.isdisjoint(held), "a held fill was also applied"
        assert fills + len(held) == len(self.delivered_trades), "a fill was lost or counted twice"
        assert tracker.trade_ids | held == self.delivered_trades
        assert self.fill_events == len(tracker.trade_ids), "one FillReceived per distinct trade"
        self._check_requests()
        if not self.pending:
            self._check_quiescent()

    def _fill_deferred(self, f: m.FillResponse) -> None:
        """A fill the core dropped as possibly misnamed (its client id waits for an ACK on the other
        symbol, fills.py ``_place_fill``): not lost, deferred. The next snapshot's trades bring it
        (and count it in ``delivered_trades`` again); until then its key's book is behind."""
        if f.trade_id in self.core.tracker.trade_ids or any(
                h.trade_id == f.trade_id for h in self.core.held_fills()):
            return  # counted or held under its own name: this was a misnamed copy
        self.delivered_trades.discard(f.trade_id)
        self.dropped = True
        self.lossy.add((f.symbol, f.client_order_id or ""))

    def _filled_undecidable(self, order: Order, x: ExOrder) -> bool:
        """FILLED where the exchange cancelled the rest is no error when a modify's answer was lost
        and the exchange filled exactly the size it asked for: the core cannot tell (see
        ``size_doubt``; snapshot.settle_gone chooses FILLED). The filled quantity is still exact."""
        asked = self.size_doubt.get(order.local_id)
        return asked is not None and not x.is_open and x.filled == asked and \
            order.filled_quantity == x.filled

    def _check_stranger(self, order: Order) -> None:
        """An adopted order never claims more than the exchange filled, nor a larger size."""
        x = self.ex.get(order.order_id or "")
        assert x is not None and x.local_id < 0, f"adopted {order.describe()} is no stranger's order"
        assert order.filled_quantity <= x.filled, f"{order.describe()} claims more than the exchange filled"
        assert order.quantity <= x.quantity, f"adopted {order.describe()} grew past the exchange's size"
        if order.state is OrderState.CANCELLED:
            assert not x.is_open, f"adopted {order.describe()} cancelled while it rests"

    def _check_requests(self) -> None:
        """CANCELLED only when it ended orders and none it covers is left; only ones the exchange ended."""
        for request in self.requests:
            if not request.done:
                keys = {(o.symbol, o.client_order_id) for o in request.targets}
                if request.mode is CancelIdType.CLIENT_ORDER_ID:
                    keys.add((request.symbol, request.value))
                x = self.ex.get(request.value)
                if x is not None:
                    keys.add(x.key)
                assert self.pending or self.dropped or keys & self.tainted, (
                    f"every reply arrived but the cancel never finished: {request!r}")
                continue
            if request.status == "CANCELLED":  # else some order it covers was still live when it ended
                assert request.cancelled and all(o.state.is_terminal for o in request.targets), request
            for order in request.cancelled:
                assert order.state in (OrderState.CANCELLED, OrderState.FILLED), order.describe()
                if (order.symbol, order.client_order_id) in self.tainted or order.adopted:
                    continue
                x = self.ex.get(self.truth.get(order.local_id) or "")
                assert x is not None and not x.is_open and x.remaining > 0, (
                    f"{request!r} lists {order.describe()} as cancelled, the exchange did not cancel it")

    def _check_quiescent(self) -> None:
        """Nothing in flight and nothing lost for a key: its orders must match the exchange exactly."""
        for order in self.orders:
            key = (order.symbol, order.client_order_id)
            if key in self.tainted or key in self.lossy:
                continue
            x = self.ex.get(self.truth[order.local_id] or "")
            if x is None:
                assert order.state.is_terminal, order.describe()
            elif x.is_open:
                assert order.state in (OrderState.OPEN, OrderState.UNKNOWN), order.describe()
                assert order.order_id == x.order_id, order.describe()
                assert order.remaining_quantity == x.remaining, order.describe()
            else:
                assert order.state.is_terminal, f"{order.describe()}: the exchange closed it"
                assert order.filled_quantity == x.filled, order.describe()


# QFEX_STATEFUL_EXAMPLES=5000 for a long run; the default keeps tests/core well under a minute.
EXAMPLES = int(os.environ.get("QFEX_STATEFUL_EXAMPLES", "150"))
CoreAgainstFakeExchange.TestCase.settings = settings(max_examples=EXAMPLES, stateful_step_count=40,
                                                     deadline=None)
TestCoreAgainstFakeExchange = CoreAgainstFakeExchange.TestCase


# --------------------------------------------------------------------------- regressions of the bugs found
# Each is the machine's failing example, shrunk by hand to the core calls that matter. They assert the
# behaviour the design asks for and are expected to fail until the core is fixed.

SYM = SYMBOLS[0]


def _place(core: OmsCore, cid: str, qty: int = 1, tif: TimeInForce = TimeInForce.GTC) -> Order:
    order = core.place_order(SYM, Side.BUY, OrderType.LIMIT, tif, Decimal(qty), PRICE, cid)
    core.take_frames()
    return order


def _resp(order_id: str, status: OrderStatus, cid: str, qty: int = 1, remaining: int | None = None,
          tif: TimeInForce = TimeInForce.GTC, trade_id: str | None = None) -> m.OrderResponse:
    return m.OrderResponse(order_id=order_id, symbol=SYM, status=status, side=Side.BUY, type=OrderType.LIMIT,
                           time_in_force=tif, quantity=Decimal(qty), price=PRICE,
                           quantity_remaining=Decimal(qty if remaining is None else remaining),
                           client_order_id=cid, trade_id=trade_id)


def _fill(order_id: str, cid: str, qty: int, remaining: int, trade_id: str) -> m.FillResponse:
    return m.FillResponse(trade_id=trade_id, order_id=order_id, symbol=SYM, price=PRICE,
                          quantity=Decimal(qty), side=Side.BUY, client_order_id=cid,
                          remaining_quantity=Decimal(remaining))


def _no_such(order_id: str, cid: str = "") -> m.OrderResponse:
    return m.OrderResponse(order_id=order_id, symbol=SYM, status=OrderStatus.NO_SUCH_ORDER,
                           client_order_id=cid)


def test_bug1_fill_overtaking_a_siblings_ack_binds_the_wrong_order() -> None:
    core = OmsCore()
    a = _place(core, "c0", qty=1)  # GTC, will rest
    b = _place(core, "c0", qty=1, tif=TimeInForce.IOC)  # fills at once
    core.on_reply(_fill("XB", "c0", 1, 0, "t1"))  # the fills channel overtakes a's ACK
    core.on_reply(_resp("XA", OrderStatus.ACK, "c0"))
    core.on_reply(_resp("XB", OrderStatus.ACK, "c0", tif=TimeInForce.IOC))
    core.on_reply(_resp("XB", OrderStatus.FILLED, "c0", remaining=0, tif=TimeInForce.IOC, trade_id="t1"))
    assert core.tracker.check_invariants() == []
    assert (a.order_id, a.state, a.filled_quantity) == ("XA", OrderState.OPEN, Decimal(0))
    assert (b.order_id, b.state, b.filled_quantity) == ("XB", OrderState.FILLED, Decimal(1))


def test_bug2_snapshot_row_binds_the_first_pending_sibling() -> None:
    core = OmsCore()
    ioc = _place(core, "c0", qty=1, tif=TimeInForce.IOC)  # expired at once; its answers die with the socket
    gtc = _place(core, "c0", qty=2)  # rests on the book
    core.connection_lost()
    rows = m.AllOrdersResponse(orders=(_resp("XG", OrderStatus.ACK, "c0", qty=2),))
    apply_snapshot(core, core.seq, rows, ())
    assert (gtc.order_id, gtc.state) == ("XG", OrderState.OPEN), "the resting order was settled as gone"
    assert ioc.state is OrderState.CANCELLED and ioc.order_id is None


def test_bug3_retry_of_a_deferred_cancel_sends_an_empty_order_id() -> None:
    core = OmsCore()
    first = _place(core, "c0", tif=TimeInForce.IOC)
    second = _place(core, "c0")
    core.cancel(CancelIntent(second))  # a sibling shares c0: wait for the ACK
    assert core.take_frames() == []
    core.on_reply(_resp("X1", OrderStatus.ACK, "c0", tif=TimeInForce.IOC))
    core.on_reply(_resp("X1", OrderStatus.CANCELLED, "c0", tif=TimeInForce.IOC))  # the sibling is gone
    assert first.state is OrderState.CANCELLED and second.order_id is None
    core.cancel(CancelIntent(second), retry=True)  # the retry timer fires before second's ACK
    frames = core.take_frames()
    assert all(isinstance(f, m.CancelOrder) and f.order_id for f in frames), frames


def test_bug4_no_such_order_for_a_client_id_cancel_binds_a_new_pending_order() -> None:
    core = OmsCore()
    request = core.cancel(CancelIntent(client_order_id="c0", symbol=SYM))  # nothing rests under c0
    core.take_frames()
    order = _place(core, "c0")  # placed while the answer is on its way
    core.on_reply(_no_such("c0", "c0"))  # the id sent is echoed (simulator choice C23)
    core.on_reply(_resp("X1", OrderStatus.ACK, "c0"))
    assert request.done and request.status == "NO_SUCH_ORDER"
    assert (order.order_id, order.state, order.needs_settlement) == ("X1", OrderState.OPEN, False)
    assert len(core.tracker) == 1, "the real ACK was adopted as a stranger"


def _orphan_by_repeat(core: OmsCore) -> list[CancelRequest]:
    return [core.cancel(CancelIntent(order_id="X9", symbol=SYM)) for _ in range(2)]


def _orphan_by_ack(core: OmsCore) -> list[CancelRequest]:
    by_id = core.cancel(CancelIntent(order_id="X1", symbol=SYM))  # not known yet
    _place(core, "c0")
    by_client = core.cancel(CancelIntent(client_order_id="c0", symbol=SYM))
    core.on_reply(_resp("X1", OrderStatus.ACK, "c0"))  # _after_ack registers (order_id, X1) again
    return [by_id, by_client]


def _orphan_by_client_id(core: OmsCore) -> list[CancelRequest]:
    empty = core.cancel(CancelIntent(client_order_id="c0", symbol=SYM))  # no member yet
    order = _place(core, "c0")
    return [empty, core.cancel(CancelIntent(order))]  # sole unACKed member: also sent by client id


@pytest.mark.parametrize("make", [_orphan_by_repeat, _orphan_by_ack, _orphan_by_client_id])
def test_bug5_a_second_request_under_the_same_key_orphans_the_first(
        make: Callable[[OmsCore], list[CancelRequest]]) -> None:
    core = OmsCore()
    requests = make(core)
    core.take_frames()
    core.connection_lost()
    assert [r.done for r in requests] == [True] * len(requests), "a cancel waiter would hang forever"


def test_bug6_no_such_order_after_the_id_became_known_never_ends_the_cancel() -> None:
    core = OmsCore()
    request = core.cancel(CancelIntent(order_id="X-other", symbol=SYM))  # placed by another process
    core.take_frames()
    core.on_reply(_fill("X-other", "theirs", 1, 0, "t1"))  # it fills first and is adopted
    core.on_reply(_no_such("X-other"))
    assert request.done and request.status == "NO_SUCH_ORDER"


def test_bug6_answer_to_a_wrong_symbol_cancel_of_an_id_learnt_later_ends_that_cancel() -> None:
    core = OmsCore()
    order = _place(core, "c0")
    request = core.cancel(CancelIntent(order_id="X1", symbol=SYMBOLS[1]))  # X1's ACK is on its way
    core.take_frames()
    core.on_reply(_resp("X1", OrderStatus.ACK, "c0"))
    core.on_reply(m.OrderResponse(order_id="X1", symbol=SYMBOLS[1], status=OrderStatus.NO_SUCH_ORDER,
                                  client_order_id=""))
    assert request.done and request.status == "NO_SUCH_ORDER"
    assert order.state is OrderState.OPEN and not order.needs_settlement, "the answer is not about it"


def test_bug7_a_rejected_member_ends_a_client_id_cancel_early() -> None:
    core = OmsCore()
    resting = _place(core, "c0")
    core.on_reply(_resp("XA", OrderStatus.ACK, "c0"))
    refused = _place(core, "c0")
    request = core.cancel(CancelIntent(client_order_id="c0", symbol=SYM))
    core.take_frames()
    core.on_reply(_resp("XR", REJECTION, "c0"))  # refused's add_order was rejected
    assert refused.state is OrderState.REJECTED and resting.state is OrderState.PENDING_CANCEL
    assert not request.done, "resting's CANCELLED is still on its way"
    core.on_reply(_resp("XA", OrderStatus.CANCELLED, "c0"))
    assert request.done and request.status == "CANCELLED" and request.cancelled == [resting]


def test_bug8_deferred_cancel_of_an_order_that_fills_before_its_ack_never_finishes() -> None:
    core = OmsCore()
    order = _place(core, "c0", tif=TimeInForce.IOC)
    _place(core, "c0")  # a sibling shares c0: the cancel waits for the ACK
    request = core.cancel(CancelIntent(order))
    assert core.take_frames() == []
    core.on_reply(_fill("XA", "c0", 1, 0, "t1"))  # the fill overtakes the ACK and binds the order
    core.on_reply(_resp("XA", OrderStatus.ACK, "c0", tif=TimeInForce.IOC))
    core.on_reply(_resp("XA", OrderStatus.FILLED, "c0", remaining=0, tif=TimeInForce.IOC, trade_id="t1"))
    assert order.state is OrderState.FILLED and core.take_frames() == []
    assert request.done, "nothing is left to cancel, yet the request waits forever"
    assert not order.cancel_requested


def test_bug10_a_retried_cancel_keeps_a_member_placed_after_the_fence_out_of_the_snapshot() -> None:
    core = OmsCore()
    first = _place(core, "c0")
    core.on_reply(_resp("XA", OrderStatus.ACK, "c0"))
    core.cancel(CancelIntent(client_order_id="c0", symbol=SYM))
    core.take_frames()
    fence = core.seq  # get_user_orders goes out now
    second = _place(core, "c0")
    core.cancel(CancelIntent(client_order_id="c0", symbol=SYM), retry=True)  # covers second too
    apply_snapshot(core, fence, m.AllOrdersResponse(orders=()), ())  # taken before second's add
    assert second.state is OrderState.PENDING_NEW, "settled as gone by a snapshot older than it"
    assert first.state is OrderState.PENDING_CANCEL, "its cancel went again after the fence"


def test_bug11_no_such_order_for_one_member_does_not_end_a_group_cancel() -> None:
    core = OmsCore()
    resting = _place(core, "c0")
    core.on_reply(_resp("XB", OrderStatus.ACK, "c0"))
    late = _place(core, "c0")
    request = core.cancel(CancelIntent(client_order_id="c0", symbol=SYM))
    core.on_reply(_resp("XA", OrderStatus.ACK, "c0"))  # late's ACK: a cancel by its id goes as well
    assert [f.order_id for f in core.take_frames() if isinstance(f, m.CancelOrder)] == ["c0", "XA"]
    core.on_reply(_no_such("XA"))  # answers the by-id frame only
    assert late.state is OrderState.OPEN and late.needs_settlement
    assert not request.done and resting.state is OrderState.PENDING_CANCEL
    core.connection_lost()
    assert request.done and request.status == "DISCONNECTED" and resting.state is OrderState.UNKNOWN
