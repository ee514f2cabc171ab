"""What the core tells the shell. The manager republishes these to strategies via ``oms.events()``."""

from __future__ import annotations

from typing import Any

from attrs import define, frozen

from qfex_oms.core.model import CancelRequest, Fill, ModifyRequest, Order, Twap
from qfex_oms.core.states import OrderState, TwapState


@define(slots=True, eq=False)
class OrderUpdated:
    """Built for every state change on the reader's path: a plain slots class (frozen attrs pay a
    guarded setattr per field). Treat it as read-only."""

    order: Order
    previous: OrderState
    state: OrderState
    status: str | None


@define(slots=True, eq=False)
class FillReceived:
    order: Order
    fill: Fill


@frozen
class TwapUpdated:
    twap: Twap
    previous: TwapState
    state: TwapState
    status: str | None


@frozen
class CancelFinished:
    request: CancelRequest


@frozen
class ModifyFinished:
    request: ModifyRequest


@frozen
class RequestFailed:
    """An ``err`` (or a refusal) that matched no order, TWAP or cancel: e.g. a query that failed."""

    request_type: str | None
    error_code: str
    message: str | None
    incoming: dict[str, Any] | None


@frozen
class Unmatched:
    """A reply the core could not attribute; logged with its content and otherwise ignored."""

    reply: Any
    reason: str


Event = (
    OrderUpdated | FillReceived | TwapUpdated | CancelFinished | ModifyFinished | RequestFailed | Unmatched
)
