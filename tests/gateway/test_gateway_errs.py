"""QFEX's ``err`` frames through the gateway: a reply to the connection that sent the request it
refuses, never to the order's owner nor to another connection (``qfex_oms.gateway.requesters``)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import attrs
import orjson
import pytest
import trio
from gwkit import MM, OPS, client, gateway_on
from simkit import PUB
from trio_websocket import WebSocketConnection, open_websocket_url
from waiting import wait_until

from qfex_oms import OrderManager, OrderRejected, OrderState
from qfex_oms.client import manager
from qfex_oms.gateway.requesters import GATEWAY_ANSWERS, Requesters, echo_key
from qfex_oms.protocol import codec, decode_request, encode, incoming_echo, make_auth
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, OrderType, Side, TimeInForce
from qfex_oms.sim import Venue

SYM = "AAPL-USD"
_NUMBERS = ("quantity", "price", "take_profit", "stop_loss", "total_quantity")


def _errs_of(oms: OrderManager) -> list[dict[str, Any]]:
    """Every ``err`` frame ``oms`` reads from now on (the manager's own tap, as the journal's)."""
    errs: list[dict[str, Any]] = []

    def tap(raw: bytes | str) -> None:
        doc = orjson.loads(raw)
        if isinstance(doc, dict) and "err" in doc:
            errs.append(doc["err"])
    oms.on_frame_received = tap
    return errs


async def test_an_operators_refused_cancel_of_another_strategys_order_is_the_operators(
    venue: Venue,
) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, OPS) as ops:
        order = await mm.place_order(SYM, "BUY", "1", "190", client_order_id="bid-1")
        await wait_until(lambda: ops.order(order.order_id) is not None, what="ops to see mm's order")
        mm_errs, ops_errs = _errs_of(mm), _errs_of(ops)
        venue.faults.rate_limit_next(1, "cancel_order", public_key=PUB)
        result = await ops.cancel(order_id=order.order_id, symbol=SYM)
        # The gateway's manager retries the refused cancel (RateLimited), so does the operator's.
        assert result.status in ("CANCELLED", "NO_SUCH_ORDER")
        await wait_until(lambda: order.state is OrderState.CANCELLED, what="mm to see the cancel")
        (err,) = ops_errs
        assert err["error_code"] == "RateLimited"
        assert err["incoming_message"]["params"]["order_id"] == order.order_id
        assert mm_errs == []  # mm asked nothing: before the fix, the err was mm's (its order)
        assert len(gw.requesters) == 0


async def test_an_err_reaches_only_the_connection_that_asked(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as first, client(gw, MM) as second:
        first_errs, second_errs = _errs_of(first), _errs_of(second)
        venue.faults.rate_limit_next(1, "add_order", public_key=PUB)
        with pytest.raises(OrderRejected) as refused:
            await first.place_order(SYM, "BUY", "1", "190", client_order_id="bid-1")
        assert refused.value.status == "RateLimited"
        # Its echo in the client's own ids, as QFEX would have echoed the client's own frame.
        (err,) = first_errs
        assert err["incoming_message"]["params"]["client_order_id"] == "bid-1"
        placed = await second.place_order(SYM, "BUY", "1", "191", client_order_id="bid-2")
        assert placed.state is OrderState.OPEN
        assert second_errs == []  # same strategy, other connection: not its reply
        assert len(gw.requesters) == 0


async def test_an_operators_err_echoes_the_ids_it_sent(venue: Venue) -> None:
    async with gateway_on(venue) as gw, client(gw, MM) as mm, client(gw, OPS) as ops:
        await mm.place_order(SYM, "BUY", "1", "190", client_order_id="bid-1")
        own = await ops.place_order(SYM, "SELL", "1", "250", client_order_id="o1")
        ops_errs = _errs_of(ops)
        venue.faults.rate_limit_next(1, "cancel_order", public_key=PUB)
        await ops.cancel(client_order_id="mm:bid-1", symbol=SYM)
        venue.faults.rate_limit_next(1, "cancel_order", public_key=PUB)
        await ops.cancel(client_order_id="o1", symbol=SYM)
        echoed = [e["incoming_message"]["params"]["order_id"] for e in ops_errs]
        assert echoed == ["mm:bid-1", "o1"]  # another strategy's as sent; its own, unprefixed
        await wait_until(lambda: own.state is OrderState.CANCELLED, what="the retried cancel")


async def test_the_cancels_of_a_clients_cancel_all_are_not_its_requests(venue: Venue) -> None:
    # The gateway acks a strategy's cancel_all_orders and cancels each of its orders by id itself:
    # QFEX's refusal of one of those cancels echoes a frame the client never sent, so it reaches
    # no client (before, it went to the order's owner: this very client, whose core could take it
    # for the answer to a cancel of its own).
    async with gateway_on(venue) as gw, client(gw, MM) as mm:
        orders = [await mm.place_order(SYM, "BUY", "1", str(190 + n)) for n in range(3)]
        mm_errs = _errs_of(mm)
        venue.faults.rate_limit_next(1, "cancel_order", public_key=PUB)
        report = await mm.cancel_all()
        assert report.clean and all(o.state is OrderState.CANCELLED for o in orders)
        assert mm_errs == []
        assert len(gw.requesters) == 0


def test_requests_are_answered_oldest_first_and_forgotten_when_their_block_ends() -> None:
    requesters: Requesters[str] = Requesters()
    cancel = {"type": "cancel_order", "params": {"symbol": SYM, "order_id": "7",
                                                 "cancel_order_id_type": "order_id"}}
    with requesters.asking("a"):
        requesters.written(cancel)
        with requesters.asking("b"):
            requesters.written(cancel)
        requesters.written({"type": "add_order", "params": {"symbol": SYM, "client_order_id": "x",
                                                             "price": 1.5}})
        assert len(requesters) == 2  # b's block ended: its request is no longer waited for
        echo = orjson.loads(orjson.dumps(cancel))
        assert requesters.answered(echo) == (True, "a")
        assert requesters.answered(echo) == (False, None)
        # The echo's numbers are not compared (QFEX may print them otherwise).
        assert requesters.answered({"type": "add_order", "params": {
            "symbol": SYM, "client_order_id": "x", "price": "1.50"}}) == (True, "a")
    requesters.written(cancel)  # outside any client's block: the manager's own frame
    assert len(requesters) == 0
    for nothing in (None, [], {"params": {}}, {"type": 3}, "cancel_order"):
        assert echo_key(nothing) is None
        assert requesters.answered(nothing) == (False, None)
    # The gateway's own work for a client: claimed, and nobody's.
    with requesters.asking(None):
        requesters.written(cancel)
        assert requesters.answered(cancel) == (True, None)


async def _errs_until_echo_of(ws: WebSocketConnection, kind: str) -> list[dict[str, Any]]:
    """The errs a raw client reads until one echoes a ``kind`` request (the gateway's own answer)."""
    errs: list[dict[str, Any]] = []
    with trio.fail_after(10):
        while not errs or errs[-1]["incoming_message"]["type"] != kind:
            frame = orjson.loads(await ws.get_message())
            if "err" in frame:
                errs.append(frame["err"])
    return errs


async def test_a_refused_query_is_answered_once_with_the_clients_own_echo(venue: Venue) -> None:
    # The gateway answers queries itself: QFEX's err for its own query (paged, by the manager)
    # is the manager's answer, which the handler turns into the client's err. Forwarding QFEX's as
    # well gave the client two errs, the first echoing a request it never sent.
    async with gateway_on(venue) as gw, \
            open_websocket_url(f"{gw.url}?api_key={OPS.public_key}") as ws:
        await ws.send_message(encode(make_auth(OPS.public_key, OPS.secret)).decode())
        assert orjson.loads(await ws.get_message()) == {"authenticated": True}
        for kind, params in (("get_user_orders", {"symbol": SYM}), ("get_user_leverage", {}),
                             ("get_available_leverage_levels", {}),
                             ("set_user_leverage", {"symbol": SYM, "leverage": 5})):
            venue.faults.rate_limit_next(1, kind, public_key=PUB)
            await ws.send_message(orjson.dumps({"type": kind, "params": params}).decode())
            (err,) = await _errs_until_echo_of(ws, kind)
            assert err["error_code"] == "RateLimited"
            assert "limit" not in err["incoming_message"]["params"]  # the client's, not the manager's
        assert len(gw.requesters) == 0


def test_what_the_gateway_answers_itself_is_nobodys_err() -> None:
    assert set(manager._REPLY_OF) == GATEWAY_ANSWERS  # the manager answers these through reply slots
    requesters: Requesters[str] = Requesters()
    with requesters.asking("a"):
        for kind in GATEWAY_ANSWERS:
            requesters.written({"type": kind, "params": {"symbol": SYM, "limit": 1000}})
        assert len(requesters) == 0


async def test_a_task_spawned_inside_a_block_writes_nothing_in_its_name_after_it() -> None:
    # trio copies the spawning task's context: a task started inside ``asking`` sees its requester
    # after the block ended. What it writes then is not that client's, and would never be forgotten.
    requesters: Requesters[str] = Requesters()
    cancel = {"type": "cancel_order", "params": {"symbol": SYM, "order_id": "7",
                                                 "cancel_order_id_type": "order_id"}}
    block_over = trio.Event()

    async def later() -> None:
        await block_over.wait()
        requesters.written(cancel)

    async with trio.open_nursery() as nursery:
        with requesters.asking("a"):
            nursery.start_soon(later)
        block_over.set()
    assert len(requesters) == 0
    assert requesters.answered(cancel) == (False, None)


def _forwarded() -> list[m.Request]:
    """One of each request the gateway's manager writes for a client (the id-carrying ones in each
    of their shapes)."""
    d = Decimal
    return [
        m.AddOrder(SYM, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, d("1"), d("190.50"), "mm:b"),
        m.AddOrder(SYM, Side.BUY, OrderType.MARKET, TimeInForce.IOC, d("1"), None, "mm:m", reduce_only=True),
        m.AddOrder(SYM, Side.SELL, OrderType.TAKE_PROFIT, TimeInForce.GTC, d("1"), d("250"), "mm:tp"),
        m.AddOrder(SYM, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, d("1"), d("190"), "mm:a",
                   take_profit=d("200"), stop_loss=d("180")),
        *(m.CancelOrder(i, SYM, kind) for i, kind in (("o-1", CancelIdType.ORDER_ID),
                                                      ("mm:b", CancelIdType.CLIENT_ORDER_ID),
                                                      ("t-1", CancelIdType.TWAP_ID),
                                                      ("mm:t", CancelIdType.CLIENT_TWAP_ID))),
        m.ModifyOrder("o-1", SYM, Side.BUY, OrderType.LIMIT, d("1.10"), None),
        m.CancelStopOrder("s-1"), m.ModifyStopOrder("s-1", SYM, d("1"), d("2")),
        m.AddTwap(SYM, Side.BUY, d("10"), 2, 30, False, "mm:t"), m.ClosePosition(SYM, "mm:c"),
    ]


@pytest.mark.parametrize("request_", _forwarded(), ids=lambda r: r.TYPE)
def test_the_key_of_a_written_request_is_the_key_of_its_echo(request_: m.Request) -> None:
    written = orjson.loads(codec.encode(request_))
    key = echo_key(written)
    assert key is not None and key[0] not in GATEWAY_ANSWERS
    # The simulator's echo: the request it decoded, encoded again.
    assert echo_key(incoming_echo(decode_request(codec.encode(request_)))) == key
    # QFEX's (qfex-api.md §4.9): absent fields as null, numbers as floats.
    fields = attrs.fields_dict(type(request_))
    params = {name: written["params"].get(name) for name in fields}
    qfex = {"type": request_.TYPE, "params": {k: float(v) if isinstance(v, str) and k in _NUMBERS else v
                                              for k, v in params.items()}}
    assert echo_key(qfex) == key
