"""Helpers for the simulator's stop-order tests (imported by name: tests have no packages)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import trio
from sim_helpers import Client, rest

Frame = dict[str, Any]
SYMBOL = "AAPL-USD"


async def frames_until(client: Client, done: Callable[[list[Frame]], bool],
                       within: float = 3.0) -> list[Frame]:
    """Read frames until ``done(frames so far)`` holds; fail after ``within`` seconds."""
    frames: list[Frame] = []
    with trio.fail_after(within):
        while not done(frames):
            frames.append(await client.recv(within))
    return frames


def replies(frames: list[Frame], key: str = "order_response", **match: Any) -> list[Any]:
    """Payloads of ``key`` frames whose fields equal ``match``."""
    return [f[key] for f in frames if key in f and all(f[key].get(k) == v for k, v in match.items())]


def has(key: str = "order_response", **match: Any) -> Callable[[list[Frame]], bool]:
    return lambda frames: bool(replies(frames, key, **match))


async def go_long(trader: Client, maker: Client, quantity: str = "1", price: str = "100",
                  **extra: Any) -> list[Frame]:
    """``maker`` offers, ``trader`` lifts it with a MARKET IOC (``extra``: take_profit, ...); returns
    the trader's frames up to its FILLED, plus the staged stops' ACKs if it asked for any."""
    await rest(maker, "SELL", price, quantity)
    await trader.send("add_order", symbol=SYMBOL, side="BUY", order_type="MARKET",
                      order_time_in_force="IOC", quantity=float(quantity), price=0, **extra)
    stops = sum(1 for k in ("take_profit", "stop_loss") if extra.get(k))
    frames = await frames_until(trader, lambda fs: len(replies(fs, status="FILLED")) == 1 and len(
        [r for r in replies(fs, status="ACK") if r["type"] in ("TAKE_PROFIT", "STOP_LOSS")]) == stops)
    await maker.recv_key("order_response")  # the maker's FILLED
    await maker.recv_key("fill_response")
    return frames


async def stop(client: Client, side: str, kind: str, trigger: str, quantity: str, **extra: Any) -> Frame:
    """Send a standalone stop (qfex-api.md §14.2's frame) and return its order_response."""
    await client.send("add_order", symbol=SYMBOL, side=side, order_type=kind, order_time_in_force="GTC",
                      quantity=float(quantity), price=float(trigger), **extra)
    reply: Frame = await client.recv_key("order_response")
    return reply
