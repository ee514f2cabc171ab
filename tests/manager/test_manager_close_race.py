"""A server ping crossing the manager's own close frame (trio-websocket issue #184).

trio-websocket's reader answers every ping with a pong. If the ping arrives after our close frame
went out, wsproto refuses the pong with LocalProtocolError, raised in the reader task that runs in
the connection's nursery. Closing happens on every exit and on every restart the manager makes to
resynchronise, so the race is not rare on a venue that pings: it must end the connection quietly,
never the manager or the strategy's ``async with``.

Each test runs twice: with qfex_oms.wsfix (no pong is attempted) and without it, where the
supervisor must still take wsproto's error as a lost connection.
"""

from __future__ import annotations

import pytest
import trio
from faultkit import FAST, SHORT, next_event
from managerkit import assert_book_matches
from proxykit import injecting_proxy
from simkit import CREDS, OPTIONS, PUB
from trio_websocket import WebSocketConnection

from qfex_oms import NotConnected, RequestTimeout, open_order_manager, wsfix
from qfex_oms.client.events import Reconnected
from qfex_oms.sim import Venue

S = "AAPL-USD"


@pytest.fixture(params=["fixed", "unfixed"])
def ping_handler(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "unfixed":
        monkeypatch.setattr(WebSocketConnection, "_handle_ping_event", wsfix.UNFIXED)
    return str(request.param)


def test_the_fix_applies_to_the_installed_trio_websocket() -> None:
    """Fails when trio-websocket renames what qfex_oms.wsfix wraps: time to check whether it still
    needs fixing (its pull request #198)."""
    assert wsfix.INSTALLED


@pytest.mark.usefixtures("ping_handler")
async def test_leaving_the_block_while_a_ping_crosses_the_close_raises_nothing(venue: Venue) -> None:
    async with injecting_proxy(venue.url) as proxy:
        async with open_order_manager(proxy.url, CREDS, **OPTIONS) as oms:
            order = await oms.place_order(S, "BUY", "1", "100")
            proxy.ping_on_close = True
        assert proxy.pings_injected == 1  # the race was staged, and the block still ended cleanly
        assert order.order_id is not None


@pytest.mark.usefixtures("ping_handler")
async def test_a_restart_while_a_ping_crosses_the_close_reconnects(venue: Venue) -> None:
    """A lost query answer makes the manager restart its connection; the race must not end it."""
    options = {**OPTIONS, "request_timeout": SHORT, "reconnect": FAST}
    async with injecting_proxy(venue.url) as proxy, open_order_manager(proxy.url, CREDS, **options) as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        proxy.ping_on_close = True
        venue.faults.drop_next(1, kind="all_orders_response", public_key=PUB)
        with oms.events() as stream:
            with pytest.raises(RequestTimeout):
                await oms.reconcile()
            await next_event(stream, Reconnected, within=10)
        assert proxy.pings_injected >= 1
        proxy.ping_on_close = False
        later = await oms.place_order(S, "BUY", "1", "101")
        with trio.fail_after(5):
            while True:
                try:
                    await oms.reconcile()
                    break
                except (RequestTimeout, NotConnected):
                    await trio.sleep(0.01)
        assert order.state is later.state
        await assert_book_matches(oms, venue)
