"""Pre-trade risk (core/risk.py): every limit passes exactly at its boundary and refuses one step past
it, with Decimal figures; overrides, exposure counting, skipped checks, the rate bucket, bad limits,
and a refused order leaving the check as it was."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qfex_oms.core.risk import AccountState, RiskCheck, RiskLimits, SymbolLimits
from qfex_oms.errors import InvalidArgument, RiskRefused
from qfex_oms.protocol.enums import OrderType, Side

SYM = "AAPL-USD"
BUY, SELL = Side.BUY, Side.SELL


def check(**limits: object) -> RiskCheck:
    return RiskCheck(RiskLimits(**limits))  # type: ignore[arg-type]


def limit_of(refusal: object) -> str | None:
    return None if refusal is None else refusal.limit  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- per order


def test_max_order_quantity_inclusive() -> None:
    rc, view = check(max_order_quantity=D("10")), AccountState()
    assert rc.check_order(view, 0, SYM, BUY, D("10"), D("100")) is None
    refusal = rc.check_order(view, 0, SYM, BUY, D("10.0001"), D("100"))
    assert refusal is not None and refusal.limit == "max_order_quantity"
    assert (refusal.value, refusal.bound) == (D("10.0001"), D("10"))
    assert "10.0001" in refusal.message and "max_order_quantity 10" in refusal.message


def test_max_order_notional_inclusive_and_exact() -> None:
    rc, view = check(max_order_notional=D("1000.01")), AccountState()
    # 3 x 333.3366666... would round in a narrow context; these are exact: 7 x 142.8585 = 1000.0095
    assert rc.check_order(view, 0, SYM, BUY, D("7"), D("142.8585")) is None
    assert rc.check_order(view, 0, SYM, BUY, D("1"), D("1000.01")) is None
    refusal = rc.check_order(view, 0, SYM, SELL, D("1"), D("1000.0100000000000000000000000001"))
    assert limit_of(refusal) == "max_order_notional"


def test_market_order_notional_uses_reference_price_or_skips() -> None:
    rc = check(max_order_notional=D("500"))
    priced = AccountState(prices={SYM: D("100")})
    assert rc.check_order(priced, 0, SYM, BUY, D("5"), None, OrderType.MARKET) is None
    assert limit_of(rc.check_order(priced, 0, SYM, BUY, D("5.01"), None, OrderType.MARKET)) == \
        "max_order_notional"
    # no price, no reference: skipped by default, refused with refuse_unpriced
    assert rc.check_order(AccountState(), 0, SYM, BUY, D("99"), None, OrderType.MARKET) is None
    strict = check(max_order_notional=D("500"), refuse_unpriced=True)
    assert limit_of(strict.check_order(AccountState(), 0, SYM, BUY, D("1"), None, OrderType.MARKET)) == \
        "refuse_unpriced"


def test_price_band_inclusive_both_sides() -> None:
    rc, view = check(price_band_pct=D("5")), AccountState(prices={SYM: D("200")})
    assert rc.check_order(view, 0, SYM, BUY, D("1"), D("210")) is None  # exactly +5 %
    assert rc.check_order(view, 0, SYM, SELL, D("1"), D("190")) is None  # exactly -5 %
    above = rc.check_order(view, 0, SYM, BUY, D("1"), D("210.01"))
    below = rc.check_order(view, 0, SYM, SELL, D("1"), D("189.99"))
    assert limit_of(above) == limit_of(below) == "price_band_pct"
    assert above is not None and above.value == D("5.005") and above.bound == D("5")


def test_price_band_skipped_without_reference_and_for_stops() -> None:
    rc = check(price_band_pct=D("1"))
    assert rc.check_order(AccountState(), 0, SYM, BUY, D("1"), D("1000000")) is None
    view = AccountState(prices={SYM: D("100")})
    # a stop's price is its trigger, not a limit price: the band does not apply
    assert rc.check_order(view, 0, SYM, SELL, D("1"), D("50"), OrderType.STOP_LOSS) is None
    assert limit_of(rc.check_order(view, 0, SYM, SELL, D("1"), D("50"), OrderType.ALO)) == "price_band_pct"


def test_per_symbol_override_wins_and_others_inherit() -> None:
    rc = check(max_order_quantity=D("10"), max_position=D("100"),
               per_symbol={SYM: SymbolLimits(max_order_quantity=D("2"))})
    view = AccountState()
    assert rc.check_order(view, 0, SYM, BUY, D("2"), D("1")) is None
    assert limit_of(rc.check_order(view, 0, SYM, BUY, D("3"), D("1"))) == "max_order_quantity"
    assert rc.check_order(view, 0, "TSLA-USD", BUY, D("10"), D("1")) is None
    assert rc.limits_for(SYM).max_position == D("100")  # not overridden: inherited
    # an override may also loosen the account-wide limit
    loose = check(max_order_quantity=D("10"), per_symbol={SYM: {"max_order_quantity": D("50")}})
    assert loose.check_order(view, 0, SYM, BUY, D("50"), D("1")) is None


# ---------------------------------------------------------------------- exposure


def test_position_counts_reported_position_open_orders_and_twaps() -> None:
    rc = check(max_position=D("10"))
    # reported long 3, open buys 4 (orders + TWAP remainder, as the shell sums them)
    view = AccountState(positions={SYM: D("3")}, open_buys={SYM: D("4")}, open_sells={SYM: D("50")})
    assert rc.check_order(view, 0, SYM, BUY, D("3"), D("1")) is None  # 3 + 4 + 3 = 10
    refusal = rc.check_order(view, 0, SYM, BUY, D("3.1"), D("1"))
    assert refusal is not None and refusal.limit == "max_position" and refusal.value == D("10.1")
    assert "reported 3" in refusal.message and "open buys 4" in refusal.message


def test_position_short_side_and_reducing_orders_pass() -> None:
    rc = check(max_position=D("10"))
    view = AccountState(positions={SYM: D("-8")}, open_sells={SYM: D("1")})
    assert rc.check_order(view, 0, SYM, SELL, D("1"), D("1")) is None  # -8 - 1 - 1 = -10
    assert limit_of(rc.check_order(view, 0, SYM, SELL, D("1.5"), D("1"))) == "max_position"
    # already past the limit: an order toward flat passes, one that flips past it does not
    over = AccountState(positions={SYM: D("15")})
    assert rc.check_order(over, 0, SYM, SELL, D("5"), D("1")) is None
    assert rc.check_order(over, 0, SYM, SELL, D("25"), D("1")) is None  # ends at -10
    assert limit_of(rc.check_order(over, 0, SYM, SELL, D("25.5"), D("1"))) == "max_position"  # flips
    assert limit_of(rc.check_order(over, 0, SYM, BUY, D("0.1"), D("1"))) == "max_position"
    assert rc.check_order(over, 0, SYM, BUY, D("5"), D("1"), reduce_only=True) is None


def test_gross_notional_across_symbols() -> None:
    rc = check(max_gross_notional=D("10000"))
    view = AccountState(positions={"TSLA-USD": D("-20"), "BTC-USD": D("1")}, open_buys={"TSLA-USD": D("5")},
                        prices={SYM: D("100"), "TSLA-USD": D("200")}, entry_prices={"BTC-USD": D("999")})
    # TSLA worst |-20| x 200 = 4000; BTC has no reference: valued at its entry price 999 -> 4999
    assert rc.check_order(view, 0, SYM, BUY, D("50.01"), D("100")) is None  # 5001 + 4999 = 10000
    refusal = rc.check_order(view, 0, SYM, BUY, D("50.02"), D("100"))
    assert refusal is not None and refusal.limit == "max_gross_notional" and refusal.value == D("10001")
    # an order that does not raise this symbol's worst case passes even past the limit
    full = AccountState(positions={SYM: D("200")}, prices={SYM: D("100")})
    assert rc.check_order(full, 0, SYM, SELL, D("10"), D("100")) is None


def test_margin_against_available_balance() -> None:
    rc = check(check_margin=True)
    view = AccountState(available=D("1000"), leverages={SYM: D("5")})
    assert rc.check_order(view, 0, SYM, BUY, D("50"), D("100")) is None  # 5000 / 5 = 1000
    refusal = rc.check_order(view, 0, SYM, BUY, D("50.01"), D("100"))
    assert refusal is not None and refusal.limit == "check_margin" and refusal.value == D("1000.2")
    # no leverage reported: default_leverage (1) -> the full notional
    plain = AccountState(available=D("1000"))
    assert rc.check_order(plain, 0, SYM, BUY, D("10"), D("100")) is None
    assert limit_of(rc.check_order(plain, 0, SYM, BUY, D("10.01"), D("100"))) == "check_margin"
    # only the opening part needs margin: long 30, selling 40 opens 10 short
    long30 = AccountState(positions={SYM: D("30")}, available=D("1000"))
    assert rc.check_order(long30, 0, SYM, SELL, D("40"), D("100")) is None
    assert limit_of(rc.check_order(long30, 0, SYM, SELL, D("40.01"), D("100"))) == "check_margin"
    # no balance reported yet: skipped
    assert rc.check_order(AccountState(), 0, SYM, BUY, D("1e9"), D("100")) is None


def test_modify_checked_as_the_order_it_would_become() -> None:
    rc = check(max_order_quantity=D("10"), max_position=D("10"), price_band_pct=D("10"))
    view = AccountState(positions={SYM: D("2")}, open_buys={SYM: D("6")}, prices={SYM: D("100")})
    # the order: 6 to buy at 100, 0 filled, part of the open buys; growing it to 8 adds 2: 2+6+2 = 10
    args = dict(order_type=OrderType.LIMIT, quantity=D("6"), filled=D("0"), price=D("100"))
    assert rc.check_modify(view, 0, SYM, BUY, **args, new_quantity=D("8"), new_price=None) is None  # type: ignore[arg-type]
    assert limit_of(rc.check_modify(view, 0, SYM, BUY, **args, new_quantity=D("8.5"),  # type: ignore[arg-type]
                                    new_price=None)) == "max_position"
    assert limit_of(rc.check_modify(view, 0, SYM, BUY, **args, new_quantity=D("11"),  # type: ignore[arg-type]
                                    new_price=None)) == "max_order_quantity"
    assert rc.check_modify(view, 0, SYM, BUY, **args, new_quantity=None, new_price=D("110")) is None  # type: ignore[arg-type]
    assert limit_of(rc.check_modify(view, 0, SYM, BUY, **args, new_quantity=None,  # type: ignore[arg-type]
                                    new_price=D("110.5"))) == "price_band_pct"
    # shrinking never trips an exposure limit, even past it
    over = AccountState(positions={SYM: D("20")}, open_buys={SYM: D("6")})
    assert rc.check_modify(over, 0, SYM, BUY, **args, new_quantity=D("3"), new_price=None) is None  # type: ignore[arg-type]


def test_twap_slices_and_total() -> None:
    rc = check(max_order_quantity=D("10"), max_order_notional=D("1000"), max_position=D("40"))
    view = AccountState(prices={SYM: D("100")}, positions={SYM: D("10")})
    assert rc.check_twap(view, 0, SYM, BUY, D("30"), 3) is None  # slices of 10, position 40
    assert limit_of(rc.check_twap(view, 0, SYM, BUY, D("30.03"), 3)) == "max_order_quantity"
    assert limit_of(rc.check_twap(view, 0, SYM, BUY, D("31"), 4)) == "max_position"
    notional = check(max_order_notional=D("999"))
    refusal = notional.check_twap(view, 0, SYM, BUY, D("30"), 3)
    assert refusal is not None and refusal.limit == "max_order_notional" and refusal.value == D("1000")


# ---------------------------------------------------------------------- the rate bucket


def test_rate_limit_burst_then_refill() -> None:
    rc, view = check(max_orders_per_second=4), AccountState()
    for _ in range(4):
        assert rc.check_order(view, 10.0, SYM, BUY, D("1"), D("1")) is None
    refusal = rc.check_order(view, 10.0, SYM, BUY, D("1"), D("1"))
    assert refusal is not None and refusal.limit == "max_orders_per_second"
    assert "0.250 s" in refusal.message
    assert limit_of(rc.check_order(view, 10.2, SYM, BUY, D("1"), D("1"))) == "max_orders_per_second"
    assert rc.check_order(view, 10.25, SYM, BUY, D("1"), D("1")) is None  # exactly one token back
    assert limit_of(rc.check_order(view, 10.25, SYM, BUY, D("1"), D("1"))) == "max_orders_per_second"
    assert rc.tokens(100.0) == 4.0  # refills to the bucket's size, no more
    # modifies and TWAPs take tokens from the same bucket
    args = dict(order_type=OrderType.LIMIT, quantity=D("1"), filled=D("0"), price=D("1"))
    assert rc.check_modify(view, 100.0, SYM, BUY, **args, new_quantity=None, new_price=D("2")) is None  # type: ignore[arg-type]
    assert rc.check_twap(view, 100.0, SYM, BUY, D("2"), 2) is None
    assert rc.tokens(100.0) == 2.0


def test_refused_order_takes_no_token() -> None:
    rc, view = check(max_orders_per_second=1, max_order_quantity=D("1")), AccountState()
    assert limit_of(rc.check_order(view, 0.0, SYM, BUY, D("2"), D("1"))) == "max_order_quantity"
    assert rc.check_order(view, 0.0, SYM, BUY, D("1"), D("1")) is None


# ---------------------------------------------------------------------- construction


@pytest.mark.parametrize("name", ["max_order_quantity", "max_order_notional", "max_position",
                                  "max_gross_notional", "price_band_pct", "default_leverage"])
@pytest.mark.parametrize("bad", [D("0"), D("-1"), D("NaN"), D("Infinity"), "x", True])
def test_bad_limits_refused_naming_the_field(name: str, bad: object) -> None:
    with pytest.raises(InvalidArgument, match=rf"RiskLimits\.{name}"):
        RiskLimits(**{name: bad})  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -3, 1.5, D("2"), True])
def test_bad_rate_refused(bad: object) -> None:
    with pytest.raises(InvalidArgument, match=r"RiskLimits\.max_orders_per_second"):
        RiskLimits(max_orders_per_second=bad)  # type: ignore[arg-type]


def test_bad_per_symbol_limits_refused() -> None:
    with pytest.raises(InvalidArgument, match=r"per_symbol\['AAPL-USD'\].*SymbolLimits.max_position"):
        RiskLimits(per_symbol={SYM: {"max_position": D("0")}})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match=r"per_symbol\['AAPL-USD'\]"):
        RiskLimits(per_symbol={SYM: {"max_orders": D("1")}})  # type: ignore[dict-item]
    with pytest.raises(InvalidArgument, match="non-empty string"):
        RiskLimits(per_symbol={"": SymbolLimits()})
    assert RiskLimits(max_order_quantity="2.5").max_order_quantity == D("2.5")  # type: ignore[arg-type]


def test_refusal_raises_as_invalid_argument() -> None:
    refusal = check(max_order_quantity=D("1")).check_order(AccountState(), 0, SYM, BUY, D("2"), D("1"))
    assert refusal is not None
    error = refusal.error()
    assert isinstance(error, RiskRefused) and isinstance(error, InvalidArgument)
    assert error.limit == "max_order_quantity" and error.refusal is refusal
    assert str(error) == "risk limit max_order_quantity refused AAPL-USD: quantity 2 > max_order_quantity 1"


# ---------------------------------------------------------------------- a refused order changes nothing

quantities = st.decimals(min_value=D("0.01"), max_value=D("30"), places=2)
prices = st.decimals(min_value=D("50"), max_value=D("150"), places=2)
kinds = st.sampled_from(["order", "modify", "twap"])


@settings(max_examples=300, deadline=None)
@given(steps=st.lists(st.tuples(kinds, st.sampled_from([BUY, SELL]), quantities, prices,
                                st.floats(min_value=0, max_value=0.5)), min_size=1, max_size=40))
def test_a_refused_call_never_changes_the_check(steps: list[tuple[str, Side, D, D, float]]) -> None:
    rc = check(max_order_quantity=D("10"), max_order_notional=D("1000"), max_position=D("25"),
               max_gross_notional=D("5000"), price_band_pct=D("20"), max_orders_per_second=3,
               check_margin=True)
    view = AccountState(positions={SYM: D("5")}, open_buys={SYM: D("3")}, prices={SYM: D("100")},
                        available=D("800"))
    now = 0.0
    for kind, side, quantity, price, dt in steps:
        now += dt
        before = (rc.tokens(now), rc.bucket)
        if kind == "order":
            refusal = rc.check_order(view, now, SYM, side, quantity, price)
        elif kind == "modify":
            refusal = rc.check_modify(view, now, SYM, side, OrderType.LIMIT, D("1"), D("0"), D("100"),
                                      quantity, price)
        else:
            refusal = rc.check_twap(view, now, SYM, side, quantity, 2)
        if refusal is not None:
            assert (rc.tokens(now), rc.bucket) == before
        else:
            assert rc.tokens(now) == pytest.approx(before[0] - 1)
