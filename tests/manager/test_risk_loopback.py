"""Pre-trade risk over loopback (issue 15): ``PreTradeRisk`` reads a real manager's state against the
simulator, and a refused order, modify or TWAP never reaches the wire (every frame the manager writes
is recorded). Until the manager calls the hook itself, these tests call it where the manager will:
right before the order would be placed."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from managerkit import FrameLog, wait_state
from simkit import manager
from waiting import wait_until

from qfex_oms import Order, OrderManager, OrderState, Twap
from qfex_oms.client.marketdata import open_market_data
from qfex_oms.client.risk import PreTradeRisk, market_data_prices
from qfex_oms.core.risk import RiskLimits, SymbolLimits
from qfex_oms.errors import InvalidArgument, RiskRefused
from qfex_oms.protocol.enums import OrderType, Side
from qfex_oms.sim import Venue, open_simulator

S = "AAPL-USD"


async def place(oms: OrderManager, risk: PreTradeRisk, side: str, quantity: str, price: str | None,
                **kw: Any) -> Order:
    """``oms.place_order`` with the hook called where the manager will call it."""
    kind = OrderType(kw.get("order_type", "LIMIT"))
    risk.check_order(S, Side(side), D(quantity), None if price is None else D(price), kind,
                     kw.get("reduce_only"))
    return await oms.place_order(S, side, quantity, price, **kw)


def recorder(oms: OrderManager) -> FrameLog:
    sent = FrameLog()
    oms.on_frame_sent = sent
    return sent


async def test_refused_orders_never_reach_the_wire_and_the_limit_is_named(oms: OrderManager) -> None:
    sent = recorder(oms)
    risk = PreTradeRisk(oms, RiskLimits(max_order_quantity=D("5"), max_order_notional=D("1000"),
                                        per_symbol={"TSLA-USD": SymbolLimits(max_order_quantity=D("1"))}))
    order = await place(oms, risk, "BUY", "5", "200")  # exactly at both limits
    assert order.state is OrderState.OPEN and len(sent.of("add_order")) == 1
    with pytest.raises(RiskRefused, match=r"max_order_quantity refused AAPL-USD: quantity 5\.1 > "
                                          r"max_order_quantity 5") as caught:
        await place(oms, risk, "BUY", "5.1", "100")
    assert isinstance(caught.value, InvalidArgument) and caught.value.limit == "max_order_quantity"
    with pytest.raises(RiskRefused, match="max_order_notional"):
        await place(oms, risk, "BUY", "5", "200.01")
    with pytest.raises(RiskRefused, match="max_order_quantity 1"):
        risk.check_order("TSLA-USD", Side.BUY, D("2"), D("100"))
    assert len(sent.of("add_order")) == 1 and len(oms.orders(open_only=False)) == 1


async def test_position_counts_the_exchange_position_and_open_orders(
        oms: OrderManager, oms2: OrderManager) -> None:
    await oms2.place_order(S, "SELL", "3", "200")
    filled = await oms.place_order(S, "BUY", "3", "200")
    await wait_state(filled, OrderState.FILLED)
    await wait_until(lambda: (p := oms.position(S)) is not None and p.quantity == D(3),
                     what="the exchange's position report of 3")
    await oms.place_order(S, "BUY", "4", "150")  # resting: 3 held + 4 open = 7
    sent = recorder(oms)
    risk = PreTradeRisk(oms, RiskLimits(max_position=D("10")))
    with pytest.raises(RiskRefused, match=r"position after the order 10\.5 \(reported 3, open buys 4"):
        await place(oms, risk, "BUY", "3.5", "150")
    assert sent.frames == []
    at_limit = await place(oms, risk, "BUY", "3", "150")  # 3 + 4 + 3 = 10, and now it is open too
    assert at_limit.state is OrderState.OPEN
    with pytest.raises(RiskRefused, match="max_position"):
        await place(oms, risk, "BUY", "0.1", "150")
    assert len(sent.of("add_order")) == 1
    # the sell side of a long: 3 - 13 = -10 passes, one more is past the limit short
    with pytest.raises(RiskRefused, match="max_position"):
        risk.check_order(S, Side.SELL, D("13.1"), D("250"))
    risk.check_order(S, Side.SELL, D("13"), D("250"))


async def test_a_twap_remainder_counts_and_a_refused_twap_sends_nothing() -> None:
    async with open_simulator() as venue, manager(venue) as oms:  # real time: the TWAP stays open
        risk = PreTradeRisk(oms, RiskLimits(max_position=D("10")))
        risk.check_twap(S, Side.SELL, D("6"), 2)
        twap: Twap = await oms.place_twap(S, "SELL", total_quantity="6", num_orders=2,
                                          order_interval_secs=30)
        assert twap.is_open
        assert risk.view.exposure(S).sells == D(6)
        sent = recorder(oms)
        with pytest.raises(RiskRefused, match=r"position after the order -10\.5"):
            risk.check_twap(S, Side.SELL, D("4.5"), 3)
        with pytest.raises(RiskRefused, match="max_position"):
            risk.check_order(S, Side.SELL, D("4.01"), D("200"))
        risk.check_order(S, Side.SELL, D("4"), D("200"))  # -6 - 4 = -10
        assert sent.frames == []
        await oms.cancel(twap)
        assert sent.types() == ["cancel_order"]  # cancels never pass through the check


async def test_a_refused_modify_sends_nothing(oms: OrderManager) -> None:
    risk = PreTradeRisk(oms, RiskLimits(max_order_quantity=D("5")))
    order = await place(oms, risk, "BUY", "2", "150")
    sent = recorder(oms)
    with pytest.raises(RiskRefused, match="modified quantity 6 > max_order_quantity 5"):
        risk.check_modify(order, None, D("6"))
    assert sent.frames == [] and order.quantity == D(2)
    risk.check_modify(order, None, D("5"))
    await oms.modify_order(order, quantity="5")
    assert order.quantity == D(5) and len(sent.of("modify_order")) == 1


async def test_rate_limit_refuses_orders_but_never_cancels_or_the_kill_switch(oms: OrderManager) -> None:
    now = [0.0]
    risk = PreTradeRisk(oms, RiskLimits(max_orders_per_second=2), clock=lambda: now[0])
    first = await place(oms, risk, "BUY", "1", "150")
    await place(oms, risk, "BUY", "1", "151")
    sent = recorder(oms)
    with pytest.raises(RiskRefused, match="more than 2 orders per second"):
        await place(oms, risk, "BUY", "1", "152")
    assert sent.frames == []
    await oms.cancel(first)
    report = await oms.cancel_all()
    assert report.clean and sent.of("add_order") == []
    oms.resume()
    now[0] = 0.5  # one token back
    await place(oms, risk, "BUY", "1", "152")
    assert len(sent.of("add_order")) == 1


async def test_price_band_around_the_mark_from_market_data(venue: Venue, oms: OrderManager) -> None:
    assert venue.mds_url is not None
    risk = PreTradeRisk(oms, RiskLimits(price_band_pct=D("5")))
    sent = recorder(oms)
    await place(oms, risk, "BUY", "1", "100")  # no reference price yet: the band is skipped
    async with open_market_data(venue.mds_url, [S]) as md:
        risk.use_prices(market_data_prices(md))
        venue.set_mark(S, "200")
        await wait_until(lambda: (mark := md.mark(S)) is not None and mark.price == D(200),
                         what="the mark of 200 on the feed")
        with pytest.raises(RiskRefused, match=r"price 189\.9 is 5\.05 % from reference 200"):
            await place(oms, risk, "BUY", "1", "189.9")
        await place(oms, risk, "BUY", "1", "190")  # exactly 5 %
    assert len(sent.of("add_order")) == 2


async def test_a_stale_market_price_refuses_the_order(venue: Venue, oms: OrderManager) -> None:
    """Issue 16: the check refuses when the price it checks against is stale, never uses it."""
    assert venue.mds_url is not None
    risk = PreTradeRisk(oms, RiskLimits(price_band_pct=D("5")))
    sent = recorder(oms)
    async with open_market_data(venue.mds_url, [S]) as md:
        risk.use_prices(market_data_prices(md, max_age=0.5))
        venue.set_mark(S, "200")
        await wait_until(lambda: not md.stale(S, 0.5), what="fresh market data")
        await place(oms, risk, "BUY", "1", "195")
        venue.mds.silenced.update(("level2", "bbo", "trade", "mark_price", "funding"))  # quiet
        await wait_until(lambda: md.stale(S, 0.5), what="the price to go stale")
        with pytest.raises(RiskRefused, match="max_price_age"):
            await place(oms, risk, "BUY", "1", "195")
    assert len(sent.of("add_order")) == 1


async def test_margin_against_the_reported_balance(venue: Venue, oms: OrderManager) -> None:
    await wait_until(lambda: oms.balance() is not None, what="the first balance report")
    balance = oms.balance()
    assert balance is not None
    position = oms.position(S)  # the leverage QFEX reports on it, else default_leverage (1)
    leverage = position.leverage if position is not None and position.leverage else D(1)
    risk = PreTradeRisk(oms, RiskLimits(check_margin=True))
    sent = recorder(oms)
    price = D("100")
    fits = (balance.available * leverage / price).quantize(D("0.01"), rounding="ROUND_FLOOR")
    with pytest.raises(RiskRefused, match="> available balance"):
        risk.check_order(S, Side.BUY, fits + D("1"), price)
    risk.check_order(S, Side.BUY, fits, price)
    assert sent.frames == []



async def test_open_quantity_follows_places_fills_modifies_and_cancels(
        oms: OrderManager, oms2: OrderManager) -> None:
    """The totals the risk check reads in constant time are the open orders' remaining quantity,
    through every change a live book sees (the property tests check the same after every step)."""
    def by_hand() -> tuple[D, D]:
        open_orders = [o for o in oms.orders(S) if o.twap_id is None]
        return (sum((o.remaining_quantity for o in open_orders if o.side is Side.BUY), D(0)),
                sum((o.remaining_quantity for o in open_orders if o.side is Side.SELL), D(0)))

    assert oms.open_quantity(S) == (D(0), D(0))
    bid = await oms.place_order(S, "BUY", "5", "150")
    ask = await oms.place_order(S, "SELL", "2", "260")
    assert oms.open_quantity(S) == (D(5), D(2)) == by_hand()
    await oms2.place_order(S, "SELL", "1.5", "150")  # crosses the bid: 3.5 left
    await wait_until(lambda: bid.filled_quantity == D("1.5"), what="the partial fill")
    assert oms.open_quantity(S) == (D("3.5"), D(2)) == by_hand()
    await oms.modify_order(ask, quantity="4")
    assert oms.open_quantity(S) == (D("3.5"), D(4)) == by_hand()
    await oms.cancel(bid)
    assert oms.open_quantity(S) == (D(0), D(4)) == by_hand()
    assert oms.open_quantities() == {S: (D(0), D(4))}
    assert oms.open_quantity("TSLA-USD") == (D(0), D(0))
