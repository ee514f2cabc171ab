"""Helpers to speak to the core the way the exchange would (imported by the core tests)."""

from __future__ import annotations

import itertools
from decimal import Decimal

from qfex_oms.core import OmsCore, Order
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import OrderStatus, OrderType, Side, TimeInForce

SYMBOL = "AAPL-USD"
_ids = itertools.count(1)


def new_id(prefix: str = "oid") -> str:
    return f"{prefix}-{next(_ids)}"


def place(core: OmsCore, cid: str = "c1", qty: str = "3", tif: TimeInForce = TimeInForce.GTC,
          symbol: str = SYMBOL, order_type: OrderType = OrderType.LIMIT) -> Order:
    order = core.place_order(symbol, Side.BUY, order_type, tif, Decimal(qty), Decimal("200"), cid)
    core.take_frames()
    return order


def resp(order_id: str, status: str, *, cid: str = "c1", remaining: str | None = None,
         qty: str = "3", trade_id: str | None = None, symbol: str = SYMBOL,
         tif: TimeInForce = TimeInForce.GTC) -> m.OrderResponse:
    return m.OrderResponse(
        order_id=order_id, symbol=symbol, status=OrderStatus(status), side=Side.BUY,
        type=OrderType.LIMIT, time_in_force=tif, quantity=Decimal(qty), price=Decimal("200"),
        quantity_remaining=None if remaining is None else Decimal(remaining), client_order_id=cid,
        trade_id=trade_id,
    )


def fill(order_id: str, qty: str, remaining: str, *, trade_id: str, cid: str = "c1",
         symbol: str = SYMBOL) -> m.FillResponse:
    return m.FillResponse(trade_id=trade_id, order_id=order_id, symbol=symbol, price=Decimal("200"),
                          quantity=Decimal(qty), side=Side.BUY, client_order_id=cid,
                          remaining_quantity=Decimal(remaining))


def ack(core: OmsCore, order: Order, order_id: str | None = None) -> str:
    order_id = order_id or new_id()
    core.on_reply(resp(order_id, "ACK", cid=order.client_order_id, remaining=str(order.quantity),
                       qty=str(order.quantity), symbol=order.symbol, tif=order.time_in_force))
    return order_id
