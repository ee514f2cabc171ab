"""The stop book against a fake exchange, with hypothesis driving every interleaving.

The exchange stages, cancels, modifies and fires stops; its answers come in each of the variants
QFEX's sources allow (qfex-api.md §14.9: ``order_response`` under the stop's id, ``ack``, both, in
either order; pushes on ``stop_orders``), and are delivered late, out of order, twice or never. A
disconnect loses everything in flight and a resync settles the book from a complete snapshot.

What must hold at every step: the indices are consistent; a stop is REJECTED only if the exchange
refused it, TRIGGERED only if it fired, CANCELLED only if it is not staged; the order a stop became
is the one that stop fired into (never a sibling's, checked by id as soon as it is linked) and
counts each trade once. After a resync: the book's live stops are exactly the exchange's staged
ones, and every stop that fired is TRIGGERED with its order's fills all counted.

The fired order is told from other orders the way the exchange marks it (``style``): under the
stop's own id, carrying the stop's client id, or only by its type (STOP_LOSS / TAKE_PROFIT). In
the ``type`` style a link is made only when exactly one stop can have fired into the order: an
identical sibling, one whose placement answer is outstanding or lost (it may be staged), one whose
refusal is lost, leaves the order adopted and unlinked. Which of two identical stops fired is
observable later (one stays staged), so no pairwise link is made and the identity check is not
relaxed: a fired stop the core could not link ends CANCELLED ``MISSING_FROM_SNAPSHOT`` at the
resync (the settled check allows exactly that in this style; its order's fills count on the order).
"""

from __future__ import annotations

import itertools
import os
from decimal import Decimal

import hypothesis.strategies as st
from attrs import define, field
from hypothesis import HealthCheck, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from qfex_oms.core import OmsCore
from qfex_oms.core.stop_snapshot import settle_snapshot
from qfex_oms.core.stops import StopOrder, StopState
from qfex_oms.errors import InvalidArgument
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.codec import decode_request, encode, incoming_echo
from qfex_oms.protocol.enums import ErrorCode, OrderStatus, OrderType, Side, TimeInForce

SYMBOL = "AAPL-USD"
KINDS = st.sampled_from((OrderType.STOP_LOSS, OrderType.TAKE_PROFIT))
ANSWERS = ("resp", "ack", "ack+resp", "resp+ack")


@define(eq=False)
class ExStop:
    stop_id: str
    stop: StopOrder  # ground truth: the local stop whose add_order staged it
    kind: OrderType
    trigger: Decimal
    quantity: Decimal
    client_order_id: str
    state: str = "staged"  # staged | cancelled | triggered
    order_id: str | None = None
    trade_ids: list[str] = field(factory=list)


class StopsAgainstFakeExchange(RuleBasedStateMachine):
    style = "same_id"

    def __init__(self) -> None:
        super().__init__()
        self.core = OmsCore()
        self.ex: dict[str, ExStop] = {}
        self.by_local: dict[int, ExStop] = {}
        self.rejected: set[int] = set()
        self.pending: list[m.Reply] = []
        self.trades: list[m.Trade] = []
        self.ids = itertools.count(1)
        self.stops: list[StopOrder] = []

    # ------------------------------------------------------------------ exchange side

    def _id(self, prefix: str) -> str:
        return f"{prefix}-{next(self.ids)}"

    def _resp(self, x: ExStop, status: OrderStatus, quantity: Decimal | None = None) -> m.OrderResponse:
        size = x.quantity if quantity is None else quantity
        return m.OrderResponse(order_id=x.stop_id, symbol=SYMBOL, status=status, side=Side.SELL, type=x.kind,
                               time_in_force=TimeInForce.GTC, quantity=size, price=x.trigger,
                               quantity_remaining=x.quantity, client_order_id=x.client_order_id)

    def _push(self, x: ExStop) -> m.StopOrderResponse:
        return m.StopOrderResponse(stop_order_id=x.stop_id, symbol=SYMBOL, price=x.trigger,
                                   quantity=x.quantity, direction=Side.SELL, stop_order_type=x.kind,
                                   client_order_id=x.client_order_id)

    def _answer(self, frame: m.Request, report: m.OrderResponse, how: str) -> None:
        ack = m.Ack(incoming_message=incoming_echo(frame))
        order = {"resp": [report], "ack": [ack], "ack+resp": [ack, report], "resp+ack": [report, ack]}[how]
        self.pending.extend(order)

    def _exchange(self, frame: m.Request, how: str) -> None:
        assert decode_request(encode(frame)) == frame
        if isinstance(frame, m.CancelStopOrder):
            x = self.ex.get(frame.stop_order_id)
            if x is None or x.state != "staged":
                self.pending.append(m.OrderResponse(order_id=frame.stop_order_id, symbol=SYMBOL,
                                                    status=OrderStatus.NO_SUCH_ORDER))
                return
            x.state = "cancelled"
            self._answer(frame, self._resp(x, OrderStatus.CANCELLED, Decimal(0)), how)
        elif isinstance(frame, m.ModifyStopOrder):
            x = self.ex.get(frame.stop_order_id)
            if x is None or x.state != "staged":
                self.pending.append(m.OrderResponse(order_id=frame.stop_order_id, symbol=SYMBOL,
                                                    status=OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER))
                return
            x.trigger = frame.price or x.trigger
            x.quantity = frame.quantity or x.quantity
            self._answer(frame, self._resp(x, OrderStatus.MODIFIED), how)
        else:
            raise AssertionError(f"unexpected frame {frame!r}")

    def _send(self, how: str = "resp") -> None:
        for frame in self.core.take_frames():
            self._exchange(frame, how)

    # ------------------------------------------------------------------ strategy commands

    @rule(kind=KINDS, trigger=st.integers(170, 190), qty=st.integers(1, 3),
          fate=st.sampled_from(("ack", "ack", "push", "both", "reject", "err", "lost_staged", "lost_never")))
    def place(self, kind: OrderType, trigger: int, qty: int, fate: str) -> None:
        cid = self._id("sc")
        s = self.core.place_stop(SYMBOL, Side.SELL, kind, Decimal(qty), Decimal(trigger), cid)
        self.stops.append(s)
        [frame] = self.core.take_frames()
        assert isinstance(frame, m.AddOrder) and frame.order_type is kind
        if fate in ("reject", "err", "lost_never"):
            if fate == "reject":
                self.rejected.add(s.local_id)
                self.pending.append(m.OrderResponse(
                    order_id="", symbol=SYMBOL, status=OrderStatus.INVALID_STOPLOSS_PRICE, side=Side.SELL,
                    type=kind, price=frame.price, quantity=frame.quantity, client_order_id=cid))
            elif fate == "err":
                self.rejected.add(s.local_id)
                self.pending.append(m.Err(error_code=ErrorCode.INVALID_ORDER,
                                          incoming_message=incoming_echo(frame)))
            else:
                self.core.stop_lost(s, "TIMEOUT")
            return
        x = ExStop(self._id("S"), s, kind, Decimal(trigger), Decimal(qty), cid)
        self.ex[x.stop_id] = x
        self.by_local[s.local_id] = x
        if fate in ("ack", "both"):
            self.pending.append(self._resp(x, OrderStatus.ACK))
        if fate in ("push", "both"):
            self.pending.append(self._push(x))
        if fate == "lost_staged":
            self.core.stop_lost(s, "TIMEOUT")

    def _live(self, pick: int) -> StopOrder | None:
        live = [s for s in self.stops if s.state.is_live and s.stop_order_id is not None]
        return live[pick % len(live)] if live else None

    @rule(pick=st.integers(0, 31), how=st.sampled_from(ANSWERS))
    def cancel(self, pick: int, how: str) -> None:
        s = self._live(pick)
        if s is None:
            return
        self.core.cancel_stop(s)
        self._send(how)

    @rule(pick=st.integers(0, 31), how=st.sampled_from(ANSWERS), price=st.integers(160, 200))
    def modify(self, pick: int, how: str, price: int) -> None:
        s = self._live(pick)
        if s is None:
            return
        try:
            self.core.modify_stop(s, Decimal(price), None)
        except InvalidArgument:
            assert s.modify_request is not None or s.state is StopState.PENDING_CANCEL
            return
        self._send(how)

    @rule(pick=st.integers(0, 31))
    def request_times_out(self, pick: int) -> None:
        waiting = [r for s in self.stops for r in (s.cancel_request, s.modify_request) if r is not None]
        if waiting:
            self.core.stop_request_lost(waiting[pick % len(waiting)], "TIMEOUT")
            self._send()

    # ------------------------------------------------------------------ the exchange acts

    @rule(pick=st.integers(0, 31), report=st.booleans())
    def fires(self, pick: int, report: bool) -> None:
        staged = [x for x in self.ex.values() if x.state == "staged"]
        if not staged:
            return
        x = staged[pick % len(staged)]
        x.state = "triggered"
        order_id = x.stop_id if self.style == "same_id" else self._id("M")
        cid = x.client_order_id if self.style == "client_id" else ""
        order_type = x.kind if self.style == "type" else OrderType.MARKET
        x.order_id = order_id
        trade_id = self._id("t")
        x.trade_ids.append(trade_id)
        fill = m.FillResponse(trade_id=trade_id, order_id=order_id, symbol=SYMBOL, price=x.trigger,
                              quantity=x.quantity, side=Side.SELL, client_order_id=cid,
                              remaining_quantity=Decimal(0), order_type=order_type, tif=TimeInForce.IOC)
        self.trades.append(m.Trade(trade_id=trade_id, symbol=SYMBOL, price=x.trigger, quantity=x.quantity,
                                   side=Side.SELL, order_id=order_id, client_order_id=cid,
                                   order_type=order_type, tif=TimeInForce.IOC))
        if report:
            self.pending.append(m.OrderResponse(order_id=order_id, symbol=SYMBOL, status=OrderStatus.FILLED,
                                                side=Side.SELL, type=order_type,
                                                time_in_force=TimeInForce.IOC,
                                                quantity=x.quantity, price=x.trigger,
                                                quantity_remaining=Decimal(0), client_order_id=cid))
        self.pending.append(fill)

    # ------------------------------------------------------------------ delivery

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63), in_order=st.booleans())
    def deliver(self, pick: int, in_order: bool) -> None:
        reply = self.pending.pop(0 if in_order else pick % len(self.pending))
        self.core.on_reply(reply)
        self._send()

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63))
    def duplicate(self, pick: int) -> None:
        reply = self.pending[pick % len(self.pending)]
        self.core.on_reply(reply)
        self._send()

    @precondition(lambda self: self.pending)
    @rule(pick=st.integers(0, 63))
    def drop(self, pick: int) -> None:
        self.pending.pop(pick % len(self.pending))

    @rule()
    def reconnect_and_resync(self) -> None:
        self.pending.clear()
        self.core.connection_lost()
        self._send()
        staged = tuple(self._push(x) for x in self.ex.values() if x.state == "staged")
        settle_snapshot(self.core, self.core.seq, m.AllOrdersResponse(stop_orders=staged), self.trades)
        self._send()  # owed cancels go again; their answers are delivered at once
        while self.pending:
            self.core.on_reply(self.pending.pop(0))
            self._send()
        self._check_settled()

    def _check_settled(self) -> None:
        for s in self.stops:
            x = self.by_local.get(s.local_id)
            if x is None:  # never staged: refused, or its add_order never arrived
                assert not s.state.is_live, s
                continue
            if x.state == "staged":
                assert s.state is StopState.ACTIVE, (s, x)
                assert (s.trigger_price, s.quantity) == (x.trigger, x.quantity)
            elif x.state == "triggered" and self.style != "type" and s.stop_order_id is not None:
                assert s.state is StopState.TRIGGERED, (s, x)
            elif x.state == "triggered":  # nothing ties the order to a stop whose id never came
                assert s.state is StopState.TRIGGERED or s.last_status == "MISSING_FROM_SNAPSHOT", (s, x)
            else:
                assert not s.state.is_live, (s, x)

    # ------------------------------------------------------------------ invariants

    @invariant()
    def indices_are_consistent(self) -> None:
        assert self.core.stops.check_invariants() == []
        assert self.core.tracker.check_invariants() == []

    @invariant()
    def states_are_never_invented(self) -> None:
        for s in self.stops:
            x = self.by_local.get(s.local_id)
            if s.state is StopState.REJECTED:
                assert s.local_id in self.rejected, f"a lost answer became a rejection: {s}"
            if s.state is StopState.TRIGGERED:
                assert x is not None and x.state == "triggered", f"triggered without firing: {s}"
            if s.state is StopState.CANCELLED:
                assert x is None or x.state != "staged", f"cancelled while staged: {s}"

    @invariant()
    def fills_count_once(self) -> None:
        for s in self.stops:
            if s.order is not None:
                x = self.by_local.get(s.local_id)
                assert x is not None, f"a stop never staged became an order: {s}"
                # its own order, not a sibling's: caught at the link, before any fill shows it
                assert x.order_id is not None and s.order.order_id == x.order_id, (s, x)
                assert {f.trade_id for f in s.order.fills or ()} <= set(x.trade_ids)
                assert s.order.fill_total <= x.quantity * len(x.trade_ids)


class ByClientId(StopsAgainstFakeExchange):
    style = "client_id"


class ByType(StopsAgainstFakeExchange):
    style = "type"


# QFEX_STATEFUL_EXAMPLES: more examples for a long run (the core machine's setting, same name).
EXAMPLES = int(os.environ.get("QFEX_STATEFUL_EXAMPLES", "150"))
_SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=40, deadline=None,
                     suppress_health_check=[HealthCheck.too_slow])
TestStopsSameId = StopsAgainstFakeExchange.TestCase
TestStopsSameId.settings = _SETTINGS
TestStopsByClientId = ByClientId.TestCase
TestStopsByClientId.settings = _SETTINGS
TestStopsByType = ByType.TestCase
TestStopsByType.settings = _SETTINGS
