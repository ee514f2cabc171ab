"""What tests of a live manager share: the frames it sent, waiting for an order, its book vs the simulator.

Used by the manager, journal and runner folders (on pytest's ``pythonpath``, imported by name).
Everything here runs against a real simulator over loopback websockets, so waits are bounded by
real time (``wait_until``), never by an autojump clock.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from simkit import PUB
from waiting import wait_until

from qfex_oms import Order, OrderManager, OrderState
from qfex_oms.sim import Venue

SYMBOLS = ("AAPL-USD", "TSLA-USD", "US500-USD")


class FrameLog:
    """Every frame a manager sends, decoded; install with ``oms.on_frame_sent = log``."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def __call__(self, data: bytes) -> None:
        self.frames.append(orjson.loads(data))

    def types(self) -> list[str]:
        return [f["type"] for f in self.frames]

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [f["params"] for f in self.frames if f["type"] == type_]

    def clear(self) -> None:
        self.frames.clear()


async def wait_state(order: Order, *states: OrderState, within: float = 3.0) -> Order:
    """Wait for ``order`` to reach one of ``states``; the failure names the state it is stuck in."""
    await wait_until(lambda: order.state in states, within,
                     lambda: f"order {order.client_order_id} to reach {[str(s) for s in states]} "
                             f"(is {order.state})")
    return order


async def round_trip(oms: OrderManager) -> None:
    """A request answered on the manager's own connection: the barrier for "nothing more is coming".

    The venue answers in order on one connection, so every push it made before this answer (a fill,
    a cancel, a state change caused by the other account) has been applied when this returns. Use it
    where a test would otherwise sleep before asserting that a state stays as it is.
    """
    await oms.fetch_open_orders()


def book_problems(oms: OrderManager, venue: Venue, public_key: str = PUB) -> list[str]:
    """How the manager's book differs from the simulator's state for the account (empty = equal)."""
    problems = list(oms.core.tracker.check_invariants())
    mine = oms.orders(open_only=True)
    unacked = [o.describe() for o in mine if o.order_id is None]
    if unacked:
        problems.append(f"open orders without an order_id: {unacked}")
    mine_ids = {o.order_id for o in mine if o.order_id is not None}
    venue_ids = {o.order_id for o in venue.open_orders(public_key)}
    if mine_ids != venue_ids:
        problems.append(f"open orders differ: only in the manager {mine_ids - venue_ids}, "
                        f"only in the simulator {venue_ids - mine_ids}")
    for order in oms.orders(open_only=False):
        if order.order_id is None:
            continue
        sim = venue.order(order.order_id)
        if sim is None:
            problems.append(f"the simulator does not know {order.describe()}")
            continue
        if order.filled_quantity != sim.filled:
            problems.append(f"filled quantity of {order.order_id}: manager {order.filled_quantity}, "
                            f"simulator {sim.filled}")
    venue_filled: dict[str, Decimal] = {}
    for trade in venue.trades(public_key):
        venue_filled[trade.order_id] = venue_filled.get(trade.order_id, Decimal(0)) + trade.quantity
    for order_id, quantity in venue_filled.items():
        order = oms.order(order_id)
        if order is not None and order.fill_total != quantity:
            problems.append(f"fills of {order_id}: manager {order.fill_total}, trades {quantity}")
    my_twaps = {t.twap_id for t in oms.twaps(open_only=True)}
    venue_twaps = {t.twap_id for t in venue.twaps(public_key, active_only=True)}
    if my_twaps != venue_twaps:
        problems.append(f"open TWAPs differ: manager {my_twaps}, simulator {venue_twaps}")
    return problems


async def assert_book_matches(oms: OrderManager, venue: Venue, public_key: str = PUB,
                              within: float = 3.0) -> None:
    """Wait for the book to settle, then require it to equal the simulator and a fresh snapshot."""
    def problems() -> str:
        return "the book to match the simulator:\n" + "\n".join(book_problems(oms, venue, public_key))

    await wait_until(lambda: not book_problems(oms, venue, public_key), within, problems)
    snapshot = await oms.fetch_open_orders()
    mine = {o.order_id for o in oms.orders(open_only=True)}
    assert {row.order_id for row in snapshot.orders} == mine
    assert {row.twap_id for row in snapshot.twaps} == {t.twap_id for t in oms.twaps(open_only=True)}
