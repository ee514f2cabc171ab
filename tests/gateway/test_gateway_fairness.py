"""One client flooding the cancel bucket cannot starve another's cancel (fair queue, fair.py)."""

from __future__ import annotations

import orjson
from gwkit import ARB, MM, client, gateway_on
from trio_websocket import open_websocket_url
from waiting import wait_until

from qfex_oms.core.pacer import PacerSettings
from qfex_oms.protocol import CancelIdType, encode, make_auth
from qfex_oms.protocol import messages as m

SYM = "AAPL-USD"
FLOOD = 30


async def test_a_flood_does_not_delay_another_clients_cancel_past_one_slot(venue: object) -> None:
    # A slow pacer upstream (10 cancel units/s, no burst): every cancel-bucket frame waits its slot,
    # and half the flood takes 1.5 s to go out, a margin for a busy machine before arb's cancel.
    slow = PacerSettings(units_per_second=10.0, burst=1.0)
    async with gateway_on(venue, pacer=slow) as gw, client(gw, ARB) as arb:  # type: ignore[arg-type]
        order = await arb.place_order(SYM, "BUY", "1", "190", client_order_id="keep-me-cancellable")
        gw.trace = []
        async with open_websocket_url(f"{gw.url}?api_key={MM.public_key}") as flood:
            await flood.send_message(encode(make_auth(MM.public_key, MM.secret)).decode())
            assert orjson.loads(await flood.get_message()) == {"authenticated": True}
            for n in range(FLOOD):
                frame = m.CancelOrder(order_id=f"nope-{n}", symbol=SYM,
                                      cancel_order_id_type=CancelIdType.CLIENT_ORDER_ID)
                await flood.send_message(encode(frame).decode())
            await wait_until(lambda: any(kind == "written" for kind, _ in gw.trace or ()))
            result = await arb.cancel(order)
            assert result.status == "CANCELLED"

        trace = gw.trace
        received = next(i for i, (kind, what) in enumerate(trace)
                        if kind == "received" and what[0] == "arb")
        written = next(i for i, (kind, data) in enumerate(trace) if kind == "written"
                       and orjson.loads(data)["params"].get("order_id") == order.order_id)
        cancels_between = [d for kind, d in trace[received:written] if kind == "written"]
        # At most the flood's frame already holding the slot went out first.
        assert len(cancels_between) <= 1, cancels_between
        flood_first = [d for kind, d in trace[:written] if kind == "written"]
        assert len(flood_first) < FLOOD // 2  # most of the flood was still queued: the cancel overtook it
