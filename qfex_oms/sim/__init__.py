"""A QFEX-compatible exchange simulator (trade websocket) for tests, the demo and benchmarks.

``async with open_simulator(port=0) as venue: ...`` serves ``venue.url``; ``qfex-oms sim`` runs the
same thing as a process. Behaviour QFEX does not document is chosen in ``choices.py`` and listed
in README.md ("Simulator choices").
"""

from qfex_oms.sim.auth import mint_jwt
from qfex_oms.sim.faults import Faults
from qfex_oms.sim.ledger import BalanceView, PositionView
from qfex_oms.sim.market import MarketSettings, MarketSymbol
from qfex_oms.sim.records import SimOrder, SimTrade, SimTwap
from qfex_oms.sim.settings import (
    DEFAULT_SYMBOLS,
    Account,
    RateLimitSettings,
    SimSettings,
    SymbolSpec,
    default_accounts,
)
from qfex_oms.sim.venue import Venue, open_simulator

__all__ = [
    "DEFAULT_SYMBOLS",
    "Account",
    "BalanceView",
    "Faults",
    "MarketSettings",
    "MarketSymbol",
    "PositionView",
    "RateLimitSettings",
    "SimOrder",
    "SimSettings",
    "SimTrade",
    "SimTwap",
    "SymbolSpec",
    "Venue",
    "default_accounts",
    "mint_jwt",
    "open_simulator",
]
