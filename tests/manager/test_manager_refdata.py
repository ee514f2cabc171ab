"""Reference data (issue 15): an order QFEX would refuse never leaves the process; without
reference data the exchange decides. Real simulator, real HTTP for /refdata."""

from __future__ import annotations

from decimal import Decimal

import pytest
import trio
from managerkit import FrameLog
from simkit import CREDS, OPTIONS

from qfex_oms import InvalidArgument, OrderRejected, open_order_manager
from qfex_oms.protocol.enums import Side
from qfex_oms.sim import Venue

S = "AAPL-USD"


async def test_an_order_off_the_tick_is_refused_locally_then_accepted_once_rounded(venue: Venue) -> None:
    async with open_order_manager(venue.url, CREDS, rest_url=venue.rest_url, **OPTIONS) as oms:
        sent = FrameLog()
        oms.on_frame_sent = sent
        instrument = oms.instrument(S)
        assert instrument is not None and S in oms.instruments()
        off = Decimal("199.555")
        with pytest.raises(InvalidArgument, match="tick_size"):
            await oms.place_order(S, "BUY", "1", off)
        with pytest.raises(InvalidArgument, match="symbol: unknown symbol 'NOPE-USD'"):
            await oms.place_order("NOPE-USD", "BUY", "1", "1")
        assert sent.of("add_order") == [] and oms.orders(open_only=False) == []
        price = instrument.round_price(off, Side.BUY)
        assert price < off
        order = await oms.place_order(S, "BUY", "1", price)
        assert order.price == price and len(sent.of("add_order")) == 1


async def test_without_reference_data_the_exchange_decides(venue: Venue) -> None:
    with trio.socket.socket() as sock:  # a port with nothing listening
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with open_order_manager(venue.url, CREDS, rest_url=f"http://127.0.0.1:{port}",
                                  **{**OPTIONS, "request_timeout": 1.0}) as oms:
        assert oms.instruments() == {} and oms.reference.error is not None
        with pytest.raises(OrderRejected) as caught:
            await oms.place_order(S, "BUY", "1", "199.555")
        assert "TICK" in str(caught.value.status)


async def test_validation_can_be_turned_off(venue: Venue) -> None:
    async with open_order_manager(venue.url, CREDS, rest_url=venue.rest_url, validate_orders=False,
                                  **OPTIONS) as oms:
        with pytest.raises(OrderRejected):
            await oms.place_order(S, "BUY", "1", "199.555")
