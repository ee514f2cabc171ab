"""Client authentication at the gateway: QFEX's own HMAC recipe (qfex-api.md §2.3-2.5), checked
against the gateway's keys rather than QFEX's, or a JWT the gateway minted for one of them
(``tokens.py``: QFEX's own tokens cannot be checked here).

Pure: the caller passes the clock. A nonce is remembered only once its signature verified, so a
forged frame cannot burn a real client's nonce; QFEX says "the nonce must be unique within a 15
minute window". The store lives in memory: a gateway restart forgets it (the ``unix_ts`` skew still
bounds a replay to ``AUTH_SKEW_SECS``).
"""

from __future__ import annotations

import string
from collections import deque

from qfex_oms.gateway.config import ClientKey
from qfex_oms.gateway.tokens import check_token
from qfex_oms.protocol.messages import Auth
from qfex_oms.protocol.signing import verify

NONCE_WINDOW_SECS = 15 * 60.0  # §2.4
MAX_NONCE_LENGTH = 100  # §2.4 "hex encoded, max 100 characters"
# QFEX documents no skew for the websocket (§2.4); its REST header says "typically ±5 minutes".
AUTH_SKEW_SECS = 300.0
AUTH_DEADLINE_SECS = 60.0  # §2.2 "authenticate within 1 minute of connecting"
_HEX = frozenset(string.hexdigits)


class NonceStore:
    __slots__ = ("_expiry", "_order", "window")

    def __init__(self, window: float = NONCE_WINDOW_SECS) -> None:
        self.window = window
        self._expiry: dict[str, float] = {}
        self._order: deque[tuple[float, str]] = deque()

    def seen(self, nonce: str, now: float) -> bool:
        while self._order and self._order[0][0] <= now:
            expiry, old = self._order.popleft()
            if self._expiry.get(old) == expiry:
                del self._expiry[old]
        return nonce in self._expiry

    def remember(self, nonce: str, now: float) -> None:
        expiry = now + self.window
        self._expiry[nonce] = expiry
        self._order.append((expiry, nonce))


def check_hmac(request: Auth, public_key: str, secret: str, nonces: NonceStore, now: float,
               skew: float = AUTH_SKEW_SECS) -> str | None:
    """None when the frame authenticates ``public_key``, else why not (for the log only: the client
    gets QFEX's bare ``{"authenticated": false}``)."""
    block = request.hmac
    if block is None:
        return "neither hmac nor jwt given"
    if block.public_key != public_key:
        return "public_key differs from the connection's api key"
    nonce = block.nonce
    if not nonce or len(nonce) > MAX_NONCE_LENGTH or not _HEX.issuperset(nonce):
        return "nonce must be 1-100 hex characters"
    if abs(now - block.unix_ts) > skew:
        return "unix_ts outside the accepted clock skew"
    if not verify(secret, nonce, block.unix_ts, block.signature):
        return "bad signature"
    if nonces.seen(nonce, now):
        return "nonce already used"
    nonces.remember(nonce, now)
    return None


def check_auth(request: Auth, key: ClientKey, nonces: NonceStore, now: float,
               skew: float = AUTH_SKEW_SECS) -> str | None:
    """None when the ``auth`` frame authenticates ``key``: its HMAC block, or a gateway token for it."""
    if request.jwt is not None:
        if request.hmac is not None:
            return "give either hmac or jwt, not both"
        return check_token(request.jwt, key, now)
    return check_hmac(request, key.public_key, key.secret, nonces, now, skew)
