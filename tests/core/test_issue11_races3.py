"""Issue 11, races the core's state machine found (stateful_fail_3): an order placed by another
connection of the account is adopted from whatever news reaches us first, and fills overtake each
other and the ACK. The adopted size is a lower bound; later news must raise it without inventing a
fill (the order ending FILLED while it rests) and without a remaining quantity that grows back.

Neither comes from the modify-in-doubt rules (no modify is involved): the order is a stranger's.
"""

from __future__ import annotations

from decimal import Decimal as D

from corekit import fill, place, resp

from qfex_oms.core import OmsCore, OrderState
from qfex_oms.core.snapshot import apply_snapshot
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderType, TimeInForce


def test_an_overtaken_fill_of_an_adopted_order_raises_its_size_by_its_leaves(core: OmsCore) -> None:
    """Machine failure 1: another connection's order of 3 fills 1 (2 left), then 1 (1 left); the
    second fill arrives first and adopts it at 1 + 1 = 2. The first then says 2 were left after
    it: the order is at least 1 + 2 = 3. Grown only to the sum of its trades (2), it ended FILLED
    while 1 rests on the exchange: an invented fill, and a resync then finds it open."""
    core.on_reply(fill("X2", "1", "1", trade_id="t2", cid="s0"))
    (order,) = core.tracker.orders()
    assert (order.adopted, order.quantity) == (True, D(2))
    core.on_reply(fill("X2", "1", "2", trade_id="t1", cid="s0"))
    assert order.state is OrderState.OPEN, f"rests on the exchange, locally {order.state}"
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(3), D(2), D(1))


def test_a_late_ack_sizing_an_adopted_filled_order_does_not_grow_its_remaining(core: OmsCore) -> None:
    """Machine failure 2: another connection's order of 2 fills 1 then 1; the last fill (0 left)
    arrives first and adopts it at 1, FILLED. Its ACK (2, 2 left) then names the real size: the
    leaves it carries are older than the fill's 0, which were measured against that same size (an
    ACK is the order as placed, not a modify), so nothing remains. Taking the ACK's leaves made
    the ended order's remaining grow 0 -> 1."""
    core.on_reply(fill("X3", "1", "0", trade_id="t2", cid="s0"))
    (order,) = core.tracker.orders()
    assert (order.state, order.quantity, order.remaining_quantity) == (OrderState.FILLED, D(1), D(0))
    core.on_reply(resp("X3", "ACK", cid="s0", qty="2", remaining="2"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(2), D(2), D(0))
    assert order.state is OrderState.FILLED
    core.on_reply(fill("X3", "1", "1", trade_id="t1", cid="s0"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(2), D(2), D(0))


def test_a_late_ack_sizing_a_resting_adopted_order_keeps_the_fills_leaves(core: OmsCore) -> None:
    """The same while it rests: an order of 4 fills 2 (2 left) then 1 (1 left); the second fill
    comes first and adopts it at 1 + 1 = 2. The ACK (4, 4 left) names the size, but 1 is left: the
    fill said so after the ACK was written. The first fill then counts once."""
    core.on_reply(fill("X4", "1", "1", trade_id="t2", cid="s0"))
    (order,) = core.tracker.orders()
    core.on_reply(resp("X4", "ACK", cid="s0", qty="4", remaining="4"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(4), D(3), D(1))
    assert order.state is OrderState.OPEN
    core.on_reply(fill("X4", "2", "2", trade_id="t1", cid="s0"))
    assert (order.quantity, order.filled_quantity, order.remaining_quantity) == (D(4), D(3), D(1))
    assert order.fill_total == D(3)


def test_a_late_ack_of_a_larger_order_never_binds_a_smaller_pending_one(core: OmsCore) -> None:
    """Machine failure (seed 4, after the open-totals rule joined the machine): an order of 2 is
    cut off by a disconnect, and the resync's complete snapshot settles it (it is not there). A new
    order of 1 under the same client id waits for its ACK when the first one's ACK (2) arrives
    late. Bound to the new order, the ACK resized it 1 -> 2: a remaining that grew. An ACK names
    the size placed, so an ACK of 2 cannot be an order of 1's: it is adopted, and the order of 1
    still waits for its own."""
    first = place(core, cid="c0", qty="2")
    core.connection_lost()
    apply_snapshot(core, core.seq, m.AllOrdersResponse(), [], complete=True)
    assert not first.state.is_live
    second = place(core, cid="c0", qty="1")
    core.on_reply(resp("X1", "ACK", cid="c0", qty="2", remaining="2"))
    assert (second.state, second.order_id, second.quantity) == (OrderState.PENDING_NEW, None, D(1))
    adopted = core.tracker.by_order_id("X1")
    assert adopted is not None and adopted.adopted and adopted.quantity == D(2)
    core.on_reply(resp("X2", "ACK", cid="c0", qty="1", remaining="1"))
    assert (second.state, second.order_id, second.remaining_quantity) == (OrderState.OPEN, "X2", D(1))
    assert core.tracker.check_invariants() == []


def test_a_larger_answer_that_does_not_look_like_the_pending_order_never_binds_it(core: OmsCore) -> None:
    """Machine failure (seed 22, after the rounded-echo rule let larger answers bind again): a
    LIMIT GTC order of 1 waits for its ACK when an ACK of a MARKET IOC order of 2 under the same
    client id arrives (a sibling's, delivered out of order). Nothing about it fits the pending
    order; bound as the last resort, it resized it 1 -> 2. It is adopted instead."""
    pending = place(core, cid="c0", qty="1")
    stranger = resp("X9", "ACK", cid="c0", qty="2", remaining="2", tif=TimeInForce.IOC)
    stranger.type = OrderType.MARKET
    core.on_reply(stranger)
    assert (pending.state, pending.order_id, pending.quantity) == (OrderState.PENDING_NEW, None, D(1))
    adopted = core.tracker.by_order_id("X9")
    assert adopted is not None and adopted.adopted and adopted.quantity == D(2)
    assert core.tracker.check_invariants() == []
