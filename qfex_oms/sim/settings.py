"""Configuration of the simulator: accounts, reference data and the tunable numbers.

Reference data mirrors QFEX's ``RefdataSymbol`` (qfex-api.md §6): tick size, lot size, min/max
quantity and min/max price, all Decimal. The defaults are plausible values, not QFEX's real ones.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from attrs import field, frozen


@frozen
class Account:
    """A simulated account: the key pair a client signs with and the user_id QFEX reports."""

    public_key: str
    secret_key: str = field(repr=False)
    user_id: str = field(factory=lambda: str(uuid.uuid4()))
    # The account's deposit; None takes SimSettings.deposit.
    deposit: Decimal | None = None


@frozen
class SymbolSpec:
    symbol: str
    tick_size: Decimal
    lot_size: Decimal
    min_quantity: Decimal
    max_quantity: Decimal
    min_price: Decimal
    max_price: Decimal
    # QFEX's refdata ``default_max_leverage``: an account starts at this leverage (CHOICES C30).
    default_max_leverage: int = 20
    # The levels set_user_leverage accepts and get_available_leverage_levels lists (CHOICES C30).
    leverage_levels: tuple[int, ...] = (1, 2, 3, 5, 10, 20)
    # Served by GET /refdata only (CHOICES C33); the engine's own checks do not read these four.
    status: str = "ACTIVE"
    order_types: tuple[str, ...] = ("LIMIT", "MARKET", "ALO")
    time_in_force: tuple[str, ...] = ("GTC", "IOC", "FOK")
    product_category: str = "EQUITY"


def _spec(symbol: str, tick: str, lot: str, min_q: str, max_q: str, min_p: str, max_p: str) -> SymbolSpec:
    return SymbolSpec(symbol, Decimal(tick), Decimal(lot), Decimal(min_q), Decimal(max_q),
                      Decimal(min_p), Decimal(max_p))


DEFAULT_SYMBOLS: tuple[SymbolSpec, ...] = (
    _spec("AAPL-USD", "0.01", "0.001", "0.001", "100000", "1", "10000"),
    _spec("TSLA-USD", "0.01", "0.001", "0.001", "100000", "1", "10000"),
    _spec("US500-USD", "0.1", "0.001", "0.001", "10000", "100", "100000"),
)


def default_accounts() -> tuple[Account, ...]:
    """The two demo accounts. user_ids are fixed so logs and tests are reproducible."""
    return (
        Account("qfex_pub_demo", "qfex_secret_demo", "00000000-0000-4000-8000-000000000001"),
        Account("qfex_pub_demo2", "qfex_secret_demo2", "00000000-0000-4000-8000-000000000002"),
    )


# QFEX's balance_response example (qfex-api.md §4.6) shows a deposit of 9,990,000,000.
DEFAULT_DEPOSIT = Decimal("9990000000")


@frozen
class RateLimitSettings:
    """Token bucket per account and per bucket (general, cancel), refilled continuously.

    QFEX documents "12,000 weight units per 60 seconds" smoothed by an EMA whose constants are not
    published. A token bucket of ``capacity`` units refilled at ``units_per_second`` gives the same
    long-run rate and admits the same 60 s budget as a burst; it is easier to reason about in tests.
    """

    units_per_second: float = 200.0
    capacity: float = 12_000.0


@frozen
class SimSettings:
    """Every tunable number. ``None`` for ``rate_limits`` disables rate limiting."""

    accounts: tuple[Account, ...] = field(factory=default_accounts)
    symbols: tuple[SymbolSpec, ...] = DEFAULT_SYMBOLS
    # Divides TWAP intervals only (time_scale=1000 turns 30 s into 30 ms).
    time_scale: float = 1.0
    rate_limits: RateLimitSettings | None = field(factory=RateLimitSettings)
    # QFEX: "authenticate within 1 minute of connecting".
    auth_deadline: float = 60.0
    # Accepted |server time - unix_ts| in seconds (QFEX REST says "typically ±5 minutes").
    auth_skew: float = 300.0
    # A nonce may not be reused within this many seconds (QFEX: 15 minutes).
    nonce_window: float = 900.0
    # Websocket ping period after auth; None disables pings.
    ping_interval: float | None = 20.0
    # Close the connection if a ping is not answered in time; None waits forever.
    pong_timeout: float | None = None
    # Every account's deposit unless its Account says otherwise (QFEX's balance example).
    deposit: Decimal = DEFAULT_DEPOSIT
    # Seconds between funding settlements on trio's clock (not divided by time_scale); None: off.
    funding_interval: float | None = None
    # Rate applied to every symbol at each settlement (fraction of notional at mark, CHOICES C28).
    funding_rate: Decimal = Decimal("0.0001")
