"""Strategies that live through reconnects: ``qfex-oms run`` keeps a strategy running across a
simulator stopped and started again on the same port, and it trades on the new one.

The simulator runs in the test process (``open_simulator(port)``, closed and opened again on that
port); the runner is a subprocess. Each simulator records the ``add_order`` frames it receives, so
"places orders after the restart" is what the second simulator saw.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import trio
from ports import reserved_port
from waiting import wait_until

from qfex_oms.sim import Venue, open_simulator

REPO = Path(__file__).resolve().parents[2]
HANG_GUARD = 60.0  # a condition that never comes fails the test instead of hanging it

# No try/except: without the runner's pause, the first NotConnected would end it.
NAIVE = '''
import trio

async def run(oms, ctx):
    cycle = 0
    while True:
        order = await oms.place_order("AAPL-USD", "BUY", "1", "100", client_order_id=f"naive-{cycle}")
        await trio.sleep(0.05)
        if order.is_open:
            await oms.cancel(order)
        cycle += 1
'''



def record_orders(venue: Venue) -> Counter[str]:
    """How many frames of each type the venue receives from now on."""
    seen: Counter[str] = Counter()
    server = venue._server
    on_message = server.on_message

    def record(conn: Any, raw: str | bytes) -> None:
        seen[orjson.loads(raw).get("type")] += 1
        on_message(conn, raw)

    server.on_message = record  # type: ignore[method-assign]
    return seen


def start_run(tmp_path: Path, *argv: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
    env.update(NO_COLOR="1", COLUMNS="200")
    with (tmp_path / "stderr").open("w") as err:
        return subprocess.Popen([sys.executable, "-m", "qfex_oms", "run", *argv, "--json"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=err, text=True, env=env)


async def finish(proc: subprocess.Popen[str], sig: int | None = signal.SIGINT) -> tuple[int, Any]:
    if sig is not None and proc.poll() is None:
        proc.send_signal(sig)
    out, _ = await trio.to_thread.run_sync(lambda: proc.communicate(timeout=HANG_GUARD))
    return proc.returncode, json.loads(out)


def write_config(path: Path, port: int, *, max_disconnect: float | None, pause: bool = False) -> Path:
    guard = "" if max_disconnect is None else f"max_disconnect_seconds = {max_disconnect}\n"
    path.write_text(f'[exchange]\nurl = "ws://127.0.0.1:{port}"\n\n'
                    "[manager]\nrequest_timeout = 5.0\nkill_timeout = 2.0\n\n"
                    f"[guard]\n{guard}\n"
                    f"[runner]\npause_while_disconnected = {'true' if pause else 'false'}\n"
                    "shutdown_timeout = 10.0\n")
    return path


async def survive_restart(port: int, start: Callable[[], subprocess.Popen[str]],
                          stderr: Path) -> tuple[int, Any]:
    """Start the runner on a simulator (once it listens: a runner that cannot connect at first
    exits), let it trade, stop the simulator, start another on the same port, wait until the runner
    trades there too, then stop it with SIGINT (its exit policy runs on the second one)."""
    proc: subprocess.Popen[str] | None = None

    def alive() -> str:
        assert proc is not None
        return f"runner exit {proc.poll()}; stderr:\n{stderr.read_text()[-3000:]}"

    try:
        async with open_simulator(port, time_scale=1000.0) as first:
            before = record_orders(first)
            proc = start()
            await wait_until(lambda: before["add_order"] >= 3 or proc.poll() is not None, HANG_GUARD, alive)
            assert proc.poll() is None, alive()
        # The simulator is gone; a new one (empty: the old orders went with it) on the same port.
        async with open_simulator(port, time_scale=1000.0) as second:
            after = record_orders(second)
            await wait_until(lambda: after["add_order"] >= 3 or proc.poll() is not None, HANG_GUARD, alive)
            assert proc.poll() is None, alive()
            return await finish(proc)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_the_quoter_survives_a_simulator_restart(tmp_path: Path) -> None:
    port = reserved_port()
    code, result = await survive_restart(port, lambda: start_run(
        tmp_path, "strategies/quoter.py", "--url", f"ws://127.0.0.1:{port}",
        "-p", "cycles=1000000", "-p", "interval=0.05"), tmp_path / "stderr")
    assert code == 130, result
    assert result["stopped_by"] == "SIGINT" and result["exit_clean"]


async def test_pause_while_disconnected_keeps_a_naive_strategy_alive(tmp_path: Path) -> None:
    port = reserved_port()
    (tmp_path / "naive.py").write_text(NAIVE)
    config = write_config(tmp_path / "c.toml", port, max_disconnect=30)
    code, result = await survive_restart(port, lambda: start_run(
        tmp_path, str(tmp_path / "naive.py"), "--pause-while-disconnected", "--config", str(config)),
        tmp_path / "stderr")
    assert code == 130, result
    assert result["stopped_by"] == "SIGINT" and result["error"] is None


async def test_the_pause_ends_when_the_guard_disconnect_limit_trips(tmp_path: Path) -> None:
    port = reserved_port()
    (tmp_path / "naive.py").write_text(NAIVE)
    config = write_config(tmp_path / "c.toml", port, max_disconnect=1, pause=True)
    proc: subprocess.Popen[str] | None = None
    try:
        async with open_simulator(port, time_scale=1000.0) as venue:
            seen = record_orders(venue)
            proc = start_run(tmp_path, str(tmp_path / "naive.py"), "--config", str(config))
            await wait_until(lambda: seen["add_order"] >= 2 or proc.poll() is not None, HANG_GUARD)
        # Never back: the paused strategy is released by the guard, not left waiting forever.
        code, result = await finish(proc, None)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 4, result
    assert result["stopped_by"] == "guard" and "max_disconnect_seconds 1" in result["guard_reason"]


def test_a_pause_without_a_disconnect_limit_is_refused(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", reserved_port(), max_disconnect=None, pause=True)
    proc = subprocess.run([sys.executable, "-m", "qfex_oms", "run", "strategies/quoter.py", "--config",
                           str(config)], capture_output=True, text=True, cwd=REPO, timeout=HANG_GUARD,
                          check=False)
    assert proc.returncode == 2
    assert (f"{config}: runner.pause_while_disconnected needs guard.max_disconnect_seconds"
            in proc.stderr)
