"""Three client processes (unmodified ``open_order_manager`` at the gateway's URL) on one account."""

from __future__ import annotations

from gwkit import ARB, HEDGE, MM, client_process, gateway_on
from simkit import PUB
from waiting import wait_until

from qfex_oms.sim import Venue

SYM = "AAPL-USD"


def _open(venue: Venue) -> list[str]:
    return sorted(o.client_order_id for o in venue.open_orders(PUB, SYM))


async def test_three_processes_cancel_all_and_sigkill(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client_process(gw.url, MM, cod=True) as mm, \
            client_process(gw.url, ARB) as arb, client_process(gw.url, HEDGE, cod=True) as hedge:
        for n, proc in enumerate((mm, arb, hedge)):
            for cid in ("o0", "o1"):  # the same client ids in every process
                answer = await proc.ask(f"place {SYM} BUY 1 {180 + n} {cid}")
                assert answer["client_order_id"] == cid
        assert len(_open(venue)) == 6

        # hedge's cancel-all ends hedge's orders only.
        answer = await hedge.ask("cancel_all")
        assert answer["clean"] and len(answer["cancelled"]) == 2
        assert _open(venue) == ["arb:o0", "arb:o1", "mm:o0", "mm:o1"]
        # a cancel by client id touches only the sender's orders
        answer = await arb.ask(f"cancel_cid {SYM} o1")
        assert answer["status"] == "CANCELLED" and len(answer["cancelled"]) == 1
        assert _open(venue) == ["arb:o0", "mm:o0", "mm:o1"]

        # mm asked for cancel-on-disconnect and dies: its orders go, arb's stay.
        mm.process.kill()
        await wait_until(lambda: _open(venue) == ["arb:o0"], within=10,
                         what=lambda: f"only mm's orders cancelled, open: {_open(venue)}")
        # arb did not ask: killed, its order stays.
        await hedge.ask(f"place {SYM} SELL 1 250 h2")
        arb.process.kill()
        await arb.process.wait()
        await wait_until(lambda: not any(c.strategy == "arb" for c in gw.clients))
        assert _open(venue) == ["arb:o0", "hedge:h2"]
        assert (await hedge.ask("orders"))["orders"] != []
