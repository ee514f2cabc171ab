"""The runner in-process: loading strategies, run_strategy's outcomes, exit policies, order logging."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
from runnerkit import POSITION, REPO, RESTING, config_for
from simkit import PUB, manager
from structlog.testing import capture_logs
from waiting import wait_until

from qfex_oms import OrderManager, OrderState
from qfex_oms.app import runner as runner_module
from qfex_oms.app.runner import StrategyError, load_strategy, run_file, run_strategy
from qfex_oms.sim import Venue

SYMBOL = "AAPL-USD"


def test_load_strategy_loads_the_examples_and_refuses_bad_files(tmp_path: Path) -> None:
    for name in ("quoter", "rebalancer", "kill_drill"):
        assert callable(load_strategy(REPO / "strategies" / f"{name}.py"))
    with pytest.raises(StrategyError, match="no strategy file"):
        load_strategy(tmp_path / "missing.py")
    (tmp_path / "empty.py").write_text("")
    with pytest.raises(StrategyError, match="no `async def run"):
        load_strategy(tmp_path / "empty.py")
    (tmp_path / "fails.py").write_text("import no_such_module_here\n")
    with pytest.raises(StrategyError, match=r"cannot import .*ModuleNotFoundError"):
        load_strategy(tmp_path / "fails.py")


async def test_a_strategy_that_returns_then_the_cancel_all_exit_policy(venue: Venue,
                                                                       oms: OrderManager) -> None:
    config = config_for(venue, strategy={"orders": 2, "hold": 0.05, "twap": True})
    result = await run_strategy(load_strategy(RESTING), config, oms)
    assert result.stopped_by == "finished" and result.strategy_result == {"placed": 2, "halted": False}
    assert result.exit_clean and result.exit_report is not None and result.exit_report.clean
    assert len(result.exit_report.cancelled_orders) == 2 and len(result.exit_report.cancelled_twaps) == 1
    assert venue.open_orders(PUB) == [] and venue.twaps(PUB, active_only=True) == []


async def test_leave_gtc_leaves_resting_orders_but_stops_twaps(venue: Venue, oms: OrderManager) -> None:
    config = config_for(venue, on_exit="leave_gtc", strategy={"orders": 2, "hold": 0.05, "twap": True})
    result = await run_strategy(load_strategy(RESTING), config, oms)
    assert result.stopped_by == "finished" and result.exit_report is None and result.exit_clean
    assert sorted(o.client_order_id for o in venue.open_orders(PUB)) == ["rest-0", "rest-1"]
    assert venue.twaps(PUB, active_only=True) == []
    assert not oms.halted


async def test_a_crashing_strategy_still_gets_its_exit_policy(venue: Venue, oms: OrderManager,
                                                              tmp_path: Path) -> None:
    crashing = tmp_path / "crashing.py"
    crashing.write_text("async def run(oms, ctx):\n"
                        "    await oms.place_order('AAPL-USD', 'BUY', '1', '150')\n"
                        "    return {}['missing']\n")
    with capture_logs() as logs:
        result = await run_strategy(load_strategy(crashing), config_for(venue), oms)
    assert result.stopped_by == "error" and result.error == "KeyError: 'missing'"
    assert result.exit_report is not None and result.exit_report.clean
    assert venue.open_orders(PUB) == []
    assert any(entry["event"] == "strategy crashed" and entry.get("exc_info") for entry in logs)


async def test_a_guard_trip_stops_the_run(venue: Venue, oms: OrderManager) -> None:
    config = config_for(venue, guard={"max_open_orders": 2}, strategy={"orders": 3})
    result = await run_strategy(load_strategy(RESTING), config, oms)
    assert result.stopped_by == "guard" and result.guard_reason is not None
    assert "max_open_orders 2" in result.guard_reason
    # The third order may be refused (Halted) if the guard counted it before it was sent.
    assert result.strategy_result == {"placed": 3, "halted": True} or "Halted" in (result.error or ""), result
    assert result.exit_clean and venue.open_orders(PUB) == []


async def test_a_strategy_that_ignores_the_guard_is_cancelled_after_the_grace(
        venue: Venue, oms: OrderManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "GUARD_GRACE_SECONDS", 0.2)
    stubborn = tmp_path / "stubborn.py"
    stubborn.write_text("import trio\n"
                        "async def run(oms, ctx):\n"
                        "    for price in (150, 149, 148):\n"
                        "        await oms.place_order('AAPL-USD', 'BUY', '1', price)\n"
                        "    await trio.sleep(3600)\n")
    config = config_for(venue, guard={"max_open_orders": 2})
    with trio.fail_after(5):
        result = await run_strategy(load_strategy(stubborn), config, oms)
    assert result.stopped_by == "guard" and "max_open_orders" in (result.guard_reason or "")
    assert result.exit_clean and venue.open_orders(PUB) == []


async def test_halted_raised_into_the_strategy_counts_as_the_guard(venue: Venue, oms: OrderManager,
                                                                   tmp_path: Path) -> None:
    eager = tmp_path / "eager.py"
    eager.write_text("import trio\n"
                     "async def run(oms, ctx):\n"
                     "    price = 150\n"
                     "    while True:\n"  # never looks at ctx.halted: place_order raises Halted
                     "        await oms.place_order('AAPL-USD', 'BUY', '1', price)\n"
                     "        price -= 1\n"
                     "        await trio.sleep(0.01)\n")
    config = config_for(venue, guard={"max_open_orders": 3})
    with trio.fail_after(5):
        result = await run_strategy(load_strategy(eager), config, oms)
    assert result.stopped_by == "guard" and result.error is not None and "Halted" in result.error


async def test_every_order_event_is_logged_with_its_identity(venue: Venue, oms: OrderManager) -> None:
    config = config_for(venue, strategy={"orders": 2, "hold": 0.01})
    with capture_logs() as logs:
        await run_strategy(load_strategy(RESTING), config, oms)
    updates = [e for e in logs if e["event"] == "order updated"]
    assert [(e["client_order_id"], e["state"]) for e in updates if e["state"] == "OPEN"] == [
        ("rest-0", "OPEN"), ("rest-1", "OPEN")]
    assert {e["state"] for e in updates} >= {"OPEN", "CANCELLED"}
    assert all(e["symbol"] == SYMBOL and e["order_id"] for e in updates)


async def test_run_file_with_an_embedded_config(tmp_path: Path) -> None:
    from qfex_oms.app.config import load_config

    config = load_config(REPO / "config" / "sim.toml")
    config.strategy.update(orders=1, hold=0.01)
    result = await run_file(RESTING, config)
    assert result.stopped_by == "finished" and result.exit_clean
    assert result.exit_report is not None and len(result.exit_report.cancelled_orders) == 1
    order = result.exit_report.cancelled_orders[0]
    assert order.state is OrderState.CANCELLED and order.client_order_id == "rest-0"


async def test_shutdown_of_leave_gtc_survives_a_lost_connection(venue: Venue) -> None:
    from qfex_oms.app.runner import shutdown

    config = config_for(venue, on_exit="leave_gtc")
    async with manager(venue, reconnect=None) as oms:
        twap = await oms.place_twap(SYMBOL, "BUY", total_quantity="4", num_orders=4,
                                    order_interval_secs=3600)
        await venue.drop_connections(PUB)
        await wait_until(lambda: not oms.connected, within=5, what="the drop")
        assert await shutdown(oms, config) is None  # logged, not raised
        assert twap.is_open


async def test_flatten_cancels_everything_then_closes_every_position(venue: Venue, oms: OrderManager,
                                                                     oms2: OrderManager) -> None:
    await oms2.place_order(SYMBOL, "SELL", "3", "200")  # the strategy's IOC takes this
    await oms2.place_order(SYMBOL, "BUY", "5", "199")  # the close's IOC sells into this
    config = config_for(venue, on_exit="flatten", strategy={"hold": 0.05})
    result = await run_strategy(load_strategy(POSITION), config, oms)
    assert result.stopped_by == "finished" and result.strategy_result == {"position": "3"}
    assert result.exit_report is not None and [o.client_order_id for o in
                                               result.exit_report.cancelled_orders] == ["rest"]
    assert result.exit_clean and result.positions_held == {}
    assert venue.position(PUB, SYMBOL).quantity == 0 and venue.open_orders(PUB) == []


async def test_flatten_reports_what_it_could_not_close(venue: Venue, oms: OrderManager,
                                                       oms2: OrderManager,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner_module, "FLATTEN_SETTLE_SECONDS", 0.05)
    await oms2.place_order(SYMBOL, "SELL", "3", "200")  # nobody bids: the close cannot fill
    # The close never fills, so flatten retries until shutdown_timeout; the cancel_all before it must
    # finish inside that bound for exit_report to exist (0.5 s left a loaded machine little room).
    config = config_for(venue, on_exit="flatten", shutdown_timeout=1.5, strategy={"hold": 0.05})
    with capture_logs() as logs:
        result = await run_strategy(load_strategy(POSITION), config, oms)
    assert result.exit_report is not None and result.exit_report.clean
    assert not result.exit_clean and result.positions_held == {SYMBOL: 3}
    assert venue.open_orders(PUB) == []
    held = [e for e in logs if e["event"] == "exit policy: positions still held"]
    assert held and held[-1]["positions"] == {SYMBOL: "3"}


async def test_the_readme_position_example_runs_and_flatten_closes_it(venue: Venue, oms: OrderManager,
                                                                      oms2: OrderManager,
                                                                      tmp_path: Path) -> None:
    text = (REPO / "README.md").read_text()
    (example,) = re.findall(r"### Reading positions.*?```py\n(.*?)```", text, re.S)
    strategy = tmp_path / "reading_positions.py"
    strategy.write_text(example)
    await oms2.place_order(SYMBOL, "SELL", "2", "200")  # the example's IOC takes this
    await oms2.place_order(SYMBOL, "BUY", "5", "199")  # flatten's close sells into this
    config = config_for(venue, on_exit="flatten", strategy={"hold": 0.5, "target": 2})
    with capture_logs() as logs:
        result = await run_strategy(load_strategy(strategy), config, oms)
    assert result.stopped_by == "finished" and result.error is None
    assert any(e["event"] == "position" and e["quantity"] in ("2", "2.0") for e in logs), logs
    assert result.exit_clean and result.positions_held == {}
    assert venue.position(PUB, SYMBOL).quantity == 0 and venue.open_orders(PUB) == []
