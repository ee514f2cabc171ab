"""GuardState: one synchronous check per limit, each returning why it tripped (or None)."""

from __future__ import annotations

from decimal import Decimal

from qfex_oms.app.config import GuardLimits
from qfex_oms.app.guard import GuardState

D = Decimal


def test_no_limits_never_trip() -> None:
    state = GuardState(GuardLimits())
    assert state.on_open_orders(10_000) is None
    assert state.on_position("AAPL-USD", D(1_000_000), D(10_000)) is None
    assert state.on_price("AAPL-USD", D(20_000)) is None
    assert state.on_open_quantity("AAPL-USD", D(10**9), D(10**9)) is None
    assert all(state.on_reject(float(t)) is None for t in range(1000))
    state.disconnected_since = 0.0
    assert state.on_clock(1e9) is None


def test_max_open_orders() -> None:
    state = GuardState(GuardLimits(max_open_orders=2))
    assert state.on_open_orders(0) is None and state.on_open_orders(2) is None
    assert state.on_open_orders(3) == "3 open orders exceed max_open_orders 2"


def test_max_position_is_per_symbol_signed_and_the_exchanges_figure() -> None:
    state = GuardState(GuardLimits(max_position=D(2)))
    assert state.on_position("AAPL-USD", D(2), D(200)) is None
    assert state.on_position("TSLA-USD", D("-2.000000"), D(300)) is None  # another symbol, short 2
    assert state.on_position("AAPL-USD", D("1.5"), D(200)) is None  # a report replaces, never adds
    assert state.positions == {"AAPL-USD": D("1.5"), "TSLA-USD": D(-2)}
    reason = state.on_position("TSLA-USD", D("-2.001000"), D(300))
    assert reason == "position -2.001 on TSLA-USD exceeds max_position 2"


def test_max_notional_sums_every_symbol_at_its_last_price() -> None:
    state = GuardState(GuardLimits(max_notional=D(1000)))
    assert state.on_position("AAPL-USD", D(2), D(190)) is None  # priced at its entry until a fill: 380
    assert state.on_price("AAPL-USD", D(200)) is None  # 400
    assert state.on_position("TSLA-USD", D(-2), D(300)) is None  # 400 + 600 = 1000: at, not over
    reason = state.on_price("AAPL-USD", D("201.1"))  # 2 * 201.1 + 600
    assert reason is not None and reason.startswith("notional 1002.2") and "max_notional 1000" in reason
    # A report that reduces the position brings it back under.
    assert state.on_position("AAPL-USD", D(1), D(190)) is None


def test_max_exposure_counts_the_open_orders_on_the_side_that_adds() -> None:
    state = GuardState(GuardLimits(max_exposure=D(3)))
    assert state.on_position("AAPL-USD", D(2)) is None
    assert state.on_open_quantity("AAPL-USD", D(1), D(5)) is None  # long 3 at worst, or short 3
    reason = state.on_open_quantity("AAPL-USD", D(2), D(4))
    assert reason == ("exposure 4 on AAPL-USD (position 2, open buys 2, open sells 4) "
                      "exceeds max_exposure 3")
    # The position moves without any order changing: the exposure is checked again.
    assert state.on_position("AAPL-USD", D(1)) is None
    assert state.on_position("AAPL-USD", D(-1)) is not None  # short 1, open sells 4: -5


def test_max_rejects_per_minute_is_a_sliding_window() -> None:
    state = GuardState(GuardLimits(max_rejects_per_minute=2))
    assert state.on_reject(0.0) is None and state.on_reject(1.0) is None
    assert state.on_reject(2.0) == "3 rejects in the last minute exceed max_rejects_per_minute 2"
    later = GuardState(GuardLimits(max_rejects_per_minute=2))
    assert later.on_reject(0.0) is None and later.on_reject(30.0) is None
    assert later.on_reject(61.0) is None  # the reject at 0 s left the window
    assert list(later.rejects) == [30.0, 61.0]
    assert later.on_reject(62.0) is not None


def test_max_disconnect_seconds_counts_from_the_disconnect() -> None:
    state = GuardState(GuardLimits(max_disconnect_seconds=1.5))
    assert state.on_clock(100.0) is None  # connected
    state.disconnected_since = 100.0
    assert state.on_clock(101.0) is None and state.on_clock(101.5) is None
    assert state.on_clock(101.6) == "disconnected for 1.6 s (max_disconnect_seconds 1.5)"
    state.disconnected_since = None  # reconnected
    assert state.on_clock(500.0) is None
