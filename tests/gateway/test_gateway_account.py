"""The account-wide requests through the gateway (``close_position``, ``set_user_leverage``): the
operator's key only, answered as QFEX answers them, never left unanswered."""

from __future__ import annotations

from decimal import Decimal

import pytest
from gwkit import MM, OPS, client, gateway_on
from simkit import PUB, PUB2, SECRET2
from waiting import wait_until

from qfex_oms import Credentials, OrderManager, RequestFailed, open_order_manager
from qfex_oms.sim import Venue

SYM = "AAPL-USD"


async def _long(venue: Venue, through: OrderManager, quantity: str) -> None:
    """The account goes long ``quantity``: a resting buy through the gateway, hit by another account."""
    await through.place_order(SYM, "BUY", quantity, "100")
    async with open_order_manager(venue.url, Credentials(PUB2, SECRET2)) as other:
        await other.place_order(SYM, "SELL", quantity, "100", time_in_force="IOC")
        await other.place_order(SYM, "BUY", "10", "99")  # the liquidity a close will take
    await wait_until(lambda: venue.position(PUB, SYM).quantity == Decimal(quantity),
                     what="the long position")


async def test_the_operator_closes_a_position_and_a_flat_one_is_answered(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, OPS) as ops:
        await _long(venue, mm, "2")
        with pytest.raises(RequestFailed, match="PermissionDenied"):
            await mm.close_position(SYM)  # a strategy's key may not change the account
        await wait_until(lambda: (p := ops.position(SYM)) is not None and p.quantity == 2,
                         what="the operator to see the position")
        order = await ops.close_position(SYM, client_order_id="flatten-1")
        assert order is not None and order.side == "SELL" and order.quantity == 2
        assert order.client_order_id == "flatten-1"
        await wait_until(lambda: venue.position(PUB, SYM).quantity == 0, what="the close to fill")
        await wait_until(lambda: (p := gw.oms.position(SYM)) is not None and p.flat,
                         what="the gateway to know the position is flat")
        # The gateway's manager sends nothing for a flat position; the client still gets QFEX's
        # answer to closing a flat one (a REJECTED order_response), not silence and a timeout.
        ops.account.positions.clear()  # so that the operator's own manager asks
        assert await ops.close_position(SYM) is None


async def test_a_close_refused_with_an_err_reaches_the_operator_at_once(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, OPS) as ops:
        await _long(venue, mm, "1")
        await wait_until(lambda: (p := ops.position(SYM)) is not None and p.quantity == 1,
                         what="the operator to see the position")
        venue.faults.rate_limit_next(1, "close_position", public_key=PUB)
        with pytest.raises(RequestFailed, match="RateLimited"):
            await ops.close_position(SYM)
        assert venue.position(PUB, SYM).quantity == 1


async def test_only_the_operator_sets_leverage(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, OPS) as ops:
        with pytest.raises(RequestFailed, match="PermissionDenied"):
            await mm.set_leverage(SYM, 10)
        await ops.set_leverage(SYM, 10)
        assert Decimal((await mm.leverage())[SYM].leverage) == 10
        with pytest.raises(RequestFailed):
            await ops.set_leverage(SYM, 7)  # not a level QFEX allows: its refusal, once
