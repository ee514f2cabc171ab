"""Fills applied: ``fill_response`` frames and the trades a snapshot brings, each counted once.

Fills travel on their own channel and may overtake the ACK: one for an id the book lacks binds only
the one pending order it can describe, and is otherwise held (``core.held``) until an
``order_response`` names that id. Trade ids dedupe: a fill seen twice (a replay, a snapshot's trade
of a fill already applied) counts once. Functions over the core.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from qfex_oms.core import twap_replies
from qfex_oms.core.drops import malformed_fill, wrong_symbol
from qfex_oms.core.events import FillReceived
from qfex_oms.core.model import Fill, Order
from qfex_oms.core.replies import after_ack, fill_event, size_in_doubt, take_size
from qfex_oms.core.states import OrderEvent, OrderState
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus, OrderType, TimeInForce

if TYPE_CHECKING:
    from qfex_oms.core.engine import OmsCore

log = get_logger("qfex_oms.core")

_ZERO = Decimal(0)
_EV_FULL_FILL = OrderEvent.FULL_FILL


def on_fill(core: OmsCore, f: m.FillResponse) -> None:
    """Apply a ``fill_response``: drop it if malformed or seen, else count it on its order."""
    if not (f.quantity > _ZERO and f.price > _ZERO):
        malformed_fill(f)
        return
    if f.trade_id in core.tracker.trade_ids:
        duplicate_trade(core, f)
        return
    order = core.tracker.by_order_id(f.order_id)
    if order is not None and order.symbol != f.symbol:
        wrong_symbol(core, f, order)
        return
    if order is None:
        order = _place_fill(core, f)
        if order is None:
            return
    share = core.tracker.open_share(order)
    record_fill(core, order, Fill(f.trade_id, f.order_id, f.symbol, f.side, f.price, f.quantity,
                                  f.fee, f.timestamp))
    done = note_fill_leaves(core, order, f)
    core.tracker.reshare(order, share)
    core.apply_order_event(order, _EV_FULL_FILL if done else fill_event(order, final_report=False),
                           OrderStatus.FILLED)
    after_ack(core, order)


def note_fill_leaves(core: OmsCore, order: Order, f: m.FillResponse) -> bool:
    """Note what remains after a fill; True when nothing does (done, whatever the order's size).

    While a modify of the order is unanswered, the exchange's order has the book's size or the one
    the modify asked for (``replies.size_in_doubt``), and a fill does not say which. The fill and
    what remained right after it both belong to that size, so ``quantity + leaves`` bounds it from
    below (not ``fill_total + leaves``: fills overtake each other, and a later fill counted with
    an earlier one's leaves would overstate it). Leaves that fit one size only are measured
    against it (the modify's size is taken with them, as from a report naming it); leaves that fit
    both are not noted: the filled quantity stays the sum of the distinct trades, never more than
    the exchange filled, until a report or a snapshot row names the size.

    An adopted order's size is a lower bound (``Order.grow_to_fill``): the same ``quantity +
    leaves`` raises it: an earlier fill, overtaken by a later one, says more was left than the
    size learnt from the later one (sized by its trades alone, it would end FILLED while it rests).
    """
    leaves = f.remaining_quantity
    if leaves is None:
        return False
    other = size_in_doubt(core, order)
    if other is None:
        if order.adopted:
            order.grow_to_fill(f.quantity + leaves)
        order.note_leaves(leaves)
        return False  # fill_event reads the floor
    least = f.quantity + leaves
    fits_book, fits_other = order.quantity >= least, other >= least
    if fits_other and not fits_book:
        take_size(order, other, leaves)
    elif fits_book and fits_other:
        log.info("fill leaves fit both sizes of a modify in doubt; not noted", **order.describe(),
                 trade_id=f.trade_id, leaves=str(leaves))
    else:
        order.note_leaves(leaves)
    return leaves <= _ZERO


def _place_fill(core: OmsCore, f: m.FillResponse) -> Order | None:
    """Find the order of a fill that overtook its ACK, or hold the fill (None) until it is known.

    Fills do not come in submit order, so the first pending order sharing the client id may be a
    sibling: bind only the one pending order the fill can describe. Several (or none, e.g. the
    exchange wrote the price differently) fit: hold it; the ACK that names the id releases it.
    """
    pending = core.tracker.pending(f.symbol, f.client_order_id)
    if not pending and core.tracker.pending_elsewhere(f.symbol, f.client_order_id):
        wrong_symbol(core, f, None)  # a real trade of it is learnt from the next snapshot's trades
        return None
    if not pending:
        order = core.adopt(_order_from_fill(f))
        log.info("adopted order from a fill", **order.describe())
        return order
    least = f.quantity + (f.remaining_quantity or 0)
    fitting = [o for o in pending if o.could_be(f.side, f.order_type, f.tif, f.order_price, least)]
    if len(fitting) == 1:
        core.bind(fitting[0], f.order_id)
        return fitting[0]
    held = core.held.setdefault(f.order_id, [])
    if all(h.trade_id != f.trade_id for h in held):
        held.append(f)
    log.info("fill held until its order is known", order_id=f.order_id, trade_id=f.trade_id,
             symbol=f.symbol, client_order_id=f.client_order_id, candidates=len(fitting))
    return None


def record_fill(core: OmsCore, order: Order, fill: Fill) -> bool:
    """Count a fill once, by trade id. Returns False for a duplicate."""
    if fill.trade_id in core.tracker.trade_ids:
        return False
    core.tracker.trade_ids.add(fill.trade_id)
    if order.adopted:
        order.grow_to_trades(fill.quantity)
    elif order.fill_total + fill.quantity > order.quantity:
        _trades_prove_size(core, order, order.fill_total + fill.quantity)
    if order.fills is None:
        order.fills = []
    order.fills.append(fill)
    order.fill_total += fill.quantity
    if order.twap_id is not None:
        twap_replies.note_child_fill(core, order)
    core.emit(FillReceived(order, fill))
    return True


def _trades_prove_size(core: OmsCore, order: Order, traded: Decimal) -> None:
    """Distinct trades adding up to more than the book's size: a modify whose answer never came
    was applied (``replies.size_in_doubt``), and the order has the size it asked for."""
    other = size_in_doubt(core, order)
    if other is not None and other >= traded:
        take_size(order, other, None)


def duplicate_trade(core: OmsCore, f: m.FillResponse | m.Trade) -> None:
    """A trade id seen again: dropped. The same numbers are a replay (debug); other numbers mean
    the exchange contradicts itself, which someone must look at (warning, naming both). Either
    line names the order that counted the trade: every log line about an order carries its identity."""
    first, order = _recorded_fill(core, f.trade_id, f.order_id)
    identity = order.describe() if order is not None else {
        "symbol": f.symbol, "order_id": f.order_id, "client_order_id": f.client_order_id}
    if first is None or (first.quantity, first.price, first.order_id) == (f.quantity, f.price, f.order_id):
        log.debug("duplicate fill ignored", trade_id=f.trade_id, **identity)
        return
    log.warning("duplicate trade_id with other numbers dropped", trade_id=f.trade_id, **identity,
                first={"order_id": first.order_id, "quantity": str(first.quantity),
                       "price": str(first.price)},
                second={"order_id": f.order_id, "quantity": str(f.quantity), "price": str(f.price)})


def _recorded_fill(core: OmsCore, trade_id: str, order_id: str) -> tuple[Fill | None, Order | None]:
    """The fill counted under ``trade_id`` and its order (that order first; all on this rare path)."""
    named = core.tracker.by_order_id(order_id)
    for order in ([named] if named is not None else []) + list(core.tracker.orders()):
        for fill in order.fills or ():
            if fill.trade_id == trade_id:
                return fill, order
    return None, named


def _order_from_fill(f: m.FillResponse) -> Order:
    remaining = f.remaining_quantity if f.remaining_quantity is not None else Decimal(0)
    return Order(0, f.symbol, f.side, f.order_type or OrderType.LIMIT, f.tif or TimeInForce.GTC,
                 f.quantity + remaining, f.order_price, f.client_order_id or "", order_id=f.order_id,
                 state=OrderState.OPEN)
