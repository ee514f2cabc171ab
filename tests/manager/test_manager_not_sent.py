"""A request whose deadline passes while it still waits for the pacer never reached the exchange.

That outcome is exact, not ambiguous: the order is closed locally (REJECTED, NOT_SENT) and
``NotSent`` is raised, where a deadline after the frame went out still gives UNKNOWN. Before this,
such orders became UNKNOWN and were later settled CANCELLED from a snapshot that did not show them:
a cancel that never happened. The manager here paces at 20 units/s with a burst of 2 and waits
0.3 s, so a burst of 30 requests sends about eight and withdraws the rest.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal

import pytest
import trio
import trio.testing
from managerkit import FrameLog, assert_book_matches
from simkit import PUB, manager
from wsproto.utilities import LocalProtocolError

from qfex_oms import (
    Halted,
    InvalidArgument,
    NotSent,
    OrderManager,
    OrderState,
    OrderStatusUnknown,
    PacerSettings,
)
from qfex_oms.protocol import messages as m
from qfex_oms.sim import Venue

S = "AAPL-USD"
SLOW = {"pacer": PacerSettings(units_per_second=20, burst=2), "request_timeout": 0.3}
# One token, refilled in 2 s: after one order, the next request's turn is past its 0.5 s deadline,
# with 1.5 s to spare for a busy machine between the two requests (0.2 s was not enough for CI).
ONE_EVERY_TWO_SECONDS = {"pacer": PacerSettings(units_per_second=0.5, burst=1), "request_timeout": 0.5}
REFILLED = 2.2  # seconds: the next token is there


async def burst_of_orders(oms: OrderManager, n: int, first_price: int = 100) -> Counter[str]:
    outcomes: Counter[str] = Counter()

    async def place(i: int) -> None:
        try:
            await oms.place_order(S, "BUY", "1", str(first_price + i))
            outcomes["placed"] += 1
        except NotSent as exc:
            assert exc.subject.state is OrderState.REJECTED  # closed, never UNKNOWN
            outcomes["not sent"] += 1
        except OrderStatusUnknown:
            outcomes["unknown"] += 1

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(place, i)
    return outcomes


async def test_orders_withdrawn_from_the_pacer_are_rejected_not_sent_and_never_reach_the_venue(
    venue: Venue,
) -> None:
    async with manager(venue, **SLOW) as oms:
        frames = FrameLog()
        oms.on_frame_sent = frames
        outcomes = await burst_of_orders(oms, 30)
        assert outcomes["unknown"] == 0, outcomes
        assert outcomes["placed"] > 0 and outcomes["not sent"] > 0, outcomes
        assert len(frames.of("add_order")) == outcomes["placed"] == len(venue.open_orders(PUB))
        withdrawn = [o for o in oms.orders(open_only=False) if o.last_status == "NOT_SENT"]
        assert len(withdrawn) == outcomes["not sent"]
        assert all(o.state is OrderState.REJECTED and o.order_id is None for o in withdrawn)
        await trio.sleep(1.5)  # the pacer refills; the settler has had every chance to run
        await oms.reconcile()
        assert all(o.state is OrderState.REJECTED for o in withdrawn)  # never settled as CANCELLED
        await assert_book_matches(oms, venue)


async def test_a_cancel_withdrawn_from_the_pacer_leaves_its_order_open(venue: Venue) -> None:
    async with manager(venue, **SLOW) as oms:
        orders = [await oms.place_order(S, "BUY", "1", str(100 + i)) for i in range(20)]
        frames = FrameLog()
        oms.on_frame_sent = frames
        results = {}

        async def cancel(i: int) -> None:
            results[i] = (await oms.cancel(orders[i])).status

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(cancel, i)
        statuses = Counter(results.values())
        assert set(statuses) == {"CANCELLED", "NOT_SENT"}, statuses
        assert len(frames.of("cancel_order")) == statuses["CANCELLED"]
        for i, status in results.items():
            expected = OrderState.CANCELLED if status == "CANCELLED" else OrderState.OPEN
            assert orders[i].state is expected, (i, status, orders[i].state)
        assert len(venue.open_orders(PUB)) == statuses["NOT_SENT"]
        await trio.sleep(1.0)  # room in the pacer again: the same cancels now go through
        for i, status in results.items():
            if status == "NOT_SENT":
                assert (await oms.cancel(orders[i])).status == "CANCELLED"
        assert venue.open_orders(PUB) == []
        await assert_book_matches(oms, venue)


async def test_a_query_withdrawn_from_the_pacer_does_not_steal_the_next_answer(venue: Venue) -> None:
    """Replies carry no request id: a query that was never sent must not wait for an answer, or
    the next query's answer would be handed to it."""
    async with manager(venue, **ONE_EVERY_TWO_SECONDS) as oms:
        first = await oms.place_order(S, "BUY", "1", "99")  # spends the only token
        with pytest.raises(NotSent):
            await oms.fetch_open_orders()  # its token is 2 s away; the deadline is 0.5 s
        await trio.sleep(REFILLED)
        with trio.fail_after(1.0):
            snapshot = await oms.fetch_open_orders()
        assert [row.order_id for row in snapshot.orders] == [first.order_id]


async def test_a_modify_withdrawn_from_the_pacer_changes_nothing_and_can_be_sent_again(venue: Venue) -> None:
    async with manager(venue, **ONE_EVERY_TWO_SECONDS) as oms:
        order = await oms.place_order(S, "BUY", "2", "99")
        with pytest.raises(NotSent):
            await oms.modify_order(order, price="98")
        assert order.price == Decimal("99") and order.state is OrderState.OPEN
        assert venue.open_orders(PUB)[0].price == Decimal("99")
        await trio.sleep(REFILLED)
        await oms.modify_order(order, price="98")  # not "a modify is already in flight"
        assert order.price == Decimal("98")


async def test_a_modify_stopped_in_the_pacer_by_the_kill_switch_raises_halted(venue: Venue) -> None:
    async with manager(venue, pacer=PacerSettings(units_per_second=2, burst=1), request_timeout=3) as oms:
        order = await oms.place_order(S, "BUY", "2", "99")  # spends the only token
        async with trio.open_nursery() as nursery:
            async def modify() -> None:
                with pytest.raises(Halted):  # not NotSent: it was the halt that stopped it
                    await oms.modify_order(order, price="98")

            nursery.start_soon(modify)
            await trio.testing.wait_all_tasks_blocked()  # the modify now waits for its token
            report = await oms.cancel_all()
        assert report.clean and order.state is OrderState.CANCELLED
        assert order.price == Decimal("99")


@pytest.mark.parametrize("name", ["request_timeout", "handshake_timeout", "kill_timeout"])
async def test_a_deadline_that_is_not_positive_is_refused_before_connecting(venue: Venue, name: str) -> None:
    with pytest.raises(InvalidArgument, match=name):
        async with manager(venue, **{name: 0}):
            pass


class _ClosingSession:
    """A session whose socket trio-websocket is already closing: wsproto refuses the frame."""

    pacer = None

    async def wait_turn(self, request: object, **_: object) -> None:
        return None

    async def write(self, request: object) -> None:
        raise LocalProtocolError("Event TextMessage cannot be sent in state ConnectionState.LOCAL_CLOSING.")


async def test_a_frame_refused_by_a_closing_socket_is_a_failed_send_not_a_crash(oms: OrderManager) -> None:
    """trio-websocket can raise wsproto's error out of send_message in the window before it marks the
    connection closed; the caller must get an outcome, not a wsproto exception (no real socket can be
    held in that window on purpose, hence the stand-in session)."""
    frame = m.CancelAllOrders()
    assert await oms._transmit(_ClosingSession(), [frame]) == "SEND_FAILED"  # type: ignore[arg-type]


async def test_follow_up_frames_withdrawn_from_the_pacer_are_sent_again_in_order(oms: OrderManager) -> None:
    """Cancels released by an ACK go out through the follow-up sender. One that missed its deadline in
    the pacer must still go (it was never sent), and the frames after it must not be dropped."""
    outcomes = iter(["NOT_SENT", None, None])
    sent: list[str] = []
    all_sent = trio.Event()

    async def transmit(session: object, frames: list[m.Request], **_: object) -> str | None:
        sent.extend(f.order_id for f in frames)  # type: ignore[attr-defined]
        await trio.lowlevel.checkpoint()
        if len(sent) == 3:
            all_sent.set()
        return next(outcomes)

    oms._transmit = transmit  # type: ignore[method-assign]
    send, recv = trio.open_memory_channel[list[m.Request]](10)
    first = m.CancelOrder(order_id="a", symbol=S, cancel_order_id_type=m.CancelIdType.ORDER_ID)
    second = m.CancelOrder(order_id="b", symbol=S, cancel_order_id_type=m.CancelIdType.ORDER_ID)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(oms._follow_up_sender, oms._session, recv)
        await send.send([first, second])
        with trio.fail_after(2):
            await all_sent.wait()
        nursery.cancel_scope.cancel()
    assert sent == ["a", "a", "b"]
