"""cancel_all(): the kill switch, over several symbols, running TWAPs and orders placed elsewhere."""

from __future__ import annotations

import orjson
import pytest
import trio
from managerkit import SYMBOLS, FrameLog, assert_book_matches
from simkit import PUB, PUB2, manager
from waiting import wait_until

from qfex_oms import Halted, KillReport, OrderManager, OrderState, PacerSettings, TwapState
from qfex_oms.core.events import OrderUpdated
from qfex_oms.sim import Venue

S = "AAPL-USD"


def assert_clean(report: KillReport) -> None:
    assert isinstance(report, KillReport)
    assert report.clean and report.snapshot_checked and report.ack_received
    assert report.still_open == () and report.still_open_twaps == ()
    assert report.elapsed < 2


async def test_cancel_all_over_several_symbols(oms: OrderManager, venue: Venue) -> None:
    placed = [await oms.place_order(symbol, side, "1", price)
              for symbol in SYMBOLS
              for side, price in (("BUY", "150"), ("BUY", "149"), ("SELL", "300"))]
    frames = FrameLog()
    oms.on_frame_sent = frames
    report = await oms.cancel_all()
    assert_clean(report)
    assert frames.types()[0] == "cancel_all_orders"
    assert {o.order_id for o in report.cancelled_orders} == {o.order_id for o in placed}
    assert all(o.state is OrderState.CANCELLED for o in placed)
    assert venue.open_orders(PUB) == []
    assert oms.halted
    await assert_book_matches(oms, venue)


async def test_cancel_all_orders_leaves_before_the_per_order_events_are_delivered(
        oms: OrderManager, venue: Venue) -> None:
    """The halt is not held back by bookkeeping: the core marks every open order PENDING_CANCEL
    before the frame goes (so a lost frame leaves each cancel owed), but the events of those moves,
    one per order, reach subscribers after cancel_all_orders is written (bench row 5)."""
    placed = [await oms.place_order(S, "BUY", "1", str(100 + i)) for i in range(20)]
    delivered: list[object] = []

    def seen(event: object) -> bool:
        if isinstance(event, OrderUpdated) and event.state is OrderState.PENDING_CANCEL:
            delivered.append(event)
        return False

    oms.events(accept=seen)
    at_write: list[tuple[str, int, bool]] = []
    oms.on_frame_sent = lambda data: at_write.append(
        (orjson.loads(data)["type"], len(delivered),
         all(o.state is OrderState.PENDING_CANCEL for o in placed)))
    report = await oms.cancel_all()
    assert_clean(report)
    assert at_write[0] == ("cancel_all_orders", 0, True)
    assert len(delivered) == len(placed)  # every one delivered all the same


async def test_cancel_all_with_nothing_open(oms: OrderManager, venue: Venue) -> None:
    report = await oms.cancel_all()
    assert_clean(report)
    assert report.cancelled_orders == () and report.cancelled_twaps == ()
    await assert_book_matches(oms, venue)


async def test_cancel_all_stops_running_twaps(oms: OrderManager, venue: Venue) -> None:
    twaps = [await oms.place_twap(symbol, "BUY", total_quantity="10", num_orders=200,
                                  order_interval_secs=30) for symbol in SYMBOLS[:2]]
    order = await oms.place_order(S, "BUY", "1", "100")
    await wait_until(lambda: all(len(t.children) >= 2 for t in twaps), what="TWAP children")
    report = await oms.cancel_all()
    assert_clean(report)
    assert set(report.cancelled_twaps) == set(twaps)
    assert all(t.state is TwapState.CANCELLED for t in twaps)
    assert order in report.cancelled_orders
    assert venue.twaps(PUB, active_only=True) == []
    children = len(venue.orders(PUB))
    await trio.sleep(0.1)  # ~3 TWAP intervals: nothing new
    assert len(venue.orders(PUB)) == children
    await assert_book_matches(oms, venue)


async def test_cancel_all_covers_orders_placed_by_another_connection(venue: Venue) -> None:
    """Orders of the same account placed by another process: before we connected (unknown to us)
    and while we are connected (learnt from the account-wide push)."""
    async with manager(venue) as early:
        before = [await early.place_order(symbol, "SELL", "1", "400") for symbol in SYMBOLS[:2]]
        # Its market children find no seller on US500-USD (and never trade with our own orders).
        early_twap = await early.place_twap("US500-USD", "BUY", total_quantity="5", num_orders=200,
                                            order_interval_secs=30)
    async with manager(venue) as oms, manager(venue) as other:
        assert oms.orders() == [] and oms.twaps() == []  # nothing of the earlier process is known
        during = [await other.place_order(symbol, "BUY", "1", "150") for symbol in SYMBOLS]
        mine = [await oms.place_order(symbol, "BUY", "1", "149") for symbol in SYMBOLS]
        assert len(venue.open_orders(PUB)) == 8
        report = await oms.cancel_all()
        assert_clean(report)
        ended = {o.order_id for o in report.cancelled_orders}
        assert {o.order_id for o in before + during + mine} <= ended
        assert all(oms.order(o.order_id or "").adopted for o in before)  # type: ignore[union-attr]
        assert venue.open_orders(PUB) == [] and venue.twaps(PUB, active_only=True) == []
        adopted_twap = [t for t in oms.twaps() if t.twap_id == early_twap.twap_id]
        assert adopted_twap == [] or adopted_twap[0].state is TwapState.CANCELLED
        await assert_book_matches(oms, venue)
        # The other connection saw its orders end through the same push.
        await wait_until(lambda: all(o.state is OrderState.CANCELLED for o in during), what="push")
        await assert_book_matches(other, venue)


async def test_cancel_all_leaves_the_other_account_alone(
    oms: OrderManager, oms2: OrderManager, venue: Venue
) -> None:
    await oms.place_order(S, "BUY", "1", "100")
    theirs = await oms2.place_order(S, "SELL", "1", "300")
    report = await oms.cancel_all()
    assert_clean(report)
    assert theirs.state is OrderState.OPEN
    assert [o.order_id for o in venue.open_orders(PUB2)] == [theirs.order_id]
    await assert_book_matches(oms2, venue, PUB2)


async def test_halted_until_resume(oms: OrderManager, venue: Venue) -> None:
    before = await oms.place_order(S, "BUY", "1", "100")
    await oms.cancel_all()
    assert oms.halted
    frames = FrameLog()
    oms.on_frame_sent = frames
    with pytest.raises(Halted):
        await oms.place_order(S, "BUY", "1", "100")
    with pytest.raises(Halted):
        await oms.place_twap(S, "BUY", total_quantity="10", num_orders=5, order_interval_secs=30)
    with pytest.raises(Halted):
        await oms.modify_order(before, price="101")
    assert frames.frames == []
    oms.resume()
    assert not oms.halted
    order = await oms.place_order(S, "BUY", "1", "100")
    assert order.state is OrderState.OPEN
    assert frames.types() == ["add_order"]
    await assert_book_matches(oms, venue)


async def test_cancels_still_work_while_halted(oms: OrderManager, venue: Venue) -> None:
    order = await oms.place_order(S, "BUY", "1", "100")
    oms._set_halted(True, "test")  # halted with an order still open (e.g. placed elsewhere)
    result = await oms.cancel(order)
    assert result.status == "CANCELLED"
    oms.resume()


async def test_cancel_all_halts_orders_already_waiting_for_the_pacer(venue: Venue) -> None:
    """A burst queued behind the pacer when the switch is pulled never reaches the exchange."""
    async with manager(venue, pacer=PacerSettings(units_per_second=50, burst=5)) as oms:
        outcomes: list[str] = []

        async def place(i: int) -> None:
            try:
                await oms.place_order(S, "BUY", "1", str(100 + i))
                outcomes.append("placed")
            except Halted:
                outcomes.append("halted")

        async with trio.open_nursery() as nursery:
            for i in range(40):
                nursery.start_soon(place, i)
            await wait_until(lambda: outcomes.count("placed") >= 5, what="first orders")
            report = await oms.cancel_all()
        assert report.clean
        # Halted orders leave the pacer's queue at once: the snapshot check is not stuck behind them
        # (35 queued orders at 50/s would hold it back 0.7 s).
        assert report.elapsed < 0.3
        assert outcomes.count("halted") > 0 and len(outcomes) == 40
        assert venue.open_orders(PUB) == []
        assert len(venue.orders(PUB)) == outcomes.count("placed")
        await assert_book_matches(oms, venue)


async def test_cancel_all_survives_the_caller_being_cancelled(oms: OrderManager, venue: Venue) -> None:
    for i in range(20):
        await oms.place_order(S, "BUY", "1", str(100 + i))
    with trio.move_on_after(0.0005):
        await oms.cancel_all()
    await wait_until(lambda: venue.open_orders(PUB) == [], what="every order cancelled")
    assert oms.halted
    await assert_book_matches(oms, venue)


async def test_report_lists_only_what_the_kill_switch_ended(oms: OrderManager, venue: Venue) -> None:
    """Orders that had ended before the switch was pulled (TWAP children, orders cancelled by another
    connection) are not in the report, however the book's ids are laid out."""
    for _ in range(3):  # TWAPs take local ids too
        twap = await oms.place_twap(S, "BUY", total_quantity="2", num_orders=2, order_interval_secs=30)
        await wait_until(lambda t=twap: t.state is TwapState.COMPLETED and len(t.children) == 2
                         and all(c.state.is_terminal for c in t.children), what="TWAP done")
    async with manager(venue) as other:
        gone = await other.place_order(S, "BUY", "1", "120")
        await other.cancel(gone)
    await wait_until(lambda: (o := oms.order(gone.order_id or "")) is not None
                     and o.state is OrderState.CANCELLED, what="push of the other cancel")
    live = await oms.place_order(S, "BUY", "1", "100")
    report = await oms.cancel_all()
    assert_clean(report)
    assert report.cancelled_orders == (live,)
    assert report.cancelled_twaps == ()


async def test_report_lists_twaps_placed_elsewhere(venue: Venue) -> None:
    async with manager(venue) as early:
        twap = await early.place_twap(S, "BUY", total_quantity="5", num_orders=200, order_interval_secs=30)
    async with manager(venue) as oms:
        report = await oms.cancel_all()
        assert_clean(report)
        assert [t.twap_id for t in report.cancelled_twaps] == [twap.twap_id]
        assert report.cancelled_twaps[0].adopted
        assert venue.twaps(PUB, active_only=True) == []
