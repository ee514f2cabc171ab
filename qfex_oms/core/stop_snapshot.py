"""Settle the stop book against a ``get_user_orders`` snapshot (resync, restart, kill switch).

Stops are read from both places QFEX's sources put them (qfex-api.md §14.4): the ``stop_orders``
key and the ``orders`` key (rows whose ``type`` is TAKE_PROFIT/STOP_LOSS, the 2025-10-30
changelog). ``without_stops`` gives the snapshot the order settlement must see: a stop row in
``orders`` is not an order, and adopting it as one would make the kill switch wait for it forever.

Rules, the order settlement's (``snapshot.apply_snapshot``) for stops:

* a row naming a stop we know (on its symbol) shows it staged: ACTIVE, with its trigger and size;
  unless its cancel is owed (the strategy's cancel was lost), then the cancel goes again;
* a row the book lacks binds the one pending stop it fits, or is adopted (staged from a parent);
* a live stop a complete snapshot does not show is gone: TRIGGERED when the order it became is
  known (run this after ``apply_snapshot``: the trades it adopts link fired stops), else CANCELLED
  with ``MISSING_FROM_SNAPSHOT``. A partial snapshot settles nothing for being missing;
* ``fence``: a stop touched after the snapshot was requested is left alone.

What a snapshot concluded is journaled as a note (``stop_settlement_note``) and replayed by
``apply_stop_note``, like the orders' settlement note.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import orjson
from attrs import define, field

from qfex_oms.core import stop_replies
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.snapshot import SnapshotDiff, apply_snapshot
from qfex_oms.core.states import LocalStatus
from qfex_oms.core.stop_rows import StopRow, row_from_push
from qfex_oms.core.stops import StopEvent, StopOrder, StopRequest, StopState
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m

log = get_logger("qfex_oms.core.stops")

STOP_NOTE_KEY = "stops_settled"
SETTLED_MISSING = str(LocalStatus.MISSING_FROM_SNAPSHOT)


@define
class StopDiff:
    adopted: list[StopOrder] = field(factory=list)
    confirmed: list[StopOrder] = field(factory=list)  # shown staged, were not ACTIVE before
    ended: list[StopOrder] = field(factory=list)  # live before, ended by this snapshot
    unconfirmed: list[StopOrder] = field(factory=list)  # a partial snapshot did not show them
    cancels_resent: list[StopRequest] = field(factory=list)
    malformed: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.adopted or self.confirmed or self.ended or self.cancels_resent)


def stop_rows(snapshot: m.AllOrdersResponse) -> tuple[list[StopRow], int]:
    """Every stop the snapshot shows, under either key, once by id (``AllOrdersResponse.stops``);
    and how many rows were malformed."""
    rows: dict[str, StopRow] = {}
    malformed = 0
    for push in snapshot.stops():
        row = row_from_push(push)
        if row is None:
            malformed += 1
        else:
            rows.setdefault(row.stop_order_id, row)
    return list(rows.values()), malformed


def without_stops(snapshot: m.AllOrdersResponse) -> m.AllOrdersResponse:
    """The snapshot minus the stop rows of its ``orders`` key: what the order settlement takes."""
    orders = snapshot.regular_orders()
    return snapshot if len(orders) == len(snapshot.orders) else attrs.evolve(snapshot, orders=orders)


def settle_snapshot(core: OmsCore, fence: int, snapshot: m.AllOrdersResponse, trades: Iterable[m.Trade] = (),
                    *, complete: bool = True, defer_missing: bool = False) -> tuple[SnapshotDiff, StopDiff]:
    """Orders, TWAPs and stops settled against one snapshot, in the order that links fired stops
    to the orders they became: ``apply_snapshot`` on the snapshot without its stop rows (its
    options passed on), then ``settle_stops``. The stop diff's ``ended`` counts stops the trades
    ended too."""
    known_live = [s for s in core.stops.stops() if s.stop_order_id is not None]
    diff = apply_snapshot(core, fence, without_stops(snapshot), trades, complete=complete,
                          defer_missing=defer_missing)
    return diff, settle_stops(core, fence, snapshot, complete=complete, known_live=known_live)


def settle_stops(core: OmsCore, fence: int, snapshot: m.AllOrdersResponse, *, complete: bool = True,
                 known_live: list[StopOrder] | None = None) -> StopDiff:
    """Settle the stop book against a snapshot (see the module docstring). Call it after
    ``apply_snapshot(core, fence, without_stops(snapshot), trades, complete=...)``, or call
    ``settle_snapshot`` for both. ``known_live``: the stops live before the orders were settled."""
    diff = StopDiff()
    book = core.stops
    if known_live is None:
        known_live = [s for s in book.stops() if s.stop_order_id is not None]
    rows, diff.malformed = stop_rows(snapshot)
    if diff.malformed:
        log.warning("malformed stop rows in a snapshot ignored", count=diff.malformed)
    seen: set[int] = set()
    for row in rows:
        stop = book.by_id(row.stop_order_id)
        if stop is not None and stop.symbol != row.symbol:
            log.warning("snapshot row names a tracked stop's id on another symbol; ignored",
                        row_symbol=row.symbol, **stop.describe())
            seen.add(stop.local_id)
            diff.unconfirmed.append(stop)
            continue
        if stop is None:
            stop = _bind_or_adopt(core, fence, row, diff)
        seen.add(stop.local_id)
        if stop.seq > fence and stop not in diff.adopted:
            continue
        _shown_staged(core, stop, row, diff)
    for stop in book.stops():
        if stop.local_id in seen or stop.seq > fence:
            continue
        if not complete:
            diff.unconfirmed.append(stop)
            continue
        _settle_gone(core, stop)
    diff.ended = [s for s in known_live if not s.state.is_live]
    return diff


def _bind_or_adopt(core: OmsCore, fence: int, row: StopRow, diff: StopDiff) -> StopOrder:
    for stop in core.stops.pending(row.symbol):
        if stop.seq <= fence and stop.could_be(row.side, row.kind, row.price, row.quantity) and (
                not row.client_order_id or row.client_order_id == stop.client_order_id):
            core.stops.bind(stop, row.stop_order_id)
            return stop
    stop = stop_replies.adopt_stop(core, row)
    diff.adopted.append(stop)
    return stop


def _shown_staged(core: OmsCore, stop: StopOrder, row: StopRow, diff: StopDiff) -> None:
    stop.needs_settlement = False
    if not stop.state.is_live:
        return  # ended in our book after the snapshot was taken: the later word stands
    stop.trigger_price, stop.quantity = row.price, row.quantity
    if stop.cancel_owed:
        if stop.state is not StopState.ACTIVE:
            stop_replies.apply_stop_event(core, stop, StopEvent.SETTLE_ACTIVE, None)
        if stop.cancel_request is None:
            diff.cancels_resent.append(stop_replies.cancel_stop(core, stop))
        return
    if stop.state is not StopState.ACTIVE:
        stop_replies.apply_stop_event(core, stop, StopEvent.SETTLE_ACTIVE, None)
        diff.confirmed.append(stop)


def _settle_gone(core: OmsCore, stop: StopOrder) -> None:
    """Not staged any more: it fired (the order it became is known) or it was cancelled. A stop
    the exchange never named is settled the same way: a lost answer is never a rejection."""
    if stop.order is None:
        order = stop_replies.find_triggered_order(core, stop)
        if order is not None:
            stop_replies.trigger(core, stop, order)
            return
    else:
        stop_replies.apply_stop_event(core, stop, StopEvent.TRIGGERED, None)
        return
    stop_replies.apply_stop_event(core, stop, StopEvent.CANCELLED, SETTLED_MISSING)


def stop_settlement_note(diff: StopDiff) -> bytes | None:
    """The stops a snapshot ended, for the journal (replayed by ``apply_stop_note``)."""
    ended = [{"stop_order_id": s.stop_order_id, "state": str(s.state), "status": s.last_status,
              "order_id": s.order.order_id if s.order is not None else None}
             for s in diff.ended if s.stop_order_id is not None]
    return orjson.dumps({STOP_NOTE_KEY: ended}) if ended else None


def is_stop_note(raw: bytes) -> bool:
    return raw.startswith(b'{"' + STOP_NOTE_KEY.encode() + b'"')


def _note_rows(raw: bytes) -> list[tuple[str, str, str | None, str | None]]:
    try:
        return [(str(r["stop_order_id"]), str(r["state"]), r.get("status"), r.get("order_id"))
                for r in orjson.loads(raw)[STOP_NOTE_KEY]]
    except (KeyError, TypeError, AttributeError, orjson.JSONDecodeError) as exc:
        raise ValueError(f"malformed stop settlement note: {exc!r}") from None


def note_stop_ids(raw: bytes) -> list[str]:
    return [stop_id for stop_id, _, _, _ in _note_rows(raw)]


def apply_stop_note(core: OmsCore, raw: bytes) -> None:
    """Replay a snapshot's conclusion about stops: end the same stops the same way, if live."""
    for stop_id, state, status, order_id in _note_rows(raw):
        stop = core.stops.by_id(stop_id)
        if stop is None or not stop.state.is_live:
            continue
        if state == StopState.TRIGGERED:
            order = core.tracker.by_order_id(order_id)
            if order is not None:
                stop.order = order
            stop_replies.apply_stop_event(core, stop, StopEvent.TRIGGERED, status)
        elif state == StopState.CANCELLED:
            stop_replies.apply_stop_event(core, stop, StopEvent.CANCELLED, status)


