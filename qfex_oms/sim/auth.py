"""Pure HMAC auth checks for the simulator (qfex-api.md §2.3-2.5).

The nonce store is per account: QFEX says "the nonce must be unique within a 15 minute window".
Nonces are remembered only once a signature verified, so a forged frame cannot burn a real
client's nonce. Expired nonces are pruned lazily in arrival order, so the store stays small.
"""

from __future__ import annotations

import string
from collections import deque

from qfex_oms.protocol import verify
from qfex_oms.protocol.messages import Auth
from qfex_oms.sim import choices
from qfex_oms.sim.settings import Account

_HEX = frozenset(string.hexdigits)


class NonceStore:
    __slots__ = ("_expiry", "_order", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self._expiry: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()

    def _prune(self, now: float) -> None:
        while self._order and self._order[0][0] <= now:
            expiry, nonce = self._order.popleft()
            if self._expiry.get(nonce) == expiry:
                del self._expiry[nonce]

    def seen(self, nonce: str, now: float) -> bool:
        self._prune(now)
        return nonce in self._expiry

    def remember(self, nonce: str, now: float) -> None:
        expiry = now + self.window
        self._expiry[nonce] = expiry
        self._order.append((expiry, nonce))


def check_auth(
    request: Auth, account: Account, nonces: NonceStore, now: float, skew: float
) -> str | None:
    """Return None if the frame authenticates ``account``, else the reason (for the log only)."""
    block = request.hmac
    if block is None:
        return "only the hmac form is supported"
    if block.public_key != account.public_key:
        return "public_key differs from the connection's api key"
    if request.account_id is not None and request.account_id != account.user_id:
        return "unknown account_id"
    nonce = block.nonce
    if not nonce or len(nonce) > choices.MAX_NONCE_LENGTH or not _HEX.issuperset(nonce):
        return "nonce must be 1-100 hex characters"
    if abs(now - block.unix_ts) > skew:
        return "unix_ts outside the accepted clock skew"
    if not verify(account.secret_key, nonce, block.unix_ts, block.signature):
        return "bad signature"
    if nonces.seen(nonce, now):
        return "nonce already used"
    nonces.remember(nonce, now)
    return None
