"""Found by review: the open totals are exact whatever the calling task's Decimal context, and an
answer echoing a size a hair larger than the pending order's (an exchange that rounds) still binds
it; only another order's answer does not (``replies.answers_another``)."""

from __future__ import annotations

from decimal import Decimal, localcontext

from corekit import SYMBOL, ack, new_id, place, resp

from qfex_oms.core import OmsCore, OrderState, apply_snapshot
from qfex_oms.protocol import messages as m

# ---------------------------------------------------------------- open totals: exactness

# 34 significant digits: inside the market number domain (numbers.MAX_SIGNIFICANT_DIGITS), wider
# than the default Decimal context (28).
WIDE = "1234567890.123456789012345678901239"


def test_open_totals_drift_when_a_34_digit_remainder_leaves_the_book(core: OmsCore) -> None:
    """``OpenTotals.moved`` takes an order out with ``-left``: unary minus rounds to the ambient
    context (prec 28), while the same order went in exactly (its leaves floor, via ``lower_floor``).
    The cancelled order leaves a negative residue in the symbol's buys."""
    core.tracker.keep_open_totals()
    order = place(core, qty=WIDE)
    oid = ack(core, order)  # leaves = the 34-digit size: the floor, taken exactly
    core.on_reply(resp(oid, "CANCELLED", cid=order.client_order_id, qty=WIDE, remaining=WIDE))
    assert order.state is OrderState.CANCELLED
    assert core.tracker.check_invariants() == []
    assert core.tracker.open_quantity(SYMBOL) == (Decimal(0), Decimal(0))


def test_open_totals_depend_on_the_decimal_context_of_the_caller(core: OmsCore) -> None:
    """``remaining_of`` (and ``-left``) run in whatever Decimal context the calling task has: an
    order placed from a strategy inside ``localcontext(prec=4)`` goes in rounded, and comes out
    exact when the reader task applies its CANCELLED. The old risk check summed at read time, so a
    caller's context could not leave a residue behind."""
    core.tracker.keep_open_totals()
    with localcontext() as ctx:
        ctx.prec = 4
        order = place(core, qty="1.23456")
    oid = ack(core, order)
    core.on_reply(resp(oid, "CANCELLED", cid=order.client_order_id, qty="1.23456", remaining="1.23456"))
    assert core.tracker.check_invariants() == []
    assert core.tracker.open_quantity(SYMBOL) == (Decimal(0), Decimal(0))


# ---------------------------------------------------------------- the larger-answer rule

# The exchange echoes a size it parsed as a binary float (qfex-api.md: "the server parses these
# with Decimal(str(...))"): 0.29999999999999999 comes back as 0.3, a hair larger than placed.
PLACED, ECHOED = "0.29999999999999999", "0.3"


def test_an_ack_echoing_a_rounded_up_size_binds_the_order_it_answers(core: OmsCore) -> None:
    """Before 5e1a340 the ACK bound the one pending order and its size was taken (``resized``).
    Now the order stays PENDING_NEW and a twin is adopted OPEN: the exposure counts it twice, and
    the next complete snapshot settles the strategy's own order CANCELLED/MISSING_FROM_SNAPSHOT
    while it rests on the exchange (as the adopted twin)."""
    core.tracker.keep_open_totals()
    order = place(core, cid="r1", qty=PLACED)
    oid = new_id()
    core.on_reply(resp(oid, "ACK", cid="r1", qty=ECHOED, remaining=ECHOED))
    twins = [o for o in core.tracker.orders() if o is not order]
    assert order.order_id == oid and order.state is OrderState.OPEN, (order.state, twins)
    assert twins == []
    assert core.tracker.open_quantity(SYMBOL)[0] == Decimal(ECHOED)


def test_an_ack_echoing_a_rounded_up_size_then_a_snapshot_keeps_the_strategys_order_open(
        core: OmsCore) -> None:
    order = place(core, cid="r1", qty=PLACED)
    oid = new_id()
    row = resp(oid, "ACK", cid="r1", qty=ECHOED, remaining=ECHOED)
    core.on_reply(row)
    apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=(row,)), ())
    assert order.state is OrderState.OPEN, (order.state, order.last_status)


def test_a_rejection_echoing_a_rounded_up_size_rejects_the_pending_order(core: OmsCore) -> None:
    """A refused add (here: a size off the lot) whose echo is rounded up is no longer bound: it goes
    to ``answer_unknown_id`` and the order waits in PENDING_NEW for a timeout and a resync, where
    before it ended REJECTED at once."""
    order = place(core, cid="r2", qty=PLACED)
    core.on_reply(resp(new_id(), "INVALID_TICK_SIZE_PRECISION_QUANTITY", cid="r2", qty=ECHOED,
                       remaining=ECHOED))
    assert order.state is OrderState.REJECTED
