"""Read-only answers to get_order, get_user_orders, get_user_trades (qfex-api.md §3.7) and the two
leverage queries (§3.11).

Pure functions over the engine's state; they return the reply for the requesting connection only.
"""

from __future__ import annotations

import math

from qfex_oms.protocol import ErrorCode, OrderStatus, RequestError
from qfex_oms.protocol.messages import (
    AllOrdersResponse,
    AvailableLeverageLevelsResponse,
    GetAvailableLeverageLevels,
    GetOrder,
    GetUserLeverage,
    GetUserOrders,
    GetUserTrades,
    OrderResponse,
    UserLeverageResponse,
    UserTradesResponse,
)
from qfex_oms.sim import choices
from qfex_oms.sim.engine import Engine


def _page(limit: int | None, offset: int | None) -> tuple[int, int]:
    limit = choices.DEFAULT_PAGE_LIMIT if limit is None else limit
    offset = 0 if offset is None else offset
    if limit < 0 or offset < 0:
        raise RequestError(ErrorCode.INVALID_PARAMETER, "limit and offset must be >= 0", None)
    return limit, offset


def get_order(engine: Engine, account: str, request: GetOrder) -> OrderResponse:
    """An ``order_response`` with the order's last status, as QFEX's CLI expects (C15)."""
    order = engine.orders_by_id.get(request.order_id)
    if (
        order is not None and order.account == account and order.symbol == request.symbol
        and (order.is_open or choices.GET_ORDER_INCLUDES_CLOSED)
    ):
        return order.response(order.status)
    return OrderResponse(
        order_id=request.order_id,
        symbol=request.symbol,
        status=OrderStatus.NO_SUCH_ORDER,
        client_order_id="",
        user_id=engine.accounts[account].account.user_id,
        update_time=engine.clock(),
    )


def user_orders(engine: Engine, account: str, request: GetUserOrders) -> AllOrdersResponse:
    """Open orders (oldest first, paged by limit/offset) and every active TWAP (not paged)."""
    limit, offset = _page(request.limit, request.offset)
    state = engine.accounts[account]
    symbol = request.symbol
    orders = [o for o in state.open_orders.values() if symbol is None or o.symbol == symbol]
    twaps = [t for t in state.active_twaps.values() if symbol is None or t.symbol == symbol]
    return AllOrdersResponse(
        orders=tuple(o.response(o.status) for o in orders[offset : offset + limit]),
        twaps=tuple(t.response() for t in twaps),
    )


def user_trades(engine: Engine, account: str, request: GetUserTrades) -> UserTradesResponse:
    """The account's trades, oldest first; ``start_ts``/``end_ts`` are inclusive whole seconds."""
    limit, offset = _page(request.limit, request.offset)
    state = engine.accounts[account]
    trades = state.trades if request.order_id is None else state.trades_by_order.get(request.order_id, [])
    start = -math.inf if request.start_ts is None else request.start_ts
    end = math.inf if request.end_ts is None else request.end_ts + 1
    selected = [t for t in trades if start <= t.timestamp < end]
    return UserTradesResponse(tuple(t.trade() for t in selected[offset : offset + limit]))


def user_leverage(engine: Engine, account: str, request: GetUserLeverage) -> UserLeverageResponse:
    """The account's leverage per listed symbol, paged (CHOICES C30)."""
    limit, offset = _page(request.limit, request.offset)
    rows = engine.ledger.leverage_rows(account)
    return UserLeverageResponse(tuple(rows[offset : offset + limit]))


def available_levels(engine: Engine, request: GetAvailableLeverageLevels) -> AvailableLeverageLevelsResponse:
    """Every (symbol, allowed leverage) pair, paged (CHOICES C30)."""
    limit, offset = _page(request.limit, request.offset)
    rows = engine.ledger.level_rows()
    return AvailableLeverageLevelsResponse(tuple(rows[offset : offset + limit]))
