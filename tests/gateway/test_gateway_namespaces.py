"""Two strategies through one gateway, on one account: same client ids, no collateral cancels."""

from __future__ import annotations

from gwkit import ARB, MM, client, gateway_on
from simkit import PUB
from waiting import wait_until

from qfex_oms import OrderState
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
