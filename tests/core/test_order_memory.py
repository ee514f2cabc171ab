"""What an order costs to keep (bench row 6), and that the savings change no public name.

An order keeps monotonic stamps only and shows wall times through one process-wide offset; what few
orders carry (take-profit, stop-loss, reduce-only, a modify in doubt, fills, tags, adoption, a cancel
held for the ACK) lives in an ``OrderExtra`` created on first use; the tracker's pending index is given back
when it empties.
"""

from __future__ import annotations

import gc
import sys
from decimal import Decimal

import attrs

from qfex_oms.core.engine import OmsCore
from qfex_oms.core.model import WALL_CLOCK_OFFSET, Fill, Order, OrderExtra, wall_time
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus, OrderType, Side, TimeInForce

SYMBOL = "AAPL-USD"
MOVED = ("reduce_only", "take_profit", "stop_loss", "modify_in_doubt", "fills", "tags", "adopted",
         "cancel_requested")
WALLS = ("sent_wall", "acked_wall", "cancel_sent_wall", "ended_wall")


def _order(**extra: object) -> Order:
    return Order(1, SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(1), Decimal(100),
                 "c1", **extra)  # type: ignore[arg-type]


def _extras(order: Order) -> list[OrderExtra]:
    return [r for r in gc.get_referents(order) if isinstance(r, OrderExtra)]


def _ack(core: OmsCore, order: Order, n: int) -> None:
    core.on_reply(m.OrderResponse(
        f"oid-{n}", order.symbol, OrderStatus.ACK, order.side, order.order_type, order.time_in_force,
        order.quantity, order.price, order.quantity, order.client_order_id, Decimal(0), Decimal(0),
        "user", 1.0, None))


def test_a_plain_order_has_no_side_object_and_no_wall_slots() -> None:
    order = _order()
    names = {a.name for a in attrs.fields(Order)}
    assert not names & set(MOVED) and not names & set(WALLS)
    assert _extras(order) == []
    assert not hasattr(order, "__dict__") and not hasattr(order, "__weakref__")
    assert (order.reduce_only, order.take_profit, order.stop_loss, order.modify_in_doubt,
            order.fills, order.tags, order.adopted, order.cancel_requested) == (
        None, None, None, None, None, frozenset(), False, False)
    order.modify_in_doubt = None  # clearing what is not there allocates nothing
    order.adopted = False
    order.tags = frozenset()
    order.cancel_requested = False  # the ACK path clears it on every ACK
    assert _extras(order) == []


def test_moved_fields_keep_their_names_in_the_constructor_and_as_attributes() -> None:
    order = _order(reduce_only=True, take_profit=Decimal(110), stop_loss=Decimal(90),
                   tags=frozenset({"mm"}))
    assert (order.reduce_only, order.take_profit, order.stop_loss, order.tags) == (
        True, Decimal(110), Decimal(90), frozenset({"mm"}))
    assert len(_extras(order)) == 1
    plain = _order()
    fill = Fill("t1", "o1", SYMBOL, Side.BUY, Decimal(100), Decimal(1))
    plain.fills = [fill]
    plain.fills.append(fill)
    plain.modify_in_doubt = (Decimal(2), None)
    plain.adopted, plain.cancel_requested = True, True
    assert plain.fills == [fill, fill] and plain.modify_in_doubt == (Decimal(2), None)
    assert plain.adopted and plain.cancel_requested
    assert len(_extras(plain)) == 1  # one side object, made once
    plain.modify_in_doubt = None
    assert plain.modify_in_doubt is None and plain.fills == [fill, fill]


def test_wall_times_are_the_monotonic_stamps_plus_one_offset() -> None:
    core = OmsCore()
    ticks = iter([100.0, 100.25, 101.0, 101.5])
    core.clock = lambda: next(ticks)
    order = core.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(1),
                             Decimal(100), "c1")
    _ack(core, order, 1)
    assert (order.sent_at, order.acked_at) == (100.0, 100.25)
    assert order.ack_latency == 0.25  # latencies are differences of monotonic stamps
    assert order.sent_wall == 100.0 + WALL_CLOCK_OFFSET == wall_time(100.0)
    assert order.acked_wall == 100.25 + WALL_CLOCK_OFFSET
    assert order.cancel_sent_wall is None and order.ended_wall is None and wall_time(None) is None


def test_the_pending_index_gives_its_table_back_when_it_empties() -> None:
    """A burst of placements grows the pending index to thousands of keys; once every one is
    ACKed no dict the tracker holds may keep that table (it was 53 bytes per order at 100,000)."""
    core = OmsCore()
    orders = [core.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(1),
                               Decimal(100), f"c{i}") for i in range(5000)]
    for n, order in enumerate(orders):
        _ack(core, order, n)
    assert list(core.tracker.pending_new()) == []
    empty = [r for r in gc.get_referents(core.tracker) if isinstance(r, dict) and not r]
    assert empty and all(sys.getsizeof(d) < 1024 for d in empty)
