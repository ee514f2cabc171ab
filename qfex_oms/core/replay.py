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

Attribution (issue 18): a strategy's orders, TWAPs and stops carry its namespace in their wire
client id, so the replayed ``add_order``/``add_twap`` names their strategy again. Tags are on no
frame: the manager journals them as an attribution note just before the frame
(``attribution_note``), and replay gives them to the next order, TWAP or stop placed under that
client id. The note is shaped as an empty settlement note too, so a reader that knows only those
(the journal's compaction) reads it as naming no order.

A record the core cannot apply is logged and skipped: recovery never stops on one bad frame.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Literal

import orjson
from attrs import define

from qfex_oms.core.cancel import CancelIntent
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.model import Order
from qfex_oms.core.snapshot import NOTE_KEY, apply_settlement_note
from qfex_oms.core.stop_snapshot import apply_stop_note, is_stop_note
from qfex_oms.core.stops import STOP_KINDS, StopOrder, StopState
from qfex_oms.logs import get_logger
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType
from qfex_oms.protocol.errors import ProtocolError, RequestError

log = get_logger("qfex_oms.replay")

Direction = Literal["out", "in", "note"]
ATTRIBUTION_KEY = "attribution"
_ATTRIBUTION_START = b'{"' + ATTRIBUTION_KEY.encode() + b'"'
LabelKey = tuple[str, str, str]  # ("order" | "twap", symbol, wire client id)
Labels = dict[LabelKey, deque[frozenset[str]]]


def attribution_note(kind: Literal["order", "twap"], symbol: str, client_id: str,
                     tags: frozenset[str]) -> bytes:
    """The tags of the order (or stop) or TWAP about to be sent under ``client_id``, for the journal."""
    return orjson.dumps({ATTRIBUTION_KEY: {"kind": kind, "symbol": symbol, "client_id": client_id,
                                           "tags": sorted(tags)}, NOTE_KEY: []})


def is_attribution_note(raw: bytes) -> bool:
    return raw.startswith(_ATTRIBUTION_START)


def attribution_target(raw: bytes) -> tuple[str, str, str]:
    """(kind, symbol, client_id) an attribution note labels; ValueError if malformed."""
    try:
        body = orjson.loads(raw)[ATTRIBUTION_KEY]
        return str(body["kind"]), str(body["symbol"]), str(body["client_id"])
    except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"malformed attribution note: {exc!r}") from None


def _label(labels: Labels, raw: bytes) -> None:
    try:
        body = orjson.loads(raw)[ATTRIBUTION_KEY]
        key = (str(body["kind"]), str(body["symbol"]), str(body["client_id"]))
        tags = frozenset(str(t) for t in body["tags"])
    except (KeyError, TypeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"malformed attribution note: {exc!r}") from None
    labels.setdefault(key, deque()).append(tags)


def _take_label(labels: Labels, key: LabelKey) -> frozenset[str] | None:
    queue = labels.get(key)
    if not queue:
        return None
    tags = queue.popleft()
    if not queue:
        del labels[key]
    return tags


@define
class ReplayStats:
    commands: int = 0
    replies: int = 0
    skipped: int = 0
    connections: int = 0
    notes: int = 0


def replay(core: OmsCore, records: Iterable[tuple[Direction, bytes | str]]) -> ReplayStats:
    stats = ReplayStats()
    labels: Labels = {}  # tags noted for the next order or TWAP under a client id
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
                    _command(core, request, labels)
                stats.commands += 1
            elif direction == "note":
                note = raw if isinstance(raw, bytes) else raw.encode()
                if note.startswith(_ATTRIBUTION_START):
                    _label(labels, note)
                elif is_stop_note(note):
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


def _command(core: OmsCore, request: m.Request, labels: Labels) -> None:
    if isinstance(request, m.AddOrder):
        cid = request.client_order_id or ""
        tags = _take_label(labels, ("order", request.symbol, cid)) if labels else None
        placed: Order | StopOrder
        if request.order_type in STOP_KINDS:
            if request.price is None:
                raise ValueError("a stop's add_order without a trigger price")
            placed = core.place_stop(request.symbol, request.side, request.order_type, request.quantity,
                                     request.price, cid)
        else:
            placed = core.place_order(request.symbol, request.side, request.order_type,
                                      request.order_time_in_force, request.quantity, request.price, cid,
                                      reduce_only=request.reduce_only, take_profit=request.take_profit,
                                      stop_loss=request.stop_loss)
        if tags is not None:
            placed.tags = tags
    elif isinstance(request, m.CancelOrder):
        core.cancel(_intent(request))
    elif isinstance(request, m.CancelAllOrders):
        core.cancel_all_sent()
    elif isinstance(request, m.AddTwap):
        cid = request.client_twap_id or ""
        tags = _take_label(labels, ("twap", request.symbol, cid)) if labels else None
        core.place_twap(request.symbol, request.side, request.total_quantity, request.num_orders,
                        request.order_interval_secs, request.reduce_only, cid,
                        tags=tags if tags is not None else frozenset())
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
