"""Issue 11, races the core's state machine found at 400 examples (seed 2): a modify whose answer is
lost leaves the order's size in doubt, and the fill accounting or the snapshot settlement measured
leaves or fills against the old size. Each test replays the machine's minimal sequence by hand.

QFEX refuses to modify a partly filled order (CANNOT_MODIFY_PARTIAL_FILL), so while a modify is
unanswered the exchange's order has one of two sizes: the book's, or the one the modify asked for.
"""

from __future__ import annotations

from decimal import Decimal

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
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (1, 1, 0)
    assert order.state is OrderState.FILLED


def test_fill_leaves_that_fit_only_the_old_size_are_taken(core: OmsCore) -> None:
    """The fill came first (the modify will be refused for a partial fill): 1 filled and 1 left
    fits only the old size 2, so the leaves count against it as usual."""
    oid, order = _modified_unanswered(core)
    core.on_reply(fill(oid, "1", "1", trade_id="t1", cid="c0"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (2, 1, 1)
    assert order.state is OrderState.OPEN


def test_fill_leaves_that_fit_only_the_new_size_take_it(core: OmsCore) -> None:
    """A modify up (2 -> 4) applied, then 1 filled with 3 left: only the new size fits."""
    oid, order = _modified_unanswered(core, qty="2", to="4")
    core.on_reply(fill(oid, "1", "3", trade_id="t1", cid="c0"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (4, 1, 3)
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
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (1, 1, 0)
    assert order.modify_in_doubt is None


def test_snapshot_still_settles_cancelled_when_no_size_in_doubt_is_covered(core: OmsCore) -> None:
    oid, order = _modified_unanswered(core, qty="3", to="2")
    core.connection_lost()
    apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=()), (_trade(oid, "1", "t1"),))
    assert (order.state, order.last_status, order.filled_quantity) == (
        OrderState.CANCELLED, SETTLED_MISSING, 1)

