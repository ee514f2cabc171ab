"""The manager's options that compose the newer parts (issues 15, 16, 17): ``risk=`` refuses before
any frame, ``market_data=`` opens QFEX's MDS beside the trade connection (and feeds the risk price
band), ``statistics=True`` backs ``oms.statistics()``."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from managerkit import FrameLog
from simkit import manager
from waiting import wait_until

from qfex_oms import InvalidArgument, RiskLimits, RiskRefused
from qfex_oms.sim import Venue

S = "AAPL-USD"


async def test_risk_option_refuses_before_any_frame(venue: Venue) -> None:
    async with manager(venue, risk=RiskLimits(max_order_quantity="2")) as oms:
        sent = FrameLog()
        oms.on_frame_sent = sent
        with pytest.raises(RiskRefused, match="max_order_quantity"):
            await oms.place_order(S, "BUY", "3", "100")
        with pytest.raises(RiskRefused):
            await oms.place_twap(S, "BUY", total_quantity="10", num_orders=2, order_interval_secs=60)
        order = await oms.place_order(S, "BUY", "2", "100")
        with pytest.raises(RiskRefused):
            await oms.modify_order(order, quantity="5")
        assert sent.types() == ["add_order"]
        assert (await oms.cancel(order)).status == "CANCELLED"  # cancels are never checked


async def test_market_data_option_feeds_the_price_band(venue: Venue) -> None:
    assert venue.mds_url is not None
    async with manager(venue, risk=RiskLimits(price_band_pct="5"), market_data=venue.mds_url,
                       market_data_symbols=[S]) as oms:
        assert oms.market_data is not None
        venue.set_mark(S, "200")
        await wait_until(lambda: (mark := oms.market_data.mark(S)) is not None and mark.price == D(200),
                         what="the mark on the manager's own feed")
        with pytest.raises(RiskRefused, match="price_band_pct"):
            await oms.place_order(S, "BUY", "1", "180")
        await oms.place_order(S, "BUY", "1", "195")


async def test_statistics_count_what_happened(venue: Venue) -> None:
    async with manager(venue, statistics=True) as oms:
        order = await oms.place_order(S, "BUY", "1", "100")
        await oms.cancel(order)
        await wait_until(lambda: oms.statistics().orders_placed == 1
                         and sum(oms.statistics().cancels_by_mode.values()) == 1,
                         what="the counts")
    async with manager(venue) as oms:
        with pytest.raises(InvalidArgument, match="statistics=True"):
            oms.statistics()
