"""JWTs for the gateway's clients: HS256 tokens the gateway mints and checks itself, bound to one
of its client keys.

QFEX lets a client authenticate with a JWT instead of the HMAC signature (``{"auth": {"jwt": ...}}``,
the upgrade carrying ``?jwt=``; qfex-api.md §2.3), but its tokens come from verify.qfex.com and the
gateway cannot check them (nor could it tell which of its keys one stands for). So the most
plausible gateway token is its own: ``qfex-oms gateway token --config F --key PUB`` prints one for
a configured key, a client sends it exactly where it would send QFEX's, and the gateway accepts it
as that key (its strategy, its rights). The token is signed with that key's own secret: whoever
can mint one could sign HMAC frames anyway, no new secret enters the config, and rotating a key's
secret revokes every token of it. Claims: ``iss`` (``ISSUER``: a token of the simulator or another
party does not pass), ``sub`` (the key's public key), ``iat`` and ``exp`` (required: a token
without an expiry is refused). Like QFEX's, a token is a bearer credential until it expires: it
may be reused (no nonce), so its lifetime is the knob (``DEFAULT_TOKEN_TTL``, at most
``MAX_TOKEN_TTL``).

Pure: the caller passes the clock.
"""

from __future__ import annotations

from typing import Any

from qfex_oms.errors import InvalidArgument
from qfex_oms.gateway.config import ClientKey, GatewayConfig
from qfex_oms.protocol import jwt

ISSUER = "qfex-oms-gateway"
DEFAULT_TOKEN_TTL = 3600.0
MAX_TOKEN_TTL = 30 * 24 * 3600.0


def mint_token(key: ClientKey, now: float, ttl: float = DEFAULT_TOKEN_TTL) -> str:
    """A token the gateway accepts as ``key`` until ``now + ttl``."""
    if not 0 < ttl <= MAX_TOKEN_TTL:
        raise InvalidArgument(f"token lifetime must be more than 0 and at most {MAX_TOKEN_TTL:.0f} s, "
                              f"got {ttl}")
    return jwt.mint_hs256({"iss": ISSUER, "sub": key.public_key, "iat": int(now), "exp": int(now + ttl)},
                          key.secret)


def token_subject(token: str) -> str | None:
    """The public key a token claims to be for (unverified: only to pick the key to check it with)."""
    parsed = jwt.parse(token)
    sub: Any = None if parsed is None else parsed.claim("sub")
    return sub if isinstance(sub, str) else None


def check_token(token: str, key: ClientKey, now: float) -> str | None:
    """None when ``token`` authenticates ``key`` at ``now``, else why not (for the log only)."""
    parsed = jwt.parse(token)
    if parsed is None:
        return "not a JWT"
    if not parsed.hs256:
        return "only HS256 tokens minted by the gateway are accepted"
    if parsed.claim("iss") != ISSUER:
        return "not a token of this gateway (iss)"
    if parsed.claim("sub") != key.public_key:
        return "the token is for another key"
    if not parsed.signed_by(key.secret):
        return "bad token signature"
    expiry = parsed.claim("exp")
    if isinstance(expiry, bool) or not isinstance(expiry, int | float):
        return "the token has no expiry"
    if expiry <= now:
        return "the token has expired"
    return None


def token_key(token: str, config: GatewayConfig, now: float) -> ClientKey | None:
    """The configured key a valid token stands for, or None."""
    sub = token_subject(token)
    key = config.key(sub) if sub is not None else None
    return key if key is not None and check_token(token, key, now) is None else None
