"""The simulator's ledger on its own: entry prices, realised P&L through a flip, margin and rounding.

Pure (no sockets): figures are computed by hand in the comments and compared to the cent or exactly.
"""

from __future__ import annotations

from decimal import Decimal as D

from qfex_oms.protocol import Side
from qfex_oms.sim.ledger import Ledger, PositionState, apply_trade, wire
from qfex_oms.sim.settings import DEFAULT_SYMBOLS, Account

A, B = "acct-a", "acct-b"
SYM = "AAPL-USD"


def ledger(deposit: str = "1000") -> Ledger:
    return Ledger([Account(A, "s", "user-a"), Account(B, "s", "user-b")], DEFAULT_SYMBOLS, D(deposit))


def test_adding_moves_the_entry_price_and_reducing_realises():
    pos = PositionState(SYM, D(20))
    assert apply_trade(pos, D(2), D(100)) == 0
    assert apply_trade(pos, D(1), D(103)) == 0
    assert (pos.quantity, pos.average_price) == (D(3), D(101))  # (2*100 + 103) / 3
    assert apply_trade(pos, D(-1), D(105)) == D(4)  # 1 x (105 - 101)
    assert (pos.quantity, pos.average_price, pos.realised_pnl) == (D(2), D(101), D(4))


def test_a_flip_realises_the_old_position_and_opens_the_rest_at_the_fill_price():
    pos = PositionState(SYM, D(20), quantity=D(2), average_price=D(101))
    assert apply_trade(pos, D(-5), D(102)) == D(2)  # 2 x (102 - 101)
    assert (pos.quantity, pos.average_price) == (D(-3), D(102))
    assert apply_trade(pos, D(1), D(100)) == D(2)  # short: 1 x (102 - 100)
    assert (pos.quantity, pos.average_price, pos.realised_pnl) == (D(-2), D(102), D(4))
    assert apply_trade(pos, D(2), D(104)) == D(-4)  # 2 x (102 - 104)
    assert (pos.quantity, pos.average_price) == (D(0), D(0))


def test_balance_margin_and_unrealised_at_a_pinned_mark():
    book = ledger()
    book.fill(A, SYM, Side.BUY, D(100), D(2))
    book.set_mark(SYM, D(110))
    view = book.position(A, SYM)
    assert (view.unrealised_pnl, view.margin, view.mark_price) == (D(20), D("11.0"), D(110))  # 2*10; 220/20
    balance = book.balance(A)
    assert balance.available_balance == D("1009.0")  # 1000 + 20 - 11
    book.set_mark(SYM, None)  # released: back to the last trade
    assert book.position(A, SYM).unrealised_pnl == 0


def test_margin_check_counts_resting_orders_and_waves_reducing_orders_through():
    book = ledger("10")
    assert book.margin_ok(A, SYM, Side.BUY, D(2), D(100))  # 200 / 20 = 10 <= 10
    assert not book.margin_ok(A, SYM, Side.BUY, D("2.001"), D(100))
    book.fill(A, SYM, Side.BUY, D(100), D(2))  # margin 10, available 0
    assert not book.margin_ok(A, SYM, Side.BUY, D("0.001"), D(100))
    assert book.margin_ok(A, SYM, Side.SELL, D(2), D(100))  # reducing: needs nothing
    assert not book.margin_ok(A, SYM, Side.SELL, D(3), D(100))  # the extra 1 short needs 5


def test_changes_name_every_holder_when_the_mark_moves():
    book = ledger()
    book.fill(A, SYM, Side.BUY, D(100), D(1))
    book.fill(B, SYM, Side.SELL, D(100), D(1))
    book.drain_changes()
    book.set_mark(SYM, D(101))
    assert book.drain_changes() == {A: {SYM}, B: {SYM}}
    assert book.drain_changes() == {}


def test_funding_longs_pay_shorts_receive():
    book = ledger()
    book.fill(A, SYM, Side.BUY, D(100), D(2))
    book.fill(B, SYM, Side.SELL, D(100), D(2))
    book.apply_funding(SYM, D("0.001"))  # 2 x 100 x 0.001 = 0.2
    assert book.position(A, SYM).net_funding == D("-0.2")
    assert book.position(B, SYM).net_funding == D("0.2")
    assert book.balance(B).available_balance == D("990.2")  # 1000 + 0.2 - 10 margin


def test_leverage_only_at_listed_levels():
    book = ledger()
    assert book.set_leverage(A, SYM, D(10)) is None
    assert book.position(A, SYM).leverage == D("10.0")
    assert book.set_leverage(A, SYM, D(7)) is not None
    assert book.set_leverage(A, "NOPE-USD", D(10)) is not None
    assert book.position(A, SYM).leverage == D("10.0")


def test_wire_rounding_keeps_numbers_short_and_in_the_codec_domain():
    assert str(wire(D("1e-26"))) == "0.0"
    assert str(wire(D("-1e-26"))) == "0.0"  # never "-0.0"
    assert str(wire(D(20))) == "20.0"
    assert str(wire(D("100.66666666666666666666666667"))) == "100.6667"
    assert str(wire(D("9990000000"))) == "9990000000.0"
