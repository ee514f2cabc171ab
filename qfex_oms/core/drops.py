"""Replies the core drops, and how it says so: logged with what they name, and an ``Unmatched`` event.

The reader never raises on what the exchange sends; a reply that cannot be applied is reported here
and the book is left as it was. Every reply handler shares these, so they sit below all of them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qfex_oms.core.events import Unmatched
from qfex_oms.core.model import Order, Twap
from qfex_oms.logs import get_logger
from qfex_oms.protocol import messages as m

if TYPE_CHECKING:
    from qfex_oms.core.engine import OmsCore

log = get_logger("qfex_oms.core")

_LOG_CAP = 512


def wrong_symbol(core: OmsCore, reply: Any, tracked: Order | Twap | None) -> None:
    """A reply naming an id the book holds on another symbol (the order_id of a tracked order,
    or the client id of an order still waiting for its ACK) is malformed for that order: a
    phantom adopted from it would take the id, and a snapshot row for the real order would then
    be read as the phantom's. Logged and dropped; the tracked order is left as it was."""
    core.emit(Unmatched(reply, "names a tracked id on another symbol"))
    log.warning("reply names a tracked id on another symbol; dropped", reply_type=type(reply).__name__,
                reply_symbol=getattr(reply, "symbol", None), order_id=getattr(reply, "order_id", None),
                client_order_id=getattr(reply, "client_order_id", None),
                tracked=tracked.describe() if tracked is not None else "a pending order")


def malformed_fill(f: m.FillResponse | m.Trade) -> None:
    """A fill or trade of no size, a negative one, or at no price is no fill: logged and dropped."""
    log.warning("malformed fill dropped: quantity and price must be positive", trade_id=f.trade_id,
                symbol=f.symbol, order_id=f.order_id, client_order_id=f.client_order_id,
                quantity=str(f.quantity), price=str(f.price))


def capped(value: object) -> str:
    """A hostile echo can be any size: log its first bytes and mark the cut."""
    text = repr(value)
    return text if len(text) <= _LOG_CAP else f"{text[:_LOG_CAP]}...[cut {len(text) - _LOG_CAP} chars]"
