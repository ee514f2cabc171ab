"""`qfex-oms run` as a subprocess against a simulator process: results, exit codes and signals."""

from __future__ import annotations

import signal
import subprocess
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from clikit import (
    REPO,
    arun_cli,
    cli_env,
    explain,
    json_out,
    start_cli,
    venue_open,
    write_config,
)
from simkit import CREDS2, manager_at
from waiting import wait_until

from qfex_oms import OrderManager

RESTING = str(REPO / "tests" / "runner" / "resting_strategy.py")
DEMO2_ENV = cli_env(QFEX_PUBLIC_KEY="qfex_pub_demo2", QFEX_SECRET_KEY="qfex_secret_demo2")


async def test_run_a_strategy_to_completion_with_json_and_text_output(sim_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "run.toml", sim_url, strategy={"cycles": 3, "interval": 0.01})
    as_json = await arun_cli("run", "strategies/quoter.py", "--config", str(config), "--json",
                             "--param", "cycles=2")
    assert as_json.returncode == 0, explain(as_json)
    result = json_out(as_json)
    assert result["stopped_by"] == "finished" and result["exit_code"] == 0 and result["exit_clean"]
    assert result["result"]["quotes"] == 4  # --param cycles=2 overrode the config's 3
    assert result["exit_report"]["clean"] and result["on_exit"] == "cancel_all"

    # Keys from the environment variables the config names (here the second demo account).
    as_text = await arun_cli("run", "strategies/kill_drill.py", "--config", str(config),
                             "-p", "orders_per_symbol=2", env=DEMO2_ENV)
    assert as_text.returncode == 0, explain(as_text)
    assert "finished" in as_text.stdout and "exit code 0" in as_text.stdout
    assert "'cancelled': 6" in as_text.stdout and "'clean': True" in as_text.stdout
    assert "qfex_pub_demo2" in as_text.stderr  # the "connected" log line names the account
    assert await venue_open(sim_url) == ([], [])
    assert await venue_open(sim_url, CREDS2) == ([], [])


async def test_run_with_the_embedded_default_config() -> None:
    proc = await arun_cli("run", "strategies/rebalancer.py", "--json", "-p", "timeout=0.5")
    assert proc.returncode == 0, explain(proc)
    assert json_out(proc)["result"]["twap_id"]


async def test_a_guard_trip_exits_4_and_a_crashing_strategy_exits_1_after_its_exit_policy(
        sim_url: str, tmp_path: Path) -> None:
    crashing = tmp_path / "crashing.py"
    crashing.write_text(
        "async def run(oms, ctx):\n"
        "    await oms.place_order('AAPL-USD', 'BUY', '1', '150', client_order_id='before-crash')\n"
        "    raise ValueError('strategy bug')\n")
    guarded = write_config(tmp_path / "guarded.toml", sim_url, guard={"max_open_orders": 2},
                           strategy={"orders": 3})
    plain = write_config(tmp_path / "plain.toml", sim_url)
    results: dict[str, subprocess.CompletedProcess[str]] = {}

    async def run(name: str, *args: str, **kwargs: Any) -> None:
        results[name] = await arun_cli(*args, **kwargs)

    async with trio.open_nursery() as nursery:  # two accounts, so the two runs cannot interfere
        nursery.start_soon(run, "tripped", "run", RESTING, "--config", str(guarded), "--json")
        nursery.start_soon(partial(run, "crashed", "run", str(crashing), "--config", str(plain), "--json",
                                   env=DEMO2_ENV))
    tripped, crashed = results["tripped"], results["crashed"]
    assert tripped.returncode == 4, explain(tripped)
    result = json_out(tripped)
    assert result["stopped_by"] == "guard" and "max_open_orders 2" in result["guard_reason"]
    assert result["exit_code"] == 4 and result["exit_clean"]
    assert "kill-switch guard tripped" in tripped.stderr

    assert crashed.returncode == 1, explain(crashed)
    result = json_out(crashed)
    assert result["stopped_by"] == "error" and result["error"] == "ValueError: strategy bug"
    assert result["exit_report"]["clean"]
    assert [o["client_order_id"] for o in result["exit_report"]["cancelled_orders"]] == ["before-crash"]
    assert "Traceback" in crashed.stderr  # the crash is logged with its traceback
    assert await venue_open(sim_url) == ([], [])
    assert await venue_open(sim_url, CREDS2) == ([], [])


async def _run_until_resting(sim_url: str, config: Path, tmp_path: Path,
                             *params: str) -> subprocess.Popen[str]:
    """Start `qfex-oms run` on the resting strategy; return once its orders and TWAP rest on the venue."""
    proc = start_cli("run", RESTING, "--config", str(config), *params, log_dir=tmp_path)
    seen: list[tuple[int, int]] = []

    async def watch(oms: OrderManager) -> None:
        """Keep the latest snapshot's (orders, TWAPs) counts: the venue changes without telling us."""
        while True:
            snapshot = await oms.fetch_open_orders()
            seen.append((len(snapshot.orders), len(snapshot.twaps)))

    async with manager_at(sim_url) as oms, trio.open_nursery() as nursery:
        nursery.start_soon(watch, oms)
        await wait_until(lambda: proc.poll() is not None or (seen and seen[-1] == (3, 1)), within=15,
                         what="the strategy's orders to rest")
        nursery.cancel_scope.cancel()
    assert proc.poll() is None, (tmp_path / "cli.stderr").read_text()
    return proc


async def _stop(proc: subprocess.Popen[str], signum: int) -> int:
    proc.send_signal(signum)
    return await trio.to_thread.run_sync(lambda: proc.wait(timeout=30))


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
async def test_a_signal_mid_run_cancels_everything_with_on_exit_cancel_all(
        signum: int, sim_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", sim_url, runner={"on_exit": "cancel_all"},
                          strategy={"twap": True})
    proc = await _run_until_resting(sim_url, config, tmp_path, "--json")
    code = await _stop(proc, signum)
    stderr = (tmp_path / "cli.stderr").read_text()
    assert code == {signal.SIGTERM: 143, signal.SIGINT: 130}[signum], stderr
    result = json_out(subprocess.CompletedProcess([], code, (tmp_path / "cli.stdout").read_text(), stderr))
    assert result["stopped_by"] == signal.Signals(signum).name and result["exit_report"]["clean"]
    assert len(result["exit_report"]["cancelled_orders"]) == 3
    assert len(result["exit_report"]["cancelled_twaps"]) == 1
    assert await venue_open(sim_url) == ([], [])


async def test_sigterm_with_on_exit_leave_gtc_leaves_the_gtc_orders_resting(
        sim_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "l.toml", sim_url, runner={"on_exit": "leave_gtc"},
                          strategy={"twap": True})
    proc = await _run_until_resting(sim_url, config, tmp_path)
    assert await _stop(proc, signal.SIGTERM) == 143, (tmp_path / "cli.stderr").read_text()
    stdout = (tmp_path / "cli.stdout").read_text()
    assert "stopped by SIGTERM" in stdout and "leave_gtc" in stdout
    orders, twaps = await venue_open(sim_url)
    assert sorted(o.client_order_id for o in orders) == ["rest-0", "rest-1", "rest-2"]
    assert twaps == []  # a TWAP is never left trading unattended

    # The resting orders are real: the counterparty can still trade against them.
    async with manager_at(sim_url, CREDS2) as counter:
        taker = await counter.place_order("AAPL-USD", "SELL", "1", "150", time_in_force="IOC")
        await wait_until(lambda: taker.filled_quantity == 1, within=5, what="the taker's fill")
    proc2 = await arun_cli("kill", "--url", sim_url, "--yes")
    assert proc2.returncode == 0, explain(proc2)


POSITION = str(REPO / "tests" / "runner" / "position_strategy.py")


async def test_sigterm_with_on_exit_flatten_leaves_no_position_and_no_order(
        sim_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path / "f.toml", sim_url, runner={"on_exit": "flatten"})
    async with manager_at(sim_url, CREDS2) as counter, manager_at(sim_url) as mine:
        await counter.place_order("AAPL-USD", "SELL", "3", "200")  # the strategy's IOC takes this
        await counter.place_order("AAPL-USD", "BUY", "5", "199")  # the close's IOC sells into this
        proc = start_cli("run", POSITION, "--config", str(config), "--json", log_dir=tmp_path)
        # Our manager shares the account: it gets the position reports; the snapshot shows the bid.
        await wait_until(lambda: proc.poll() is not None or
                         ((p := mine.position("AAPL-USD")) is not None and p.quantity == 3),
                         within=15, what="the strategy's position")
        await wait_until(lambda: proc.poll() is not None or "position strategy ready" in
                         (tmp_path / "cli.stderr").read_text(), within=15, what="the strategy's bid")
        assert proc.poll() is None, (tmp_path / "cli.stderr").read_text()
        code = await _stop(proc, signal.SIGTERM)
        stderr = (tmp_path / "cli.stderr").read_text()
        assert code == 143, stderr
        result = json_out(subprocess.CompletedProcess([], code, (tmp_path / "cli.stdout").read_text(),
                                                      stderr))
        assert result["stopped_by"] == "SIGTERM" and result["on_exit"] == "flatten"
        assert result["exit_clean"] and result["positions_held"] == {}
        assert [o["client_order_id"] for o in result["exit_report"]["cancelled_orders"]] == ["rest"]
        await wait_until(lambda: (p := mine.position("AAPL-USD")) is not None and p.flat,
                         within=5, what="the flat position report")
    assert await venue_open(sim_url) == ([], [])
    async with manager_at(sim_url) as fresh:  # seeded at connect: what the exchange holds now
        assert fresh.position("AAPL-USD") is not None and fresh.position("AAPL-USD").flat  # type: ignore[union-attr]
