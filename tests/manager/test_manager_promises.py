"""Promises the manager keeps under unlucky timing (issue 11, items 3, 4 and 12), over real loopback.

- A cancel cut off by a silent network failure is owed: it is carried out after the resync;
  ``cancel()`` says the answer was lost and the cancel is owed, ``wait_ended`` how it ended (item 3).
- ``wait_connected()`` wakes on the reconnection that follows failed attempts (item 4), so a kill
  switch pulled while disconnected goes out as soon as the connection is back.
- Leaving the ``async with`` wakes every call still in flight at once (item 12).

Every bound below is a hang guard far under the manager's own ``request_timeout``: a promise broken
shows as a call still waiting when the guard fires, never as a measured duration.
"""

from __future__ import annotations

import pytest
import trio
from faultkit import FAST, wait_refused
from managerkit import wait_state
from proxykit import injecting_proxy
from simkit import CREDS, OPTIONS, PUB
from waiting import wait_until

from qfex_oms import Credentials, OrderManager, OrderState, open_order_manager
from qfex_oms.client.events import EventStream
from qfex_oms.sim import Venue

S = "AAPL-USD"
LONG = 20.0  # request_timeout: a call that only returns when this runs out has broken its promise


async def test_a_cancel_lost_to_a_silent_drop_is_carried_out_after_the_resync(venue: Venue) -> None:
    options = {**OPTIONS, "request_timeout": 2.0, "reconnect": FAST}
    async with injecting_proxy(venue.url) as proxy, open_order_manager(proxy.url, CREDS, **options) as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        proxy.blackhole = True  # the network goes quiet: our cancel is written, nothing comes back
        async with trio.open_nursery() as nursery:
            results = []

            async def cancel() -> None:
                results.append(await oms.cancel(order))

            nursery.start_soon(cancel)
            await wait_until(lambda: order.state is OrderState.PENDING_CANCEL, what="the cancel to go out")
            await proxy.sever()  # then the TCP connection dies without a close frame
        (result,) = results
        assert result.status == "DISCONNECTED" and result.owed and not result.ok
        with trio.fail_after(5):
            assert await oms.wait_ended(order)  # the owed cancel went again after the resync
        assert order.state is OrderState.CANCELLED, order.describe()
        assert not result.owed
        assert [o.order_id for o in venue.open_orders(PUB)] == []
        assert venue.order(str(order.order_id)).status == "CANCELLED"  # type: ignore[union-attr]


async def test_an_owed_cancel_is_sent_again_even_after_cancel_returned(venue: Venue) -> None:
    """The caller's deadline may pass before the connection is back: the intent outlives the call."""
    options = {**OPTIONS, "request_timeout": 0.3, "reconnect": FAST}
    async with injecting_proxy(venue.url) as proxy, open_order_manager(proxy.url, CREDS, **options) as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        good = oms.credentials
        oms.credentials = Credentials(good.public_key, "not-the-secret")  # keep it away a while
        proxy.blackhole = True
        result = await oms.cancel(order)
        assert result.status in {"TIMEOUT", "DISCONNECTED", "SEND_FAILED"} and result.owed
        assert order.state.is_live
        await proxy.sever()
        await wait_until(lambda: not oms.connected, what="the manager to see the drop")
        oms.credentials = good
        await wait_state(order, OrderState.CANCELLED, within=10)
        assert venue.open_orders(PUB) == []


async def locked_out(oms: OrderManager, venue: Venue) -> tuple[Credentials, EventStream]:
    """Drop the manager's connection and refuse its attempts (a wrong secret) until the caller puts
    the returned credentials back; the stream sees each refused attempt."""
    good = oms.credentials
    oms.credentials = Credentials(good.public_key, "not-the-secret")
    stream = oms.events()
    await venue.drop_connections(PUB)
    await wait_until(lambda: not oms.connected, what="the manager to see the drop")
    return good, stream


async def test_wait_connected_wakes_after_failed_attempts_and_a_success(venue: Venue) -> None:
    options = {**OPTIONS, "request_timeout": LONG, "reconnect": FAST}
    async with open_order_manager(venue.url, CREDS, **options) as oms:
        good, stream = await locked_out(oms, venue)
        async with trio.open_nursery() as nursery:
            woke = trio.Event()

            async def waiter() -> None:
                await oms.wait_connected()
                woke.set()

            nursery.start_soon(waiter)
            await wait_refused(stream, attempts=2)  # the waiter parked across failed attempts
            oms.credentials = good
            with trio.fail_after(5):
                await woke.wait()
        assert oms.connected


async def test_a_kill_switch_pulled_while_disconnected_goes_out_when_the_connection_is_back(
        venue: Venue) -> None:
    options = {**OPTIONS, "request_timeout": LONG, "kill_timeout": LONG, "reconnect": FAST}
    async with open_order_manager(venue.url, CREDS, **options) as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        good, stream = await locked_out(oms, venue)
        async with trio.open_nursery() as nursery:
            reports = []

            async def kill() -> None:
                reports.append(await oms.cancel_all())

            nursery.start_soon(kill)
            await wait_refused(stream, attempts=2)  # the kill waits across failed attempts
            oms.credentials = good
            with trio.fail_after(5):
                await wait_state(order, OrderState.CANCELLED, within=5)
        assert reports[0].clean


@pytest.mark.parametrize("call", ["cancel", "place"])
async def test_leaving_the_block_wakes_calls_in_flight(venue: Venue, call: str) -> None:
    options = {**OPTIONS, "request_timeout": LONG}
    outcomes: list[object] = []
    async with trio.open_nursery() as outer:
        async with open_order_manager(venue.url, CREDS, **options) as oms:
            order = await oms.place_order(S, "BUY", "1", "100")
            venue.faults.drop_next(1, kind="order_response", public_key=PUB)  # its answer never comes

            async def in_flight() -> None:
                try:
                    if call == "cancel":
                        outcomes.append(await oms.cancel(order))
                    else:
                        outcomes.append(await oms.place_order(S, "BUY", "1", "99"))
                except Exception as exc:
                    outcomes.append(exc)

            outer.start_soon(in_flight)
            # The venue acted on it, and its answer was dropped: the call waits for nothing now.
            expected_open = 0 if call == "cancel" else 2
            await wait_until(lambda: len(venue.open_orders(PUB)) == expected_open,
                             what="the venue to act on the request")
        with trio.fail_after(5):
            await wait_until(lambda: bool(outcomes), within=5, what="the call to return")
    (outcome,) = outcomes
    if call == "cancel":
        assert outcome.status == "CLOSED", outcome  # type: ignore[attr-defined]
    else:
        assert type(outcome).__name__ == "OrderStatusUnknown", outcome


async def test_an_order_shifted_off_a_paged_snapshot_is_not_settled_as_cancelled(
        venue: Venue, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item 2: offset paging shifts when an order leaves between pages, so one resting order is on
    no page. It must stay OPEN; the order that really left is settled from its symbol's one-page
    snapshot. PAGE is made small so that a few orders make several pages."""
    from qfex_oms.client import reconcile as reconcile_module

    monkeypatch.setattr(reconcile_module, "PAGE", 4)
    async with open_order_manager(venue.url, CREDS, **OPTIONS) as oms:
        orders = [await oms.place_order(sym, "BUY", "1", str(100 - i))
                  for sym in (S, "TSLA-USD") for i in range(3)]  # six orders: two pages of four
        gone = orders[0]
        pages = []

        def on_frame(raw: bytes | str) -> None:
            if b"all_orders_response" in (raw if isinstance(raw, bytes) else raw.encode()):
                pages.append(raw)
                if len(pages) == 1:  # between the first page and the second, the oldest leaves
                    assert venue.cancel_unannounced(PUB, str(gone.order_id))

        oms.on_frame_received = on_frame
        await oms.reconcile()
        oms.on_frame_received = None
        assert len(pages) >= 3  # two pages, then the symbol's own one-page snapshot
        shifted = orders[4]  # the first order of the second page, moved onto the first one
        assert shifted in oms.orders() and shifted.state is OrderState.OPEN
        assert [o.state for o in orders] == [OrderState.OPEN] * 6  # page one still showed `gone`
        diff = await oms.reconcile()  # the next one sees it gone, and proves it on its symbol
        assert gone.state is OrderState.CANCELLED and gone in diff.settled
        assert [o.state for o in orders[1:]] == [OrderState.OPEN] * 5  # none shifted into a cancel
        assert diff.unconfirmed == []
        assert {o.order_id for o in oms.orders()} == {o.order_id for o in venue.open_orders(PUB)}
