"""The simulator's records of orders, TWAPs and trades, and their wire forms.

Records are mutable attrs classes with slots (one per order, kept after the order closes, so the
venue can be inspected for reconciliation). ``Venue`` hands out copies, never the live records.
"""

from __future__ import annotations

from decimal import Decimal

from attrs import define

from qfex_oms.protocol import OrderStatus, OrderType, Side, TimeInForce
from qfex_oms.protocol.messages import FillResponse, OrderResponse, Trade, TwapResponse
from qfex_oms.sim import choices

ZERO = Decimal(0)
FEE = Decimal(choices.FEE)


@define(slots=True, eq=False)
class SimOrder:
    order_id: str
    account: str  # public key of the owning account
    user_id: str
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal
    client_order_id: str
    remaining: Decimal
    created_at: float
    update_time: float
    filled: Decimal = ZERO
    status: OrderStatus = OrderStatus.ACK
    is_open: bool = False
    take_profit: Decimal = ZERO
    stop_loss: Decimal = ZERO
    twap_id: str | None = None

    def response(self, status: OrderStatus, trade_id: str | None = None) -> OrderResponse:
        return OrderResponse(
            order_id=self.order_id,
            symbol=self.symbol,
            status=status,
            side=self.side,
            type=self.order_type,
            time_in_force=self.time_in_force,
            quantity=self.quantity,
            price=self.price,
            quantity_remaining=self.remaining,
            client_order_id=self.client_order_id,
            take_profit=self.take_profit,
            stop_loss=self.stop_loss,
            user_id=self.user_id,
            update_time=self.update_time,
            trade_id=trade_id,
        )


@define(slots=True, eq=False)
class SimTrade:
    """One side of one fill, as the account that owns ``order_id`` sees it."""

    trade_id: str
    account: str
    user_id: str
    symbol: str
    price: Decimal
    quantity: Decimal
    side: Side
    aggressor_side: Side
    order_id: str
    client_order_id: str
    order_type: OrderType
    time_in_force: TimeInForce
    order_price: Decimal
    remaining_quantity: Decimal
    timestamp: float
    is_maker: bool
    realised_pnl: Decimal = ZERO  # what this fill realised on the account's position

    def fill_response(self) -> FillResponse:
        return FillResponse(
            trade_id=self.trade_id,
            order_id=self.order_id,
            symbol=self.symbol,
            price=self.price,
            quantity=self.quantity,
            side=self.side,
            client_order_id=self.client_order_id,
            remaining_quantity=self.remaining_quantity,
            aggressor_side=self.aggressor_side,
            fee=FEE,
            order_type=self.order_type,
            tif=self.time_in_force,
            order_price=self.order_price,
            take_profit=ZERO,
            stop_loss=ZERO,
            execution_type=choices.EXECUTION_TYPE,
            timestamp=self.timestamp,
            realised_pnl=self.realised_pnl,
            user_id=self.user_id,
        )

    def trade(self) -> Trade:
        return Trade(
            trade_id=self.trade_id,
            symbol=self.symbol,
            price=self.price,
            quantity=self.quantity,
            side=self.side,
            order_id=self.order_id,
            fee=FEE,
            order_type=self.order_type,
            tif=self.time_in_force,
            client_order_id=self.client_order_id,
            aggressor_side=self.aggressor_side,
            timestamp=self.timestamp,
        )


@define(slots=True, eq=False)
class SimTwap:
    twap_id: str
    account: str
    user_id: str
    symbol: str
    side: Side
    total_quantity: Decimal
    num_orders: int
    order_interval_secs: int
    reduce_only: bool
    client_twap_id: str | None
    child_quantities: list[Decimal]
    created_at: float
    updated_at: float
    status: str = choices.TWAP_ACTIVE
    children_placed: int = 0
    filled_quantity: Decimal = ZERO
    notional: Decimal = ZERO

    @property
    def active(self) -> bool:
        return self.status == choices.TWAP_ACTIVE

    @property
    def average_fill_price(self) -> Decimal:
        return self.notional / self.filled_quantity if self.filled_quantity else ZERO

    def response(self) -> TwapResponse:
        return TwapResponse(
            twap_id=self.twap_id,
            symbol=self.symbol,
            status=self.status,
            side=self.side,
            client_twap_id=self.client_twap_id,
            user_id=self.user_id,
            total_quantity=self.total_quantity,
            filled_quantity=self.filled_quantity,
            average_fill_price=self.average_fill_price,
            total_num_orders=self.num_orders,
            order_interval_secs=self.order_interval_secs,
            reduce_only=self.reduce_only,
            updated_at=self.updated_at,
            created_at=self.created_at,
        )

    def cancel_response(self) -> OrderResponse:
        """The order_response a TWAP cancel answers with (qfex-api.md §10b): order_id = twap_id."""
        return OrderResponse(
            order_id=self.twap_id,
            symbol=self.symbol,
            status=OrderStatus.CANCELLED,
            side=self.side,
            type=OrderType.MARKET,
            time_in_force=TimeInForce.IOC,
            quantity=self.total_quantity,
            price=ZERO,
            quantity_remaining=self.total_quantity - self.filled_quantity,
            client_order_id=self.client_twap_id or "",
            take_profit=ZERO,
            stop_loss=ZERO,
            user_id=self.user_id,
            update_time=self.updated_at,
            trade_id=None,
        )
