"""``qfex-oms check``: what it reports, and that it never trades (the simulator sees every request)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
from simkit import CREDS, CREDS2, manager
from waiting import wait_until

from qfex_oms.app.commands.check import run_check
from qfex_oms.app.config import Config
from qfex_oms.sim import Venue

SYMBOL = "AAPL-USD"
READ_ONLY = {"auth", "subscribe", "cancel_on_disconnect", "get_user_orders", "get_user_trades"}


async def _seed(venue: Venue) -> None:
    """An open order, a TWAP and a long position of 2 on the demo account."""
    async with manager(venue) as oms, manager(venue, CREDS2) as counter:
        await oms.place_order(SYMBOL, "BUY", "1", "100", client_order_id="resting")
        await oms.place_twap(SYMBOL, "BUY", total_quantity="4", num_orders=4, order_interval_secs=3600,
                             client_twap_id="slow-twap")
        await counter.place_order(SYMBOL, "SELL", "2", "150")
        await oms.place_order(SYMBOL, "BUY", "2", "150", time_in_force="IOC")
        await wait_until(lambda: (p := oms.position(SYMBOL)) is not None and p.quantity == 2, what="position")


async def test_check_reports_the_account_and_sends_no_order_or_cancel(venue: Venue) -> None:
    await _seed(venue)
    seen: Counter[str] = Counter()  # every frame any client sends from now on (only the check runs)
    server = venue._server
    on_message = server.on_message

    def record(conn: Any, raw: str | bytes) -> None:
        seen[orjson.loads(raw).get("type")] += 1
        on_message(conn, raw)

    server.on_message = record  # type: ignore[method-assign]
    config = Config(None, venue.url, manager={"rest_url": venue.rest_url, "cancel_on_disconnect": True})
    report = await run_check(config)

    assert seen["auth"] == 1 and seen["get_user_orders"] >= 5
    assert set(seen) <= READ_ONLY, seen  # no add_order, cancel_*, modify_order, add_twap, close_position
    assert report["authenticated"] and report["account"] == CREDS.public_key
    assert [o["client_order_id"] for o in report["orders"] if o["twap_id"] is None] == ["resting"]
    assert [t["client_twap_id"] for t in report["twaps"]] == ["slow-twap"]
    assert [(p["symbol"], p["quantity"]) for p in report["positions"]] == [(SYMBOL, "2")]
    assert Decimal(report["balance"]["available"]) > 0
    latency = report["latency_ms"]
    assert len(latency["samples"]) == 5 and 0 < latency["min"] <= latency["median"]
    # Same machine, same clock: the measured skew is within the measurement's own resolution.
    clock = report["clock"]
    assert clock["source"].startswith("Date header of http://127.0.0.1")
    assert abs(clock["skew_seconds"]) <= clock["resolution_seconds"] + 0.01
    assert report["warnings"] == []
    # Nothing changed on the exchange.
    assert [o.client_order_id for o in venue.open_orders(CREDS.public_key) if not o.twap_id] == ["resting"]


async def test_without_a_rest_api_the_skew_is_not_measured_and_says_why(venue: Venue) -> None:
    report = await run_check(Config(None, venue.url))
    assert report["clock"]["skew_seconds"] is None
    assert "no REST API known" in report["clock"]["reason"]


def test_the_command_runs_read_only_from_any_directory(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
    proc = subprocess.run([sys.executable, "-m", "qfex_oms", "check", "--json"], capture_output=True,
                          text=True, cwd=tmp_path, env=env, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    assert answer["authenticated"] and answer["orders"] == [] and answer["positions"] == []
    text = subprocess.run([sys.executable, "-m", "qfex_oms", "check"], capture_output=True, text=True,
                          cwd=tmp_path, env={**env, "COLUMNS": "200", "NO_COLOR": "1"}, timeout=60,
                          check=False)
    assert text.returncode == 0 and "OK: account qfex_pub_demo authenticated" in text.stdout, text.stderr
    assert "round trip (get_user_orders)" in text.stdout and "clock skew" in text.stdout
