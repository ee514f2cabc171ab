"""Positions, balances, leverage and close_position over loopback, as a client written from QFEX's
documentation sees them (qfex-api.md §3.6, §3.8, §3.11, §4.6).

Each peer is a raw websocket whose frames a background task collects, so tests wait for conditions
(``wait_until``) and then compare with figures computed by hand in the comments. Taker A trades
against maker B on AAPL-USD (leverage 20, deposit 9,990,000,000 unless a test says otherwise).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal as D
from typing import Any

import orjson
import pytest
import trio
from simkit import PUB, PUB2, SECRET, SECRET2
from trio_websocket import ConnectionClosed, open_websocket_url
from waiting import wait_until

from qfex_oms.protocol import encode, make_auth
from qfex_oms.sim import Venue, open_simulator

SYM = "AAPL-USD"
DEPOSIT = D("9990000000")
POSITION_KEYS = {"id", "symbol", "position", "margin_alloc", "realised_pnl", "unrealised_pnl",
                 "net_funding", "open_orders", "open_quantity", "leverage", "initial_margin",
                 "maintenance_margin", "average_price"}
BALANCE_KEYS = {"id", "user_id", "deposit", "realised_pnl", "order_margin", "position_margin",
                "unrealised_pnl", "net_funding", "available_balance"}
ALL = ("order_responses", "fills", "positions", "balances")


class Peer:
    """A raw client: ``frames`` holds every frame received, as (key, payload, raw text)."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.frames: list[tuple[str, Any, str]] = []

    async def read(self) -> None:
        async for text in _messages(self.ws):
            frame = orjson.loads(text)
            (key,) = frame
            self.frames.append((key, frame[key], text))

    async def send(self, type_: str, **params: Any) -> None:
        await self.ws.send_message(orjson.dumps({"type": type_, "params": params}).decode())

    def of(self, key: str, where: Callable[[Any], bool] = lambda _: True) -> list[Any]:
        return [p for k, p, _ in self.frames if k == key and where(p)]

    def count(self) -> int:
        return len(self.frames)

    async def next_of(self, key: str, where: Callable[[Any], bool] = lambda _: True, after: int = 0) -> Any:
        """The first ``key`` frame received after frame number ``after`` that satisfies ``where``."""
        def found() -> list[Any]:
            return [p for k, p, _ in self.frames[after:] if k == key and where(p)]
        await wait_until(lambda: found(), what=f"a {key} frame")
        return found()[0]

    def last_position(self, symbol: str = SYM) -> Any:
        rows = self.of("position_response", lambda p: p["symbol"] == symbol)
        return rows[-1] if rows else None

    def last_balance(self) -> Any:
        rows = self.of("balance_response")
        return rows[-1] if rows else None


async def _messages(ws: Any) -> AsyncIterator[str]:
    while True:
        try:
            yield await ws.get_message()
        except ConnectionClosed:
            return


@asynccontextmanager
async def peer(venue: Venue, public_key: str = PUB, channels: tuple[str, ...] = ALL) -> AsyncIterator[Peer]:
    secret = {PUB: SECRET, PUB2: SECRET2}[public_key]
    async with open_websocket_url(f"{venue.url}/?api_key={public_key}") as ws:
        await ws.send_message(encode(make_auth(public_key, secret)).decode())
        assert orjson.loads(await ws.get_message()) == {"authenticated": True}
        p = Peer(ws)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(p.read)
            for channel in channels:
                await p.send("subscribe", channels=[channel])
                await p.next_of("subscribed", lambda c, ch=channel: c == ch)
            yield p
            nursery.cancel_scope.cancel()


@pytest.fixture
async def venue() -> AsyncIterator[Venue]:
    async with open_simulator(rate_limits=None, ping_interval=None) as v:
        yield v


def pos(venue: Venue, key: str = PUB) -> Any:
    return venue.position(key, SYM)


async def cross(venue: Venue, maker: Peer, taker: Peer, taker_side: str, quantity: str, price: str,
                settle: bool = True) -> None:
    """B rests the opposite side, A takes it with a LIMIT IOC; returns once A's fill arrived (and,
    with ``settle``, once both peers' pushes agree with the ledger)."""
    maker_side = "SELL" if taker_side == "BUY" else "BUY"
    seen = taker.count()
    await maker.send("add_order", symbol=SYM, side=maker_side, order_type="LIMIT",
                     order_time_in_force="GTC", quantity=float(quantity), price=float(price))
    await wait_until(lambda: venue.open_orders(PUB2, SYM), what="the maker's order to rest")
    await taker.send("add_order", symbol=SYM, side=taker_side, order_type="LIMIT",
                     order_time_in_force="IOC", quantity=float(quantity), price=float(price))
    await taker.next_of("fill_response", after=seen)
    await wait_until(lambda: not venue.open_orders(PUB2, SYM), what="the maker's order to fill")
    if settle:
        await settled(venue, taker, PUB)
        await settled(venue, maker, PUB2)


async def settled(venue: Venue, p: Peer, key: str) -> None:
    """Until the peer's last pushes agree with the venue's ledger (its pushes follow its fills)."""
    def agree() -> bool:
        row, balance = p.last_position(), p.last_balance()
        return (row is not None and balance is not None
                and D(repr(row["position"])) == venue.position(key, SYM).quantity
                and D(repr(balance["available_balance"])) == venue.balance(key).available_balance)
    await wait_until(agree, what="the pushes to catch up with the ledger")


def numbers(row: Any, *names: str) -> tuple[D, ...]:
    return tuple(D(repr(row[n])) for n in names)


# --------------------------------------------------------------------------- subscribe snapshot


async def test_subscribing_answers_the_documented_shapes_with_json_numbers(venue):
    async with peer(venue, PUB, channels=()) as a:
        await a.send("subscribe", channels=["positions", "balances"])
        await wait_until(lambda: a.of("balance_response"), what="the balance snapshot")
        keys = [k for k, _, _ in a.frames]
        assert keys == ["subscribed", "subscribed", *["position_response"] * 3, "balance_response"]
        rows = a.of("position_response")
        assert [r["symbol"] for r in rows] == ["AAPL-USD", "TSLA-USD", "US500-USD"]
        assert all(set(r) == POSITION_KEYS for r in rows)
        assert set(a.last_balance()) == BALANCE_KEYS
        raw_position = a.frames[2][2]
        assert '"position":0.0' in raw_position and '"leverage":20.0' in raw_position
        assert '"initial_margin":0.05' in raw_position
        assert '"deposit":9990000000.0' in a.frames[-1][2]
        assert a.last_balance()["available_balance"] == 9990000000.0
        assert a.last_balance()["user_id"] == venue.user_id(PUB)


# --------------------------------------------------------------------------- positions and balance


async def test_buys_sells_a_flip_and_a_partial_close_to_the_cent(venue):
    async with peer(venue, PUB) as a, peer(venue, PUB2) as b:
        await cross(venue, b, a, "BUY", "2", "100")   # A +2 @ 100
        await cross(venue, b, a, "BUY", "1", "103")   # A +3, entry (200 + 103) / 3 = 101
        p = pos(venue)
        assert (p.quantity, p.average_price, p.unrealised_pnl) == (D(3), D(101), D(6))  # 3 x (103-101)
        await cross(venue, b, a, "SELL", "1", "105")  # realise 1 x (105 - 101) = 4; +2 @ 101
        p = pos(venue)
        assert (p.quantity, p.average_price, p.realised_pnl) == (D(2), D(101), D(4))
        await cross(venue, b, a, "SELL", "5", "102")  # flip: realise 2 x (102-101) = 2; -3 @ 102
        p = pos(venue)
        assert (p.quantity, p.average_price, p.realised_pnl) == (D(-3), D(102), D(6))
        await cross(venue, b, a, "BUY", "1", "100")   # partial close: 1 x (102 - 100) = 2; -2 @ 102
        p = pos(venue)
        assert (p.quantity, p.average_price, p.realised_pnl, p.unrealised_pnl) == (D(-2), D(102), D(8), D(4))
        assert [D(repr(f["realised_pnl"])) for f in a.of("fill_response")] == [0, 0, 4, 2, 2]
        # B holds the mirror image: +2 @ 102, realised -8.
        p2 = pos(venue, PUB2)
        assert (p2.quantity, p2.average_price, p2.realised_pnl) == (D(2), D(102), D(-8))
        # The last pushes carry the same figures as the venue's ledger.
        await wait_until(lambda: a.last_position()["position"] == -2.0, what="A's last push")
        assert numbers(a.last_position(), "position", "average_price", "realised_pnl",
                       "unrealised_pnl", "margin_alloc") == (D(-2), D(102), D(8), D(4), D(10))  # 2x100/20
        balance = venue.balance(PUB)
        assert balance.available_balance == DEPOSIT + 8 + 4 - 10
        await wait_until(lambda: D(repr(a.last_balance()["available_balance"])) == balance.available_balance,
                         what="A's balance push")


async def test_a_mark_change_moves_unrealised_pnl_margin_and_is_pushed(venue):
    async with peer(venue, PUB) as a, peer(venue, PUB2) as b:
        await cross(venue, b, a, "SELL", "2", "102")  # A -2 @ 102
        seen = a.count()
        venue.set_mark(SYM, "110")
        row = await a.next_of("position_response", lambda r: r["symbol"] == SYM, after=seen)
        # unrealised -2 x (110 - 102) = -16; margin 2 x 110 / 20 = 11
        assert numbers(row, "unrealised_pnl", "margin_alloc") == (D(-16), D(11))
        balance = await a.next_of("balance_response", after=seen)
        assert D(repr(balance["available_balance"])) == DEPOSIT - 16 - 11
        assert pos(venue, PUB2).unrealised_pnl == 16  # the other side is pushed too
        await wait_until(lambda: b.last_position()["unrealised_pnl"] == 16.0, what="B's push")


async def test_resting_orders_consume_available_balance_and_show_as_open(venue):
    async with peer(venue, PUB) as a:
        await a.send("add_order", symbol=SYM, side="BUY", order_type="LIMIT",
                     order_time_in_force="GTC", quantity=4, price=50)
        await wait_until(lambda: (a.last_position() or {}).get("open_orders") == 1.0, what="open order push")
        row = a.last_position()
        assert numbers(row, "open_orders", "open_quantity", "position") == (D(1), D(4), D(0))
        assert venue.balance(PUB).order_margin == 10  # 4 x 50 / 20
        await wait_until(lambda: a.last_balance()["order_margin"] == 10.0, what="order margin push")
        assert a.last_balance()["available_balance"] == float(DEPOSIT - 10)
        await a.send("cancel_all_orders")
        await wait_until(lambda: a.last_balance()["order_margin"] == 0.0, what="margin released")


# --------------------------------------------------------------------------- margin


async def test_insufficient_margin_is_refused_with_failed_margin_check():
    async with open_simulator(rate_limits=None, ping_interval=None, deposit=D(1000)) as venue, \
            peer(venue, PUB) as a:
        # 2 resting bids of 100 @ 100 hold 500 each: the second fits exactly.
        for n in (1, 2):
            await a.send("add_order", symbol=SYM, side="BUY", order_type="LIMIT",
                         order_time_in_force="GTC", quantity=100, price=100, client_order_id=f"bid-{n}")
            ack = await a.next_of("order_response", lambda r, n=n: r["client_order_id"] == f"bid-{n}")
            assert ack["status"] == "ACK"
        assert venue.balance(PUB).available_balance == 0
        await a.send("add_order", symbol=SYM, side="BUY", order_type="LIMIT",
                     order_time_in_force="GTC", quantity=0.001, price=100, client_order_id="one-more")
        refused = await a.next_of("order_response", lambda r: r["client_order_id"] == "one-more")
        assert refused["status"] == "FAILED_MARGIN_CHECK"
        answers = a.of("order_response", lambda r: r["client_order_id"] == "one-more")
        assert [r["status"] for r in answers] == ["FAILED_MARGIN_CHECK"]  # no ACK before it
        assert len(venue.open_orders(PUB)) == 2


# --------------------------------------------------------------------------- leverage


async def test_leverage_set_within_levels_changes_margin_and_is_refused_outside(venue):
    async with peer(venue, PUB) as a, peer(venue, PUB2) as b:
        await cross(venue, b, a, "BUY", "2", "100")  # margin 2 x 100 / 20 = 10
        await a.send("set_user_leverage", symbol=SYM, leverage=10)
        ack = await a.next_of("ack")
        assert ack["incoming_message"] == {"type": "set_user_leverage",
                                           "params": {"symbol": SYM, "leverage": 10}}
        p = pos(venue)
        assert (p.leverage, p.margin, p.initial_margin) == (D(10), D(20), D("0.1"))  # 200 / 10
        await wait_until(lambda: a.last_position()["leverage"] == 10.0, what="leverage push")
        await a.send("set_user_leverage", symbol=SYM, leverage=7)
        err = await a.next_of("err")
        assert err["error_code"] == "InvalidParameter"
        assert err["incoming_message"] == {"type": "set_user_leverage",
                                           "params": {"symbol": SYM, "leverage": 7}}
        await a.send("set_user_leverage", symbol="NOPE-USD", leverage=10)
        await wait_until(lambda: len(a.of("err")) == 2, what="the unknown symbol's err")
        assert pos(venue).leverage == 10
        seen = a.count()
        await a.send("get_user_leverage", limit=10, offset=0)
        rows = await a.next_of("user_leverage_response", after=seen)
        assert [(r["symbol"], r["leverage"]) for r in rows] == [
            (SYM, "10"), ("TSLA-USD", "20"), ("US500-USD", "20")]
        assert set(rows[0]) == {"id", "symbol", "initial_margin", "maintenance_margin", "max_notional",
                                "leverage"}
        await a.send("get_available_leverage_levels", limit=3, offset=1)
        levels = await a.next_of("available_leverage_levels_response")
        assert [(r["symbol"], r["leverage"]) for r in levels] == [(SYM, "2"), (SYM, "3"), (SYM, "5")]


# --------------------------------------------------------------------------- close_position


async def test_close_position_flattens_a_position_built_from_several_fills(venue):
    async with peer(venue, PUB) as a, peer(venue, PUB2) as b:
        for price, quantity in (("100", "1"), ("101", "2")):
            await b.send("add_order", symbol=SYM, side="SELL", order_type="LIMIT",
                         order_time_in_force="GTC", quantity=float(quantity), price=float(price))
        await wait_until(lambda: len(venue.open_orders(PUB2)) == 2, what="B's asks")
        await a.send("add_order", symbol=SYM, side="BUY", order_type="LIMIT", order_time_in_force="IOC",
                     quantity=3, price=101)
        await wait_until(lambda: len(a.of("fill_response")) == 2, what="two fills")
        assert (pos(venue).quantity, pos(venue).average_price) == (D(3), D("100.6667"))  # 302 / 3
        for price, quantity in (("100", "1"), ("99.5", "2")):
            await b.send("add_order", symbol=SYM, side="BUY", order_type="LIMIT",
                         order_time_in_force="GTC", quantity=float(quantity), price=float(price))
        await wait_until(lambda: len(venue.open_orders(PUB2)) == 2, what="B's bids")
        seen = a.count()
        await a.send("close_position", symbol=SYM, client_order_id="flatten-1")
        ack = await a.next_of("order_response", after=seen)
        # mark = last trade 101; a sell at 101 x 0.95 = 95.95, sized to the whole position
        assert (ack["status"], ack["side"], ack["type"], ack["time_in_force"]) == \
            ("ACK", "SELL", "LIMIT", "IOC")
        assert (ack["quantity"], ack["price"], ack["client_order_id"]) == (3.0, 95.95, "flatten-1")
        await wait_until(lambda: pos(venue).quantity == 0, what="the position to be flat")
        def closing_fills() -> list[Any]:
            return a.of("fill_response", lambda f: f["client_order_id"] == "flatten-1")
        await wait_until(lambda: len(closing_fills()) == 2, what="the closing order's two fills")
        closing = closing_fills()
        assert [(f["price"], f["quantity"]) for f in closing] == [(100.0, 1.0), (99.5, 2.0)]
        # realised: (100 + 2 x 99.5) - 302 = -3
        assert pos(venue).realised_pnl == -3
        assert venue.open_orders(PUB) == [] and venue.open_orders(PUB2) == []
        await wait_until(lambda: a.last_position()["position"] == 0.0, what="the flat push")
        assert a.last_position()["realised_pnl"] == -3.0


async def test_closing_a_flat_symbol_answers_one_rejected_order_response(venue):
    async with peer(venue, PUB) as a:
        await a.send("close_position", symbol=SYM, client_order_id="nothing-to-close")
        row = await a.next_of("order_response")
        assert (row["status"], row["quantity"], row["client_order_id"]) == \
            ("REJECTED", 0.0, "nothing-to-close")
        await a.send("close_position", symbol="NOPE-USD")
        bad = await a.next_of("order_response", lambda r: r["symbol"] == "NOPE-USD")
        assert bad["status"] == "BAD_SYMBOL"
        assert venue.orders(PUB) == [] and venue.trades(PUB) == []


# --------------------------------------------------------------------------- funding


async def test_funding_applied_on_demand_and_pushed(venue):
    async with peer(venue, PUB) as a, peer(venue, PUB2) as b:
        await cross(venue, b, a, "SELL", "2", "110")  # A -2 @ 110, mark 110
        seen = a.count()
        venue.apply_funding(SYM, "0.001")  # shorts receive 2 x 110 x 0.001 = 0.22
        row = await a.next_of("position_response", lambda r: r["symbol"] == SYM, after=seen)
        assert D(repr(row["net_funding"])) == D("0.22")
        assert venue.balance(PUB).net_funding == D("0.22")
        assert venue.balance(PUB2).net_funding == D("-0.22")


async def test_funding_on_a_schedule_when_enabled():
    async with open_simulator(rate_limits=None, ping_interval=None, funding_interval=0.01,
                              funding_rate=D("0.0001")) as venue, \
            peer(venue, PUB) as a, peer(venue, PUB2) as b:
        await cross(venue, b, a, "BUY", "1", "100", settle=False)  # funding moves the balance meanwhile
        await wait_until(lambda: venue.position(PUB, SYM).net_funding < 0, what="a funding settlement")
        await wait_until(lambda: (a.last_position() or {}).get("net_funding", 0) < 0, what="its push")
