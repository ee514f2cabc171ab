"""The account as the exchange reports it (issue 13), over loopback against the simulator's ledger.

Every figure is compared with the simulator's own ledger (``venue.position``, ``venue.balance``),
to the cent, after the reports have arrived (waited for, never slept for).
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from faultkit import FAST, kept_away
from simkit import CREDS2, PUB, manager
from waiting import drain, wait_until

from qfex_oms import InvalidArgument, OrderManager, RequestFailed
from qfex_oms.client.events import PositionMismatch, PositionUpdated
from qfex_oms.sim import Venue

S = "AAPL-USD"


def matches_venue(oms: OrderManager, venue: Venue, symbol: str = S) -> bool:
    mine, theirs = oms.position(symbol), venue.position(PUB, symbol)
    if mine is None:
        return False
    return (mine.quantity == theirs.quantity and mine.average_price == theirs.average_price
            and mine.realised_pnl == theirs.realised_pnl and mine.unrealised_pnl == theirs.unrealised_pnl)


async def cross(oms: OrderManager, other: OrderManager, side: str, quantity: str, price: str) -> None:
    """Our resting order filled by the other account's IOC."""
    await oms.place_order(S, side, quantity, price)
    await other.place_order(S, "SELL" if side == "BUY" else "BUY", quantity, price, time_in_force="IOC")


async def test_positions_follow_buys_sells_a_flip_and_a_mark(oms: OrderManager, oms2: OrderManager,
                                                             venue: Venue) -> None:
    stream = oms.events()
    await cross(oms, oms2, "BUY", "2", "100")
    await cross(oms, oms2, "BUY", "1", "103")
    await wait_until(lambda: matches_venue(oms, venue), what="the long position to be reported")
    position = oms.position(S)
    assert position is not None and position.quantity == 3 and position.side is not None
    await cross(oms, oms2, "SELL", "5", "104")  # through zero: short 2
    await wait_until(lambda: matches_venue(oms, venue) and oms.position(S).quantity == -2,  # type: ignore[union-attr]
                     what="the flip to short")
    venue.set_mark(S, "90")
    await wait_until(lambda: matches_venue(oms, venue) and oms.position(S).unrealised_pnl != 0,  # type: ignore[union-attr]
                     what="unrealised P&L at the new mark")
    balance = oms.balance()
    theirs = venue.balance(PUB)
    await wait_until(lambda: (b := oms.balance()) is not None
                     and b.available == venue.balance(PUB).available_balance, what="the balance")
    assert balance is not None and theirs.deposit == oms.balance().deposit  # type: ignore[union-attr]
    events = await drain(stream)
    assert any(isinstance(e, PositionUpdated) for e in events)
    assert oms.positions()[S] is oms.position(S)


async def test_a_lost_fill_is_a_position_mismatch_until_the_resync_heals_it(venue: Venue) -> None:
    async with manager(venue, position_grace=0.2, reconnect=FAST) as oms, manager(venue, CREDS2) as other:
        stream = oms.events()
        await oms.place_order(S, "BUY", "1", "100")
        await wait_until(lambda: oms.position(S) is not None or venue.balance(PUB) is not None,
                         what="the first account reports")
        # The fill report and the FILLED order_response are lost: the position report still comes.
        venue.faults.drop_next(2, public_key=PUB)
        await other.place_order(S, "SELL", "1", "100", time_in_force="IOC")
        await wait_until(lambda: oms.position(S) is not None and oms.position(S).quantity == 1,  # type: ignore[union-attr]
                         what="the position report")
        seen: list[object] = []

        async def mismatch() -> bool:
            seen.extend(await drain(stream, idle=0.05))
            return any(isinstance(e, PositionMismatch) for e in seen)

        for _ in range(100):
            if await mismatch():
                break
        (event,) = [e for e in seen if isinstance(e, PositionMismatch)]
        assert event.symbol == S and event.reported == 1 and event.implied_by_fills == 0
        await oms.reconcile()  # the settler learns the trade: the fills now agree
        assert oms.orders(open_only=False)[0].filled_quantity == 1


async def test_a_malformed_position_report_changes_nothing(oms: OrderManager) -> None:
    before = dict(oms.positions())
    oms.frame_received(orjson.dumps({"position_response": {"symbol": S, "position": "1e999999"}}))
    oms.frame_received(orjson.dumps({"position_response": {"symbol": 7, "position": 1}}))
    assert oms.positions() == before


async def test_positions_come_back_after_a_reconnect(oms: OrderManager, oms2: OrderManager,
                                                     venue: Venue) -> None:
    await cross(oms, oms2, "BUY", "1", "100")
    await wait_until(lambda: matches_venue(oms, venue), what="the position")
    async with kept_away(oms, venue):
        pass
    assert matches_venue(oms, venue)
    assert Decimal(1) == oms.position(S).quantity  # type: ignore[union-attr]


async def test_close_position_flattens_a_position_built_from_several_fills(
        oms: OrderManager, oms2: OrderManager, venue: Venue) -> None:
    await cross(oms, oms2, "BUY", "2", "100")
    await cross(oms, oms2, "BUY", "1", "101")
    await oms2.place_order(S, "BUY", "5", "99")  # the liquidity the close will take
    await wait_until(lambda: matches_venue(oms, venue) and oms.position(S).quantity == 3,  # type: ignore[union-attr]
                     what="the long position")
    order = await oms.close_position(S)
    assert order is not None and order.side == "SELL" and order.quantity == 3
    await wait_until(lambda: venue.position(PUB, S).quantity == 0 and oms.position(S).flat,  # type: ignore[union-attr]
                     what="the position to be flat")
    assert await oms.close_position(S) is None  # flat: a clear answer, nothing sent


async def test_close_position_refused_by_the_exchange_when_flat_is_none(oms: OrderManager) -> None:
    # Never reported (no position yet): it goes to QFEX, whose REJECTED answer is a plain None.
    oms.account.positions.clear()
    assert await oms.close_position("TSLA-USD") is None


async def test_leverage_read_set_and_refused(oms: OrderManager) -> None:
    levels = await oms.leverage_levels()
    allowed = sorted({int(Decimal(level.leverage)) for level in levels if level.symbol == S})
    assert allowed and 10 in allowed
    await oms.set_leverage(S, 10)
    assert Decimal((await oms.leverage())[S].leverage) == 10
    with pytest.raises(RequestFailed):
        await oms.set_leverage(S, 7)  # not an allowed level
    with pytest.raises(InvalidArgument):
        await oms.set_leverage(S, 0)
    assert Decimal((await oms.leverage())[S].leverage) == 10


async def test_a_restart_with_the_journal_knows_the_position_from_the_exchange_not_zero(
        oms2: OrderManager, venue: Venue, tmp_path: Path) -> None:
    path = str(tmp_path / "j.sqlite")
    async with manager(venue, journal=path) as first:
        await cross(first, oms2, "SELL", "2", "100")
        await wait_until(lambda: matches_venue(first, venue), what="the short position")
    async with manager(venue, journal=path) as again:
        await wait_until(lambda: matches_venue(again, venue), what="the position after the restart")
        assert again.position(S).quantity == -2  # type: ignore[union-attr]


async def test_close_position_of_an_unknown_symbol_is_a_clear_error(oms: OrderManager) -> None:
    with pytest.raises(RequestFailed, match="BAD_SYMBOL"):
        await oms.close_position("NOPE-USD")


async def test_close_position_refused_with_an_err_fails_at_once(oms: OrderManager, venue: Venue) -> None:
    # An err (not an order_response) refusing the close: a RequestFailed with QFEX's code, not the
    # whole request_timeout waited out and a RequestTimeout that says the position may be closing.
    oms.account.positions.clear()
    venue.faults.rate_limit_next(1, "close_position", public_key=PUB)
    with pytest.raises(RequestFailed, match="RateLimited"):
        await oms.close_position(S)
