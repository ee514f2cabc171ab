"""One shape for what the exchange says a stop is, whichever frame said it.

A stop is described by a ``stop_order_response`` (``direction``, ``stop_order_type``, ISO
``update_time``), by an ``order_response`` with ``type`` TAKE_PROFIT/STOP_LOSS (``order_id`` =
the stop's id, ``side``, ``type``), or by a row of ``get_user_orders`` under either key
(qfex-api.md §14.3, §14.4, §14.9 items 4 and 7). ``StopRow`` is the common reading
(``AllOrdersResponse.stops`` already folds the two keys); a frame that
cannot describe a stop (no id, no symbol, a kind that is not a stop's, a trigger or size that is
not positive) gives None and is dropped by the caller, the book unchanged.
"""

from __future__ import annotations

from decimal import Decimal

from attrs import frozen

from qfex_oms.core.stops import STOP_KINDS
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderType, Side

_ZERO = Decimal(0)


@frozen
class StopRow:
    stop_order_id: str
    symbol: str
    side: Side
    kind: OrderType
    price: Decimal
    quantity: Decimal
    client_order_id: str = ""
    update_time: str | None = None
    parent_order_id: str | None = None


def _valid(stop_id: object, symbol: object, side: Side | None, kind: OrderType | None,
           price: Decimal | None, quantity: Decimal | None) -> bool:
    return (isinstance(stop_id, str) and bool(stop_id) and isinstance(symbol, str) and bool(symbol)
            and side is not None and side.known and kind in STOP_KINDS
            and price is not None and price > _ZERO and quantity is not None and quantity > _ZERO)


def row_from_push(r: m.StopOrderResponse) -> StopRow | None:
    if not _valid(r.stop_order_id, r.symbol, r.direction, r.stop_order_type, r.price, r.quantity):
        return None
    update_time = r.update_time if isinstance(r.update_time, str) else None
    return StopRow(r.stop_order_id, r.symbol, r.direction, r.stop_order_type, r.price, r.quantity,
                   r.client_order_id or "", update_time, getattr(r, "parent_order_id", None))


def row_from_response(r: m.OrderResponse) -> StopRow | None:
    """A stop as an ``order_response`` shows it. A cancel's report carries quantity 0 (§14.5): it
    cannot describe a stop the book lacks (None)."""
    quantity = r.quantity if r.quantity else r.quantity_remaining
    if not _valid(r.order_id, r.symbol, r.side, r.type, r.price, quantity):
        return None
    assert r.side is not None and r.type is not None  # checked by _valid
    assert r.price is not None and quantity is not None
    return StopRow(r.order_id, r.symbol, r.side, r.type, r.price, quantity, r.client_order_id or "")
