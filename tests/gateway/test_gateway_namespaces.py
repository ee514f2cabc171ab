"""Two strategies through one gateway, on one account: same client ids, no collateral cancels."""

from __future__ import annotations

from decimal import Decimal

import orjson
from gwkit import ARB, MM, client, gateway_on
from simkit import CREDS2, PUB, manager
from trio_websocket import open_websocket_url
from waiting import wait_until

from qfex_oms import OrderState
from qfex_oms.protocol import Channel, OrderType, Side, TimeInForce, encode, make_auth
from qfex_oms.protocol import messages as m
from qfex_oms.sim import Venue

SYM = "AAPL-USD"


async def test_same_client_ids_cancel_only_their_own(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, ARB) as arb:
        mine = [await mm.place_order(SYM, "BUY", "1", str(190 + n), client_order_id="bid-1")
                for n in range(2)]
        theirs = [await arb.place_order(SYM, "BUY", "1", str(180 + n), client_order_id="bid-1")
                  for n in range(2)]
        # On the wire each carries its strategy's namespace; each client sees its own id back.
        wire = sorted(o.client_order_id for o in venue.open_orders(PUB, SYM))
        assert wire == ["arb:bid-1", "arb:bid-1", "mm:bid-1", "mm:bid-1"]
        assert {o.client_order_id for o in mine + theirs} == {"bid-1"}
        # Each client's book holds only its own orders.
        assert {o.order_id for o in mm.orders()} == {o.order_id for o in mine}
        assert {o.order_id for o in arb.orders()} == {o.order_id for o in theirs}

        result = await mm.cancel(client_order_id="bid-1", symbol=SYM)
        assert result.status == "CANCELLED"
        assert {o.order_id for o in result.cancelled} == {o.order_id for o in mine}
        assert all(o.state is OrderState.CANCELLED for o in mine)
        assert sorted(o.client_order_id for o in venue.open_orders(PUB, SYM)) == ["arb:bid-1", "arb:bid-1"]
        assert all(o.state is OrderState.OPEN for o in theirs)

        # By order id, another client's order does not exist for mm.
        result = await mm.cancel(order_id=theirs[0].order_id, symbol=SYM)
        assert result.status == "NO_SUCH_ORDER"
        assert len(venue.open_orders(PUB, SYM)) == 2

        result = await arb.cancel(client_order_id="bid-1", symbol=SYM)
        assert result.status == "CANCELLED"
        await wait_until(lambda: not venue.open_orders(PUB, SYM))


async def test_a_client_sees_only_its_own_reports_and_the_accounts_positions(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, manager(venue, CREDS2) as taker, \
            open_websocket_url(f"{gw.url}?api_key={ARB.public_key}") as arb:
        await arb.send_message(encode(make_auth(ARB.public_key, ARB.secret)).decode())
        assert orjson.loads(await arb.get_message()) == {"authenticated": True}
        await arb.send_message(encode(m.Subscribe(tuple(Channel))).decode())
        order = await mm.place_order(SYM, "BUY", "1", "200", client_order_id="fill-me")
        await taker.place_order(SYM, "SELL", "1", "200", order_type="LIMIT", time_in_force="IOC")
        await wait_until(lambda: order.state is OrderState.FILLED)
        # arb's own order, after mm's: once its ACK arrives, everything before it has been routed.
        await arb.send_message(encode(m.AddOrder(SYM, Side.BUY, OrderType.LIMIT, TimeInForce.GTC,
                                                 Decimal(1), Decimal(150), "mine")).decode())
        keys: list[str] = []
        while True:
            frame = orjson.loads(await arb.get_message())
            keys.append(next(iter(frame)))
            if "order_response" in frame:
                assert frame["order_response"]["client_order_id"] == "mine"
                break
        assert "fill_response" not in keys  # mm's fill is mm's
        assert "position_response" in keys  # the account's position, for every client
