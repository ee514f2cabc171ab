"""Settle the book against what the exchange says it has (after a reconnect, a restart, a kill).

Input: the open orders and TWAPs of ``get_user_orders`` (all pages merged) and the account's
trades. Trades go in first as fills, deduplicated by trade id, so an order that filled while we
were away ends FILLED rather than CANCELLED. Then: exchange orders we lack are adopted; our live
orders the exchange shows open are confirmed OPEN; our live orders it does not show are gone and are
settled from their fills (FILLED when nothing remains, else CANCELLED — the only place a cancel is
concluded without a CANCELLED frame, because the order is provably no longer on the book).

``fence`` is the core sequence number when the snapshot was requested: an order touched after it
(placed, cancelled, modified) is newer than the snapshot and is left alone.

A paged or partial snapshot proves only what it shows (``complete=False``): with more than one
page of ``get_user_orders``, an order leaving the open set between two pages shifts the next page,
and a resting order may be on none. Then nothing is settled for being missing: the live orders it
does not show stay as they are and are listed in ``unconfirmed``, for the shell to ask QFEX about
each (``get_order``; ``settle_from_order_query``). TWAPs likewise: they travel in the same paged
reply and whether QFEX pages them is not documented, so a TWAP missing from a partial snapshot is
left as it is (``twaps_unconfirmed``) until a complete one. Trades still apply: they are history.

A cancel owed by an order the snapshot shows open (``Order.cancel_owed``: the strategy's cancel was
cut off) is sent again rather than the order being confirmed OPEN: the frames come out of
``take_frames()`` and their requests are listed in ``cancels_resent``.

Ids are matched with their symbol: a row or trade naming a tracked order's id on another symbol is
malformed for that order; it is logged and neither confirms nor settles it (``unconfirmed``).

An exchange order the book lacks (its ACK was lost) is bound to a pending order only when it is
the one pending order it can describe (side, type, time in force, price, quantity) and no other
unknown exchange order can describe that pending order too: client ids are not unique, and the first
pending order sharing one may be a sibling that never rested. When that cannot be decided, the
exchange order is left out (``unresolved``) and its candidates stay unsettled for a later snapshot or
reply to decide; nothing is guessed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import orjson
from attrs import define, field

from qfex_oms.core import binding, fills, twap_replies
from qfex_oms.core import twaps as twap_rules
from qfex_oms.core.drops import malformed_fill
from qfex_oms.core.engine import OmsCore
from qfex_oms.core.model import CancelRequest, Fill, Order, Twap
from qfex_oms.core.replies import order_from_response, size_in_doubt, take_size
from qfex_oms.core.states import LocalStatus, OrderEvent, OrderState, TwapEvent
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus, OrderType, TimeInForce

log = get_logger("qfex_oms.core")
_ZERO = Decimal(0)

SETTLED_MISSING = str(LocalStatus.MISSING_FROM_SNAPSHOT)
NOTE_KEY = "settled"


@define
class SnapshotDiff:
    adopted: list[Order] = field(factory=list)
    confirmed_open: list[Order] = field(factory=list)
    settled: list[Order] = field(factory=list)
    fills_added: list[Fill] = field(factory=list)
    twaps_adopted: list[Twap] = field(factory=list)
    twaps_settled: list[Twap] = field(factory=list)
    unresolved: list[str] = field(factory=list)  # exchange order ids that fit several pending orders
    ended: list[Order] = field(factory=list)  # orders the book knew by id, live before, ended by it
    # Live orders a partial snapshot (or a malformed row) did not prove open or gone: left as they
    # were, for a targeted query (get_order, settle_from_order_query) or a later snapshot.
    unconfirmed: list[Order] = field(factory=list)
    twaps_unconfirmed: list[Twap] = field(factory=list)
    twaps_missing: list[Twap] = field(factory=list)  # as ``missing``, for QFEX's TWAP history
    cancels_resent: list[CancelRequest] = field(factory=list)  # owed cancels sent again
    # Live orders a complete snapshot did not show (nor bind), left for QFEX's order history to say
    # how they ended (``defer_missing``; ``core.history.settle_from_history``).
    missing: list[Order] = field(factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.adopted or self.settled or self.fills_added or self.twaps_adopted
                    or self.twaps_settled or self.cancels_resent)


def apply_snapshot(core: OmsCore, fence: int, snapshot: m.AllOrdersResponse,
                   trades: Iterable[m.Trade] = (), *, complete: bool = True,
                   defer_missing: bool = False) -> SnapshotDiff:
    """Settle the book against the exchange's open orders and trades (see the module docstring).

    ``complete`` says the snapshot holds every open order (one page): only then is a live order it
    does not show settled as gone. Otherwise it is left as it was and listed in ``unconfirmed``.
    ``defer_missing``: a live order that the snapshot does not show is left for QFEX's order history
    (``missing``) rather than settled from its fills: the history says how it really ended (and names
    an order whose every answer was lost).
    """
    diff = SnapshotDiff()
    tracker = core.tracker
    known_live = [o for o in tracker.open_orders() if o.order_id is not None]
    trades = _usable_trades(core, trades)
    rows, left_alone = _usable_rows(core, snapshot.orders, diff)
    seen = _identify(core, fence, rows, trades, diff) | left_alone
    unresolved = set(diff.unresolved)
    # What the rows say of an order's size goes in before any trade applies: strangers are adopted
    # from their row, and a known order's row may name a size the book lacks (an adopted order's
    # size is a lower bound; a modify's answer may be lost). Measured against a smaller size, a
    # trade would end FILLED an order the row shows resting.
    for row in rows:
        if not row.order_id or row.order_id in unresolved:
            continue
        order = tracker.by_order_id(row.order_id)
        if order is None:
            diff.adopted.append(_adopt(core, fence, order_from_response(row)))
        elif _in_scope(order, fence, set()):
            _note_row(core, order, row)
    for trade in trades:
        if trade.order_id not in unresolved:
            _apply_trade(core, fence, trade, diff, complete)
    learnt = {o.local_id for o in diff.adopted}
    for row in rows:
        if row.order_id in unresolved:
            continue
        order = tracker.by_order_id(row.order_id)
        if order is None:
            order = _adopt(core, fence, order_from_response(row))
            diff.adopted.append(order)
            learnt.add(order.local_id)
        seen.add(order.local_id)
        if not _in_scope(order, fence, learnt):
            continue
        _note_row(core, order, row)  # again: its leaves after the trades (the floor only lowers)
        _shown_open(core, order, str(row.status), diff)
    for order in tracker.open_orders():
        if order.local_id in seen or not _in_scope(order, fence, learnt):
            continue
        if complete and defer_missing:
            diff.missing.append(order)
        elif complete:
            settle_gone(core, order)
            diff.settled.append(order)
        else:
            diff.unconfirmed.append(order)
    diff.unconfirmed.extend(o for o in tracker.open_orders()
                            if o.local_id in left_alone and o.seq <= fence)
    _settle_twaps(core, fence, snapshot.twaps, diff, complete, defer_missing)
    diff.ended = [o for o in known_live if not o.state.is_live]
    return diff


def _adopt(core: OmsCore, fence: int, order: Order) -> Order:
    """Adopting stamps the order newer than every fence so far (an older snapshot, answered later,
    must not settle it); this snapshot settles it all the same (``_in_scope``)."""
    return core.adopt(order)


def _in_scope(order: Order, fence: int, fresh: set[int]) -> bool:
    """Whether this snapshot may settle the order: not touched after it was requested, or learnt
    from this very snapshot (``fresh``: local ids it adopted)."""
    return order.seq <= fence or order.local_id in fresh


def _note_row(core: OmsCore, order: Order, row: m.OrderResponse) -> None:
    """What a row says of an order it shows open: its size, price and leaves as they stand.

    The row is the exchange's order now: a modify whose answer was lost shows here first, and an
    order adopted from trades alone (their sum a lower bound) learns its size. A new size comes
    with the row's leaves (the leaves floor of the old size would count fills that never were);
    the same size only lowers the leaves. Only called for orders in scope (not touched after the
    snapshot was requested), so the row is not older than a local modify."""
    share = core.tracker.open_share(order)
    _take_row(order, row)
    core.tracker.reshare(order, share)


def _take_row(order: Order, row: m.OrderResponse) -> None:
    if row.quantity is not None and row.quantity != order.quantity and \
            not (order.adopted and row.quantity < order.fill_total):
        order.quantity = row.quantity
        leaves = row.quantity_remaining
        order.leaves_floor = None if leaves is None else max(leaves, Decimal(0))
        order.modify_in_doubt = None
    if row.price is not None and order.order_type is not OrderType.MARKET:
        order.price = row.price
    order.note_leaves(row.quantity_remaining)


def _shown_open(core: OmsCore, order: Order, status: str, diff: SnapshotDiff) -> None:
    """The exchange shows this order open now: OPEN, unless a cancel is owed (then it goes again)."""
    order.needs_settlement = False
    if not order.state.is_live:
        return
    if order.cancel_owed:
        request = core.resend_owed_cancel(order)
        if request is not None:
            diff.cancels_resent.append(request)
        return  # never back to a quiet OPEN: sent now, or a cancel of it is already in flight
    if order.state is not OrderState.OPEN:
        core.apply_order_event(order, OrderEvent.SETTLE_OPEN, status)
        diff.confirmed_open.append(order)


def _usable_rows(core: OmsCore, rows: Sequence[m.OrderResponse],
                 diff: SnapshotDiff) -> tuple[list[m.OrderResponse], set[int]]:
    """The rows that can be trusted to name what they say, and the local ids to leave alone.

    A row naming a tracked order's id on another symbol is malformed for that order: it neither
    shows the order open nor (by its absence) gone, and the pending orders it could describe on its
    own symbol are left undecided too (it may be one of them, misnamed).
    """
    usable: list[m.OrderResponse] = []
    left_alone: set[int] = set()
    for row in rows:
        tracked = core.tracker.by_order_id(row.order_id)
        if tracked is None or tracked.symbol == row.symbol:
            usable.append(row)
            continue
        log.warning("snapshot row names a tracked order's id on another symbol; ignored",
                    row_symbol=row.symbol, **tracked.describe())
        left_alone.add(tracked.local_id)
        left_alone.update(o.local_id for o in core.tracker.pending(row.symbol, row.client_order_id))
    return usable, left_alone


def _usable_trades(core: OmsCore, trades: Iterable[m.Trade]) -> list[m.Trade]:
    """Trades that can be fills: a positive size and price, on the symbol of the order they name."""
    usable = []
    for trade in trades:
        if not (trade.quantity > 0 and trade.price > 0):
            malformed_fill(trade)
            continue
        tracked = core.tracker.by_order_id(trade.order_id)
        if tracked is not None and tracked.symbol != trade.symbol:
            log.warning("trade names a tracked order's id on another symbol; dropped",
                        trade_id=trade.trade_id, trade_symbol=trade.symbol, **tracked.describe())
            continue
        usable.append(trade)
    return usable


def _identify(core: OmsCore, fence: int, rows: Sequence[m.OrderResponse], trades: Sequence[m.Trade],
              diff: SnapshotDiff) -> set[int]:
    """Bind what can be decided (``core.binding``); return the local ids of pending orders left
    undecided. Unknown ids with no candidate at all are adopted later, as strangers."""
    unknown = binding.unknown_ids(core.tracker, rows, trades)
    binding.bind_all(core, fence, unknown)
    undecided: set[int] = set()
    for order_id, entry in unknown.items():
        diff.unresolved.append(order_id)
        undecided.update(o.local_id for o in entry.candidates(core.tracker))
    return undecided


def _apply_trade(core: OmsCore, fence: int, trade: m.Trade, diff: SnapshotDiff,
                 complete: bool = True) -> None:
    """Count a trade as a fill once. An adopted order's quantity grows only past its distinct trades
    (``Order.grow_to_trades``): a trade its FILLED report already counted in the leaves is recorded
    by id without growing it, so the fill is not counted twice. An order known only from its trades
    (size unknown) is concluded FILLED only by a complete snapshot that does not show it open."""
    if trade.trade_id in core.tracker.trade_ids:
        fills.duplicate_trade(core, trade)
        return
    order = core.tracker.by_order_id(trade.order_id)
    if order is None:
        order = _adopt(core, fence, Order(0, trade.symbol, trade.side,
                                          trade.order_type or OrderType.LIMIT,
                                          trade.tif or TimeInForce.GTC, trade.quantity, None,
                                          trade.client_order_id or "", order_id=trade.order_id,
                                          state=OrderState.UNKNOWN))
        diff.adopted.append(order)
    fill = Fill(trade.trade_id, trade.order_id, trade.symbol, trade.side, trade.price,
                trade.quantity, trade.fee, trade.timestamp)
    share = core.tracker.open_share(order)
    recorded = fills.record_fill(core, order, fill)
    core.tracker.reshare(order, share)
    if recorded:
        diff.fills_added.append(fill)
        event = OrderEvent.FULL_FILL if order.remaining_quantity <= 0 else OrderEvent.PARTIAL_FILL
        size_unknown = order.adopted and order.leaves_floor is None and not complete
        if order.state is OrderState.UNKNOWN and (event is OrderEvent.PARTIAL_FILL or size_unknown):
            order.needs_settlement = True
            return  # the open-orders part of the snapshot (or a query) decides whether it still rests
        core.apply_order_event(order, event, OrderStatus.FILLED)


def settlement_note(diff: SnapshotDiff, source: str | None = None) -> bytes | None:
    """What a snapshot concluded that no frame says, for the journal: which orders it ended, as what.

    Only orders the book knew by id before the snapshot, and only their end (state, leaves, status):
    not the fills it added, the ids it bound or the orders it adopted. Those depend on the book the
    snapshot met, which a replay does not rebuild exactly (an order bound or adopted by a snapshot is
    not known by that id on replay); the resync that follows every start re-learns them from the
    exchange. An end is safe to replay: it only ever applies to the same order, by id, if still live.
    ``source`` names what proved it when not a snapshot (``core.history.HISTORY_SOURCE``).
    """
    ended = [{"order_id": o.order_id, "state": str(o.state), "status": o.last_status,
              "leaves": str(o.remaining_quantity)}  # so the replayed filled quantity is the live one
             for o in diff.ended if o.order_id is not None]
    if not ended:
        return None
    return orjson.dumps({NOTE_KEY: ended, "source": source} if source else {NOTE_KEY: ended})


def _note_rows(raw: bytes) -> list[tuple[str, str, str | None, Decimal]]:
    """(order_id, state, status, leaves) per ended order; ValueError for anything else."""
    try:
        return [(str(row["order_id"]), str(row["state"]), row["status"], Decimal(row["leaves"]))
                for row in orjson.loads(raw)[NOTE_KEY]]
    except (KeyError, TypeError, ArithmeticError) as exc:
        raise ValueError(f"malformed settlement note: {exc!r}") from None


def note_order_ids(raw: bytes) -> list[str]:
    """Every order id a settlement note names (for the journal's compaction)."""
    return [order_id for order_id, _, _, _ in _note_rows(raw)]


def apply_settlement_note(core: OmsCore, raw: bytes) -> None:
    """Replay a snapshot's conclusion: end the same orders the same way, if the book has them live."""
    for order_id, state, status, leaves in _note_rows(raw):
        order = core.tracker.by_order_id(order_id)
        event = _NOTED_ENDS.get(state)
        if order is None or event is None or not order.state.is_live:
            continue
        share = core.tracker.open_share(order)
        order.note_leaves(leaves)
        core.tracker.reshare(order, share)
        core.apply_order_event(order, event, status)
        order.needs_settlement = False


_NOTED_ENDS = {str(OrderState.FILLED): OrderEvent.FULL_FILL, str(OrderState.CANCELLED): OrderEvent.CANCELLED}


def settle_gone(core: OmsCore, order: Order) -> None:
    """End an order provably no longer on the book: FILLED if its fills cover it, else CANCELLED.

    A modify whose answer never came (``replies.size_in_doubt``) leaves two sizes the order may
    have had. Its trades decide where they can: more than the book's size, it was the modify's.
    Trades adding up to exactly the modify's size are taken as the order filled at that size
    (a choice: the other reading, a modify refused after a partial fill and the rest cancelled
    by a party we never heard from, needs an unreported cancel; settling CANCELLED would claim
    one). QFEX's order history, where the shell has it (``defer_missing``), decides for certain.
    """
    other = size_in_doubt(core, order)
    if other is not None and (order.fill_total > order.quantity or order.fill_total == other):
        share = core.tracker.open_share(order)
        take_size(order, other, other - order.fill_total)
        core.tracker.reshare(order, share)
    if order.remaining_quantity <= 0:
        core.apply_order_event(order, OrderEvent.FULL_FILL, OrderStatus.FILLED)
    else:
        core.apply_order_event(order, OrderEvent.CANCELLED, SETTLED_MISSING)
    order.needs_settlement = False


def _settle_twaps(core: OmsCore, fence: int, rows: Iterable[m.TwapResponse], diff: SnapshotDiff,
                  complete: bool, defer_missing: bool = False) -> None:
    tracker = core.tracker
    seen: set[int] = set()
    for row in rows:
        twap = tracker.twap_by_id(row.twap_id)
        if twap is not None and twap.symbol != row.symbol:
            log.warning("snapshot row names a tracked TWAP's id on another symbol; ignored",
                        row_symbol=row.symbol, **twap.describe())
            seen.add(twap.local_id)
            diff.twaps_unconfirmed.append(twap)
            continue
        if twap is None:
            twap = tracker.first_pending_twap(row.symbol, row.client_twap_id)
            if twap is not None:
                twap_replies.learn_twap_id(core, twap, row.twap_id)
            else:
                twap = tracker.new_twap(twap_rules.twap_from_response(row))
                twap.adopted = True
                twap_replies.claim_orphans(core, twap)
                diff.twaps_adopted.append(twap)
        seen.add(twap.local_id)
        twap_rules.note_progress(twap, row)
        if twap.seq > fence:
            continue
        twap.cancels_in_doubt = 0  # active after every cancel sent before the snapshot: none acted
        if twap.cancel_owed:
            request = core.resend_owed_cancel(twap)
            if request is not None:
                diff.cancels_resent.append(request)
        else:
            core.apply_twap_event(twap, TwapEvent.ACCEPTED, row.status)
    for twap in tracker.twaps(open_only=True):
        if twap.local_id in seen or twap.seq > fence:
            continue
        if not complete:
            diff.twaps_unconfirmed.append(twap)
        elif defer_missing:
            diff.twaps_missing.append(twap)
        else:
            settle_twap_gone(core, twap)
            diff.twaps_settled.append(twap)


def settle_twap_gone(core: OmsCore, twap: Twap) -> None:
    """End a TWAP a complete snapshot no longer lists, by what the book knows (``_ended_as``)."""
    core.apply_twap_event(twap, _ended_as(twap), SETTLED_MISSING)


def _ended_as(twap: Twap) -> TwapEvent:
    """How a TWAP missing from a complete snapshot ended (QFEX lists only active TWAPs).

    COMPLETED needs evidence: its last child known (a child that found no liquidity does not make
    it cancelled), a cancel of ours answered NO_SUCH_ORDER with no other cancel of ours in doubt
    (it had ended on its own), or all of it filled. Without that it is CANCELLED: another
    connection of the account may have cancelled it, so the mere absence of a cancel of ours
    (``cancels_in_doubt`` == 0) proves nothing. What stays undecidable here (a completed
    TWAP whose last child found no liquidity while its reports were lost) needs QFEX's history.
    Its filled quantity is its children's (each counted once). A TWAP whose id the book never
    learnt (both its reports lost, no child seen) may never have been accepted: nothing says it
    ran, so its fills decide as well (its children would have taught it its id).
    """
    twap_rules.note_child_fill(twap)
    if twap.twap_id is not None and (twap_rules.last_child_known(twap) or (
            twap.gone_before_cancel and twap.cancels_in_doubt == 0)):
        return TwapEvent.COMPLETED
    done = twap.filled_quantity >= twap.total_quantity > 0
    return TwapEvent.COMPLETED if done else TwapEvent.CANCELLED


def settle_from_order_query(core: OmsCore, fence: int, order: Order,
                            response: m.AllOrdersResponse | m.OrderResponse,
                            trades: Iterable[m.Trade] = ()) -> SnapshotDiff:
    """Settle one order from the answer to a targeted ``get_order`` (symbol and order_id).

    QFEX answers with an ``all_orders_response`` holding only open orders: a row naming the order
    (on its symbol) confirms it open with its leaves, and no such row proves it is no longer open,
    so it is settled from its fills exactly as a complete snapshot settles a missing order. The
    simulator, like QFEX's CLI, answers with one ``order_response`` instead: an open status (ACK,
    MODIFIED, a partial FILLED) confirms it; anything else (NO_SUCH_ORDER, CANCELLED, a final
    FILLED) says it is gone, with its leaves noted first. ``trades`` (optional) are applied first,
    as in a snapshot. Fence rules as ``apply_snapshot``: an order touched after ``fence`` is left
    alone. An owed cancel of an order found open is sent again. The diff feeds ``settlement_note``.
    """
    diff = SnapshotDiff()
    for trade in _usable_trades(core, trades):
        if trade.order_id == order.order_id:
            _apply_trade(core, fence, trade, diff)
    was_live = order.state.is_live
    if was_live and order.seq <= fence:
        _settle_queried(core, order, response, diff)
    diff.ended = [order] if was_live and order.order_id is not None and not order.state.is_live else []
    return diff


def _settle_queried(core: OmsCore, order: Order, response: m.AllOrdersResponse | m.OrderResponse,
                    diff: SnapshotDiff) -> None:
    if order.order_id is None:  # nothing to ask by: a snapshot row or its ACK binds it first
        diff.unconfirmed.append(order)
        return
    single = isinstance(response, m.OrderResponse)
    rows: Sequence[m.OrderResponse] = (response,) if isinstance(response, m.OrderResponse) \
        else response.orders
    named = [row for row in rows if row.order_id == order.order_id]
    if any(row.symbol != order.symbol for row in named):
        log.warning("order query names the order on another symbol; ignored", **order.describe())
        diff.unconfirmed.append(order)
        return
    row = named[-1] if named else None
    if row is not None and row.status is not OrderStatus.NO_SUCH_ORDER:
        _note_row(core, order, row)
    if row is not None and (not single or _open_status(row)):
        _shown_open(core, order, str(row.status), diff)
        return
    settle_gone(core, order)
    diff.settled.append(order)


def _open_status(row: m.OrderResponse) -> bool:
    """Whether one ``order_response`` about an order says it still rests."""
    if row.status in (OrderStatus.ACK, OrderStatus.MODIFIED):
        return True
    return row.status is OrderStatus.FILLED and (row.quantity_remaining or 0) > 0
