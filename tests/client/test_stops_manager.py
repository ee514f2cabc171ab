"""Stop orders through the manager, against the simulator over loopback (issue 14).

Brackets (an entry with take-profit and stop-loss) firing on each side, standalone stops placed,
modified and cancelled, bad arguments refused before any frame, the exchange's refusals, a stop that
fires while the manager is away settled on resync with its fills counted once, and the kill switch,
which is not clean while a stop survives.
"""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
import trio
from managerkit import FrameLog, round_trip
from simkit import PUB, manager
from waiting import drain, wait_until

from qfex_oms import InvalidArgument, OrderManager, OrderRejected, OrderState
from qfex_oms.core.events import FillReceived, StopUpdated
from qfex_oms.core.stops import StopOrder, StopState
from qfex_oms.sim import Venue

S = "AAPL-USD"
D = Decimal


async def go_long(oms: OrderManager, oms2: OrderManager, quantity: str = "1", **extra: object) -> None:
    """oms2 offers at 100, oms lifts it: a long of ``quantity`` (with ``extra``: take_profit, ...)."""
    await oms2.place_order(S, "SELL", quantity, "100")
    entry = await oms.place_order(S, "BUY", quantity, order_type="MARKET", **extra)  # type: ignore[arg-type]
    await wait_until(lambda: entry.filled_quantity == D(quantity), what="the entry's fill")


async def bracket(oms: OrderManager, oms2: OrderManager) -> tuple[StopOrder, StopOrder, str]:
    """A long of 1 with a take-profit at 110 and a stop-loss at 90; returns (tp, sl, entry id)."""
    await go_long(oms, oms2, take_profit="110", stop_loss="90", client_order_id="br-1")
    await wait_until(lambda: len(oms.stops(S)) == 2, what="both legs staged")
    tp = next(s for s in oms.stops(S) if s.kind == "TAKE_PROFIT")
    sl = next(s for s in oms.stops(S) if s.kind == "STOP_LOSS")
    entry = next(o for o in oms.orders(S, open_only=False) if o.client_order_id == "br-1")
    return tp, sl, entry.order_id or ""


def venue_stop_ids(venue: Venue) -> set[str]:
    return {s.stop_order_id for s in venue.stops(PUB)}


# ---------------------------------------------------------------------- brackets


@pytest.mark.parametrize(("mark", "bid", "fires"), [("111", "110", "TAKE_PROFIT"), ("89", "89", "STOP_LOSS")])
async def test_a_bracket_fires_one_leg_and_the_other_is_cancelled(oms: OrderManager, oms2: OrderManager,
                                                                  venue: Venue, mark: str, bid: str,
                                                                  fires: str) -> None:
    tp, sl, entry_id = await bracket(oms, oms2)
    assert (tp.side, tp.trigger_price, tp.quantity) == ("SELL", D(110), D(1))
    assert (sl.side, sl.trigger_price) == ("SELL", D(90))
    assert tp.parent_order_id == entry_id and sl.parent_order_id == entry_id
    assert {tp.stop_order_id, sl.stop_order_id} == venue_stop_ids(venue)
    with oms.events() as events:
        await oms2.place_order(S, "BUY", "1", bid)  # liquidity for the leg's market order
        venue.set_mark(S, mark)
        fired, other = (tp, sl) if fires == "TAKE_PROFIT" else (sl, tp)
        await wait_until(lambda: fired.state is StopState.TRIGGERED and other.state is StopState.CANCELLED,
                         what=lambda: f"{fires} to fire (is {fired.state}, other {other.state})")
        assert fired.order is not None
        await wait_until(lambda: fired.order is not None and fired.order.state is OrderState.FILLED,
                         what="the fired leg's market order to fill")
        await round_trip(oms)
        seen = await drain(events, idle=0.05)
    assert fired.order.filled_quantity == D(1)
    assert sum(isinstance(e, FillReceived) and e.order is fired.order for e in seen) == 1
    assert [e.state for e in seen if isinstance(e, StopUpdated) and e.stop is fired] == [StopState.TRIGGERED]
    assert oms.stops() == [] and venue.stops(PUB) == []
    assert D(str(venue.position(PUB, S).quantity)) == 0


# ---------------------------------------------------------------------- standalone stops


async def test_a_standalone_stop_is_placed_modified_and_cancelled(oms: OrderManager, oms2: OrderManager,
                                                                  venue: Venue) -> None:
    await go_long(oms, oms2)
    stop = await oms.place_order(S, "SELL", "1", "90", order_type="STOP_LOSS")
    assert isinstance(stop, StopOrder) and stop.state is StopState.ACTIVE and stop.stop_order_id
    assert oms.stops() == [stop] and oms.stops("TSLA-USD") == [] and stop not in oms.orders()
    assert await oms.modify_stop(stop, price="91") is stop
    assert stop.trigger_price == D(91)
    assert venue.stops(PUB)[0].price == D(91)
    result = await oms.cancel(stop)
    assert result.ok and result.stop is stop and stop.state is StopState.CANCELLED
    assert venue.stops(PUB) == [] and oms.stops() == [] and oms.stops(open_only=False) == [stop]
    again = await oms.cancel(stop)
    assert again.status == "ALREADY_CLOSED"


async def test_cancel_by_stop_order_id(oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    await go_long(oms, oms2)
    stop = await oms.place_order(S, "SELL", "1", "120", order_type="TAKE_PROFIT")
    result = await oms.cancel(stop_order_id=stop.stop_order_id, symbol=S)
    assert result.ok and stop.state is StopState.CANCELLED and venue.stops(PUB) == []


async def test_bad_stop_arguments_fail_before_any_frame(oms: OrderManager, oms2: OrderManager) -> None:
    await go_long(oms, oms2)
    frames = FrameLog()
    oms.on_frame_sent = frames
    for bad in (dict(price=None), dict(price="-1"), dict(quantity="0"), dict(time_in_force="FOK"),
                dict(side="SIDEWAYS")):
        kwargs = {"side": "SELL", "quantity": "1", "price": "90", **bad}
        with pytest.raises(InvalidArgument):
            await oms.place_order(S, kwargs.pop("side"), kwargs.pop("quantity"), kwargs.pop("price"),
                                  order_type="STOP_LOSS", **kwargs)
    stop = await oms.place_order(S, "SELL", "1", "90", order_type="STOP_LOSS")
    frames.clear()
    with pytest.raises(InvalidArgument):
        await oms.modify_stop(stop)
    with pytest.raises(InvalidArgument):
        await oms.cancel(stop_order_id="no-such-stop", symbol=S)
    with pytest.raises(InvalidArgument):
        await oms.cancel(stop_order_id=stop.stop_order_id, symbol="TSLA-USD")
    assert frames.frames == []


async def test_the_exchanges_refusals_are_rejections(oms: OrderManager, oms2: OrderManager,
                                                     venue: Venue) -> None:
    await go_long(oms, oms2)
    venue.set_mark(S, "100")
    with pytest.raises(OrderRejected) as wrong_side:  # a SELL stop-loss above the mark: already crossed
        await oms.place_order(S, "SELL", "1", "101", order_type="STOP_LOSS")
    assert wrong_side.value.status == "INVALID_STOPLOSS_PRICE"
    with pytest.raises(OrderRejected) as too_big:  # larger than the position it would close
        await oms.place_order(S, "SELL", "5", "90", order_type="STOP_LOSS")
    assert too_big.value.status == "REJECTED"
    assert oms.stops() == [] and all(s.state is StopState.REJECTED for s in oms.stops(open_only=False))


async def test_cancel_and_modify_of_a_stop_that_already_fired(oms: OrderManager, oms2: OrderManager,
                                                              venue: Venue) -> None:
    await go_long(oms, oms2)
    stop = await oms.place_order(S, "SELL", "1", "90", order_type="STOP_LOSS")
    await oms2.place_order(S, "BUY", "1", "89")
    venue.set_mark(S, "89")
    await wait_until(lambda: stop.state is StopState.TRIGGERED, what="the stop to fire")
    assert (await oms.cancel(stop)).status == "ALREADY_CLOSED"  # nothing sent: it is an order now
    with pytest.raises(InvalidArgument):
        await oms.modify_stop(stop, price="88")
    # TRIGGERED comes with the market order's ACK; its fill and FILLED are later frames, and neither
    # call above sent anything. A round trip: the venue sent them before answering it.
    await round_trip(oms)
    assert stop.order is not None and stop.order.filled_quantity == D(1)


# ---------------------------------------------------------------------- resync


async def test_a_stop_firing_while_disconnected_is_settled_on_resync_with_fills_counted_once(
        oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    tp, sl, _ = await bracket(oms, oms2)
    await oms2.place_order(S, "BUY", "1", "110")
    await venue.drop_connections(PUB)
    venue.set_mark(S, "111")  # fires while the manager is away: it hears nothing of it
    await wait_until(lambda: tp.state is StopState.TRIGGERED and sl.state is StopState.CANCELLED,
                     within=5, what=lambda: f"resync to settle the legs ({tp.state}, {sl.state})")
    assert tp.order is not None and tp.order.filled_quantity == D(1)
    await oms.reconcile()  # a second resync: the same trade, counted once
    assert tp.order.filled_quantity == D(1) and tp.order.fill_total == D(1)


# ---------------------------------------------------------------------- kill switch


async def test_the_kill_switch_cancels_stops_and_is_clean(oms: OrderManager, oms2: OrderManager,
                                                          venue: Venue) -> None:
    tp, sl, _ = await bracket(oms, oms2)
    order = await oms.place_order(S, "BUY", "1", "50")
    twap = await oms.place_twap(S, "BUY", total_quantity="10", num_orders=200, order_interval_secs=30)
    report = await oms.cancel_all()
    assert report.clean, report
    assert set(report.cancelled_stops) == {tp, sl} and report.still_open_stops == ()
    assert twap in report.cancelled_twaps and order in report.cancelled_orders
    assert order.state is OrderState.CANCELLED and venue.stops(PUB) == []


async def test_the_kill_switch_is_not_clean_while_a_stop_survives(oms: OrderManager, oms2: OrderManager,
                                                                  venue: Venue) -> None:
    tp, sl, _ = await bracket(oms, oms2)
    venue.faults.refuse_stop_cancel(sl.stop_order_id or "")
    report = await oms.cancel_all()
    assert not report.clean and report.snapshot_checked
    assert report.still_open_stops == (sl,) and tp in report.cancelled_stops
    assert venue_stop_ids(venue) == {sl.stop_order_id}


async def test_a_restart_with_the_journal_keeps_a_staged_stop(venue: Venue, oms2: OrderManager,
                                                              tmp_path: Path) -> None:
    path = str(tmp_path / "journal.db")
    async with manager(venue, journal=path) as oms:
        await go_long(oms, oms2)
        stop = await oms.place_order(S, "SELL", "1", "90", order_type="STOP_LOSS")
        stop_id = stop.stop_order_id
    async with manager(venue, journal=path) as again:
        found = again.stops()
        assert [s.stop_order_id for s in found] == [stop_id]
        await wait_until(lambda: found[0].state is StopState.ACTIVE, what="the resync to confirm it")


# ---------------------------------------------------------------------- a crash (kill -9) and recovery

CHILD = """
import sys, trio
from qfex_oms import Credentials, open_order_manager

async def main(url, journal):
    creds = Credentials("qfex_pub_demo", "qfex_secret_demo")
    async with open_order_manager(url, creds, journal=journal, request_timeout=5.0,
                                  handshake_timeout=5.0) as oms:
        stop = await oms.place_order("AAPL-USD", "SELL", "1", "90", order_type="STOP_LOSS")
        await oms.journal.flush()  # what a crash leaves: the stop's frames are on disk
        print("@@staged", stop.stop_order_id, flush=True)
        await trio.sleep_forever()

trio.run(main, sys.argv[1], sys.argv[2])
"""


async def test_a_crash_between_staging_and_trigger_is_recovered_from_the_journal(
        venue: Venue, oms2: OrderManager, tmp_path: Path) -> None:
    """A strategy process stages a stop and is SIGKILLed; the stop fires while nobody listens; a new
    manager on the same journal finds it TRIGGERED, its market order's fill counted once."""
    path = str(tmp_path / "journal.db")
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    async with manager(venue) as oms:
        await go_long(oms, oms2)
    proc = await trio.lowlevel.open_process([sys.executable, str(script), venue.url, path],
                                            stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        out = b""
        with trio.fail_after(20):
            while b"@@staged" not in out or not out.split(b"@@staged", 1)[1].endswith(b"\n"):
                chunk = await proc.stdout.receive_some()
                assert chunk, "the child exited before staging its stop"
                out += chunk
        stop_id = out.split(b"@@staged", 1)[1].split()[0].decode()
        assert venue_stop_ids(venue) == {stop_id}
    finally:
        proc.kill()  # SIGKILL: no clean shutdown, the journal is what it was
        await proc.wait()
    await oms2.place_order(S, "BUY", "1", "89")
    venue.set_mark(S, "89")
    await wait_until(lambda: venue.stops(PUB) == [], what="the stop to fire at the venue")
    async with manager(venue, journal=path) as again:
        [stop] = again.stops(open_only=False)
        assert stop.stop_order_id == stop_id
        await wait_until(lambda: stop.state is StopState.TRIGGERED, within=5,
                         what=lambda: f"the resync to find it fired (is {stop.state})")
        assert stop.order is not None and stop.order.filled_quantity == D(1)
        await again.reconcile()
        assert stop.order.fill_total == D(1)
