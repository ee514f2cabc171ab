"""The package logs through the standard ``logging`` module: silent when embedded unless the host
configures logging; the command logs to stderr (or a file) only, so stdout is its output alone."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SECRET = "qfex_secret_demo"

EMBEDDED = textwrap.dedent("""
    import logging, sys
    import trio
    from qfex_oms import Credentials, QfexOmsError, open_order_manager
    from qfex_oms.sim import open_simulator

    if sys.argv[1] == "host":  # the host application decides: INFO and up, on its stderr
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="HOST %(name)s %(message)s")

    async def main():
        async with open_simulator(port=0, time_scale=1000) as venue, \\
                open_order_manager(venue.url, Credentials("qfex_pub_demo", "qfex_secret_demo")) as oms:
            order = await oms.place_order("AAPL-USD", "BUY", "1", "100")
            await oms.cancel(order)
            try:
                await oms.place_order("NOPE-USD", "BUY", "1", "100")  # refused
            except QfexOmsError:
                pass

    trio.run(main)
""")


def _python(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=60, check=False)


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
    return subprocess.run([sys.executable, "-m", "qfex_oms", *args], capture_output=True, text=True, cwd=cwd,
                          env={**base, "NO_COLOR": "1", **env}, timeout=60, check=False)


def _explain(proc: subprocess.CompletedProcess[str]) -> str:
    return f"exit {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"


def test_embedded_the_package_prints_nothing_unless_the_host_configures_logging(tmp_path: Path) -> None:
    script = tmp_path / "host.py"
    script.write_text(EMBEDDED)
    silent = _python(str(script), "silent", cwd=tmp_path)
    assert (silent.returncode, silent.stdout, silent.stderr) == (0, "", ""), _explain(silent)

    host = _python(str(script), "host", cwd=tmp_path)
    assert host.returncode == 0 and host.stdout == "", _explain(host)
    lines = host.stderr.splitlines()
    # The host's format, the package's logger names, the event's fields in the message.
    assert any(line.startswith("HOST qfex_oms.client.") for line in lines), host.stderr
    assert any(line.startswith("HOST qfex_oms.sim") for line in lines), host.stderr
    assert not any(" DEBUG " in line for line in lines)
    assert SECRET not in host.stderr


def _write_config(path: Path, journal: Path) -> Path:
    path.write_text(f'[exchange]\nurl = "embedded"\n[manager]\njournal = "{journal}"\n')
    return path


def _utc(stamp: str) -> dt.datetime:
    assert stamp.endswith("Z"), stamp
    moment = dt.datetime.fromisoformat(stamp)
    assert moment.utcoffset() == dt.timedelta(0)
    return moment


def test_json_output_parses_and_the_log_file_is_json_with_utc_times_and_no_secret(tmp_path: Path) -> None:
    journal, log_file = tmp_path / "j.sqlite", tmp_path / "oms.jsonl"
    config = _write_config(tmp_path / "c.toml", journal)
    keys = {"QFEX_PUBLIC_KEY": "qfex_pub_demo", "QFEX_SECRET_KEY": SECRET}
    run = _cli("--log-level", "debug", "--log-file", str(log_file), "run", "strategies/quoter.py",
               "--config", str(config), "-p", "cycles=2", "--json", cwd=tmp_path, **keys)
    assert run.returncode == 0, _explain(run)
    assert json.loads(run.stdout)["stopped_by"] == "finished"
    assert "level='debug'" in run.stderr  # the log lines went to stderr, key=value off a terminal

    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert len(records) > 20
    assert {"debug", "info"} <= {r["level"] for r in records}
    assert {"qfex_oms.orders", "qfex_oms.sim"} <= {r["logger"] for r in records}  # the simulator too
    for record in records:
        _utc(record["timestamp"])
    assert SECRET not in log_file.read_text() + run.stderr + run.stdout
    assert any(r.get("event") == "order updated" and r.get("client_order_id") for r in records)

    for args in (("orders", "--journal", str(journal), "--json"),
                 ("--log-level", "debug", "orders", "--journal", str(journal), "--json")):
        shown = _cli(*args, cwd=tmp_path)
        assert shown.returncode == 0, _explain(shown)
        with (tmp_path / "out.json").open("w+") as out:
            out.write(shown.stdout)
            out.seek(0)
            assert json.load(out)["journal"].endswith("j.sqlite")


@pytest.mark.parametrize("quiet", ["-q", "--quiet"])
def test_quiet_leaves_only_the_output(tmp_path: Path, quiet: str) -> None:
    run = _cli(quiet, "run", "strategies/quoter.py", "-p", "cycles=1", "--json", cwd=tmp_path)
    assert run.returncode == 0, _explain(run)
    assert run.stderr == ""
    json.loads(run.stdout)


def test_json_log_lines_on_stderr_with_log_format_json(tmp_path: Path) -> None:
    run = _cli("--log-format", "json", "--log-level", "info", "run", "strategies/quoter.py", "-p", "cycles=1",
               cwd=tmp_path)
    assert run.returncode == 0, _explain(run)
    lines = [json.loads(line) for line in run.stderr.splitlines()]
    assert lines and all(_utc(line["timestamp"]) and line["level"] in ("info", "warning") for line in lines)
