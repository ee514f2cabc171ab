"""QFEX's connection dropping under the gateway: clients see QFEX's own disconnect, then resync."""

from __future__ import annotations

from gwkit import MM, client, gateway_on
from simkit import PUB
from waiting import wait_until

from qfex_oms.client.connection import ReconnectPolicy
from qfex_oms.client.events import Reconnected
from qfex_oms.sim import Venue

SYM = "AAPL-USD"
FAST = ReconnectPolicy(initial=0.05, maximum=0.2)


async def test_an_upstream_drop_closes_clients_who_reconnect_and_resync(venue: Venue) -> None:
    async with gateway_on(venue, reconnect=FAST) as gw, client(gw, MM, reconnect=FAST) as mm:
        order = await mm.place_order(SYM, "BUY", "1", "190", client_order_id="kept")
        with mm.events() as events:
            assert await venue.drop_connections(PUB) == 1  # the gateway's one QFEX connection
            async for event in events:
                if isinstance(event, Reconnected):
                    break
        assert gw.oms.connected and mm.connected
        assert [o.order_id for o in mm.orders()] == [order.order_id]
        assert (await mm.cancel(order)).status == "CANCELLED"
        await wait_until(lambda: not venue.open_orders(PUB, SYM))
