"""``open_simulator``: run the simulator inside a caller's trio program, and inspect it.

The context manager owns the nursery: the websocket server, every connection and every TWAP timer
run inside it and are cancelled when the block exits. Inspection helpers return copies of the
venue's records, so a test can reconcile an order manager's book against the exchange's truth
without being able to corrupt it.
"""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from decimal import Decimal
from functools import partial

import trio
from trio_websocket import serve_websocket

from qfex_oms.protocol.enums import CancelIdType
from qfex_oms.protocol.messages import CancelOrder
from qfex_oms.sim.engine import AccountState
from qfex_oms.sim.faults import Faults
from qfex_oms.sim.ledger import BalanceView, PositionView
from qfex_oms.sim.market import BackgroundMarket, MarketSettings
from qfex_oms.sim.mds import DEFAULT_PULSE, MdsServer, MdsSettings
from qfex_oms.sim.records import SimOrder, SimTrade, SimTwap
from qfex_oms.sim.rest import serve_rest
from qfex_oms.sim.server import SimServer
from qfex_oms.sim.settings import (
    DEFAULT_DEPOSIT,
    Account,
    RateLimitSettings,
    SimSettings,
    SymbolSpec,
)
from qfex_oms.sim.stops import SimStop, StopRules

DEFAULT_RATE_LIMITS = RateLimitSettings()


class Venue:
    """A running simulator: its URL, accounts, fault control and read-only inspection."""

    def __init__(self, server: SimServer, url: str, rest_url: str | None = None,
                 mds_url: str | None = None, mds: MdsServer | None = None) -> None:
        self._server = server
        self.url = url
        # The REST API (qfex-api.md §15) on its own port, same accounts (CHOICES C32).
        self.rest_url = rest_url
        # The public market-data websocket (qfex-api.md §13) on its own port; ``mds`` for tests
        # (inject a frame, drop connections, silence a channel).
        self.mds_url = mds_url
        self.mds = mds
        # The background market (sim/market.py) when it is on.
        self.market: BackgroundMarket | None = None
        self.settings = server.settings
        self.accounts: tuple[Account, ...] = server.settings.accounts
        self.faults: Faults = server.faults
        self.stop_rules: StopRules = server.engine.stops.rules  # CHOICES C45/C46, switchable

    def account(self, public_key: str) -> Account:
        return self._server.accounts[public_key]

    def user_id(self, public_key: str) -> str:
        return self._server.accounts[public_key].user_id

    def _state(self, public_key: str) -> AccountState:
        return self._server.engine.accounts[public_key]

    def open_orders(self, public_key: str, symbol: str | None = None) -> list[SimOrder]:
        """Resting orders of the account, oldest first (copies)."""
        return [copy.copy(o) for o in self._state(public_key).open_orders.values()
                if symbol is None or o.symbol == symbol]

    def orders(self, public_key: str, symbol: str | None = None) -> list[SimOrder]:
        """Every order the account ever sent (rejected, open and closed), oldest first (copies)."""
        return [copy.copy(o) for o in self._state(public_key).orders
                if symbol is None or o.symbol == symbol]

    def order(self, order_id: str) -> SimOrder | None:
        order = self._server.engine.orders_by_id.get(order_id)
        return copy.copy(order) if order is not None else None

    def trades(self, public_key: str) -> list[SimTrade]:
        """The account's side of every fill, oldest first (copies)."""
        return [copy.copy(t) for t in self._state(public_key).trades]

    def twaps(self, public_key: str, active_only: bool = False) -> list[SimTwap]:
        state = self._state(public_key)
        source = state.active_twaps.values() if active_only else state.twaps
        return [copy.copy(t) for t in source]

    def stops(self, public_key: str, open_only: bool = True) -> list[SimStop]:
        """The account's stop orders (live ones, or every one ever staged or refused), oldest first
        (copies)."""
        return [copy.copy(s) for s in self._server.engine.stops.stops(public_key, open_only)]

    def depth(self, symbol: str) -> dict[str, list[tuple[Decimal, Decimal]]]:
        """Aggregated depth ``{"bids": [(price, qty)...], "asks": [...]}``, best first."""
        book = self._server.engine.books[symbol]
        return {"bids": book.bids.depth(), "asks": book.asks.depth()}

    def cancel_unannounced(self, public_key: str, order_id: str) -> bool:
        """Take a resting order off the book without telling any connection (as if its CANCELLED
        report were lost): for tests of what a snapshot proves. True if it was resting."""
        order = self._server.engine.orders_by_id.get(order_id)
        if order is None or order.account != public_key or not order.is_open:
            return False
        request = CancelOrder(order_id=order_id, symbol=order.symbol,
                              cancel_order_id_type=CancelIdType.ORDER_ID)
        self._server.engine.cancel_order(public_key, request)  # its events are deliberately dropped
        return True

    def position(self, public_key: str, symbol: str) -> PositionView:
        """The account's position in ``symbol`` exactly as the venue reports it on the wire."""
        return self._server.engine.ledger.position(public_key, symbol)

    def balance(self, public_key: str) -> BalanceView:
        """The account's balance exactly as the venue reports it on the wire."""
        return self._server.engine.ledger.balance(public_key)

    def mark(self, symbol: str) -> Decimal | None:
        return self._server.engine.ledger.mark(symbol)

    def set_mark(self, symbol: str, price: Decimal | str | int | None) -> None:
        """Pin the mark price of ``symbol`` (None: back to the last trade price); holders of the
        symbol get their position and balance pushed."""
        self._server.set_mark(symbol, None if price is None else Decimal(price))

    def apply_funding(self, symbol: str, rate: Decimal | str) -> None:
        """Settle one funding period on ``symbol`` now at ``rate`` (CHOICES C28)."""
        self._server.apply_funding(symbol, Decimal(rate))

    def connection_count(self, public_key: str | None = None) -> int:
        conns = self._server.connections
        return sum(len(c) for k, c in conns.items() if public_key in (None, k))

    async def drop_connections(self, public_key: str | None = None) -> int:
        """Close the account's connections (all if None) as an unexpected drop; returns how many."""
        return await self._server.drop(public_key)


@asynccontextmanager
async def open_simulator(
    port: int = 0,
    host: str = "127.0.0.1",
    *,
    accounts: Sequence[Account] | None = None,
    symbols: Sequence[SymbolSpec] | None = None,
    time_scale: float = 1.0,
    rate_limits: RateLimitSettings | None = DEFAULT_RATE_LIMITS,
    auth_deadline: float = 60.0,
    auth_skew: float = 300.0,
    nonce_window: float = 900.0,
    ping_interval: float | None = 20.0,
    pong_timeout: float | None = None,
    deposit: Decimal = DEFAULT_DEPOSIT,
    funding_interval: float | None = None,
    funding_rate: Decimal = Decimal("0.0001"),
    rest_port: int | None = 0,
    mds_port: int | None = 0,
    mds_pulse: float = DEFAULT_PULSE,
    market: MarketSettings | bool | None = None,
) -> AsyncIterator[Venue]:
    """Serve a QFEX-compatible trade websocket on ``ws://host:port``, its REST API on
    ``http://host:rest_port`` and its market data (MDS) on ``ws://host:mds_port`` for the duration
    of the block.

    ``port=0`` / ``rest_port=0`` / ``mds_port=0`` pick free ports (read ``venue.url`` /
    ``venue.rest_url`` / ``venue.mds_url``); ``None`` serves no REST API / no MDS.
    ``rate_limits=None`` disables rate limiting. ``mds_pulse``: seconds between level2 images.
    ``market``: the background market (``True`` for ``MarketSettings()``); off by default. Its
    account is added to ``accounts`` when missing.
    """
    market_settings = MarketSettings() if market is True else (market or None)
    defaults = SimSettings()
    all_accounts = tuple(accounts) if accounts is not None else defaults.accounts
    if market_settings is not None and all(a.public_key != market_settings.account.public_key
                                           for a in all_accounts):
        all_accounts += (market_settings.account,)
    settings = SimSettings(
        accounts=all_accounts,
        symbols=tuple(symbols) if symbols is not None else defaults.symbols,
        time_scale=time_scale,
        rate_limits=rate_limits,
        auth_deadline=auth_deadline,
        auth_skew=auth_skew,
        nonce_window=nonce_window,
        ping_interval=ping_interval,
        pong_timeout=pong_timeout,
        deposit=deposit,
        funding_interval=funding_interval,
        funding_rate=funding_rate,
    )
    async with trio.open_nursery() as nursery:
        server = SimServer(settings, nursery)
        ws_server = await nursery.start(partial(serve_websocket, server.handle, host, port, None))
        rest_url = None
        if rest_port is not None:
            rest_url = await nursery.start(partial(serve_rest, server, host, rest_port))
        mds_url, mds = None, None
        if mds_port is not None:
            mds = MdsServer(server, MdsSettings(pulse=mds_pulse))
            mds_server = await nursery.start(partial(serve_websocket, mds.handle, host, mds_port, None))
            mds_url = f"ws://{host}:{mds_server.port}"
            nursery.start_soon(mds.publish)
        venue = Venue(server, f"ws://{host}:{ws_server.port}", rest_url, mds_url, mds)
        if market_settings is not None:
            venue.market = BackgroundMarket(venue.url, market_settings, settings.symbols)
            await nursery.start(venue.market.run)
        try:
            yield venue
        finally:
            server.closing = True
            nursery.cancel_scope.cancel()
