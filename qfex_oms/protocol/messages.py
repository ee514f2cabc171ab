"""Every QFEX trade-socket message as an attrs class (qfex-api.md §3, §4).

Requests carry their wire ``type`` in ``TYPE``; replies carry their single top-level key in ``KEY``.
Field names are the wire names, so the codec needs no renaming. Optional request fields default to
``None`` and are omitted on the wire; reply fields that QFEX's examples sometimes omit default to
``None`` so a sparse frame still decodes.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

import msgspec
from attrs import define, field, frozen

from qfex_oms.protocol.enums import (
    CancelIdType,
    Channel,
    ErrorCode,
    OrderStatus,
    OrderType,
    Side,
    TimeInForce,
)

# --------------------------------------------------------------------------- requests


@frozen
class HmacAuth:
    public_key: str
    nonce: str
    unix_ts: int
    signature: str


@frozen
class Auth:
    TYPE: ClassVar[str] = "auth"
    hmac: HmacAuth | None = None
    jwt: str | None = None
    account_id: str | None = None


@frozen
class AddOrder:
    """``add_order``. With ``order_type`` TAKE_PROFIT / STOP_LOSS it stages a standalone stop order:
    ``price`` is then the trigger price, ``side`` the direction of the market order it becomes, and
    ``order_time_in_force`` is "required for legacy reasons" and not read (qfex-api.md §3.10, §14.2).
    ``take_profit`` / ``stop_loss`` on any other type stage attached stops (§14.1)."""

    TYPE: ClassVar[str] = "add_order"
    symbol: str
    side: Side
    order_type: OrderType
    order_time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None = None
    client_order_id: str | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    reduce_only: bool | None = None


@frozen
class CancelOrder:
    """Every id kind travels in ``order_id``; ``cancel_order_id_type`` says which (qfex-api.md §3.2)."""

    TYPE: ClassVar[str] = "cancel_order"
    order_id: str
    symbol: str
    cancel_order_id_type: CancelIdType


@frozen
class ModifyOrder:
    TYPE: ClassVar[str] = "modify_order"
    order_id: str
    symbol: str
    side: Side
    order_type: OrderType
    price: Decimal | None = None
    quantity: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None


@frozen
class CancelStopOrder:
    """``cancel_stop_order``: the stop's id only, no symbol (qfex-api.md §14.5)."""

    TYPE: ClassVar[str] = "cancel_stop_order"
    stop_order_id: str


@frozen
class ModifyStopOrder:
    """``modify_stop_order``; only ``price`` (the trigger) and ``quantity`` change (qfex-api.md §14.6).

    QFEX's sources disagree (§14.9 item 1): the docs page adds ``side`` and ``order_type`` ("must
    match the original") and makes price/quantity optional; the AsyncAPI and QFEX's CLI send only
    ``stop_order_id, symbol, price, quantity``. Both shapes decode; ``side``/``order_type`` left as
    None are omitted on the wire.
    """

    TYPE: ClassVar[str] = "modify_stop_order"
    stop_order_id: str
    symbol: str
    price: Decimal | None = None
    quantity: Decimal | None = None
    side: Side | None = None
    order_type: OrderType | None = None


@frozen
class CancelAllOrders:
    TYPE: ClassVar[str] = "cancel_all_orders"


@frozen
class AddTwap:
    TYPE: ClassVar[str] = "add_twap"
    symbol: str
    side: Side
    total_quantity: Decimal
    num_orders: int
    order_interval_secs: int
    reduce_only: bool = False
    client_twap_id: str | None = None


@frozen
class GetOrder:
    TYPE: ClassVar[str] = "get_order"
    symbol: str
    order_id: str


@frozen
class GetUserOrders:
    TYPE: ClassVar[str] = "get_user_orders"
    limit: int | None = None
    offset: int | None = None
    symbol: str | None = None


@frozen
class GetUserTrades:
    TYPE: ClassVar[str] = "get_user_trades"
    limit: int | None = None
    offset: int | None = None
    order_id: str | None = None
    start_ts: int | None = None
    end_ts: int | None = None


@frozen
class Subscribe:
    TYPE: ClassVar[str] = "subscribe"
    channels: tuple[Channel, ...]


@frozen
class Unsubscribe:
    TYPE: ClassVar[str] = "unsubscribe"
    channels: tuple[Channel, ...]


@frozen
class CancelOnDisconnect:
    TYPE: ClassVar[str] = "cancel_on_disconnect"
    cancel_on_disconnect: bool


@frozen
class ClosePosition:
    """Close the whole position in ``symbol`` with a reduce-only LIMIT IOC near mark (qfex-api.md §3.6)."""

    TYPE: ClassVar[str] = "close_position"
    symbol: str
    client_order_id: str | None = None


@frozen
class GetUserLeverage:
    TYPE: ClassVar[str] = "get_user_leverage"
    limit: int | None = None
    offset: int | None = None


@frozen
class SetUserLeverage:
    TYPE: ClassVar[str] = "set_user_leverage"
    symbol: str
    leverage: Decimal


@frozen
class GetAvailableLeverageLevels:
    TYPE: ClassVar[str] = "get_available_leverage_levels"
    limit: int | None = None
    offset: int | None = None


Request = (
    Auth
    | AddOrder
    | CancelOrder
    | ModifyOrder
    | CancelAllOrders
    | AddTwap
    | GetOrder
    | GetUserOrders
    | GetUserTrades
    | Subscribe
    | Unsubscribe
    | CancelOnDisconnect
    | ClosePosition
    | GetUserLeverage
    | SetUserLeverage
    | GetAvailableLeverageLevels
    | CancelStopOrder
    | ModifyStopOrder
)
REQUEST_TYPES: tuple[type[Any], ...] = (
    Auth,
    AddOrder,
    CancelOrder,
    ModifyOrder,
    CancelAllOrders,
    AddTwap,
    GetOrder,
    GetUserOrders,
    GetUserTrades,
    Subscribe,
    Unsubscribe,
    CancelOnDisconnect,
    ClosePosition,
    GetUserLeverage,
    SetUserLeverage,
    GetAvailableLeverageLevels,
    CancelStopOrder,
    ModifyStopOrder,
)

# --------------------------------------------------------------------------- replies


@frozen
class Authenticated:
    KEY: ClassVar[str] = "authenticated"
    authenticated: bool


class OrderResponse(msgspec.Struct, gc=False):
    """One ``order_response``. ``quantity_remaining`` is the leaves quantity; QFEX's FILLED may be partial.

    A msgspec struct, unlike the other messages (attrs): it is built thousands of times a second on
    the reader's hot path (bench row 1), where a struct costs a third of an attrs class to build and,
    holding only strings, numbers and enum members (no cycle can go through it), is never tracked
    by the garbage collector (``gc=False``). Positional and keyword construction, equality and
    ``msgspec.structs.replace`` as for the attrs messages; not frozen. Treat it as read-only.
    """

    KEY: ClassVar[str] = "order_response"
    order_id: str
    symbol: str
    status: OrderStatus
    side: Side | None = None
    type: OrderType | None = None
    time_in_force: TimeInForce | None = None
    quantity: Decimal | None = None
    price: Decimal | None = None
    quantity_remaining: Decimal | None = None
    client_order_id: str | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    user_id: str | None = None
    update_time: float | None = None
    trade_id: str | None = None


@define(slots=True, eq=True)
class FillResponse:
    KEY: ClassVar[str] = "fill_response"
    trade_id: str
    order_id: str
    symbol: str
    price: Decimal
    quantity: Decimal
    side: Side
    client_order_id: str | None = None
    remaining_quantity: Decimal | None = None
    aggressor_side: Side | None = None
    fee: Decimal | None = None
    order_type: OrderType | None = None
    tif: TimeInForce | None = None
    order_price: Decimal | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    execution_type: str | None = None
    timestamp: float | None = None
    realised_pnl: Decimal | None = None
    user_id: str | None = None


@frozen
class TwapResponse:
    """``twap_response``. QFEX does not document TWAP status values (qfex-api.md §3.5): kept as text."""

    KEY: ClassVar[str] = "twap_response"
    twap_id: str
    symbol: str
    status: str
    side: Side | None = None
    client_twap_id: str | None = None
    user_id: str | None = None
    total_quantity: Decimal | None = None
    filled_quantity: Decimal | None = None
    average_fill_price: Decimal | None = None
    total_num_orders: int | None = None
    order_interval_secs: int | None = None
    reduce_only: bool | None = None
    updated_at: float | None = None
    created_at: float | None = None


@frozen
class StopOrderResponse:
    """``stop_order_response`` (AsyncAPI ``StopOrder``, qfex-api.md §14.3), pushed on ``stop_orders``.

    The wire names differ from ``order_response``: ``direction`` not ``side``, ``stop_order_type``
    not ``type``, and ``update_time`` an ISO date-time string (a float of seconds is accepted too).
    ``price`` is the trigger price. There is no status field and no parent-order id: which events
    push it is not documented. The decoder also reads an ``order_response``-shaped row (``order_id``,
    ``side``, ``type``) as a stop, since a ``stop_orders`` list's item shape is not documented (§14.4).
    """

    KEY: ClassVar[str] = "stop_order_response"
    stop_order_id: str
    symbol: str
    price: Decimal
    quantity: Decimal
    direction: Side
    stop_order_type: OrderType
    client_order_id: str | None = None
    user_id: str | None = None
    update_time: str | float | None = None

    @classmethod
    def from_order_row(cls, row: OrderResponse) -> StopOrderResponse:
        """A stop listed as an ``order_response`` row (``type`` TAKE_PROFIT/STOP_LOSS, ``price`` the
        trigger), as the 2025-10-30 changelog's "stop orders shown in the orders key" reads."""
        return cls(
            stop_order_id=row.order_id,
            symbol=row.symbol,
            price=row.price if row.price is not None else Decimal(0),
            quantity=_stop_quantity(row),
            direction=row.side if row.side is not None else Side.BUY,
            stop_order_type=row.type if row.type is not None else OrderType.STOP_LOSS,
            client_order_id=row.client_order_id,
            user_id=row.user_id,
            update_time=row.update_time,
        )


def _stop_quantity(row: OrderResponse) -> Decimal:
    for value in (row.quantity_remaining, row.quantity):
        if value is not None:
            return value
    return Decimal(0)


@frozen
class AllOrdersResponse:
    """``all_orders_response``. Where stops are listed is disputed (qfex-api.md §14.4, §14.9 item 4):
    the 2025-10-30 changelog puts them in ``orders`` (rows with ``type`` TAKE_PROFIT/STOP_LOSS), one
    rendering of the docs in a ``stop_orders`` key. The decoder keeps the wire as sent (a stop row
    under ``orders`` stays an ``OrderResponse`` there) and ``stops()`` / ``regular_orders()`` give the
    one reading that covers both.
    """

    KEY: ClassVar[str] = "all_orders_response"
    orders: tuple[OrderResponse, ...] = ()
    twaps: tuple[TwapResponse, ...] = ()
    stop_orders: tuple[StopOrderResponse, ...] = ()

    def stops(self) -> tuple[StopOrderResponse, ...]:
        """Every stop in the frame: ``stop_orders`` first, then stop-typed rows of ``orders`` whose id
        is not already listed (a venue listing a stop in both places yields it once)."""
        seen = {s.stop_order_id for s in self.stop_orders}
        extra = tuple(
            StopOrderResponse.from_order_row(o)
            for o in self.orders
            if o.type is not None and o.type.is_stop and o.order_id not in seen
        )
        return self.stop_orders + extra

    def regular_orders(self) -> tuple[OrderResponse, ...]:
        """``orders`` without the stop-typed rows (stops are read through ``stops()``)."""
        return tuple(o for o in self.orders if o.type is None or not o.type.is_stop)


@frozen
class Trade:
    """One element of ``user_trades_response``; ``client_order_id`` etc. appear on the docs page only."""

    trade_id: str
    symbol: str
    price: Decimal
    quantity: Decimal
    side: Side
    order_id: str
    fee: Decimal | None = None
    order_type: OrderType | None = None
    tif: TimeInForce | None = None
    client_order_id: str | None = None
    aggressor_side: Side | None = None
    timestamp: float | None = None


@frozen
class UserTradesResponse:
    """``user_trades_response`` is a bare array on the wire (AsyncAPI); the codec wraps it."""

    KEY: ClassVar[str] = "user_trades_response"
    trades: tuple[Trade, ...] = ()


@frozen
class Ack:
    KEY: ClassVar[str] = "ack"
    incoming_message: dict[str, Any] | None = None


@frozen
class Subscribed:
    """``{"subscribed": "fills"}``: the value is the channel name, not an object."""

    KEY: ClassVar[str] = "subscribed"
    channel: str


@frozen
class Unsubscribed:
    KEY: ClassVar[str] = "unsubscribed"
    channel: str


@frozen
class Err:
    KEY: ClassVar[str] = "err"
    error_code: ErrorCode
    message: str | None = None
    incoming_message: dict[str, Any] | None = None


@frozen
class PositionResponse:
    KEY: ClassVar[str] = "position_response"
    symbol: str
    position: Decimal
    id: str | None = None
    margin_alloc: Decimal | None = None
    realised_pnl: Decimal | None = None
    unrealised_pnl: Decimal | None = None
    net_funding: Decimal | None = None
    open_orders: Decimal | None = None
    open_quantity: Decimal | None = None
    leverage: Decimal | None = None
    average_price: Decimal | None = None


@frozen
class BalanceResponse:
    KEY: ClassVar[str] = "balance_response"
    available_balance: Decimal
    id: str | None = None
    user_id: str | None = None
    deposit: Decimal | None = None
    realised_pnl: Decimal | None = None
    unrealised_pnl: Decimal | None = None
    order_margin: Decimal | None = None
    position_margin: Decimal | None = None
    net_funding: Decimal | None = None


@frozen
class PositionReport(PositionResponse):
    """A ``position_response`` with the two margin rates of QFEX's example (qfex-api.md §4.6).

    The simulator sends this; decoding still yields a ``PositionResponse`` (which ignores the two
    extra keys), so every existing reader and its equality checks are unchanged.
    """

    initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None


@frozen
class LeverageLevel:
    """One ``LeveragePublic`` row (AsyncAPI ``components.schemas.LeveragePublic``): ``leverage`` is a
    string there and in QFEX's legacy proto, the rates and ``max_notional`` are numbers."""

    symbol: str
    leverage: str
    id: str | None = None
    initial_margin: Decimal | None = None
    maintenance_margin: Decimal | None = None
    max_notional: Decimal | None = None


@frozen
class UserLeverageResponse:
    """``user_leverage_response``: a bare array of ``LeveragePublic`` on the wire (AsyncAPI)."""

    KEY: ClassVar[str] = "user_leverage_response"
    levels: tuple[LeverageLevel, ...] = ()


@frozen
class AvailableLeverageLevelsResponse:
    """``available_leverage_levels_response``: a bare array of ``LeveragePublic`` (AsyncAPI)."""

    KEY: ClassVar[str] = "available_leverage_levels_response"
    levels: tuple[LeverageLevel, ...] = ()


@frozen
class Envelope:
    """The AsyncAPI's ``{"type": ..., "channel": ..., "contents": [...]}`` form (qfex-api.md §4.1)."""

    type: str
    channel: str | None = None
    contents: Any = None
    raw: dict[str, Any] = field(factory=dict, repr=False)


Reply = (
    Authenticated
    | OrderResponse
    | FillResponse
    | TwapResponse
    | StopOrderResponse
    | AllOrdersResponse
    | UserTradesResponse
    | Ack
    | Subscribed
    | Unsubscribed
    | Err
    | PositionResponse
    | BalanceResponse
    | UserLeverageResponse
    | AvailableLeverageLevelsResponse
    | Envelope
)
REPLY_TYPES: tuple[type[Any], ...] = (
    Authenticated,
    OrderResponse,
    FillResponse,
    TwapResponse,
    StopOrderResponse,
    AllOrdersResponse,
    UserTradesResponse,
    Ack,
    Subscribed,
    Unsubscribed,
    Err,
    PositionResponse,
    BalanceResponse,
    UserLeverageResponse,
    AvailableLeverageLevelsResponse,
)
