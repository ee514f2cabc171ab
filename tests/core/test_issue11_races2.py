"""Issue 11, races the core's state machine found at 400 examples (seed 2): a modify whose answer is
lost leaves the order's size in doubt, and the fill accounting or the snapshot settlement measured
leaves or fills against the old size. Each test replays the machine's minimal sequence by hand.

QFEX refuses to modify a partly filled order (CANNOT_MODIFY_PARTIAL_FILL), so while a modify is
unanswered the exchange's order has one of two sizes: the book's, or the one the modify asked for.
"""

from __future__ import annotations

from decimal import Decimal
from decimal import Decimal as D

from corekit import SYMBOL, ack, fill, place, resp

from qfex_oms.core import OmsCore, Order, OrderState, apply_snapshot
from qfex_oms.core.snapshot import SETTLED_MISSING
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import Side


def _modified_unanswered(core: OmsCore, qty: str = "2", to: str = "1") -> tuple[str, Order]:
    order = place(core, cid="c0", qty=qty)
    oid = ack(core, order)
    core.modify_order(order, None, Decimal(to))
    assert len(core.take_frames()) == 1
    return oid, order


def _trade(order_id: str, qty: str, trade_id: str) -> m.Trade:
    return m.Trade(trade_id, SYMBOL, Decimal(200), Decimal(qty), Side.BUY, order_id,
                   client_order_id="c0")


def test_fill_leaves_during_an_unanswered_modify_are_not_measured_against_the_old_size(
        core: OmsCore) -> None:
    """Machine failure 2: MODIFIED (2 -> 1) lost, the exchange fills the new size, the fill says 0
    remain. 0 leaves of the old size 2 would claim 2 filled where the exchange filled 1."""
    oid, order = _modified_unanswered(core)
    core.on_reply(fill(oid, "1", "0", trade_id="t1", cid="c0"))
    assert order.filled_quantity == 1, "a fill of 1 counted as 2: leaves of the new size, old size"
    assert order.state is OrderState.FILLED, "nothing remains on the exchange, whatever the size"
    core.on_reply(resp(oid, "FILLED", cid="c0", qty="1", remaining="0", trade_id="t1"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(1), D(1), D(0))
    assert order.state is OrderState.FILLED


def test_fill_leaves_that_fit_only_the_old_size_are_taken(core: OmsCore) -> None:
    """The fill came first (the modify will be refused for a partial fill): 1 filled and 1 left
    fits only the old size 2, so the leaves count against it as usual."""
    oid, order = _modified_unanswered(core)
    core.on_reply(fill(oid, "1", "1", trade_id="t1", cid="c0"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(2), D(1), D(1))
    assert order.state is OrderState.OPEN


def test_fill_leaves_that_fit_only_the_new_size_take_it(core: OmsCore) -> None:
    """A modify up (2 -> 4) applied, then 1 filled with 3 left: only the new size fits."""
    oid, order = _modified_unanswered(core, qty="2", to="4")
    core.on_reply(fill(oid, "1", "3", trade_id="t1", cid="c0"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(4), D(1), D(3))
    assert order.state is OrderState.OPEN


def test_snapshot_settles_an_order_filled_at_the_size_of_a_modify_in_doubt_as_filled(
        core: OmsCore) -> None:
    """Machine failure 1: the modify's answer, the fill and the FILLED report all die with the
    socket. The resync finds the order gone and one trade of 1: the size the modify asked for is
    covered, so it filled; CANCELLED (1 of the old 2 left) would be an invented cancel."""
    oid, order = _modified_unanswered(core)
    core.connection_lost()
    assert order.modify_in_doubt == (Decimal(1), None)
    apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=()), (_trade(oid, "1", "t1"),))
    assert order.state is OrderState.FILLED, f"settled {order.last_status}: an invented cancel"
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(1), D(1), D(0))
    assert order.modify_in_doubt is None


def test_snapshot_still_settles_cancelled_when_no_size_in_doubt_is_covered(core: OmsCore) -> None:
    oid, order = _modified_unanswered(core, qty="3", to="2")
    core.connection_lost()
    apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=()), (_trade(oid, "1", "t1"),))
    assert (order.state, order.last_status, order.filled_quantity) == (
        OrderState.CANCELLED, SETTLED_MISSING, D(1))



def test_an_ack_overtaking_a_siblings_binds_the_pending_order_of_its_exact_size(core: OmsCore) -> None:
    """Two orders share c0 and both ACKs are late (UNKNOWN); the second's ACK (size 1) comes first.
    It fits the first order too (1 <= 2) but a pending order was never modified: the one of size 1
    is it. Bound to the first, it would shrink it to 1, and the other ACK would grow the second to
    2: a remaining quantity that grows without any modify."""
    first = place(core, cid="c0", qty="2")
    second = place(core, cid="c0", qty="1")
    core.order_lost(first, "TIMEOUT")
    core.order_lost(second, "TIMEOUT")
    core.on_reply(resp("X2", "ACK", cid="c0", qty="1", remaining="1"))
    assert (second.order_id, second.quantity) == ("X2", D(1))
    core.on_reply(resp("X1", "ACK", cid="c0", qty="2", remaining="2"))
    assert (first.order_id, first.quantity, first.remaining_quantity) == ("X1", D(2), D(2))


def test_snapshot_trades_beyond_the_book_size_take_the_size_of_a_modify_in_doubt(core: OmsCore) -> None:
    """A modify up (1 -> 4) applied, its answer lost; the order filled 3 then 1 and every report
    died with the socket. The resync's trades (4) exceed the book's size: it was the modify's.
    Measured against 1, the first trade alone ended it FILLED and the second claimed 4 of 1."""
    oid, order = _modified_unanswered(core, qty="1", to="4")
    core.connection_lost()
    trades = (_trade(oid, "3", "t1"), _trade(oid, "1", "t2"))
    apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=()), trades)
    assert (order.state, order.quantity, order.filled_quantity) == (OrderState.FILLED, D(4), D(4))


def test_snapshot_row_sizes_an_adopted_order_before_its_trades_apply(core: OmsCore) -> None:
    """Another connection's order (size 4) filled 1 then 2; only the second fill reached us, so it
    was adopted at 2 + 1 left = 3. The resync shows it resting (1 left) with both trades: applied
    before the row's size, the first trade made 3 of 3 and ended FILLED an order that rests."""
    core.on_reply(fill("X9", "2", "1", trade_id="t2", cid="s0"))
    (order,) = core.tracker.orders()
    assert (order.adopted, order.quantity) == (True, D(3))
    rows = m.AllOrdersResponse(orders=(resp("X9", "FILLED", cid="s0", qty="4", remaining="1"),))
    apply_snapshot(core, core.seq, rows, (m.Trade("t1", SYMBOL, Decimal(200), Decimal(1), Side.BUY, "X9"),
                                          m.Trade("t2", SYMBOL, Decimal(200), Decimal(2), Side.BUY, "X9")))
    assert order.state is OrderState.OPEN, "rests on the exchange"
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(4), D(3), D(1))
