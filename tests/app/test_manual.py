"""``qfex-oms place``, ``modify`` and ``twap`` as subprocesses against a simulator in the test process.

The simulator records every frame any client sends, so "a bad argument fails before any frame" is
asserted on what the venue saw, not on what the command says.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest
import trio
from simkit import CREDS

from qfex_oms.sim import Venue

REPO = Path(__file__).resolve().parents[2]
SYMBOL = "AAPL-USD"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
    env.update(NO_COLOR="1", COLUMNS="200")
    return env


async def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    run = partial(subprocess.run, [sys.executable, "-m", "qfex_oms", *argv], capture_output=True, text=True,
                  timeout=60, env=_env(), cwd=REPO, check=False)
    return await trio.to_thread.run_sync(run)


def frames_seen(venue: Venue) -> Counter[str]:
    """Every frame type any client sends from now on."""
    seen: Counter[str] = Counter()
    server = venue._server
    on_message = server.on_message

    def record(conn: Any, raw: str | bytes) -> None:
        seen[orjson.loads(raw).get("type")] += 1
        on_message(conn, raw)

    server.on_message = record  # type: ignore[method-assign]
    return seen


def answer(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout.strip(), proc.stderr
    return orjson.loads(proc.stdout)


async def test_place_prints_the_order_and_it_rests_after_the_command(venue: Venue) -> None:
    proc = await cli("place", SYMBOL, "buy", "2", "140", "--client-order-id", "by-hand", "--url", venue.url,
                     "--json")
    assert proc.returncode == 0, proc.stderr
    order = answer(proc)["order"]
    assert (order["state"], order["side"], order["quantity"], order["price"]) == ("OPEN", "BUY", "2", "140")
    resting = [o for o in venue.open_orders(CREDS.public_key) if o.client_order_id == "by-hand"]
    assert len(resting) == 1 and resting[0].order_id == order["order_id"]

    table = await cli("place", SYMBOL, "SELL", "1", "160", "--type", "ALO", "--url", venue.url)
    assert table.returncode == 0, table.stderr
    assert "order OPEN" in table.stdout and "160" in table.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["AAPL-USD", "BUY", "0", "140"], "quantity must be greater than zero"),
    (["AAPL-USD", "BUY", "1"], "LIMIT orders need a price"),
    (["AAPL-USD", "BUY", "1", "140", "--type", "MARKET"], "MARKET orders take no price"),
    (["AAPL-USD", "BUY", "1", "140", "--type", "ALO", "--tif", "IOC"], "ALO orders take time_in_force GTC"),
    (["AAPL-USD", "BUY", "1", "abc"], "price"),
    (["AAPL-USD", "BUY", "1", "140", "--client-order-id", "has space"], "client_order_id must be"),
])
async def test_a_bad_argument_exits_2_and_sends_nothing(venue: Venue, argv: list[str], message: str) -> None:
    seen = frames_seen(venue)
    proc = await cli("place", *argv, "--url", venue.url, "--json")
    assert proc.returncode == 2, proc.stderr
    assert message in answer(proc)["error"]
    assert seen == Counter()  # not even a connection: the arguments were refused first


async def test_a_rejected_order_exits_1_with_qfex_status(venue: Venue) -> None:
    proc = await cli("place", SYMBOL, "BUY", "1", "140.00001", "--url", venue.url, "--json")
    assert proc.returncode == 1, proc.stderr
    out = answer(proc)
    assert out["order"]["state"] == "REJECTED"
    assert out["error"] == f"REJECTED: {out['order']['last_status']}" and "TICK" in out["error"]


async def test_modify_changes_an_order_placed_by_another_process(venue: Venue) -> None:
    placed = answer(await cli("place", SYMBOL, "BUY", "1", "130", "--client-order-id", "to-move",
                              "--url", venue.url, "--json"))["order"]
    proc = await cli("modify", "--symbol", SYMBOL, "--order-id", placed["order_id"], "--price", "131",
                     "--quantity", "3", "--url", venue.url, "--json")
    assert proc.returncode == 0, proc.stderr
    order = answer(proc)["order"]
    assert (order["price"], order["quantity"], order["last_status"]) == ("131", "3", "MODIFIED")
    [resting] = [o for o in venue.open_orders(CREDS.public_key) if o.client_order_id == "to-move"]
    assert (resting.price, resting.quantity) == (Decimal(131), Decimal(3))

    by_client = await cli("modify", "--symbol", SYMBOL, "--client-order-id", "to-move", "--price", "132",
                          "--url", venue.url, "--json")
    assert by_client.returncode == 0 and answer(by_client)["order"]["price"] == "132"

    missing = await cli("modify", "--symbol", SYMBOL, "--order-id", "no-such-id", "--price", "1",
                        "--url", venue.url, "--json")
    assert missing.returncode == 5 and "no open order" in answer(missing)["error"]


async def test_modify_without_a_change_is_refused_before_connecting(venue: Venue) -> None:
    seen = frames_seen(venue)
    proc = await cli("modify", "--symbol", SYMBOL, "--order-id", "x", "--url", venue.url, "--json")
    assert proc.returncode == 2 and "--price, --quantity, or both" in answer(proc)["error"]
    assert seen == Counter()


async def test_twap_starts_and_keeps_running(venue: Venue) -> None:
    proc = await cli("twap", SYMBOL, "BUY", "4", "-n", "4", "--interval", "3600", "--client-twap-id",
                     "slow", "--url", venue.url, "--json")
    assert proc.returncode == 0, proc.stderr
    twap = answer(proc)["twap"]
    assert (twap["state"], twap["total_quantity"], twap["num_orders"]) == ("ACTIVE", "4", 4)

    seen = frames_seen(venue)
    bad = await cli("twap", SYMBOL, "BUY", "4", "-n", "1", "--interval", "3600", "--url", venue.url,
                    "--json")
    assert bad.returncode == 2 and "num_orders must be an integer >= 2" in answer(bad)["error"]
    assert seen == Counter()
