"""Compare the manager's book with the exchange's own state: the check behind "zero differences".

Used by the demo, the tests and the journal recovery checks. Against the simulator the exchange's
state is read directly (``Venue``); the same comparison against a real venue would use a
``get_user_orders`` snapshot plus ``get_user_trades``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING

from attrs import define, field

if TYPE_CHECKING:
    from qfex_oms.client.manager import OrderManager
    from qfex_oms.sim import Venue


@define
class BookDiff:
    differences: list[str] = field(factory=list)
    orders_compared: int = 0
    open_orders: int = 0
    fills_book: Decimal = Decimal(0)
    fills_exchange: Decimal = Decimal(0)

    @property
    def clean(self) -> bool:
        return not self.differences


def compare_with_venue(oms: OrderManager, venue: Venue, public_key: str | None = None) -> BookDiff:
    key = public_key or oms.credentials.public_key
    diff = BookDiff()
    ours_open = {o.order_id: o for o in oms.orders() if o.order_id is not None}
    theirs_open = {o.order_id: o for o in venue.open_orders(key)}
    diff.open_orders = len(theirs_open)
    for order_id in sorted(set(ours_open) ^ set(theirs_open)):
        side = "manager only" if order_id in ours_open else "exchange only"
        diff.differences.append(f"open order {order_id}: {side}")
    unbound = [o for o in oms.orders() if o.order_id is None]
    diff.differences += [f"open order {o.client_order_id} has no order_id" for o in unbound]
    for sim_order in venue.orders(key):
        ours = oms.order(sim_order.order_id)
        if ours is None:
            if sim_order.filled or sim_order.is_open:
                diff.differences.append(f"order {sim_order.order_id} unknown to the manager")
            continue
        diff.orders_compared += 1
        if ours.filled_quantity != sim_order.filled:
            diff.differences.append(f"order {sim_order.order_id}: filled {ours.filled_quantity} here, "
                                    f"{sim_order.filled} on the exchange")
    diff.fills_exchange = sum((t.quantity for t in venue.trades(key)), Decimal(0))
    diff.fills_book = sum((f.quantity for o in oms.orders(open_only=False) for f in (o.fills or ())),
                          Decimal(0))
    if diff.fills_book != diff.fills_exchange:
        diff.differences.append(f"fills: {diff.fills_book} in the book, "
                                f"{diff.fills_exchange} on the exchange")
    return diff
