"""What the core tells the shell. The manager republishes these to strategies via ``oms.events()``."""

from __future__ import annotations

from typing import Any

import msgspec
from attrs import define, frozen

from qfex_oms.core.model import CancelRequest, Fill, ModifyRequest, Order, Twap
from qfex_oms.core.states import OrderState, TwapState
from qfex_oms.core.stops import StopOrder, StopRequest, StopState


class OrderUpdated(msgspec.Struct, gc=False, eq=False):
    """Built for every state change on the reader's path (bench row 1): a msgspec struct, unlike the
    other events (attrs), as it costs half an attrs class to build and is never tracked by the
    garbage collector (``gc=False``: no cycle goes through it; the order it names never refers
    back to its events). Treat it as read-only."""

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
class RequestErrored:
    """An ``err`` (or a refusal) that matched no order, TWAP or cancel: e.g. a query that failed.

    Not ``qfex_oms.errors.RequestFailed`` (the exception a caller gets): this is what the core
    reports so the shell can fail the caller waiting on that request."""

    request_type: str | None
    error_code: str
    message: str | None
    incoming: dict[str, Any] | None


@frozen
class Unmatched:
    """A reply the core could not attribute; logged with its content and otherwise ignored."""

    reply: Any
    reason: str


@frozen
class StopUpdated:
    """A stop order changed state (``stop.order`` is the order it became once TRIGGERED; that
    order's own events follow). An adopted stop (staged from a parent) comes as PENDING -> ACTIVE."""

    stop: StopOrder
    previous: StopState
    state: StopState
    status: str | None


@frozen
class StopRequestFinished:
    """A ``cancel_stop_order`` or ``modify_stop_order`` was answered, or never will be."""

    request: StopRequest


CoreEvent = (
    OrderUpdated | FillReceived | TwapUpdated | CancelFinished | ModifyFinished | RequestErrored | Unmatched
    | StopUpdated | StopRequestFinished
)

# Deprecated names, kept for one release (CHANGELOG): ``RequestFailed`` was also the exception's
# name, and ``Event`` the client's union of these and the connection events.
RequestFailed = RequestErrored
Event = CoreEvent
