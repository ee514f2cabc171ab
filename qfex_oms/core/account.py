"""What the account holds, as the exchange last reported it: positions per symbol and the balance.

Pure: the shell hands in each ``position_response`` / ``balance_response`` with the time it arrived.
Nothing here is derived from fills; the exchange's figures are the truth, and ``PositionCheck``
compares them with the fills the book counted, without overwriting either.

Undocumented by QFEX, assumed here (README "Where QFEX's docs are silent"):
- the sign of ``position``: negative is short (``SHORT_IS_NEGATIVE``; flip it if QFEX says otherwise);
- whether pushes come per change or pulsed: either works, each report replaces the last.
"""

from __future__ import annotations

from decimal import Decimal

from attrs import define, field

from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import Side

SHORT_IS_NEGATIVE = True
_ZERO = Decimal(0)


@define(slots=True)
class Position:
    """One symbol's position: ``quantity`` is signed (negative = short)."""

    symbol: str
    quantity: Decimal
    average_price: Decimal | None = None
    realised_pnl: Decimal | None = None
    unrealised_pnl: Decimal | None = None
    net_funding: Decimal | None = None
    margin: Decimal | None = None
    leverage: Decimal | None = None
    open_orders: Decimal | None = None  # the open-order quantity QFEX reports for the symbol
    open_quantity: Decimal | None = None
    reported_at: float = 0.0  # wall-clock seconds when the report arrived

    @property
    def flat(self) -> bool:
        return self.quantity == 0

    @property
    def side(self) -> Side | None:
        """The side that holds it (BUY for long); closing takes the other one."""
        if self.quantity == 0:
            return None
        return Side.BUY if (self.quantity > 0) == SHORT_IS_NEGATIVE else Side.SELL


@define(slots=True)
class Balance:
    available: Decimal
    deposit: Decimal | None = None
    order_margin: Decimal | None = None
    position_margin: Decimal | None = None
    realised_pnl: Decimal | None = None
    unrealised_pnl: Decimal | None = None
    net_funding: Decimal | None = None
    reported_at: float = 0.0


def position_from(report: m.PositionResponse, now: float) -> Position:
    return Position(report.symbol, report.position, report.average_price, report.realised_pnl,
                    report.unrealised_pnl, report.net_funding, report.margin_alloc, report.leverage,
                    report.open_orders, report.open_quantity, now)


def balance_from(report: m.BalanceResponse, now: float) -> Balance:
    return Balance(report.available_balance, report.deposit, report.order_margin, report.position_margin,
                   report.realised_pnl, report.unrealised_pnl, report.net_funding, now)


@define
class Account:
    """The last report of each position and of the balance."""

    positions: dict[str, Position] = field(factory=dict)
    balance: Balance | None = None

    def on_position(self, report: m.PositionResponse, now: float) -> Position:
        position = self.positions[report.symbol] = position_from(report, now)
        return position

    def on_balance(self, report: m.BalanceResponse, now: float) -> Balance:
        self.balance = balance_from(report, now)
        return self.balance


@define
class PositionCheck:
    """Does the position the fills imply agree with the exchange's report, once both settled?

    The first report of a symbol is the baseline (the account may hold what it held before this
    manager started); from then on the expected position is the baseline plus the signed fills
    counted since. A disagreement is reported only when it has lasted ``grace`` seconds: a report
    and the fill that caused it travel on different channels and need not arrive together.
    """

    grace: float = 2.0
    _baseline: dict[str, Decimal] = field(factory=dict)  # reported position minus fills at that time
    _filled: dict[str, Decimal] = field(factory=dict)  # signed fills counted per symbol
    _reported: dict[str, Decimal] = field(factory=dict)
    _since: dict[str, float] = field(factory=dict)  # when the current disagreement began
    _told: set[str] = field(factory=set)  # disagreements already reported (once per episode)

    def on_fill(self, symbol: str, side: Side, quantity: Decimal) -> None:
        signed = quantity if side is Side.BUY else -quantity
        self._filled[symbol] = self._filled.get(symbol, _ZERO) + signed

    def on_report(self, symbol: str, position: Decimal) -> None:
        self._reported[symbol] = position
        if symbol not in self._baseline:
            self._baseline[symbol] = position - self._filled.get(symbol, _ZERO)

    def expected(self, symbol: str) -> Decimal | None:
        base = self._baseline.get(symbol)
        return None if base is None else base + self._filled.get(symbol, _ZERO)

    def rebase(self, symbol: str) -> None:
        """After a resync the fills are complete again: start over from the latest report."""
        reported = self._reported.get(symbol)
        if reported is not None:
            self._baseline[symbol] = reported - self._filled.get(symbol, _ZERO)
        self._since.pop(symbol, None)
        self._told.discard(symbol)

    def due(self, now: float) -> list[tuple[str, Decimal, Decimal]]:
        """Disagreements that have lasted past the grace period and were not reported yet:
        (symbol, position implied by fills, position reported)."""
        out = []
        for symbol, reported in self._reported.items():
            expected = self.expected(symbol)
            if expected is None or expected == reported:
                self._since.pop(symbol, None)
                self._told.discard(symbol)
                continue
            since = self._since.setdefault(symbol, now)
            if now - since >= self.grace and symbol not in self._told:
                self._told.add(symbol)
                out.append((symbol, expected, reported))
        return out
