"""TWAP rules that QFEX leaves undocumented, kept in one place so they are easy to change.

* TWAP ``status`` values are not documented (the docs example says ``"ENGINE_STATUS"``). The words
  below are the plausible ones; an unrecognised status that is not a rejection is read as "still
  running", because treating a live TWAP as finished would hide it from the kill switch.
* Child orders are tied to their TWAP through their ``client_order_id``: QFEX does not document how,
  so the simulator uses ``twap:<twap_id>:<n>`` and so does this parser (``CHILD_PREFIX``).
* Which TWAPs ``get_user_orders`` lists: only active ones. One missing from a complete snapshot has
  ended, and unless a cancel of it may have acted unseen (``Twap.cancels_in_doubt``) or its last
  child is known (``last_child_known``), nothing tells COMPLETED from CANCELLED but that: with no
  cancel in doubt it can only have completed. Its filled quantity is its children's.
"""

from __future__ import annotations

from decimal import Decimal

from qfex_oms.core.model import ZERO, Twap
from qfex_oms.core.states import TwapEvent
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus, Side

CHILD_PREFIX = "twap:"
RUNNING = frozenset({"ACTIVE", "RUNNING", "NEW", "ACK", "ACCEPTED", "WORKING", "ENGINE_STATUS",
                     "PENDING", "IN_PROGRESS"})
COMPLETED = frozenset({"COMPLETED", "COMPLETE", "FINISHED", "FILLED", "DONE"})
CANCELLED = frozenset({"CANCELLED", "CANCELED", "STOPPED"})


def event_for_status(status: str) -> TwapEvent:
    word = status.upper()
    if word in RUNNING:
        return TwapEvent.ACCEPTED
    if word in COMPLETED:
        return TwapEvent.COMPLETED
    if word in CANCELLED:
        return TwapEvent.CANCELLED
    if OrderStatus(word).known and OrderStatus(word).is_rejection:
        return TwapEvent.REJECT
    return TwapEvent.ACCEPTED


def parent_twap_id(client_order_id: str | None) -> str | None:
    if not client_order_id or not client_order_id.startswith(CHILD_PREFIX):
        return None
    parent, _, _ = client_order_id[len(CHILD_PREFIX):].rpartition(":")
    return parent or None


def child_number(client_order_id: str | None) -> int | None:
    """The child's number within its TWAP (1 to ``num_orders``), from ``twap:<twap_id>:<n>``."""
    if not client_order_id or not client_order_id.startswith(CHILD_PREFIX):
        return None
    _, _, number = client_order_id.rpartition(":")
    return int(number) if number.isdigit() and len(number) < 10 else None


def last_child_known(twap: Twap) -> bool:
    """Whether the book knows the TWAP's last child. The simulator ends a TWAP COMPLETED as it
    places the last child, and QFEX plausibly does the same (undocumented): a TWAP whose last child
    was placed was not cancelled."""
    return any(child_number(c.client_order_id) == twap.num_orders for c in twap.children)


def twap_from_response(r: m.TwapResponse) -> Twap:
    return Twap(0, r.symbol, r.side or Side.BUY, r.total_quantity or ZERO, r.total_num_orders or 0,
                r.order_interval_secs or 0, bool(r.reduce_only), r.client_twap_id or "",
                twap_id=r.twap_id)


def note_progress(twap: Twap, r: m.TwapResponse) -> None:
    if r.filled_quantity is not None and r.filled_quantity > twap.filled_quantity:
        twap.filled_quantity = r.filled_quantity
    if r.average_fill_price is not None:
        twap.average_fill_price = r.average_fill_price


def note_child_fill(twap: Twap) -> None:
    filled = sum((child.filled_quantity for child in twap.children), Decimal(0))
    if filled > twap.filled_quantity:
        twap.filled_quantity = filled
