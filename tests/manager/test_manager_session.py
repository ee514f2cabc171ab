"""The connection around the API: options, credentials, reconnect and resync after a dropped socket."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from faultkit import wait_refused
from managerkit import assert_book_matches, wait_state
from simkit import PUB, manager
from waiting import drain, wait_until

from qfex_oms import (
    Credentials,
    InvalidArgument,
    NotConnected,
    OrderManager,
    OrderState,
    ReconnectPolicy,
)
from qfex_oms.client.events import Connected, Disconnected, Reconnected
from qfex_oms.sim import Venue

S = "AAPL-USD"
FAST = ReconnectPolicy(initial=0.02, maximum=0.1, jitter=0.1)


def test_credentials_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QFEX_PUBLIC_KEY", "qfex_pub_demo")
    monkeypatch.setenv("QFEX_SECRET_KEY", "qfex_secret_demo")
    monkeypatch.delenv("QFEX_ACCOUNT_ID", raising=False)
    creds = Credentials.from_env()
    assert creds == Credentials("qfex_pub_demo", "qfex_secret_demo")
    assert "qfex_secret_demo" not in repr(creds)
    monkeypatch.delenv("QFEX_SECRET_KEY")
    with pytest.raises(InvalidArgument, match="QFEX_SECRET_KEY"):
        Credentials.from_env()


async def test_subscriptions_and_cancel_on_disconnect_are_set_up(venue: Venue) -> None:
    for wanted in (False, True):
        async with manager(venue, cancel_on_disconnect=wanted):
            # The Venue has no public view of a connection's options; read the server's record.
            (server_conn,) = venue._server.connections[PUB]
            assert server_conn.authed and server_conn.cancel_on_disconnect is wanted
            # Issue 13: what the account holds is kept too (positions, balances).
            assert {str(c) for c in server_conn.subscriptions} == {"order_responses", "fills",
                                                                   "positions", "balances",
                                                                   "stop_orders"}


async def test_cancel_on_disconnect_and_resync_after_a_drop(venue: Venue) -> None:
    async with manager(venue, cancel_on_disconnect=True, reconnect=FAST) as oms:
        orders = [await oms.place_order(S, "BUY", "1", str(100 + i)) for i in range(3)]
        stream = oms.events()
        assert await venue.drop_connections(PUB) == 1
        await wait_until(lambda: venue.connection_count(PUB) == 1 and oms.connected, what="reconnect")
        await wait_until(lambda: all(o.state is OrderState.CANCELLED for o in orders), what="resync")
        assert venue.open_orders(PUB) == []
        events = await drain(stream)
        kinds = [type(e) for e in events]
        assert Disconnected in kinds and Connected in kinds and Reconnected in kinds
        assert kinds.index(Disconnected) < kinds.index(Connected) < kinds.index(Reconnected)
        (reconnected,) = [e for e in events if isinstance(e, Reconnected)]
        assert set(reconnected.diff.settled) == set(orders)
        await assert_book_matches(oms, venue)
        # And the manager trades again on the new connection.
        again = await oms.place_order(S, "BUY", "1", "100")
        assert again.state is OrderState.OPEN
        await assert_book_matches(oms, venue)


async def test_fills_while_disconnected_are_picked_up_by_resync(
    venue: Venue, oms2: OrderManager
) -> None:
    async with manager(venue, reconnect=ReconnectPolicy(initial=0.3, jitter=0.0)) as oms:
        bid = await oms.place_order(S, "BUY", "3", "150")
        other = await oms.place_order("TSLA-USD", "BUY", "1", "90")
        await venue.drop_connections(PUB)
        await wait_until(lambda: not oms.connected, what="the drop to be seen")
        with pytest.raises(NotConnected):
            await oms.place_order(S, "BUY", "1", "100")
        # While we are away: a partial fill, a full fill.
        await oms2.place_order(S, "SELL", "2", "150", time_in_force="IOC")
        await oms2.place_order("TSLA-USD", "SELL", "1", "90", time_in_force="IOC")
        await wait_until(lambda: oms.connected, within=5, what="reconnect")
        await wait_state(other, OrderState.FILLED)
        await wait_until(lambda: bid.filled_quantity == 2, what="the partial fill")
        assert bid.state is OrderState.OPEN and bid.remaining_quantity == Decimal(1)
        await wait_until(lambda: len(bid.fills or ()) == 1 and len(other.fills or ()) == 1,
                         what="both fills from the resync")
        assert len(bid.fills or ()) == 1 and len(other.fills or ()) == 1
        await assert_book_matches(oms, venue)


async def test_reconnect_keeps_working_when_the_first_attempts_fail(venue: Venue) -> None:
    """Reconnecting while the venue refuses us (here: wrong key) must retry, not crash the manager."""
    async with manager(venue, reconnect=FAST) as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        good = oms.credentials
        oms.credentials = Credentials(PUB, "rotated-away")
        stream = oms.events()
        await venue.drop_connections(PUB)
        await wait_until(lambda: not oms.connected, what="the drop")
        await wait_refused(stream, attempts=2)  # a few refused attempts
        assert not oms.connected
        oms.credentials = good
        await wait_until(lambda: oms.connected, within=5, what="reconnect")
        assert order.state is OrderState.OPEN
        await oms.cancel(order)
        await assert_book_matches(oms, venue)


async def test_leaving_the_block_ends_every_event_stream(venue: Venue) -> None:
    seen: list[object] = []
    async with trio.open_nursery() as nursery:
        async with manager(venue) as oms:
            stream = oms.events()

            async def consume() -> None:
                async for event in stream:
                    seen.append(event)
                seen.append("end")

            nursery.start_soon(consume)
            await oms.place_order(S, "BUY", "1", "100")
        with trio.fail_after(2):
            await wait_until(lambda: seen[-1:] == ["end"], what="the stream to end")
    assert any(getattr(e, "state", None) is OrderState.OPEN for e in seen)
