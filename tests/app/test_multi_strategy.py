"""Several strategies in one process from one config (issue 18): ``[[strategy]]`` tables, one manager
(one connection, one pacer), the account's guard, and per strategy its own guard and exit policy,
acting through its own view only. Both strategies run the same file, so they use the same client ids.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest
from simkit import OPTIONS, PUB

from qfex_oms import OrderManager
from qfex_oms.app.config import ConfigError, load_config
from qfex_oms.app.runner import MultiRunResult, load_strategy, run_file, run_strategies
from qfex_oms.sim import Venue

RESTING = Path(__file__).resolve().parents[1] / "runner" / "resting_strategy.py"


def write_config(tmp_path: Path, url: str, tables: str) -> Path:
    path = tmp_path / "multi.toml"
    path.write_text(f'[exchange]\nurl = "{url}"\n[runner]\nshutdown_timeout = 10\n{tables}')
    return path


def two_tables(a_guard: str = "", a_hold: float = 0.3, b_hold: float = 0.3) -> str:
    return f"""
[[strategy]]
name = "a"
path = "{RESTING}"
on_exit = "cancel_all"
params = {{ orders = 3, hold = {a_hold}, price = 150 }}
guard = {{ {a_guard} }}

[[strategy]]
name = "b"
path = "{RESTING}"
on_exit = "leave_gtc"
params = {{ orders = 2, hold = {b_hold}, price = 140 }}
"""


async def run_tables(oms: OrderManager, path: Path) -> MultiRunResult:
    config = attrs.evolve(load_config(path), manager=dict(OPTIONS))
    loaded = [(table, load_strategy(table.path)) for table in config.strategies]
    return await run_strategies(loaded, config, oms)


async def test_two_strategy_tables_share_one_manager_and_exit_each_their_own_way(
        tmp_path: Path, venue: Venue, oms: OrderManager) -> None:
    result = await run_tables(oms, write_config(tmp_path, venue.url, two_tables()))
    assert {n: r.stopped_by for n, r in result.results.items()} == {"a": "finished", "b": "finished"}
    assert result.strategy_result == {"a": {"placed": 3, "halted": False},
                                      "b": {"placed": 2, "halted": False}}
    # Same client ids in both (rest-0, rest-1...), namespaced on the wire; one manager placed them all.
    placed = sorted(o.client_order_id for o in oms.orders(open_only=False))
    assert placed == ["a:rest-0", "a:rest-1", "a:rest-2", "b:rest-0", "b:rest-1"]
    # a's cancel_all ended its own; b's leave_gtc left its orders resting.
    assert sorted(o.client_order_id for o in venue.open_orders(PUB)) == ["b:rest-0", "b:rest-1"]
    assert result.results["a"].exit_clean and result.results["a"].exit_report is not None
    assert result.results["a"].exit_report.clean and result.exit_clean
    assert not oms.halted


async def test_a_strategys_guard_cancels_only_its_own_orders(
        tmp_path: Path, venue: Venue, oms: OrderManager) -> None:
    tables = two_tables(a_guard="max_open_orders = 1", a_hold=30, b_hold=1.0)
    result = await run_tables(oms, write_config(tmp_path, venue.url, tables))
    a, b = result.results["a"], result.results["b"]
    assert a.stopped_by == "guard" and a.guard_reason is not None and "open" in a.guard_reason
    assert b.stopped_by == "finished" and b.strategy_result == {"placed": 2, "halted": False}
    assert result.stopped_by == "finished" and result.guard_reason is None  # not the account's guard
    assert sorted(o.client_order_id for o in venue.open_orders(PUB)) == ["b:rest-0", "b:rest-1"]
    assert not oms.halted


async def test_the_accounts_guard_stops_every_strategy(tmp_path: Path, venue: Venue,
                                                       oms: OrderManager) -> None:
    tables = "[guard]\nmax_open_orders = 4\n" + two_tables(a_hold=30, b_hold=30)
    path = write_config(tmp_path, venue.url, tables)
    result = await run_tables(oms, path)
    assert result.stopped_by == "guard" and result.guard_reason is not None
    assert result.exit_report is not None and result.exit_report.clean
    assert venue.open_orders(PUB) == [] and oms.halted


async def test_run_file_refuses_a_path_beside_strategy_tables(tmp_path: Path) -> None:
    config = load_config(write_config(tmp_path, "embedded", two_tables()))
    with pytest.raises(Exception, match=r"\[\[strategy\]\] tables"):
        await run_file(RESTING, config)


@pytest.mark.parametrize(("table", "message"), [
    ('name = "a"\npath = "x.py"\n[[strategy]]\nname = "a"\npath = "y.py"', "used by another"),
    ('name = "a"\npath = "x.py"\non_exit = "flatten"', "on_exit"),
    ('name = "twap"\npath = "x.py"', "name"),
    ('name = "a"\npath = "x.py"\nguard = { max_open_orders = -1 }', "guard.max_open_orders"),
    ('name = "a"', "missing key path"),
])
def test_strategy_tables_are_checked_strictly(tmp_path: Path, table: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write_config(tmp_path, "embedded", f"[[strategy]]\n{table}\n"))


async def test_run_without_a_strategy_path_runs_the_config_tables(tmp_path: Path, venue: Venue) -> None:
    """``qfex-oms run --config multi.toml`` (no STRATEGY) runs every [[strategy]] table; a path given
    beside the tables, or neither, is refused with exit 2 before connecting."""
    import json
    import subprocess
    import sys

    import trio

    path = write_config(tmp_path, venue.url, two_tables())
    base = [sys.executable, "-m", "qfex_oms", "run", "--config", str(path)]

    def cli(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *extra], capture_output=True, text=True, timeout=60, check=False)

    both = await trio.to_thread.run_sync(cli, "--json")
    assert both.returncode == 0, both.stderr
    assert json.loads(both.stdout)["result"] == {"a": {"placed": 3, "halted": False},
                                                 "b": {"placed": 2, "halted": False}}
    refused = await trio.to_thread.run_sync(cli, str(RESTING))
    assert refused.returncode == 2 and "[[strategy]] tables" in refused.stderr
