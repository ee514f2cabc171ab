"""Each guard limit pulls the kill switch: KillSwitchGuard on a real manager and an in-process venue.

After a trip: the reason names the limit, cancel_all ran and the exchange shows nothing open, new
orders are refused (``Halted``), and subscribers got a ``GuardTripped`` event.
"""

from __future__ import annotations

import pytest
import trio
from runnerkit import guarded, tripped
from simkit import PUB, manager
from waiting import wait_until

from qfex_oms import Halted, OrderManager, OrderRejected, ReconnectPolicy
from qfex_oms.app.guard import GuardTripped
from qfex_oms.sim import Venue

SYMBOL = "AAPL-USD"


async def _assert_killed(oms: OrderManager, venue: Venue, guard: object, reason: str, limit: str) -> None:
    assert limit in reason
    assert guard.report is not None and guard.report.clean  # type: ignore[attr-defined]
    assert oms.halted and oms.orders() == []
    assert venue.open_orders(PUB) == [] and venue.twaps(PUB, active_only=True) == []
    with pytest.raises(Halted):
        await oms.place_order(SYMBOL, "BUY", "1", "100")


async def _guard_event(stream: object) -> GuardTripped:
    with trio.fail_after(2):
        async for event in stream:  # type: ignore[attr-defined]
            if isinstance(event, GuardTripped):
                return event
    raise AssertionError("no GuardTripped event")


async def test_max_open_orders(venue: Venue, oms: OrderManager) -> None:
    with oms.events() as stream:
        async with guarded(oms, max_open_orders=2) as guard:
            twap = await oms.place_twap(SYMBOL, "BUY", total_quantity="5", num_orders=5,
                                        order_interval_secs=3600, client_twap_id="g-twap")
            for price in (150, 149, 148):
                try:
                    await oms.place_order(SYMBOL, "BUY", "1", price)
                except Halted:
                    break  # the guard was faster than this order
            reason = await tripped(guard)
        await _assert_killed(oms, venue, guard, reason, "max_open_orders 2")
        assert twap.state.is_terminal
        event = await _guard_event(stream)
        assert event.reason == reason and event.report is guard.report


async def test_max_position(venue: Venue, oms: OrderManager, oms2: OrderManager) -> None:
    await oms2.place_order(SYMBOL, "SELL", "5", "200")
    async with guarded(oms, max_position=1) as guard:
        await oms.place_order(SYMBOL, "BUY", "1", "190")  # resting: must be cancelled by the kill
        await oms.place_order(SYMBOL, "BUY", "1", "200", time_in_force="IOC")  # position 1: at the limit
        # The guard has counted the fill (and would have tripped in the same step): not a breach.
        await wait_until(lambda: guard.state.positions.get(SYMBOL) == 1, what="the guard to count the fill")
        assert not guard.fired and not guard.tripped.is_set()
        await oms.place_order(SYMBOL, "BUY", "1", "200", time_in_force="IOC")  # position 2
        reason = await tripped(guard)
    assert reason == "position 2 on AAPL-USD exceeds max_position 1"
    await _assert_killed(oms, venue, guard, reason, "max_position")
    assert len(venue.open_orders("qfex_pub_demo2")) == 1  # the guard only touches its own account


async def test_max_notional(venue: Venue, oms: OrderManager, oms2: OrderManager) -> None:
    await oms2.place_order("TSLA-USD", "BUY", "5", "300")
    async with guarded(oms, max_notional=500, max_position=100) as guard:
        await oms.place_order(SYMBOL, "BUY", "1", "150")
        await oms.place_order("TSLA-USD", "SELL", "1", "300", time_in_force="IOC")  # 300
        # The guard has counted the fill (and would have tripped in the same step): not a breach.
        await wait_until(lambda: guard.state.positions.get("TSLA-USD") == -1,
                         what="the guard to count the fill")
        assert not guard.fired and not guard.tripped.is_set()
        await oms.place_order("TSLA-USD", "SELL", "1", "300", time_in_force="IOC")  # 600
        reason = await tripped(guard)
    assert reason == "notional 600 exceeds max_notional 500"
    await _assert_killed(oms, venue, guard, reason, "max_notional")


async def test_max_rejects_per_minute(venue: Venue, oms: OrderManager) -> None:
    async with guarded(oms, max_rejects_per_minute=2) as guard:
        await oms.place_order(SYMBOL, "BUY", "1", "150")
        statuses = []
        for _ in range(3):
            with pytest.raises(OrderRejected) as caught:
                await oms.place_order(SYMBOL, "BUY", "1", "150.001")  # off the tick size
            statuses.append(caught.value.status)
        reason = await tripped(guard)
    assert statuses == ["INVALID_TICK_SIZE_PRECISION_PRICE"] * 3
    assert reason == "3 rejects in the last minute exceed max_rejects_per_minute 2"
    await _assert_killed(oms, venue, guard, reason, "max_rejects_per_minute")


async def test_max_disconnect_seconds_then_kill_once_reconnected(venue: Venue) -> None:
    # Reconnecting takes 2 s (a slow, failing-for-now network); the limit is 0.3 s. The guard must
    # notice before the reconnect: 1.7 s of margin for a loaded machine (1 s left 0.6 s).
    slow = ReconnectPolicy(initial=2.0, maximum=2.0, multiplier=1.0, jitter=0.0)
    async with manager(venue, reconnect=slow) as oms, guarded(oms, max_disconnect_seconds=0.3) as guard:
        for price in (150, 149):
            await oms.place_order(SYMBOL, "BUY", "1", price)
        started = trio.current_time()
        assert await venue.drop_connections(PUB) == 1
        await wait_until(lambda: guard.reason is not None, within=5,
                         what="the guard to notice the disconnect")
        noticed = trio.current_time() - started
        assert 0.3 < noticed < 1.9 and not oms.connected
        # The kill switch waits for the connection, then cancels what the exchange still holds.
        reason = await tripped(guard)
        assert oms.connected
        assert reason.startswith("disconnected for ") and "max_disconnect_seconds 0.3" in reason
        await _assert_killed(oms, venue, guard, reason, "max_disconnect_seconds")


async def test_max_disconnect_seconds_when_the_connection_never_comes_back(venue: Venue) -> None:
    # No reconnect at all: the guard still trips and halts, but its kill cannot reach the exchange,
    # and its report says so instead of pretending to be clean.
    async with manager(venue, reconnect=None, kill_timeout=1.0) as oms, \
            guarded(oms, max_disconnect_seconds=0.2) as guard:
        await oms.place_order(SYMBOL, "BUY", "1", "150")
        await venue.drop_connections(PUB)
        reason = await tripped(guard)
        assert "max_disconnect_seconds 0.2" in reason
        assert oms.halted and guard.report is not None and not guard.report.clean
        assert not guard.report.snapshot_checked
        assert len(venue.open_orders(PUB)) == 1  # cancel_on_disconnect was off: it still rests


async def test_max_position_counts_what_the_account_held_before_a_restart(venue: Venue,
                                                                         oms2: OrderManager) -> None:
    await oms2.place_order(SYMBOL, "SELL", "3", "200")
    async with manager(venue) as before:
        await before.place_order(SYMBOL, "BUY", "2", "200", time_in_force="IOC")
    await wait_until(lambda: venue.position(PUB, SYMBOL).quantity == 2, what="the venue's position")
    # A new manager never saw those fills: a tally of its own fills would start at zero.
    async with manager(venue) as oms:
        await wait_until(lambda: (p := oms.position(SYMBOL)) is not None and p.quantity == 2,
                         what="the position seeded at connect")
        async with guarded(oms, max_position=1) as guard:
            reason = await tripped(guard)
        assert reason == "position 2 on AAPL-USD exceeds max_position 1"
        assert oms.halted


async def test_max_exposure_counts_open_orders_on_top_of_the_position(venue: Venue, oms: OrderManager,
                                                                      oms2: OrderManager) -> None:
    await oms2.place_order(SYMBOL, "SELL", "1", "200")
    async with guarded(oms, max_exposure=2) as guard:
        await oms.place_order(SYMBOL, "BUY", "1", "200", time_in_force="IOC")  # long 1
        await wait_until(lambda: guard.state.positions.get(SYMBOL) == 1, what="the position report")
        await oms.place_order(SYMBOL, "SELL", "3", "250")  # short 2 at worst: at the limit
        await oms.fetch_open_orders()  # a round trip: the guard has seen the order rest
        assert not guard.fired
        await oms.place_order(SYMBOL, "BUY", "2", "150")  # long 3 at worst: trips once it rests
        reason = await tripped(guard)
    assert reason == ("exposure 3 on AAPL-USD (position 1, open buys 2, open sells 3) "
                      "exceeds max_exposure 2")
    await _assert_killed(oms, venue, guard, reason, "max_exposure")
