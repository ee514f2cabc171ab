"""Pure auth checks for the simulator (qfex-api.md §2.3-2.5): HMAC, and JWTs of its own.

QFEX's JWTs come from https://verify.qfex.com and cannot be checked here. The simulator accepts
tokens it can check (CHOICES C56): HS256, signed with the account's secret key, whose ``sub`` is
the account's public key and whose ``exp`` (if any) has not passed; ``mint_jwt`` makes one.

The nonce store is per account: QFEX says "the nonce must be unique within a 15 minute window".
Nonces are remembered only once a signature verified, so a forged frame cannot burn a real
client's nonce. Expired nonces are pruned lazily in arrival order, so the store stays small.
"""

from __future__ import annotations

import string
from collections import deque
from collections.abc import Mapping

from qfex_oms.protocol import jwt, verify
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
    if request.jwt is not None:
        if request.hmac is not None:
            return "give either hmac or jwt, not both"
        if jwt_account(request.jwt, {account.public_key: account}, now) is not account:
            return "bad or expired jwt"
        if request.account_id is not None and request.account_id != account.user_id:
            return "unknown account_id"
        return None
    block = request.hmac
    if block is None:
        return "neither hmac nor jwt given"
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


def mint_jwt(account: Account, now: float, ttl: float = 3600.0) -> str:
    """A token the simulator accepts for ``account`` (tests, and ``qfex-oms sim`` users trying
    ``auth = "jwt"``): HS256 with the account's secret, ``sub`` its public key."""
    return jwt.mint_hs256({"sub": account.public_key, "exp": int(now + ttl)}, account.secret_key)


def jwt_account(token: str, accounts: Mapping[str, Account], now: float) -> Account | None:
    """The account a simulator-minted JWT names, if its signature and expiry check; else None."""
    parsed = jwt.parse(token)
    if parsed is None or not parsed.hs256:
        return None
    account = accounts.get(str(parsed.claim("sub") or ""))
    if account is None:
        return None
    expiry = parsed.claim("exp")
    if not parsed.signed_by(account.secret_key) or (isinstance(expiry, int | float) and expiry < now):
        return None
    return account
