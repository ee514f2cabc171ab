"""The live view of ``qfex-oms watch`` and ``qfex-oms run --live``: JSON lines or a rich table.

Everything shown comes from the manager's ``events()`` stream and its local book (``oms.orders()``,
``oms.positions()``): the view never asks the exchange for anything, so watching costs the venue
nothing beyond the subscription the manager already holds.

Two renderings of one state:
- ``event_record`` turns one event into one JSON object (``--json``: a line per event, flushed, so a
  pipe sees it at once); the event's own state is printed, not the order's current one (a later
  event may already have moved the order on).
- ``LiveView`` keeps what the tables need (recent fills, connection and guard state) and renders
  open orders, recent fills, positions with P&L, guard and connection state as one rich renderable.
  ``show_live`` redraws it in place with ``rich.live.Live`` (cursor moves, no screen clearing:
  no flicker), at most ``REFRESH_SECONDS`` apart however fast events come.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click
import orjson
import trio
from attrs import define, field
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from qfex_oms.app.commands.common import cell, json_default, num, order_dict, twap_dict
from qfex_oms.client.events import (
    BalanceUpdated,
    Connected,
    Disconnected,
    HaltChanged,
    PositionUpdated,
    Reconnected,
)
from qfex_oms.core.events import CancelFinished, FillReceived, OrderUpdated, TwapUpdated

if TYPE_CHECKING:
    from qfex_oms.app.guard import KillSwitchGuard
    from qfex_oms.client.manager import OrderManager

TOPICS = ("orders", "fills", "positions", "all")
# Redraw at most this often: a burst of fills is one redraw, not hundreds.
REFRESH_SECONDS = 0.1
# Redraw at least this often, so "disconnected for N s" keeps counting without events.
IDLE_REDRAW_SECONDS = 1.0
RECENT_FILLS = 10


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _topic(event: object) -> str | None:
    """Which ``watch`` topic an event belongs to; ``connection`` and ``guard`` go to every topic."""
    if isinstance(event, OrderUpdated | TwapUpdated | CancelFinished):
        return "orders"
    if isinstance(event, FillReceived):
        return "fills"
    if isinstance(event, PositionUpdated | BalanceUpdated):
        return "positions"
    if isinstance(event, Connected | Disconnected | Reconnected | HaltChanged):
        return "connection"
    if type(event).__name__ == "GuardTripped":
        return "guard"
    return None


def wanted(event: object, topic: str) -> bool:
    """Whether ``watch TOPIC`` shows this event (connection and guard changes always are)."""
    kind = _topic(event)
    return kind is not None and (topic == "all" or kind in (topic, "connection", "guard"))


def position_dict(position: Any) -> dict[str, Any]:
    return {"symbol": position.symbol, "quantity": num(position.quantity),
            "average_price": num(position.average_price), "realised_pnl": num(position.realised_pnl),
            "unrealised_pnl": num(position.unrealised_pnl)}


def fill_dict(event: FillReceived) -> dict[str, Any]:
    f = event.fill
    return {"trade_id": f.trade_id, "symbol": f.symbol, "side": str(f.side), "price": num(f.price),
            "quantity": num(f.quantity), "fee": num(f.fee), "order_id": event.order.order_id,
            "client_order_id": event.order.client_order_id,
            "order_filled": num(event.order.filled_quantity)}


def event_record(event: object) -> dict[str, Any] | None:
    """One event as a JSON-ready object (``event`` names its kind), or None for internal events."""
    body: dict[str, Any]
    if isinstance(event, OrderUpdated):
        body = {"event": "order", **order_dict(event.order), "state": str(event.state),
                "previous": str(event.previous), "status": event.status}
    elif isinstance(event, TwapUpdated):
        body = {"event": "twap", **twap_dict(event.twap), "state": str(event.state),
                "previous": str(event.previous), "status": event.status}
    elif isinstance(event, CancelFinished):
        r = event.request
        body = {"event": "cancel", "symbol": r.symbol, "mode": str(r.mode), "value": r.value,
                "status": r.status, "cancelled": len(r.cancelled)}
    elif isinstance(event, FillReceived):
        body = {"event": "fill", **fill_dict(event)}
    elif isinstance(event, PositionUpdated):
        body = {"event": "position", **position_dict(event.position)}
    elif isinstance(event, BalanceUpdated):
        b = event.balance
        body = {"event": "balance", "available": num(b.available), "realised_pnl": num(b.realised_pnl),
                "unrealised_pnl": num(b.unrealised_pnl)}
    elif isinstance(event, Connected):
        body = {"event": "connection", "state": "connected", "url": event.url}
    elif isinstance(event, Disconnected):
        body = {"event": "connection", "state": "disconnected", "reason": event.reason}
    elif isinstance(event, Reconnected):
        body = {"event": "connection", "state": "resynced", "adopted": len(event.diff.adopted),
                "settled": len(event.diff.settled)}
    elif isinstance(event, HaltChanged):
        body = {"event": "halt", "halted": event.halted, "reason": event.reason}
    elif _topic(event) == "guard":
        body = {"event": "guard", "state": "tripped", "reason": getattr(event, "reason", None)}
    else:
        return None
    return {"ts": _now_iso(), **body}


def echo_line(record: dict[str, Any]) -> None:
    """One JSON object on one line of stdout, flushed: a reader of the pipe sees it now."""
    click.echo(orjson.dumps(record, default=json_default).decode())
    sys.stdout.flush()


# ====================================================================== the table view


@define(eq=False)
class LiveView:
    """What the tables show beyond the manager's own book: recent fills, connection, guard."""

    oms: OrderManager
    topic: str = "all"
    guard: KillSwitchGuard | None = None
    title: str = ""
    fills: deque[FillReceived] = field(factory=lambda: deque(maxlen=RECENT_FILLS))
    connected: bool = True
    disconnected_at: float | None = None  # monotonic
    last_disconnect: str | None = None
    reconnects: int = 0
    events: int = 0

    def apply(self, event: object) -> bool:
        """Take an event in; True when the view changed and should be redrawn."""
        if isinstance(event, FillReceived):
            self.fills.append(event)
        elif isinstance(event, Disconnected):
            self.connected, self.last_disconnect = False, event.reason
            self.disconnected_at = self.disconnected_at or time.monotonic()
        elif isinstance(event, Connected):
            if not self.connected:
                self.reconnects += 1
            self.connected, self.disconnected_at = True, None
        elif _topic(event) is None:
            return False
        self.events += 1
        return True

    def status_line(self) -> Text:
        line = Text(self.title + "  " if self.title else "")
        if self.connected:
            line.append("connected", style="green")
        else:
            since = time.monotonic() - (self.disconnected_at or time.monotonic())
            line.append(f"DISCONNECTED for {since:.0f} s ({self.last_disconnect})", style="bold red")
        line.append(f"  reconnects {self.reconnects}  events {self.events}")
        if self.oms.halted:
            line.append("  HALTED", style="bold red")
        if self.guard is not None:
            if self.guard.fired:
                line.append(f"  guard TRIPPED: {self.guard.reason}", style="bold red")
            else:
                line.append("  guard armed", style="green")
        return line

    def orders_table(self) -> Table:
        orders = sorted(self.oms.orders(), key=lambda o: (o.symbol, str(o.side), o.local_id))
        table = Table(title=f"open orders ({len(orders)})", title_justify="left", expand=False)
        for name in ("symbol", "side", "qty", "price", "filled", "state", "order_id", "client_order_id"):
            table.add_column(name, justify="right" if name in ("qty", "price", "filled") else "left",
                             no_wrap=True)
        for o in orders:
            table.add_row(o.symbol, str(o.side), cell(o.quantity), cell(o.price), cell(o.filled_quantity),
                          str(o.state), cell(o.order_id), o.client_order_id)
        return table

    def fills_table(self) -> Table:
        table = Table(title=f"recent fills (last {RECENT_FILLS})", title_justify="left")
        for name in ("symbol", "side", "qty", "price", "fee", "client_order_id", "trade_id"):
            table.add_column(name, justify="right" if name in ("qty", "price", "fee") else "left",
                             no_wrap=True)
        for event in reversed(self.fills):
            f = event.fill
            table.add_row(f.symbol, str(f.side), cell(f.quantity), cell(f.price), cell(f.fee),
                          event.order.client_order_id, f.trade_id)
        return table

    def positions_table(self) -> Table:
        table = Table(title="positions", title_justify="left")
        for name in ("symbol", "position", "avg price", "realised P&L", "unrealised P&L"):
            table.add_column(name, justify="left" if name == "symbol" else "right", no_wrap=True)
        for symbol, p in sorted(self.oms.positions().items()):
            table.add_row(symbol, cell(p.quantity), cell(p.average_price), cell(p.realised_pnl),
                          cell(p.unrealised_pnl))
        return table

    def render(self) -> RenderableType:
        parts: list[RenderableType] = [self.status_line()]
        if self.topic in ("orders", "all"):
            parts.append(self.orders_table())
        if self.topic in ("fills", "all"):
            parts.append(self.fills_table())
        if self.topic in ("positions", "all"):
            parts.append(self.positions_table())
        return Group(*parts)


def _route_logs(to: Any, was: Any) -> Callable[[], None]:
    """Point the root logger's stream handlers writing to ``was`` at ``to`` (rich's stderr proxy, so
    log lines print above the live table instead of through it); returns the undo."""
    moved = [h for h in logging.getLogger().handlers
             if isinstance(h, logging.StreamHandler) and getattr(h, "stream", None) is was]
    for handler in moved:
        handler.setStream(to)

    def undo() -> None:
        for handler in moved:
            handler.setStream(was)

    return undo


async def show_live(view: LiveView, console: Console | None = None,
                    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Redraw ``view`` in place on every change until cancelled (the caller's scope ends it)."""
    console = console or Console()
    changed = trio.Event()
    with view.oms.events() as stream:
        original_stderr = sys.stderr
        with Live(view.render(), console=console, auto_refresh=False, redirect_stderr=True,
                  redirect_stdout=False, transient=False) as live:
            undo = _route_logs(sys.stderr, original_stderr)
            try:
                async with trio.open_nursery() as nursery:

                    async def consume() -> None:
                        nonlocal changed
                        async for event in stream:
                            if view.apply(event):
                                changed.set()

                    nursery.start_soon(consume)
                    task_status.started()
                    while True:
                        live.update(view.render(), refresh=True)
                        with trio.move_on_after(IDLE_REDRAW_SECONDS):
                            await changed.wait()
                        changed = trio.Event()
                        await trio.sleep(REFRESH_SECONDS)
            finally:
                live.update(view.render(), refresh=True)
                undo()


@define(eq=False)
class AdoptedOrders:
    """Orders the manager learnt from the exchange without an event: an order another process of the
    account placed is adopted on its ACK, and the core reports its changes only from then on (its
    first ``OrderUpdated`` is the fill). Found by comparing the local book after each event."""

    oms: OrderManager
    known: set[int] = field(factory=set)

    def __attrs_post_init__(self) -> None:
        self.known = {o.local_id for o in self.oms.orders(open_only=False)}

    def new(self) -> list[Any]:
        found = [o for o in self.oms.orders(open_only=False) if o.local_id not in self.known]
        self.known.update(o.local_id for o in found)
        return found


async def stream_json(oms: OrderManager, topic: str,
                      task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
    """Print every event of ``topic`` as a JSON line until cancelled; an order adopted from another
    process's ACK is printed as an ``order`` record with ``"adopted": true``."""
    adopted = AdoptedOrders(oms)
    with oms.events() as stream:
        task_status.started()
        async for event in stream:
            if topic in ("orders", "all"):
                for order in adopted.new():
                    echo_line({"ts": _now_iso(), "event": "order", "adopted": True, **order_dict(order)})
            if wanted(event, topic) and (record := event_record(event)) is not None:
                echo_line(record)


__all__ = ["IDLE_REDRAW_SECONDS", "RECENT_FILLS", "REFRESH_SECONDS", "TOPICS", "AdoptedOrders", "LiveView",
           "echo_line", "event_record", "fill_dict", "position_dict", "show_live", "stream_json", "wanted"]
