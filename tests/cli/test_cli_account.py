"""`qfex-oms positions / balance / close / leverage` as real subprocesses against a simulator process.

The test's own managers (``simkit.manager_at``) make the positions: a counterparty account rests
liquidity and the test's account takes it. Their reports of the same account are what the CLI's
answers are compared with.
"""

from __future__ import annotations

import os
import pty
import subprocess
from decimal import Decimal
from typing import Any

import trio
from click.testing import CliRunner
from clikit import arun_all, arun_cli, explain, json_out, run_cli
from simkit import CREDS2, manager_at
from waiting import wait_until

from qfex_oms import OrderManager
from qfex_oms.app.cli import main

S = "AAPL-USD"


async def _long(oms: OrderManager, counter: OrderManager, quantity: str, price: str = "200") -> None:
    """Our account buys ``quantity`` from the counterparty's resting offer; wait for the report."""
    known = oms.position(S)
    before = Decimal(0) if known is None else known.quantity
    await counter.place_order(S, "SELL", quantity, price)
    await oms.place_order(S, "BUY", quantity, price, time_in_force="IOC")
    target = before + Decimal(quantity)
    await wait_until(lambda: (p := oms.position(S)) is not None and p.quantity == target,
                     within=5, what=f"the position to be reported as {target}")


def test_help_lists_the_account_commands() -> None:
    for command in ("positions", "balance", "close", "leverage"):
        sub = CliRunner().invoke(main, [command, "--help"])
        assert sub.exit_code == 0 and "--json" in sub.output and "--url" in sub.output, sub.output
    assert "--yes" in CliRunner().invoke(main, ["close", "--help"]).output


async def test_positions_and_balance_as_the_exchange_reports_them(sim_url: str) -> None:
    async with manager_at(sim_url) as oms, manager_at(sim_url, CREDS2) as counter:
        await _long(oms, counter, "3", "200")
        await counter.place_order("TSLA-USD", "BUY", "2", "300")
        await oms.place_order("TSLA-USD", "SELL", "2", "300", time_in_force="IOC")
        await wait_until(lambda: (p := oms.position("TSLA-USD")) is not None and p.quantity == -2,
                         within=5, what="the short position")
        await wait_until(lambda: oms.balance() is not None, within=5, what="a balance report")
        as_json, flat_too, table, balance, balance_table = await arun_all(
            ["positions", "--url", sim_url, "--json"], ["positions", "--url", sim_url, "--json", "--all"],
            ["positions", "--url", sim_url], ["balance", "--url", sim_url, "--json"],
            ["balance", "--url", sim_url])
        for proc in (as_json, flat_too, table, balance, balance_table):
            assert proc.returncode == 0, explain(proc)
        rows = {r["symbol"]: r for r in json_out(as_json)["positions"]}
        assert set(rows) == {S, "TSLA-USD"} and json_out(as_json)["account"] == "qfex_pub_demo"
        mine = oms.position(S)
        assert mine is not None
        assert rows[S]["quantity"] == "3" and rows[S]["side"] == "LONG"
        assert Decimal(rows[S]["average_price"]) == mine.average_price == 200
        assert Decimal(rows[S]["margin"]) == mine.margin
        assert rows["TSLA-USD"]["quantity"] == "-2" and rows["TSLA-USD"]["side"] == "SHORT"
        assert "US500-USD" in {r["symbol"] for r in json_out(flat_too)["positions"]}  # flat, --all only
        for text in ("2 open positions", S, "LONG", "SHORT", "-2"):
            assert text in table.stdout, text
        reported = json_out(balance)["balance"]
        theirs = oms.balance()
        assert theirs is not None
        assert Decimal(reported["deposit"]) == theirs.deposit
        assert Decimal(reported["position_margin"]) > 0
        assert "available" in balance_table.stdout and "position_margin" in balance_table.stdout


def _close_on_a_terminal(url: str, answer: str) -> subprocess.CompletedProcess[str]:
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        return run_cli("close", S, "--url", url, stdin=slave)
    finally:
        os.close(slave)
        os.close(master)


async def test_close_confirms_then_flattens_and_says_when_it_could_not(sim_url: str) -> None:
    async with manager_at(sim_url) as oms, manager_at(sim_url, CREDS2) as counter:
        await _long(oms, counter, "3", "200")
        refused = await arun_cli("close", S, "--url", sim_url)  # stdin is /dev/null, no --yes
        assert refused.returncode == 2 and "nothing was sent" in refused.stderr, explain(refused)
        declined = await trio.to_thread.run_sync(_close_on_a_terminal, sim_url, "n\n")
        assert declined.returncode == 2 and "Close the whole AAPL-USD position" in declined.stderr
        await oms.fetch_open_orders()  # a round trip: a close would have been reported before it
        assert oms.position(S).quantity == 3  # type: ignore[union-attr]

        # Only 1 bid near the mark: the close's IOC fills 1 of 3, and the CLI says what is left.
        await counter.place_order(S, "BUY", "1", "199")
        partial = await arun_cli("close", S, "--url", sim_url, "--yes", "--json")
        assert partial.returncode == 4, explain(partial)
        answer: dict[str, Any] = json_out(partial)
        assert answer["position_before"] == "3" and not answer["flat"] and answer["exit_code"] == 4
        assert answer["order"]["side"] == "SELL" and answer["order"]["filled"] == "1"
        await wait_until(lambda: oms.position(S).quantity == 2, within=5,  # type: ignore[union-attr]
                         what="the partial close's report")

        await counter.place_order(S, "BUY", "5", "199")
        done = await arun_cli("close", S, "--url", sim_url, "-y")
        assert done.returncode == 0, explain(done)
        assert "position 2 -> flat" in done.stdout
        await wait_until(lambda: oms.position(S).flat, within=5, what="the flat report")  # type: ignore[union-attr]

        again = await arun_cli("close", S, "--url", sim_url, "--yes", "--json")
        assert again.returncode == 5, explain(again)
        assert json_out(again)["order"] is None and json_out(again)["exit_code"] == 5


async def test_leverage_show_one_set_and_refused(sim_url: str) -> None:
    every, one, set_ten, refused, unknown, zero = await arun_all(
        ["leverage", "--url", sim_url, "--json"], ["leverage", S, "--url", sim_url],
        ["leverage", "TSLA-USD", "10", "--url", sim_url, "--json"],
        ["leverage", S, "7", "--url", sim_url, "--json"], ["leverage", "NOPE-USD", "--url", sim_url],
        ["leverage", S, "0", "--url", sim_url])
    for proc in (every, one, set_ten):
        assert proc.returncode == 0, explain(proc)
    rows = {r["symbol"]: r for r in json_out(every)["leverage"]}
    assert {S, "TSLA-USD", "US500-USD"} <= set(rows) and rows[S]["leverage"] == "20"
    assert S in one.stdout and "initial_margin" in one.stdout and "TSLA-USD" not in one.stdout
    assert json_out(set_ten)["set"] and json_out(set_ten)["leverage"][0]["leverage"] == "10"
    assert refused.returncode == 2, explain(refused)
    assert "leverage 7 on AAPL-USD refused" in refused.stderr and "allowed: 1, 2" in refused.stderr
    assert json_out(refused)["exit_code"] == 2
    assert unknown.returncode == 2 and "unknown symbol 'NOPE-USD'" in unknown.stderr, explain(unknown)
    assert zero.returncode == 2, explain(zero)
    async with manager_at(sim_url) as oms:
        assert (await oms.leverage())["TSLA-USD"].leverage == "10"
