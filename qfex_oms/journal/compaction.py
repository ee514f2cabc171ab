"""Which journal records retention may delete: those that only concern orders closed long ago.

Kept apart from ``journal.py`` (the file, its writer and its recovery) because it is a different
question, answered by replaying the journal through the core (``plan_compaction``'s docstring has the
design). ``Journal.compact`` applies the plan.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator
from typing import Any

from attrs import define, field

from qfex_oms.core import twaps as twap_rules
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.model import Order, Twap
from qfex_oms.core.replay import attribution_target, is_attribution_note, replay
from qfex_oms.core.snapshot import note_order_ids
from qfex_oms.core.stop_snapshot import is_stop_note, note_stop_ids
from qfex_oms.core.stops import StopOrder
from qfex_oms.journal.store import Direction, Record
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType
from qfex_oms.protocol.errors import ProtocolError, RequestError

Entity = Order | Twap | StopOrder  # what a journal record can concern


class Named(enum.StrEnum):
    """What a record names, to find the orders and TWAPs it concerns (the first item of a key)."""

    ORDER_ID = "o"  # an order id, or a TWAP id where QFEX answers a TWAP cancel with it
    CLIENT_ORDER_ID = "c"  # (symbol, client_order_id): every order sharing it
    TWAP_ID = "t"
    CLIENT_TWAP_ID = "ct"  # (symbol, client_twap_id)
    STOP_ID = "s"  # a stop order's id (it is also the id of the order it becomes when it fires)


@define
class CompactionPlan:
    delete: set[int] = field(factory=set)
    orders_removed: int = 0
    twaps_removed: int = 0


def plan_compaction(records: Iterable[Record], cutoff: float) -> CompactionPlan:
    """Which records can go. Design (the simplest one that keeps replay exact for what remains):

    1. Replay every record through a fresh core, exactly as recovery does, and note for each record
       the ids its frame names: ``order_id``; ``(symbol, client_order_id)``; ``twap_id``;
       ``(symbol, client_twap_id)`` (an ``err`` names what its ``incoming_message`` names).
       ``cancel_all_orders`` and connection boundaries (``subscribe``) name every order and TWAP
       live at that point of the replay.
    2. Resolve the ids against the replayed book. A client id names *every* order that ever used it
       (QFEX client ids need not be unique), so a client-id group is kept or removed as a whole and
       the ACK-by-client-id matching of what remains is unchanged.
    3. An order is removable when it is terminal (FILLED, CANCELLED, REJECTED) and the last record
       naming it is older than ``cutoff``; a TWAP child only with its TWAP, a TWAP only with all its
       children.
    4. A record is deleted when it is older than ``cutoff`` and everything it names is removable; a
       record naming nothing the core tracks (subscription acks, snapshots, queries) when it is older
       than ``cutoff``.

    Nothing an open order depends on is deleted: every record naming it (or its client-id group, or
    its TWAP) stays, in order, and a deleted record touched only removed orders.
    """

    core = OmsCore()
    tracker = core.tracker
    entries: list[tuple[Record, list[tuple[str, ...]], list[Entity] | None]] = []

    def feed() -> Iterator[tuple[Direction, bytes]]:
        for record in records:
            keys, everything_live = _names(record)
            live: list[Entity] | None = None
            if everything_live:
                live = [*tracker.open_orders(), *tracker.twaps(open_only=True), *core.stops.stops()]
            entries.append((record, keys, live))
            yield record.direction, record.raw

    replay(core, feed())

    twaps_by_client: dict[tuple[str, str], list[Twap]] = {}
    for twap in tracker.twaps():
        twaps_by_client.setdefault((twap.symbol, twap.client_twap_id), []).append(twap)

    stops_by_client: dict[tuple[str, str], list[StopOrder]] = {}
    for stop in core.stops.stops(open_only=False):
        stops_by_client.setdefault((stop.symbol, stop.client_order_id), []).append(stop)

    def resolve(key: tuple[str, ...]) -> list[Entity]:
        kind = key[0]
        if kind in (Named.ORDER_ID, Named.STOP_ID):
            found: list[Entity] = []
            order = tracker.by_order_id(key[1])
            stop = core.stops.by_id(key[1])
            twap = tracker.twap_by_id(key[1]) if kind == Named.ORDER_ID else None
            found += [e for e in (order, stop, twap) if e is not None]
            return found
        if kind == Named.CLIENT_ORDER_ID:
            return [*tracker.members(key[1], key[2]), *stops_by_client.get((key[1], key[2]), ())]
        if kind == Named.TWAP_ID:
            twap = tracker.twap_by_id(key[1])
            return [twap] if twap is not None else []
        return list(twaps_by_client.get((key[1], key[2]), ()))

    last_seen: dict[int, float] = {}
    resolved: list[list[Entity]] = []
    for record, keys, live in entries:
        named: list[Entity] = list(live or ())
        for key in keys:
            named.extend(resolve(key))
        for entity in named:
            if last_seen.get(id(entity), -1.0) < record.ts:
                last_seen[id(entity)] = record.ts
        resolved.append(named)

    def closed_long_ago(entity: Entity) -> bool:
        return entity.state.is_terminal and last_seen.get(id(entity), cutoff) < cutoff

    # A TWAP goes only with all its children, a child only with its TWAP, and an order only with
    # every other order sharing its client id (they are matched by that id on replay).
    removable: dict[int, bool] = {}
    for group in twaps_by_client.values():
        ok = all(closed_long_ago(t) and all(closed_long_ago(c) for c in t.children) for t in group)
        for twap in group:
            removable[id(twap)] = ok
    for order in tracker.orders():
        parent = tracker.twap_by_id(order.twap_id or twap_rules.parent_twap_id(order.client_order_id))
        removable[id(order)] = closed_long_ago(order) and (parent is None or removable[id(parent)])
    for order in tracker.orders():
        members = tracker.members(order.symbol, order.client_order_id)
        removable[id(order)] = all(removable[id(m)] for m in members)
    for stop in core.stops.stops(open_only=False):  # with its parent and the order it became
        linked = [tracker.by_order_id(stop.parent_order_id), stop.order]
        removable[id(stop)] = closed_long_ago(stop) and all(
            removable.get(id(o), True) for o in linked if o is not None)
    orders_removed = sum(removable[id(o)] for o in tracker.orders())

    plan = CompactionPlan(orders_removed=orders_removed,
                          twaps_removed=sum(removable[id(t)] for t in tracker.twaps()))
    for (record, _, _), named in zip(entries, resolved, strict=True):
        if record.ts < cutoff and all(removable.get(id(e), False) for e in named):
            plan.delete.add(record.seq)
    return plan


def _names(record: Record) -> tuple[list[tuple[str, ...]], bool]:
    """The ids a frame names, and whether it concerns every live order (cancel-all, new connection)."""
    keys: list[tuple[str, ...]] = []
    if record.direction == "note":
        try:
            if is_attribution_note(record.raw):  # the tags of the order or TWAP sent next under an id
                labelled, symbol, client_id = attribution_target(record.raw)
                named = Named.CLIENT_TWAP_ID if labelled == "twap" else Named.CLIENT_ORDER_ID
                return [(named, symbol, client_id)], False
            if is_stop_note(record.raw):
                return [(Named.STOP_ID, stop_id) for stop_id in note_stop_ids(record.raw)], False
            return [(Named.ORDER_ID, order_id) for order_id in note_order_ids(record.raw)], False
        except ValueError:
            return keys, False  # replay skips it too
    try:
        if record.direction == "out":
            request = codec.decode_request(record.raw)
        else:
            reply = codec.decode_reply(record.raw)
    except (ProtocolError, RequestError, ValueError):
        return keys, False  # replay skips it too
    if record.direction == "out":
        if isinstance(request, m.CancelAllOrders | m.Subscribe):
            return keys, True
        if isinstance(request, m.AddOrder):
            keys.append((Named.CLIENT_ORDER_ID, request.symbol, request.client_order_id or ""))
        elif isinstance(request, m.ModifyOrder):
            keys.append((Named.ORDER_ID, request.order_id))
        elif isinstance(request, m.AddTwap):
            keys.append((Named.CLIENT_TWAP_ID, request.symbol, request.client_twap_id or ""))
        elif isinstance(request, m.CancelOrder):
            keys.append(_cancel_key(request.cancel_order_id_type, request.order_id, request.symbol,
                                    CancelIdType))
        elif isinstance(request, m.CancelStopOrder | m.ModifyStopOrder):
            keys.append((Named.STOP_ID, request.stop_order_id))
        return keys, False
    if isinstance(reply, m.OrderResponse | m.FillResponse):
        if reply.order_id:
            keys.append((Named.ORDER_ID, reply.order_id))  # or a TWAP's id: the answer to a TWAP cancel
        keys.append((Named.CLIENT_ORDER_ID, reply.symbol, reply.client_order_id or ""))
        if isinstance(reply, m.OrderResponse):  # a refused TWAP cancel echoes the client TWAP id
            keys.append((Named.CLIENT_TWAP_ID, reply.symbol, reply.client_order_id or ""))
    elif isinstance(reply, m.StopOrderResponse):
        keys.append((Named.STOP_ID, reply.stop_order_id))
        keys.append((Named.CLIENT_ORDER_ID, reply.symbol, reply.client_order_id or ""))
    elif isinstance(reply, m.TwapResponse):
        keys.append((Named.TWAP_ID, reply.twap_id))
        keys.append((Named.CLIENT_TWAP_ID, reply.symbol, reply.client_twap_id or ""))
    elif isinstance(reply, m.Err) and isinstance(reply.incoming_message, dict):
        params = reply.incoming_message.get("params")
        kind = reply.incoming_message.get("type")
        if isinstance(params, dict):
            symbol = str(params.get("symbol"))
            if kind == "add_order":
                keys.append((Named.CLIENT_ORDER_ID, symbol, params.get("client_order_id") or ""))
            elif kind == "add_twap":
                keys.append((Named.CLIENT_TWAP_ID, symbol, params.get("client_twap_id") or ""))
            elif kind == "modify_order":
                keys.append((Named.ORDER_ID, str(params.get("order_id"))))
            elif kind == "cancel_order":
                keys.append(_cancel_key(params.get("cancel_order_id_type"), str(params.get("order_id")),
                                        symbol, CancelIdType))
    return keys, False


def _cancel_key(mode: object, value: str, symbol: str, kinds: Any) -> tuple[str, ...]:
    if mode == kinds.CLIENT_ORDER_ID:
        return (Named.CLIENT_ORDER_ID, symbol, value)
    if mode == kinds.TWAP_ID:
        return (Named.TWAP_ID, value)
    if mode == kinds.CLIENT_TWAP_ID:
        return (Named.CLIENT_TWAP_ID, symbol, value)
    return (Named.ORDER_ID, value)
