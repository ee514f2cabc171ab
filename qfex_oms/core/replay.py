"""Rebuild a book from a journal by replaying it through the same core that built it live.

Sent frames are commands: an ``add_order`` is placed again, a ``cancel_order`` is resolved again,
and so on, with the core's outputs discarded (nothing is sent). Received frames are applied as
replies. Trade ids dedupe fills exactly as they did live, so a fill journaled twice counts once.
After replay everything that was in flight is ambiguous, so ``connection_lost`` marks it UNKNOWN;
the manager then resyncs with the exchange, which settles it.

Connection boundaries are replayed too: the live core saw ``connection_lost`` at every disconnect,
and the first journaled frames of every connection are its ``subscribe`` requests (auth frames are
never journaled), so a ``subscribe`` to a channel the current connection already subscribed to
marks a new connection. Without it, requests that were lost at a disconnect would still look in
flight (a later modify of the same order would be refused, a pending order would stay PENDING_NEW).

Stop orders replay the same way (``core.stops``): a stop's ``add_order``, ``cancel_stop_order``
and ``modify_stop_order`` are commands again, its answers (``order_response`` under its id,
``stop_order_response``, ``ack``) replies, and a snapshot's conclusion about stops is a note of its
own (``stop_snapshot.stop_settlement_note``).

Snapshot replies (``all_orders_response``, ``user_trades_response``) are journaled but not applied:
whether a snapshot was a full reconcile cannot be told from the frames alone, and settling an order
wrongly as gone could not be undone. What a full reconcile concluded is journaled instead as a
``note`` record (the orders it ended, by id, and how; see ``snapshot.settlement_note``) and replayed
as such; the resync that follows every recovery re-learns the rest (fills, bindings, adoptions) from
the exchange.

A record the core cannot apply is logged and skipped: recovery never stops on one bad frame.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from attrs import define

from qfex_oms.core.cancel import CancelIntent
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.snapshot import apply_settlement_note
from qfex_oms.core.stop_snapshot import apply_stop_note, is_stop_note
from qfex_oms.core.stops import STOP_KINDS, StopState
from qfex_oms.logs import get_logger
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType
from qfex_oms.protocol.errors import ProtocolError, RequestError

log = get_logger("qfex_oms.replay")

Direction = Literal["out", "in", "note"]


@define
class ReplayStats:
    commands: int = 0
    replies: int = 0
    skipped: int = 0
    connections: int = 0
    notes: int = 0


def replay(core: OmsCore, records: Iterable[tuple[Direction, bytes | str]]) -> ReplayStats:
    stats = ReplayStats()
    channels: set[str] = set()  # subscribed on the current connection
    for direction, raw in records:
        try:
            if direction == "out":
                request = codec.decode_request(raw)
                if isinstance(request, m.Subscribe):
                    wanted = {str(c) for c in request.channels}
                    if not channels or channels & wanted:
                        core.connection_lost()  # a new connection: the previous one was lost
                        stats.connections += 1
                        channels = set()
                    channels |= wanted
                else:
                    _command(core, request)
                stats.commands += 1
            elif direction == "note":
                note = raw if isinstance(raw, bytes) else raw.encode()
                if is_stop_note(note):
                    apply_stop_note(core, note)
                else:
                    apply_settlement_note(core, note)
                stats.notes += 1
            else:
                core.on_reply(codec.decode_reply(raw))
                stats.replies += 1
        except (ProtocolError, RequestError, ValueError) as exc:
            stats.skipped += 1
            log.warning("journal record skipped", direction=direction, error=str(exc),
                        raw=raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
        except Exception as exc:  # a core bug must not stop recovery: log it loudly and go on
            stats.skipped += 1
            log.error("journal record failed in the core; skipped", direction=direction,
                      error=repr(exc), raw=raw if isinstance(raw, str) else raw.decode("utf-8", "replace"))
        core.take_frames()
        core.take_events()
    core.connection_lost()
    core.take_frames()
    core.take_events()
    return stats


def _command(core: OmsCore, request: m.Request) -> None:
    if isinstance(request, m.AddOrder) and request.order_type in STOP_KINDS:
        if request.price is None:
            raise ValueError("a stop's add_order without a trigger price")
        core.place_stop(request.symbol, request.side, request.order_type, request.quantity,
                        request.price, request.client_order_id or "")
    elif isinstance(request, m.AddOrder):
        core.place_order(request.symbol, request.side, request.order_type, request.order_time_in_force,
                         request.quantity, request.price, request.client_order_id or "",
                         reduce_only=request.reduce_only, take_profit=request.take_profit,
                         stop_loss=request.stop_loss)
    elif isinstance(request, m.CancelOrder):
        core.cancel(_intent(request))
    elif isinstance(request, m.CancelAllOrders):
        core.cancel_all_sent()
    elif isinstance(request, m.AddTwap):
        core.place_twap(request.symbol, request.side, request.total_quantity, request.num_orders,
                        request.order_interval_secs, request.reduce_only, request.client_twap_id or "")
    elif isinstance(request, m.ModifyOrder):
        order = core.tracker.by_order_id(request.order_id)
        if order is not None and order.state.is_live:
            core.modify_order(order, request.price, request.quantity)
    elif isinstance(request, m.CancelStopOrder | m.ModifyStopOrder):
        _stop_command(core, request)


def _stop_command(core: OmsCore, request: m.CancelStopOrder | m.ModifyStopOrder) -> None:
    """A stop cancel or modify, asked again of the book as it was then (if the stop was live)."""
    stop = core.stops.by_id(request.stop_order_id)
    if stop is None or not stop.state.is_live or stop.stop_order_id is None:
        return
    if isinstance(request, m.CancelStopOrder):
        core.cancel_stop(stop)
    elif stop.modify_request is None and stop.state is not StopState.PENDING_CANCEL:
        core.modify_stop(stop, request.price, request.quantity)


def _intent(request: m.CancelOrder) -> CancelIntent:
    """The intent a journaled ``cancel_order`` carried: its one id selector and its symbol."""
    mode, value, symbol = request.cancel_order_id_type, request.order_id, request.symbol
    if mode is CancelIdType.ORDER_ID:
        return CancelIntent(order_id=value, symbol=symbol)
    if mode is CancelIdType.CLIENT_ORDER_ID:
        return CancelIntent(client_order_id=value, symbol=symbol)
    if mode is CancelIdType.TWAP_ID:
        return CancelIntent(twap_id=value, symbol=symbol)
    if mode is CancelIdType.CLIENT_TWAP_ID:
        return CancelIntent(client_twap_id=value, symbol=symbol)
    raise ValueError(f"unknown cancel_order_id_type {mode!r}")
