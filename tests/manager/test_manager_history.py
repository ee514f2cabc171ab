"""Issue 11 / 15 over the wire: an order whose every answer was lost, ended by the exchange unseen,
is named and settled from QFEX's order history (the simulator's ``GET /user/historic-orders``).

Without a REST API the manager settles it as before (CANCELLED, ``MISSING_FROM_SNAPSHOT``, no id);
with one, it learns the order's id and how it really ended, and the journal says the history did.
"""

from __future__ import annotations

import pytest
import trio
from faultkit import SHORT
from managerkit import assert_book_matches, wait_state
from simkit import PUB, manager
from waiting import wait_until

from qfex_oms import OrderManager, OrderState, OrderStatusUnknown
from qfex_oms.core.history import HISTORY_SOURCE
from qfex_oms.core.snapshot import SETTLED_MISSING
from qfex_oms.sim import Venue

S = "AAPL-USD"


async def _lost_then_cancelled_unseen(oms: OrderManager, venue: Venue, cid: str) -> object:
    """Place an order whose ACK is dropped; while the caller waits, the venue cancels it without a
    word (as cancel-on-disconnect would). Returns the order, UNKNOWN with no id."""
    venue.faults.drop_next(1, kind="order_response", public_key=PUB)
    caught: list[OrderStatusUnknown] = []

    async def place() -> None:
        with pytest.raises(OrderStatusUnknown) as exc:
            await oms.place_order(S, "BUY", "1", "100", client_order_id=cid)
        caught.append(exc.value)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(place)
        await wait_until(lambda: len(venue.open_orders(PUB)) == 1, what="the order rests at the venue")
        (resting,) = venue.open_orders(PUB)
        assert venue.cancel_unannounced(PUB, resting.order_id)
    order = caught[0].order
    assert order.order_id is None
    return order, resting.order_id


async def test_an_order_cancelled_unseen_is_named_and_settled_from_history(venue: Venue) -> None:
    notes: list[bytes] = []
    async with manager(venue, request_timeout=SHORT, rest_url=venue.rest_url) as oms:
        oms.on_settled = notes.append
        order, venue_id = await _lost_then_cancelled_unseen(oms, venue, "lost-1")
        await wait_state(order, OrderState.CANCELLED)
        assert order.order_id == venue_id and order.last_status == "CANCELLED"
        await assert_book_matches(oms, venue)
    assert any(HISTORY_SOURCE.encode() in n and venue_id.encode() in n for n in notes)


async def test_without_a_rest_api_it_is_settled_as_missing(venue: Venue) -> None:
    async with manager(venue, request_timeout=SHORT, rest_url=None) as oms:
        order, _ = await _lost_then_cancelled_unseen(oms, venue, "lost-2")
        await wait_state(order, OrderState.CANCELLED)
        assert order.order_id is None and order.last_status == SETTLED_MISSING


async def test_history_unreachable_falls_back_to_settling_as_missing(venue: Venue) -> None:
    async with manager(venue, request_timeout=SHORT, rest_url="http://127.0.0.1:1") as oms:
        order, _ = await _lost_then_cancelled_unseen(oms, venue, "lost-3")
        await wait_state(order, OrderState.CANCELLED, within=10)
        assert order.order_id is None and order.last_status == SETTLED_MISSING


async def test_a_known_order_cancelled_unseen_ends_with_the_status_history_gives(venue: Venue) -> None:
    """An ACKed order the venue cancels without a word: the snapshot no longer shows it, and the
    history says CANCELLED (QFEX's status), where the snapshot alone could only say MISSING."""
    async with manager(venue, request_timeout=SHORT, rest_url=venue.rest_url) as oms:
        order = await oms.place_order(S, "BUY", "1", "100", client_order_id="known-1")
        assert venue.cancel_unannounced(PUB, str(order.order_id))
        diff = await oms.reconcile()
        assert order in diff.settled
        assert order.state is OrderState.CANCELLED and order.last_status == "CANCELLED"
