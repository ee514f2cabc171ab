"""The operator's key (``may_kill_account``) through the gateway: it sees the whole account, other
strategies' ids with their namespace, and cancels exactly what it names; ordinary keys see and
cancel as before (``qfex_oms.gateway``, "The operator's key")."""

from __future__ import annotations

import pytest
from gwkit import ARB, MM, OPS, client, gateway_on
from simkit import PUB
from waiting import wait_until

from qfex_oms import OrderState, QfexOmsError
from qfex_oms.sim import Venue

SYM = "AAPL-USD"


def _wire(venue: Venue) -> list[str]:
    return sorted(o.client_order_id for o in venue.open_orders(PUB, SYM))


async def test_the_operator_sees_the_account_and_cancels_exactly_what_it_names(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, ARB) as arb, \
            client(gw, OPS) as ops:
        mine = [await mm.place_order(SYM, "BUY", "1", str(190 + n), client_order_id="bid-1")
                for n in range(2)]
        theirs = [await arb.place_order(SYM, "BUY", "1", str(180 + n), client_order_id="bid-1")
                  for n in range(2)]
        own = await ops.place_order(SYM, "SELL", "1", "250", client_order_id="o1")
        assert own.client_order_id == "o1"  # the operator's own order: its own id, as any key's
        assert _wire(venue) == ["arb:bid-1", "arb:bid-1", "mm:bid-1", "mm:bid-1", "ops:o1"]

        # Its snapshot is the account's: the others' ids keep their namespace.
        snapshot = await ops.fetch_open_orders(SYM)
        assert sorted(o.client_order_id for o in snapshot.orders) == [
            "arb:bid-1", "arb:bid-1", "mm:bid-1", "mm:bid-1", "o1"]
        # Its reports too: its book attributes every order to its strategy.
        await wait_until(lambda: sorted(str(o.strategy) for o in ops.orders()) == [
            "None", "arb", "arb", "mm", "mm"], what=lambda: f"the operator's book: {ops.orders()}")
        # An ordinary key's view is unchanged: its own orders, its own ids.
        snapshot = await arb.fetch_open_orders(SYM)
        assert sorted((o.order_id, o.client_order_id) for o in snapshot.orders) == sorted(
            (o.order_id, "bid-1") for o in theirs)

        # A cancel by a namespaced client id ends exactly that strategy's orders sharing it.
        result = await ops.cancel(client_order_id="mm:bid-1", symbol=SYM)
        assert result.status == "CANCELLED"
        assert {o.order_id for o in result.cancelled} == {o.order_id for o in mine}
        assert _wire(venue) == ["arb:bid-1", "arb:bid-1", "ops:o1"]
        await wait_until(lambda: all(o.state is OrderState.CANCELLED for o in mine),
                         what="mm to see the operator's cancel of its orders")
        assert all(o.state is OrderState.OPEN for o in theirs)

        # By order id, any strategy's order; an ordinary key still cannot touch the operator's.
        result = await ops.cancel(order_id=theirs[0].order_id, symbol=SYM)
        assert result.status == "CANCELLED"
        result = await arb.cancel(order_id=own.order_id, symbol=SYM)
        assert result.status == "NO_SUCH_ORDER"
        assert _wire(venue) == ["arb:bid-1", "ops:o1"]

        # The operator's own ids may not pass for another strategy's.
        with pytest.raises(QfexOmsError):
            await ops.place_order(SYM, "BUY", "1", "150", client_order_id="arb:x")
        assert _wire(venue) == ["arb:bid-1", "ops:o1"]
        # ... and its own cancel by client id stays in its namespace.
        result = await ops.cancel(client_order_id="o1", symbol=SYM)
        assert [o.order_id for o in result.cancelled] == [own.order_id]
        assert _wire(venue) == ["arb:bid-1"]
