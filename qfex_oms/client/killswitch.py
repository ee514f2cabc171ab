"""The kill switch behind ``oms.cancel_all()``: halt, cancel everything, prove it with a snapshot.

Order of work, every step bounded by ``kill_timeout`` and shielded by the caller:
1. ``cancel_all_orders`` goes out first, skipping the pacer (it is never queued behind strategy
   traffic); QFEX answers with an ``ack`` and a CANCELLED ``order_response`` per order, including
   orders this manager never knew (they are adopted as they arrive).
2. Every open TWAP is cancelled by id, since QFEX does not say whether ``cancel_all_orders`` covers them.
3. Wait for every order live at the start to end.
4. Fetch ``get_user_orders`` and recent trades and settle the book against them. If the exchange
   still shows something open (placed elsewhere meanwhile, or an answer was lost), go round once more.

Stop orders (take-profit / stop-loss) can still trade after everything else is gone: a staged stop
becomes a market order when the mark reaches it. Whether ``cancel_all_orders`` covers them is not
documented (``CANCEL_ALL_COVERS_STOPS``: the simulator's reading, C46, and the plausible one since
QFEX's 2025-10-30 change lists stops as orders); the snapshot verifies it either way: every stop it
still shows staged gets its own ``cancel_stop_order`` in the next round. The report is clean only
when the snapshot shows no order, no TWAP and no stop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from qfex_oms.client.results import KillReport
from qfex_oms.core.cancel import CancelIntent
from qfex_oms.core.states import OrderState, TwapState
from qfex_oms.core.stops import StopOrder, StopState
from qfex_oms.errors import InvalidArgument, NotConnected, RequestFailed, RequestTimeout
from qfex_oms.logs import get_logger

if TYPE_CHECKING:
    from qfex_oms.client.manager import OrderManager

log = get_logger("qfex_oms.client.killswitch")
ROUNDS = 2
# True: the first round relies on cancel_all_orders for stops too and the snapshot verifies it (a
# stop still staged gets its own cancel_stop_order in the next round). False: every round cancels
# each stop by id as well.
CANCEL_ALL_COVERS_STOPS = True


async def run(oms: OrderManager) -> KillReport:
    started = trio.current_time()
    tracker = oms.core.tracker
    # Orders and TWAPs share one local id counter, and old orders may have been forgotten, so the
    # count of orders is not the next id: anything learnt during the kill has an id above them all.
    first_new_local = 1 + max((o.local_id for o in tracker.orders()), default=0)
    first_new_local = max(first_new_local, 1 + max((t.local_id for t in tracker.twaps()), default=0))
    live_orders = tracker.open_orders()
    live_twaps = tracker.twaps(open_only=True)
    stops = oms.core.stops
    known_stops = set(map(id, stops.stops(open_only=False)))
    live_stops = stops.stops()
    acked = checked = False
    with trio.move_on_after(oms.settings.kill_timeout):
        for round_no in range(ROUNDS):
            by_id = round_no > 0 or not CANCEL_ALL_COVERS_STOPS
            acked = await _send_cancel_all(oms, cancel_stops=by_id) or acked
            await _wait_ended(oms)
            checked, remaining = await _check(oms)
            if not remaining:
                break
            log.warning("orders still open after cancel-all", round=round_no + 1, count=remaining)
    cancelled = [o for o in live_orders if o.state is OrderState.CANCELLED]
    # Learnt during the kill (placed elsewhere, adopted as their CANCELLED arrived): by local id,
    # which is above every order live at the start, so none is counted twice (a membership test
    # against the list was quadratic when thousands arrive so).
    cancelled += [o for o in tracker.orders() if o.local_id >= first_new_local and o.adopted
                  and o.state is OrderState.CANCELLED]
    report = KillReport(
        cancelled_orders=tuple(cancelled),
        cancelled_twaps=tuple(t for t in live_twaps if t.state is TwapState.CANCELLED) + tuple(
            t for t in tracker.twaps() if t.local_id >= first_new_local and t.adopted
            and t.state is TwapState.CANCELLED),
        still_open=tuple(tracker.open_orders()),
        still_open_twaps=tuple(tracker.twaps(open_only=True)),
        ack_received=acked,
        snapshot_checked=checked,
        elapsed=trio.current_time() - started,
        cancelled_stops=tuple(s for s in live_stops if s.state is StopState.CANCELLED) + tuple(
            s for s in stops.stops(open_only=False) if id(s) not in known_stops
            and s.state is StopState.CANCELLED),
        still_open_stops=tuple(stops.stops()),
    )
    log.warning("kill switch finished", cancelled=len(report.cancelled_orders),
                still_open=len(report.still_open), stops_left=len(report.still_open_stops),
                clean=report.clean, elapsed=round(report.elapsed, 4))
    return report


async def _send_cancel_all(oms: OrderManager, *, cancel_stops: bool) -> bool:
    with trio.move_on_after(oms.settings.request_timeout):
        await oms.wait_connected()
    if not oms.connected:
        return False
    oms.core.cancel_all_sent()
    for twap in oms.core.tracker.twaps(open_only=True):
        if twap.state is not TwapState.PENDING_CANCEL:
            oms.core.cancel(CancelIntent(twap))
    if cancel_stops:
        _cancel_each_stop(oms)
    try:
        outcome, ack = await oms.send_now(oms.core.take_frames(), expect_ack="cancel_all_orders")
    except NotConnected:
        outcome, ack = None, None
    if outcome is not None or ack is None:
        for stop in _stops_waited_for(oms):  # never a refusal: owed, and settled by the resync
            if stop.cancel_request is not None:
                oms.core.stop_request_lost(stop.cancel_request, str(outcome or "NOT_CONNECTED"))
        oms.flush()
        return False
    with trio.move_on_after(oms.settings.request_timeout):
        await ack.event.wait()
    return ack.answered


def _cancel_each_stop(oms: OrderManager) -> None:
    """Queue a ``cancel_stop_order`` for every live stop the exchange named (one without an id yet
    cannot be cancelled: its ACK or the snapshot names it first)."""
    for stop in oms.core.stops.stops():
        if stop.stop_order_id is not None and stop.cancel_request is None:
            try:
                oms.core.cancel_stop(stop)
            except InvalidArgument as exc:  # ended meanwhile
                log.info("stop not cancelled by the kill switch", error=str(exc), **stop.describe())


def _stops_waited_for(oms: OrderManager) -> list[StopOrder]:
    return [s for s in oms.core.stops.stops() if s.cancel_request is not None]


async def _wait_ended(oms: OrderManager) -> None:
    """Wait for each order and TWAP open now to end, for as long as they keep ending: the bound is
    ``request_timeout`` without progress. One cancel scope for the lot, its deadline pushed back on
    each wake-up: a scope per order was a sixth of a 10,000-order kill (bench row 5's profile)."""
    tracker, timeout = oms.core.tracker, oms.settings.request_timeout
    orders = [o for o in tracker.open_orders() if o.state is not OrderState.UNKNOWN]
    twaps = tracker.twaps(open_only=True)
    with trio.move_on_after(timeout) as scope:
        for order in orders:
            while order.state.is_live and not oms.closing:
                await oms.waiters.next_change(order)
                scope.deadline = trio.current_time() + timeout
        for twap in twaps:
            while not twap.state.is_terminal and not oms.closing:
                await oms.waiters.next_change(twap)
                scope.deadline = trio.current_time() + timeout
        for stop in _stops_waited_for(oms):  # a stop's cancel in flight: its answer
            while stop.cancel_request is not None and not oms.closing:
                await oms.waiters.next_change(stop)
                scope.deadline = trio.current_time() + timeout


async def _check(oms: OrderManager) -> tuple[bool, int]:
    """Settle against the exchange; returns (checked, how many orders, TWAPs and stops are open)."""
    try:
        await oms.reconcile()
    except (RequestTimeout, RequestFailed, NotConnected) as exc:
        log.warning("kill switch could not check a snapshot", error=str(exc))
        return False, -1
    tracker = oms.core.tracker
    stops = oms.core.stops.stops()
    return True, len(tracker.open_orders()) + len(tracker.twaps(open_only=True)) + len(stops)
