"""`qfex-oms orders --by-strategy` and `kill --strategy NAME` (issue 18) as real subprocesses: the CLI's
manager knows the orders only from the snapshot, and attributes them by their client id's namespace."""

from __future__ import annotations

from clikit import arun_cli, explain, json_out
from simkit import manager_at

SYMBOL = "AAPL-USD"


async def test_orders_by_strategy_and_a_strategy_kill_leave_the_others(sim_url: str) -> None:
    async with manager_at(sim_url) as oms:
        mm, arb = oms.for_strategy("mm"), oms.for_strategy("arb")
        mine = [await mm.place_order(SYMBOL, "BUY", "1", "100", client_order_id="bid-1") for _ in range(2)]
        await mm.place_twap(SYMBOL, "BUY", total_quantity="4", num_orders=2, order_interval_secs=600,
                            client_twap_id="rb")
        theirs = await arb.place_order(SYMBOL, "BUY", "1", "100", client_order_id="bid-1")
        plain = await oms.place_order(SYMBOL, "BUY", "1", "100", client_order_id="bid-1")

        listing = await arun_cli("orders", "--url", sim_url, "--by-strategy", "--json")
        assert listing.returncode == 0, explain(listing)
        groups = json_out(listing)["by_strategy"]
        assert list(groups) == ["arb", "mm", "(no strategy)"]
        assert [len(groups[k]["orders"]) for k in groups] == [1, 2, 1]
        assert [t["client_twap_id"] for t in groups["mm"]["twaps"]] == ["mm:rb"]
        table = await arun_cli("orders", "--url", sim_url, "--by-strategy")
        assert table.returncode == 0, explain(table)
        assert "mm: 2 open orders" in table.stdout and "(no strategy): 1 open orders" in table.stdout

        killed = await arun_cli("kill", "--url", sim_url, "--yes", "--strategy", "mm", "--json")
        assert killed.returncode == 0, explain(killed)
        report = json_out(killed)
        assert report["clean"]
        assert sorted(o["order_id"] for o in report["cancelled_orders"]) == sorted(o.order_id for o in mine)
        assert [t["client_twap_id"] for t in report["cancelled_twaps"]] == ["mm:rb"]
        await oms.reconcile()
        assert all(o.state.is_terminal for o in mine)
        assert theirs.state.is_live and plain.state.is_live

        bad = await arun_cli("kill", "--url", sim_url, "--yes", "--strategy", "no:pe")
        assert bad.returncode == 2 and "not a strategy name" in bad.stderr, explain(bad)
