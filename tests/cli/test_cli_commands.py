"""`qfex-oms orders / cancel / kill` as real subprocesses against a simulator process."""

from __future__ import annotations

import os
import pty
import subprocess
from pathlib import Path

import trio
from click.testing import CliRunner
from clikit import (
    arun_all,
    arun_cli,
    cli_env,
    explain,
    json_out,
    run_cli,
    venue_open,
    write_config,
)
from ports import reserved_port
from simkit import CREDS2, manager_at
from waiting import wait_until

from qfex_oms import OrderState, open_order_manager
from qfex_oms.app.cli import main
from qfex_oms.sim import open_simulator

SYMBOL = "AAPL-USD"


def test_help_documents_every_command_and_the_exit_codes() -> None:
    proc = run_cli("--help")
    assert proc.returncode == 0, explain(proc)
    for command in ("demo", "sim", "run", "orders", "cancel", "kill"):
        assert command in proc.stdout
    for code in ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "130", "143"):
        assert f"\n    {code}" in proc.stdout, code
    for command in ("orders", "cancel", "kill", "run"):  # in-process: only the text is checked here
        sub = CliRunner().invoke(main, [command, "--help"])
        assert sub.exit_code == 0 and "--config" in sub.output and "--json" in sub.output, sub.output
        if command != "run":
            assert "--url" in sub.output


async def test_orders_lists_open_orders_and_twaps_as_a_table_and_as_json(sim_url: str) -> None:
    async with manager_at(sim_url) as oms:
        bid = await oms.place_order(SYMBOL, "BUY", "2", "150.5", client_order_id="cli-bid")
        ask = await oms.place_order("TSLA-USD", "SELL", "1", "300", client_order_id="cli-ask")
        twap = await oms.place_twap(SYMBOL, "BUY", total_quantity="4", num_orders=4,
                                    order_interval_secs=600, client_twap_id="cli-twap")

        table = await arun_cli("orders", "--url", sim_url)
        assert table.returncode == 0, explain(table)
        for text in ("symbol", "client_order_id", "cli-bid", "cli-ask", bid.order_id, ask.order_id,
                     "150.5", "cli-twap", twap.twap_id, "2 open orders", "1 open TWAPs"):
            assert text in table.stdout, text

        proc = await arun_cli("orders", "--url", sim_url, "--json")
        assert proc.returncode == 0, explain(proc)
        book = json_out(proc)
        assert book["account"] == "qfex_pub_demo" and book["url"] == sim_url
        rows = {row["client_order_id"]: row for row in book["orders"]}
        assert set(rows) == {"cli-bid", "cli-ask"}
        assert rows["cli-bid"] == {**rows["cli-bid"], "symbol": SYMBOL, "side": "BUY", "quantity": "2",
                                   "price": "150.5", "filled": "0", "state": "OPEN",
                                   "order_id": bid.order_id}
        assert [t["client_twap_id"] for t in book["twaps"]] == ["cli-twap"]
        assert book["twaps"][0]["twap_id"] == twap.twap_id

        # --all adds closed orders the snapshot revealed: the TWAP's first child filled nothing and
        # ended; a recent fill shows up as a FILLED order.
        async with manager_at(sim_url, CREDS2) as counter:
            await counter.place_order("TSLA-USD", "BUY", "1", "300", time_in_force="IOC")
        proc = await arun_cli("orders", "--url", sim_url, "--json", "--all")
        assert proc.returncode == 0, explain(proc)
        states = {row["client_order_id"]: row["state"] for row in json_out(proc)["orders"]}
        assert states["cli-ask"] == "FILLED" and states["cli-bid"] == "OPEN"
        await oms.cancel_all()


async def test_cancel_in_each_of_the_four_modes(sim_url: str) -> None:
    async with manager_at(sim_url) as oms:
        one = await oms.place_order(SYMBOL, "BUY", "1", "150", client_order_id="by-id")
        group = [await oms.place_order(SYMBOL, "BUY", "1", p, client_order_id="group") for p in (149, 148)]
        twap_a = await oms.place_twap(SYMBOL, "BUY", total_quantity="4", num_orders=4,
                                      order_interval_secs=600, client_twap_id="twap-a")
        # BUY too: a SELL TWAP's market child would trade against our own bids (self-trade prevention).
        await oms.place_twap(SYMBOL, "BUY", total_quantity="4", num_orders=4, order_interval_secs=600,
                             client_twap_id="twap-b")

        proc = await arun_cli("cancel", "--url", sim_url, "--symbol", SYMBOL, "--order-id", one.order_id,
                              "--json")
        assert proc.returncode == 0, explain(proc)
        answer = json_out(proc)
        assert answer["status"] == "CANCELLED" and answer["mode"] == "order_id" and answer["exit_code"] == 0
        assert [o["order_id"] for o in answer["cancelled"]] == [one.order_id]

        proc = await arun_cli("cancel", "--url", sim_url, "--symbol", SYMBOL, "--client-order-id", "group",
                              "--json")
        assert proc.returncode == 0, explain(proc)
        answer = json_out(proc)
        assert answer["mode"] == "client_order_id"
        assert sorted(o["order_id"] for o in answer["cancelled"]) == sorted(o.order_id for o in group)

        proc = await arun_cli("cancel", "--url", sim_url, "--symbol", SYMBOL, "--twap-id", twap_a.twap_id,
                              "--json")
        assert proc.returncode == 0, explain(proc)
        answer = json_out(proc)
        assert answer["status"] == "CANCELLED" and answer["twap"]["twap_id"] == twap_a.twap_id

        table = await arun_cli("cancel", "--url", sim_url, "--symbol", SYMBOL, "--client-twap-id", "twap-b")
        assert table.returncode == 0, explain(table)
        assert "CANCELLED" in table.stdout and "twap-b" in table.stdout

        # The test's own manager saw every one of them end.
        await wait_until(lambda: all(o.state is OrderState.CANCELLED for o in (one, *group)),
                         within=5, what="the test's manager to see every cancel")
        assert await venue_open(sim_url) == ([], [])


async def test_cancel_of_nothing_exits_5(sim_url: str) -> None:
    base = ["cancel", "--url", sim_url, "--symbol", SYMBOL]
    by_id, by_client, empty = await arun_all(
        [*base, "--order-id", "00000000-0000-4000-8000-00000000dead", "--json"],
        [*base, "--client-order-id", "nobody"],
        [*base, "--order-id", ""],  # InvalidArgument from the manager, after connecting: still 2
    )
    assert by_id.returncode == 5, explain(by_id)
    assert json_out(by_id)["status"] == "NO_SUCH_ORDER" and json_out(by_id)["exit_code"] == 5
    assert by_client.returncode == 5, explain(by_client)
    assert "NO_SUCH_ORDER" in by_client.stdout
    assert empty.returncode == 2 and "non-empty" in empty.stderr, explain(empty)


async def test_kill_with_yes_cancels_everything_and_reports_json(sim_url: str) -> None:
    async with manager_at(sim_url) as oms:
        placed = [await oms.place_order(sym, "BUY", "1", price)
                  for sym, price in (("AAPL-USD", 150), ("AAPL-USD", 149), ("TSLA-USD", 100),
                                     ("US500-USD", 4000))]
        await oms.place_twap(SYMBOL, "BUY", total_quantity="4", num_orders=4, order_interval_secs=600,
                             client_twap_id="kill-twap")
        proc = await arun_cli("kill", "--url", sim_url, "--yes", "--json")
        assert proc.returncode == 0, explain(proc)
        report = json_out(proc)
        assert report["clean"] and report["snapshot_checked"] and report["exit_code"] == 0
        assert sorted(o["order_id"] for o in report["cancelled_orders"]) == sorted(o.order_id for o in placed)
        assert [t["client_twap_id"] for t in report["cancelled_twaps"]] == ["kill-twap"]
        assert report["still_open"] == [] and report["still_open_twaps"] == []
        assert await venue_open(sim_url) == ([], [])

        await oms.place_order(SYMBOL, "BUY", "1", "150")  # the test's manager is not halted
        table = await arun_cli("kill", "--url", sim_url, "-y")
        assert table.returncode == 0, explain(table)
        assert "1 orders and 0 TWAPs cancelled" in table.stdout and "clean" in table.stdout


def _kill_on_a_terminal(url: str, answer: str) -> subprocess.CompletedProcess[str]:
    master, slave = pty.openpty()
    try:
        os.write(master, answer.encode())
        return run_cli("kill", "--url", url, stdin=slave)
    finally:
        os.close(slave)
        os.close(master)


async def test_kill_confirms_on_a_terminal_and_refuses_without_one(sim_url: str) -> None:
    async with manager_at(sim_url) as oms:
        order = await oms.place_order(SYMBOL, "BUY", "1", "150")
        proc = await arun_cli("kill", "--url", sim_url)  # stdin is /dev/null, no --yes
        assert proc.returncode == 2, explain(proc)
        assert "--yes" in proc.stderr and "nothing was sent" in proc.stderr

        proc = await trio.to_thread.run_sync(_kill_on_a_terminal, sim_url, "n\n")
        assert proc.returncode == 2, explain(proc)
        assert "Cancel EVERY order" in proc.stderr and "qfex_pub_demo" in proc.stderr
        assert "nothing was sent" in proc.stderr
        # The CLI has exited. A round trip on our own connection is the barrier: a cancel the venue
        # had made would have reached us before this answer, on the same ordered stream.
        await oms.fetch_open_orders()
        assert order.state is OrderState.OPEN
        assert len((await venue_open(sim_url))[0]) == 1

        proc = await trio.to_thread.run_sync(_kill_on_a_terminal, sim_url, "y\n")
        assert proc.returncode == 0, explain(proc)
        await wait_until(lambda: order.state is OrderState.CANCELLED, within=5,
                         what="the kill to reach our manager")
        assert await venue_open(sim_url) == ([], [])


async def test_connection_and_authentication_failures_exit_3(sim_url: str) -> None:
    nobody = f"ws://127.0.0.1:{reserved_port()}"
    wrong = cli_env(QFEX_PUBLIC_KEY="qfex_pub_demo", QFEX_SECRET_KEY="not-the-secret")
    refused = await arun_all(
        ["orders", "--url", nobody], ["kill", "--url", nobody, "--yes", "--json"],
        ["run", "tests/runner/resting_strategy.py", "--url", nobody],
    )
    for proc in refused:
        assert proc.returncode == 3, explain(proc)
        assert "could not connect" in proc.stderr
    assert json_out(refused[1])["exit_code"] == 3
    bad_keys = await arun_cli("orders", "--url", sim_url, env=wrong)
    assert bad_keys.returncode == 3, explain(bad_keys)
    assert "not-the-secret" not in bad_keys.stdout + bad_keys.stderr


def test_orders_with_the_embedded_default_config_is_empty_and_says_why(tmp_path: Path) -> None:
    # Outside the checkout there is no ./config/sim.toml: the repository's own is the default.
    proc = run_cli("orders", cwd=tmp_path)
    assert proc.returncode == 0, explain(proc)
    assert "0 open orders" in proc.stdout and "embedded config" in proc.stdout


async def test_orders_from_a_journal_without_connecting(tmp_path: Path) -> None:
    journal = tmp_path / "oms.sqlite"
    async with open_simulator() as venue:
        async with open_order_manager(venue.url, CREDS2, journal=str(journal), request_timeout=5.0) as oms:
            kept = await oms.place_order(SYMBOL, "BUY", "1", "150", client_order_id="kept")
            gone = await oms.place_order(SYMBOL, "BUY", "1", "149", client_order_id="gone")
            await oms.cancel(gone)
        url = venue.url
    # The venue is gone: the journal alone answers.
    proc = await arun_cli("orders", "--journal", str(journal), "--json")
    assert proc.returncode == 0, explain(proc)
    book = json_out(proc)
    assert book["account"] == "qfex_pub_demo2" and book["url"] == url and not book["damaged"]
    assert [(o["client_order_id"], o["order_id"], o["state"]) for o in book["orders"]] == [
        ("kept", kept.order_id, "OPEN")]
    assert book["closed_orders"] == {"CANCELLED": 1}

    table = await arun_cli("orders", "--journal", str(journal))
    assert table.returncode == 0, explain(table)
    assert "kept" in table.stdout and kept.order_id in table.stdout and "1 CANCELLED" in table.stdout

    not_journal = tmp_path / "x.sqlite"
    not_journal.write_text("hello")
    for proc in await arun_all(["orders", "--journal", str(journal), "--account", "someone-else"],
                               ["orders", "--journal", str(not_journal)]):
        assert proc.returncode == 2, explain(proc)


async def test_a_real_venue_without_keys_is_a_config_error(tmp_path: Path) -> None:
    log_file = tmp_path / "never.jsonl"
    config = write_config(tmp_path / "remote.toml", "wss://trade.qfex.io",
                          logging={"json_file": str(log_file)})
    for proc in await arun_all(["kill", "--yes", "--config", "config/uat.toml"],
                               ["run", "strategies/quoter.py", "--config", "config/prod.toml"],
                               ["orders", "--config", str(config)],
                               ["cancel", "--symbol", SYMBOL, "--order-id", "x", "--config", str(config)]):
        assert proc.returncode == 2, explain(proc)
        assert ".toml: set the environment variable(s) QFEX_PUBLIC_KEY, QFEX_SECRET_KEY" in proc.stderr
    assert not log_file.exists()  # refused before anything was opened


async def test_orders_lists_stop_orders(sim_url: str) -> None:
    """Issue 14: `orders` shows the account's stop orders (table and --json) from the snapshot."""
    async with manager_at(sim_url) as oms, manager_at(sim_url, CREDS2) as counter:
        await counter.place_order(SYMBOL, "SELL", "1", "150")
        await oms.place_order(SYMBOL, "BUY", "1", "150", time_in_force="IOC")  # long 1 at 150
        stop = await oms.place_order(SYMBOL, "SELL", "1", "140", order_type="STOP_LOSS")
        proc = await arun_cli("orders", "--url", sim_url, "--json")
        assert proc.returncode == 0, explain(proc)
        (row,) = json_out(proc)["stops"]
        assert (row["stop_order_id"], row["kind"], row["trigger_price"], row["side"]) == (
            stop.stop_order_id, "STOP_LOSS", "140", "SELL")
        table = await arun_cli("orders", "--url", sim_url)
        assert "1 stop orders" in table.stdout and str(stop.stop_order_id) in table.stdout, explain(table)
        await oms.cancel_all()
        await counter.cancel_all()
