"""Settlement notes: what a snapshot ended, journaled and replayed (qfex_oms.core.snapshot).

Each case runs a live core, journals its frames and notes as records, replays them into a fresh core
(the next start), then applies the same snapshot there (the next start's resync), and compares. A
note carries only ends of orders known by id: the ids a snapshot bound, the orders it adopted and the
fills it added depend on the book it met, and are re-learnt by the resync instead (a review found that
replaying them from a note could lose a live order).
"""

from __future__ import annotations

from decimal import Decimal

from corekit import SYMBOL, ack, place, resp

from qfex_oms.core import OmsCore, OrderState
from qfex_oms.core.replay import replay
from qfex_oms.core.snapshot import SETTLED_MISSING, apply_snapshot, settlement_note
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import Channel, OrderType, Side, TimeInForce

SUBSCRIBE = ("out", codec.encode(m.Subscribe((Channel.ORDER_RESPONSES,))))


def trade(trade_id: str, order_id: str, qty: str, cid: str) -> m.Trade:
    return m.Trade(trade_id, SYMBOL, Decimal(200), Decimal(qty), Side.BUY, order_id,
                   order_type=OrderType.LIMIT, tif=TimeInForce.GTC, client_order_id=cid)


class Run:
    """A live core and the records its journal would hold."""

    def __init__(self) -> None:
        self.core = OmsCore()
        self.records: list[tuple[str, bytes]] = [SUBSCRIBE]

    def sent(self) -> None:
        self.records += [("out", codec.encode(f)) for f in self.core.take_frames()]

    def received(self, reply: m.OrderResponse) -> None:
        self.records.append(("in", codec.encode(reply)))
        self.core.on_reply(reply)

    def disconnect(self) -> None:
        self.core.connection_lost()
        self.records.append(SUBSCRIBE)

    def snapshot(self, rows: tuple[m.OrderResponse, ...], trades: list[m.Trade]) -> None:
        diff = apply_snapshot(self.core, self.core.seq, m.AllOrdersResponse(rows, ()), trades)
        note = settlement_note(diff)
        if note is not None:
            self.records.append(("note", note))

    def next_start(self, rows: tuple[m.OrderResponse, ...], trades: list[m.Trade]) -> OmsCore:
        core = OmsCore()
        replay(core, self.records)
        apply_snapshot(core, core.seq, m.AllOrdersResponse(rows, ()), trades)
        return core


def book(core: OmsCore) -> list[tuple[object, ...]]:
    return sorted((o.client_order_id, o.order_id, str(o.state), o.filled_quantity)
                  for o in core.tracker.orders())


def test_an_order_a_snapshot_bound_and_left_resting_stays_one_open_order() -> None:
    run = Run()
    run.core.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(3), Decimal(200), "g")
    run.sent()
    run.disconnect()  # its ACK was lost
    rows, trades = (resp("X", "ACK", cid="g", qty="3", remaining="2"),), [trade("t1", "X", "1", "g")]
    run.snapshot(rows, trades)
    assert book(run.core) == [("g", "X", "OPEN", Decimal(1))]
    assert book(run.next_start(rows, trades)) == book(run.core)


def test_an_order_a_snapshot_bound_and_found_filled_stays_one_filled_order() -> None:
    run = Run()
    run.core.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(1), Decimal(200), "g")
    run.sent()
    run.disconnect()
    trades = [trade("t1", "X", "1", "g")]
    run.snapshot((), trades)
    assert book(run.core) == [("g", "X", "FILLED", Decimal(1))]
    assert book(run.next_start((), trades)) == book(run.core)


def test_a_stranger_adopted_by_one_snapshot_and_filled_in_part_by_the_next_stays_open() -> None:
    run = Run()
    run.snapshot((resp("Y", "ACK", cid="other", qty="3", remaining="3"),), [])
    rows = (resp("Y", "FILLED", cid="other", qty="3", remaining="2"),)
    trades = [trade("t9", "Y", "1", "other")]
    run.snapshot(rows, trades)
    assert book(run.core) == [("other", "Y", "OPEN", Decimal(1))]
    assert book(run.next_start(rows, trades)) == book(run.core)


def test_a_stranger_in_both_rows_and_trades_is_adopted_with_its_row_size() -> None:
    core = OmsCore()
    rows = (resp("Y", "FILLED", cid="other", qty="3", remaining="2"),)
    apply_snapshot(core, core.seq, m.AllOrdersResponse(rows, ()), [trade("t9", "Y", "1", "other")])
    order = core.tracker.by_order_id("Y")
    assert order is not None and order.state is OrderState.OPEN
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (3, 1, 2)


def test_ends_replay_by_id_once_and_only_on_live_orders() -> None:
    run = Run()
    gone, partial = place(run.core, "a"), place(run.core, "b")
    run.sent()
    for order, order_id in ((gone, "A"), (partial, "B")):
        run.received(resp(order_id, "ACK", cid=order.client_order_id, remaining="3"))
    trades = [trade("t1", "B", "1", "b")]
    run.snapshot((), trades)  # both gone from the exchange: A never traded, B traded 1 of 3
    assert (gone.state, gone.last_status) == (OrderState.CANCELLED, SETTLED_MISSING)
    assert (partial.state, partial.filled_quantity) == (OrderState.CANCELLED, Decimal(1))
    core = OmsCore()
    replay(core, [*run.records, run.records[-1]])  # the note twice
    replayed = {o.order_id: (o.state, o.filled_quantity, o.last_status) for o in core.tracker.orders()}
    assert replayed == {"A": (OrderState.CANCELLED, Decimal(0), SETTLED_MISSING),
                        "B": (OrderState.CANCELLED, Decimal(1), SETTLED_MISSING)}


def test_no_note_when_nothing_known_by_id_ended() -> None:
    core = OmsCore()
    order = place(core, "p")
    core.connection_lost()
    diff = apply_snapshot(core, core.seq, m.AllOrdersResponse((), ()), [])
    assert order.state is OrderState.CANCELLED and order.order_id is None
    assert settlement_note(diff) is None  # no id to name it by on replay: the next resync settles it
    acked = place(core, "q")
    ack(core, acked)
    row = resp(acked.order_id or "", "ACK", cid="q")
    diff = apply_snapshot(core, core.seq, m.AllOrdersResponse((row,), ()))
    assert settlement_note(diff) is None  # confirmed open: nothing ended


def test_a_row_without_an_order_id_is_adopted_once() -> None:
    core = OmsCore()
    apply_snapshot(core, core.seq, m.AllOrdersResponse((resp("", "ACK", cid="odd", remaining="3"),), ()), [])
    assert [(o.client_order_id, str(o.state)) for o in core.tracker.orders()] == [("odd", "OPEN")]
