"""Two strategies on one manager, one account, one connection (issue 18), against the simulator.

Both name their orders ``bid-1`` on one symbol: on the wire they are ``mm:bid-1`` and ``arb:bid-1``,
so each one's cancel by client id, cancel_all and cancel_where end only its own orders; the account's
kill switch stays ``oms.cancel_all()``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from managerkit import FrameLog, assert_book_matches, round_trip
from simkit import CREDS, PUB, manager
from waiting import drain, wait_until

from qfex_oms import InvalidArgument, OrderManager, OrderState
from qfex_oms.core.events import OrderUpdated
from qfex_oms.sim import Venue

S = "AAPL-USD"
OPEN, CANCELLED = OrderState.OPEN, OrderState.CANCELLED


def sim_client_ids(venue: Venue) -> list[str]:
    return sorted(o.client_order_id for o in venue.open_orders(PUB))


async def test_same_client_ids_in_two_strategies_cancel_only_their_own(oms: OrderManager,
                                                                      venue: Venue) -> None:
    mm, arb = oms.for_strategy("mm"), oms.for_strategy("arb")
    mine = [await mm.place_order(S, "BUY", "1", "100", client_order_id="bid-1") for _ in range(2)]
    theirs = [await arb.place_order(S, "BUY", "1", "100", client_order_id="bid-1") for _ in range(2)]
    plain = await oms.place_order(S, "BUY", "1", "100", client_order_id="bid-1")  # no strategy
    assert [o.own_client_order_id for o in mine] == ["bid-1", "bid-1"]
    assert mine[0].client_order_id == "mm:bid-1" and theirs[0].client_order_id == "arb:bid-1"
    assert sim_client_ids(venue) == ["arb:bid-1", "arb:bid-1", "bid-1", "mm:bid-1", "mm:bid-1"]

    frames = FrameLog()
    oms.on_frame_sent = frames
    result = await mm.cancel(client_order_id="bid-1", symbol=S)
    assert result.ok and set(result.cancelled) == set(mine)
    assert frames.of("cancel_order") == [
        {"order_id": "mm:bid-1", "symbol": S, "cancel_order_id_type": "client_order_id"}]
    assert all(o.state is OPEN for o in [*theirs, plain])
    assert sim_client_ids(venue) == ["arb:bid-1", "arb:bid-1", "bid-1"]

    result = await arb.cancel(client_order_id="bid-1", symbol=S)
    assert result.ok and set(result.cancelled) == set(theirs) and plain.state is OPEN
    assert sim_client_ids(venue) == ["bid-1"]
    await assert_book_matches(oms, venue)


async def test_per_strategy_cancel_all_leaves_the_others_orders(oms: OrderManager, venue: Venue) -> None:
    mm, arb = oms.for_strategy("mm"), oms.for_strategy("arb")
    mine = [await mm.place_order(S, "BUY", "1", str(p), client_order_id="bid-1") for p in (100, 101)]
    mine.append(await mm.place_order(S, "SELL", "1", "300", client_order_id="ask-1"))
    twap = await mm.place_twap(S, "BUY", total_quantity="4", num_orders=2, order_interval_secs=3600,
                               client_twap_id="rb-1")
    theirs = await arb.place_order(S, "BUY", "1", "100", client_order_id="bid-1")
    plain = await oms.place_order(S, "SELL", "1", "300", client_order_id="ask-1")
    frames = FrameLog()
    oms.on_frame_sent = frames
    report = await mm.cancel_all()
    assert report.clean and mm.halted and not oms.halted
    assert all(o.state is CANCELLED for o in mine) and twap.state.is_terminal
    assert theirs.state is OPEN and plain.state is OPEN
    assert "cancel_all_orders" not in frames.types()
    assert mm.orders() == [] and arb.orders() == [theirs]
    with pytest.raises(Exception, match="halted"):
        await mm.place_order(S, "BUY", "1", "100")
    await arb.place_order(S, "BUY", "1", "99")  # the other strategy trades on
    mm.resume()
    await mm.place_order(S, "BUY", "1", "98")
    await assert_book_matches(oms, venue)


async def test_a_view_refuses_what_is_not_its_own(oms: OrderManager) -> None:
    mm, arb = oms.for_strategy("mm"), oms.for_strategy("arb")
    theirs = await arb.place_order(S, "BUY", "1", "100", client_order_id="bid-1")
    plain = await oms.place_order(S, "BUY", "1", "100")
    frames = FrameLog()
    oms.on_frame_sent = frames
    for call in (mm.cancel(theirs), mm.cancel(plain), mm.cancel(order_id=plain.order_id, symbol=S),
                 mm.cancel(order_id="no-such", symbol=S), mm.modify_order(theirs, price="99")):
        with pytest.raises(InvalidArgument):
            await call
    assert frames.frames == [] and theirs.state is OPEN and plain.state is OPEN
    assert mm.order(theirs.order_id or "") is None and arb.order(theirs.order_id or "") is theirs


async def test_cancel_where_by_side_and_tags_sends_no_collateral_cancel(oms: OrderManager,
                                                                       venue: Venue) -> None:
    mm = oms.for_strategy("mm")
    buys = [await mm.place_order(S, "BUY", "1", "100", client_order_id="q", tags={"l1"}) for _ in range(2)]
    sell = await mm.place_order(S, "SELL", "1", "300", client_order_id="q", tags={"l1"})
    other = await mm.place_order(S, "BUY", "1", "99", client_order_id="q", tags={"l2"})
    frames = FrameLog()
    oms.on_frame_sent = frames
    report = await oms.cancel_where(symbol=S, side="BUY", strategy="mm", tags=["l1"])
    assert report.clean and set(report.cancelled_orders) == set(buys)
    assert sell.state is OPEN and other.state is OPEN
    assert sorted(f["order_id"] for f in frames.of("cancel_order")) == sorted(o.order_id for o in buys)
    await assert_book_matches(oms, venue)


async def test_view_events_and_an_adopted_order_in_its_namespace(oms: OrderManager, venue: Venue) -> None:
    """An order placed in mm's namespace by another manager (another process) is adopted as mm's
    and ended by mm's cancel_all; the view's events are mm's only."""
    mm = oms.for_strategy("mm")
    with mm.events() as stream:
        async with manager(venue, CREDS) as elsewhere:
            outsider = await elsewhere.place_order(S, "BUY", "1", "100", client_order_id="mm:bid-7")
        await oms.place_order(S, "BUY", "1", "100", client_order_id="x")  # no strategy's
        await oms.reconcile()
        adopted = oms.order(outsider.order_id or "")
        assert adopted is not None and adopted.strategy == "mm" and adopted.own_client_order_id == "bid-7"
        report = await mm.cancel_all()
        assert report.clean and adopted.state is CANCELLED
        await round_trip(oms)
        events = await drain(stream)
    orders = {e.order.client_order_id for e in events if isinstance(e, OrderUpdated)}
    assert orders == {"mm:bid-7"}


async def test_bad_strategy_names_and_too_long_ids_are_refused_before_sending(oms: OrderManager) -> None:
    for name in ("twap", "", "a:b", "x" * 17):
        with pytest.raises(InvalidArgument):
            oms.for_strategy(name)
    with pytest.raises(InvalidArgument, match="at most"):
        await oms.place_order(S, "BUY", "1", "100", strategy="mm", client_order_id="x" * 62)


async def test_stops_are_attributed_and_a_strategys_cancel_all_ends_only_its_own(
        oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    mm, arb = oms.for_strategy("mm"), oms.for_strategy("arb")
    await oms2.place_order(S, "SELL", "2", "100")
    entry = await mm.place_order(S, "BUY", "2", order_type="MARKET", client_order_id="in",
                                 take_profit="110", stop_loss="90")  # a bracket: its legs are mm's
    await wait_until(lambda: entry.filled_quantity == 2 and len(oms.stops(S)) == 2, what="the bracket")
    mine = await mm.place_order(S, "SELL", "1", "120", order_type="TAKE_PROFIT", client_order_id="tp",
                                tags={"exit"})
    theirs = await arb.place_order(S, "SELL", "1", "121", order_type="TAKE_PROFIT", client_order_id="tp")
    assert mine.strategy == "mm" and mine.tags == frozenset({"exit"}) and mine.own_client_order_id == "tp"
    assert theirs.client_order_id == "arb:tp" and arb.stops() == [theirs]
    assert len(mm.stops()) == 3 and all(s.strategy == "mm" for s in mm.stops())
    with pytest.raises(InvalidArgument):
        await mm.cancel(theirs)
    report = await mm.cancel_all()
    assert report.clean and len(report.cancelled_stops) == 3
    assert mm.stops() == [] and theirs.state.is_live
    assert [s.client_order_id for s in venue.stops(PUB)] == ["arb:tp"]


async def test_strategy_and_tags_survive_a_restart_from_the_journal(venue: Venue, tmp_path: Path) -> None:
    journal = str(tmp_path / "oms.journal")
    async with manager(venue, journal=journal) as first:
        placed = await first.for_strategy("mm").place_order(S, "BUY", "1", "100", client_order_id="bid-1",
                                                            tags={"l1", "quote"})
        twap = await first.for_strategy("arb").place_twap(S, "BUY", total_quantity="4", num_orders=2,
                                                          order_interval_secs=3600, tags={"rebalance"})
    async with manager(venue, journal=journal) as second:
        order = second.order(placed.order_id or "")
        assert order is not None and order.strategy == "mm" and order.tags == frozenset({"l1", "quote"})
        assert [(t.strategy, t.tags) for t in second.for_strategy("arb").twaps()] == [
            ("arb", frozenset({"rebalance"}))]
        assert twap.client_twap_id == second.twaps()[0].client_twap_id
