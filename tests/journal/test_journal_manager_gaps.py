"""Gaps in the manager's recovery path that the journal depends on (documented, not fixed here)."""

from __future__ import annotations

from pathlib import Path

from simkit import PUB, manager

from qfex_oms.sim import open_simulator


async def test_a_lost_resync_answer_does_not_stop_recovery(tmp_path: Path) -> None:
    path = tmp_path / "j.sqlite"
    async with open_simulator(rate_limits=None, ping_interval=None) as venue:
        async with manager(venue, journal=str(path)) as oms:
            await oms.place_order("AAPL-USD", "BUY", "1", "100", client_order_id="keep")
        venue.faults.drop_next(1, kind="all_orders_response", public_key=PUB)
        async with manager(venue, journal=str(path), request_timeout=0.3) as oms:
            assert [o.client_order_id for o in oms.orders()] == ["keep"]
