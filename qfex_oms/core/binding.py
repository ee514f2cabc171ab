"""Binding exchange ids the book lacks to the pending orders they belong to.

An order whose ACK was lost has no exchange id. Later the exchange names an order the book does not
know (a snapshot row, a trade, a history row), and the question is whether it is that pending order.
Client ids are not unique, so the answer is decided on what the order looks like (side, type, time in
force, price, quantity) and only where it cannot be wrong, or where being wrong cannot matter:

- each pair that are each other's only candidate is bound, round after round (a binding can make
  another decidable);
- when as many exchange orders as pending orders are all alike in every attribute the book and the
  exchange can see (interchangeable: no local difference such as a cancel waiting on one), they
  are bound pairwise (a fixed pairing: exchange ids in sorted order, pending orders in submit
  order). Which of two identical orders is called which cannot matter;
  leaving them unbound would leave both unsettled for ever. Equal numbers matter: one exchange order
  more could be an identical order placed elsewhere under the same client id (issue 18 namespaces
  client ids per strategy so that this cannot be another strategy's), one fewer could mean one of
  ours never arrived;
- anything else stays unresolved, for a later snapshot or reply to decide. Nothing is guessed.

A row's order must predate the snapshot's fence (one placed after cannot be in the snapshot, and its
seq alone does not tell "placed after" from "touched after"); a trade's need not (fills are history).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

from attrs import define

from qfex_oms.core.engine import OmsCore
from qfex_oms.core.model import Order
from qfex_oms.core.tracker import OrderTracker
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderType, Side, TimeInForce
from qfex_oms.protocol.rest import HistoricOrder

_ZERO = Decimal(0)


@define
class Unknown:
    """What the exchange says about an order id the book lacks."""

    symbol: str
    client_order_id: str | None
    side: Side | None
    order_type: OrderType | None
    tif: TimeInForce | None
    price: Decimal | None = None
    quantity: Decimal | None = None  # the order's size, when a row gives it
    traded: Decimal = _ZERO  # what its new trades add up to (a lower bound of its size)
    fenced: bool = False  # from a row: the order must predate the fence
    row: m.OrderResponse | None = None

    @classmethod
    def of_row(cls, row: m.OrderResponse, traded: Decimal = _ZERO) -> Unknown:
        return cls(row.symbol, row.client_order_id, row.side, row.type, row.time_in_force, row.price,
                   row.quantity, traded, fenced=True, row=row)

    @classmethod
    def of_trade(cls, trade: m.Trade) -> Unknown:
        return cls(trade.symbol, trade.client_order_id, trade.side, trade.order_type, trade.tif)

    @classmethod
    def of_history(cls, row: HistoricOrder) -> Unknown:
        return cls(row.symbol, row.client_order_id, row.side, row.type, row.time_in_force, row.price,
                   row.quantity, row.filled_qty, fenced=True)

    def candidates(self, tracker: OrderTracker) -> list[Order]:
        least = max(self.quantity or _ZERO, self.traded)
        return [o for o in tracker.pending(self.symbol, self.client_order_id)
                if o.could_be(self.side, self.order_type, self.tif, self.price, least)]

    def look(self) -> tuple[object, ...]:
        """Everything the exchange shows of this order that would tell it from a sibling."""
        return (self.symbol, self.client_order_id, self.side, self.order_type, self.tif, self.price,
                self.quantity)


def unknown_ids(tracker: OrderTracker, rows: Sequence[m.OrderResponse],
                trades: Sequence[m.Trade]) -> dict[str, Unknown]:
    """Exchange order ids the book lacks, described by their row (best) or by their new trades."""
    unknown: dict[str, Unknown] = {}
    for t in trades:
        if t.trade_id not in tracker.trade_ids and tracker.by_order_id(t.order_id) is None:
            entry = unknown.setdefault(t.order_id, Unknown.of_trade(t))
            entry.traded += t.quantity
    for row in rows:
        if tracker.by_order_id(row.order_id) is None:
            traded = unknown[row.order_id].traded if row.order_id in unknown else _ZERO
            unknown[row.order_id] = Unknown.of_row(row, traded)
    return unknown


def bind_all(core: OmsCore, fence: int, unknown: dict[str, Unknown]) -> list[Order]:
    """Bind what can be decided (see the module docstring); ``unknown`` keeps the undecided ids.

    Returns the orders bound, in binding order."""
    bound: list[Order] = []
    while True:
        found = bind_decidable(core, fence, unknown)
        if not found:
            found = bind_interchangeable(core, fence, unknown)
        if not found:
            return bound
        bound += found


def _eligible(entry: Unknown, order: Order, fence: int) -> bool:
    return not entry.fenced or order.seq <= fence


def bind_decidable(core: OmsCore, fence: int, unknown: dict[str, Unknown]) -> list[Order]:
    """One round: bind each pair that are each other's only candidate; drop ids with none."""
    fits = {order_id: entry.candidates(core.tracker) for order_id, entry in unknown.items()}
    claims: dict[int, int] = {}
    for found in fits.values():
        for order in found:
            claims[order.local_id] = claims.get(order.local_id, 0) + 1
    bound: list[Order] = []
    for order_id, found in fits.items():
        if not found:
            del unknown[order_id]
        elif len(found) == 1 and claims[found[0].local_id] == 1 and \
                _eligible(unknown[order_id], found[0], fence):
            core.bind(found[0], order_id)
            del unknown[order_id]
            bound.append(found[0])
    return bound


def _interchangeable(orders: Sequence[Order]) -> bool:
    """Alike in everything and with nothing of ours waiting on any one of them."""
    first = orders[0]
    look = (first.side, first.order_type, first.time_in_force, first.price, first.quantity, first.state)
    return all((o.side, o.order_type, o.time_in_force, o.price, o.quantity, o.state) == look
               and not (o.cancel_requested or o.cancel_owed or o.fills or o.fill_total)
               for o in orders)


def bind_interchangeable(core: OmsCore, fence: int, unknown: dict[str, Unknown]) -> list[Order]:
    """Bind a group of identical exchange orders to a group of identical pending orders, pairwise,
    when every one of them fits every other and nothing else competes for them."""
    groups: dict[tuple[object, ...], list[str]] = {}
    for order_id, entry in unknown.items():
        if entry.traded == 0:  # an order with fills of its own is told apart by them: not alike
            groups.setdefault(entry.look(), []).append(order_id)
    for ids in groups.values():
        entries = [unknown[i] for i in ids]
        candidates = entries[0].candidates(core.tracker)
        if len(ids) < 2 or len(ids) != len(candidates):
            continue  # one more on either side could be a stranger's (or one that never arrived)
        if not _interchangeable(candidates):
            continue
        if any(e.candidates(core.tracker) != candidates for e in entries[1:]):
            continue
        if _claimed_elsewhere(core, unknown, ids, candidates):
            continue
        pairs = [(i, o) for i, o in zip(sorted(ids), candidates, strict=False)
                 if _eligible(unknown[i], o, fence)]
        for order_id, order in pairs:
            core.bind(order, order_id)
            del unknown[order_id]
        if pairs:
            return [o for _, o in pairs]
    return []


def _claimed_elsewhere(core: OmsCore, unknown: dict[str, Unknown], ids: Iterable[str],
                       candidates: Sequence[Order]) -> bool:
    """Whether an exchange order outside the group could also be one of these pending orders."""
    mine = {o.local_id for o in candidates}
    group = set(ids)
    return any(o.local_id in mine for order_id, entry in unknown.items() if order_id not in group
               for o in entry.candidates(core.tracker))
