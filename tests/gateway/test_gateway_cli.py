"""`qfex-oms orders --by-strategy` and `kill --strategy NAME` against a running `qfex-oms gateway`
(issue 18), as real processes: the operator's key (may_kill_account) sees and kills per strategy;
an ordinary key's `kill --strategy other` finds nothing and touches nothing. What is open is read
from the simulator itself, not only from the CLI. `gateway token` prints a JWT the gateway takes
for its key, and a CLI call authenticates with one (`--auth jwt`) instead of a secret."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import orjson
import trio
from gwkit import ARB, MM, OPS, cli, client, explain, gateway_process, gateway_toml
from simkit import PUB, manager
from waiting import wait_until

from qfex_oms import OrderState
from qfex_oms.gateway import ClientKey
from qfex_oms.gateway.tokens import check_token, mint_token
from qfex_oms.sim import Venue

SYM = "AAPL-USD"


def _wire(venue: Venue) -> list[str]:
    return sorted(o.client_order_id for o in venue.open_orders(PUB, SYM))


async def test_orders_by_strategy_and_kill_strategy_through_the_gateway(venue: Venue, tmp_path: Path) -> None:
    config = gateway_toml(tmp_path, venue.url, 0, keys=(MM, ARB, OPS))
    async with gateway_process(config) as (_, url), client(url, MM) as mm, client(url, ARB) as arb, \
            manager(venue) as direct:
        # Two strategies name their orders alike; an order placed around the gateway belongs to none.
        mine = [await mm.place_order(SYM, "BUY", "1", str(190 + n), client_order_id="bid-1")
                for n in range(2)]
        theirs = [await arb.place_order(SYM, "BUY", "1", str(180 + n), client_order_id="bid-1")
                  for n in range(2)]
        plain = await direct.place_order(SYM, "BUY", "1", "170", client_order_id="bid-1")
        before = ["arb:bid-1", "arb:bid-1", "bid-1", "mm:bid-1", "mm:bid-1"]
        assert _wire(venue) == before

        results: dict[str, subprocess.CompletedProcess[str]] = {}

        async def call(name: str, key: ClientKey | None, jwt: str | None, *args: str) -> None:
            results[name] = await cli(key, *args, jwt=jwt)

        arb_jwt = mint_token(ARB, time.time(), ttl=60)  # arb lists its orders with no secret at all
        async with trio.open_nursery() as nursery:  # independent calls: mostly interpreter start-up
            nursery.start_soon(call, "ops_orders", OPS, None, "orders", "--by-strategy", "--json",
                               "--url", url)
            nursery.start_soon(call, "arb_orders", None, arb_jwt, "orders", "--by-strategy", "--json",
                               "--url", url, "--auth", "jwt")
            nursery.start_soon(call, "arb_kill", ARB, None, "kill", "--yes", "--strategy", "mm", "--url", url)
            nursery.start_soon(call, "token", None, None, "gateway", "token", "--config", str(config),
                               "--key", MM.public_key, "--ttl", "120")
        ops_orders, arb_orders, arb_kill, token = (
            results[k] for k in ("ops_orders", "arb_orders", "arb_kill", "token"))
        assert token.returncode == 0, explain(token)
        assert check_token(token.stdout.strip(), MM, time.time()) is None
        assert check_token(token.stdout.strip(), MM, time.time() + 121) == "the token has expired"

        # The operator sees every order of the account, grouped by the namespace of its wire id.
        assert ops_orders.returncode == 0, explain(ops_orders)
        groups = orjson.loads(ops_orders.stdout)["by_strategy"]
        assert list(groups) == ["arb", "mm", "(no strategy)"]
        assert {k: sorted(o["order_id"] for o in g["orders"]) for k, g in groups.items()} == {
            "arb": sorted(o.order_id for o in theirs), "mm": sorted(o.order_id for o in mine),
            "(no strategy)": [plain.order_id]}
        assert {o["client_order_id"] for o in groups["mm"]["orders"]} == {"mm:bid-1"}
        # An ordinary key sees its own orders only, under its own ids.
        assert arb_orders.returncode == 0, explain(arb_orders)
        book = orjson.loads(arb_orders.stdout)
        assert sorted((o["order_id"], o["client_order_id"]) for o in book["orders"]) == sorted(
            (o.order_id, "bid-1") for o in theirs)
        # ... so its kill --strategy mm finds nothing of mm and cancels nothing.
        assert arb_kill.returncode == 0, explain(arb_kill)
        assert "0 orders" in arb_kill.stdout
        assert "nothing of strategy mm is open for this key" in arb_kill.stdout
        assert _wire(venue) == before

        # The operator's kill --strategy mm ends mm's orders and nothing else.
        killed = await cli(OPS, "kill", "--yes", "--strategy", "mm", "--json", "--url", url)
        assert killed.returncode == 0, explain(killed)
        report = orjson.loads(killed.stdout)
        assert report["clean"]
        assert sorted(o["order_id"] for o in report["cancelled_orders"]) == sorted(o.order_id for o in mine)
        assert _wire(venue) == ["arb:bid-1", "arb:bid-1", "bid-1"]
        await wait_until(lambda: all(o.state is OrderState.CANCELLED for o in mine),
                         what="mm to see its orders cancelled")
        assert all(o.state is OrderState.OPEN for o in theirs) and plain.state is OrderState.OPEN
