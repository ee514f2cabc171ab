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

import base64
import hashlib
import hmac
from typing import Any

import orjson

from qfex_oms.errors import InvalidArgument
from qfex_oms.gateway.config import ClientKey, GatewayConfig

ISSUER = "qfex-oms-gateway"
DEFAULT_TOKEN_TTL = 3600.0
MAX_TOKEN_TTL = 30 * 24 * 3600.0
_HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, signed: str) -> bytes:
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()


def mint_token(key: ClientKey, now: float, ttl: float = DEFAULT_TOKEN_TTL) -> str:
    """A token the gateway accepts as ``key`` until ``now + ttl``."""
    if not 0 < ttl <= MAX_TOKEN_TTL:
        raise InvalidArgument(f"token lifetime must be more than 0 and at most {MAX_TOKEN_TTL:.0f} s, "
                              f"got {ttl}")
    claims = {"iss": ISSUER, "sub": key.public_key, "iat": int(now), "exp": int(now + ttl)}
    signed = f"{_b64(orjson.dumps(_HEADER))}.{_b64(orjson.dumps(claims))}"
    return f"{signed}.{_b64(_mac(key.secret, signed))}"


def token_subject(token: str) -> str | None:
    """The public key a token claims to be for (unverified: only to pick the key to check it with)."""
    try:
        claims: Any = orjson.loads(_unb64(token.split(".")[1]))
    except (IndexError, ValueError, orjson.JSONDecodeError):
        return None
    sub = claims.get("sub") if isinstance(claims, dict) else None
    return sub if isinstance(sub, str) else None


def check_token(token: str, key: ClientKey, now: float) -> str | None:
    """None when ``token`` authenticates ``key`` at ``now``, else why not (for the log only)."""
    try:
        head, body, mac = token.split(".")
        header: Any = orjson.loads(_unb64(head))
        claims: Any = orjson.loads(_unb64(body))
        given = _unb64(mac)
    except (ValueError, orjson.JSONDecodeError):
        return "not a JWT"
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        return "only HS256 tokens minted by the gateway are accepted"
    if not isinstance(claims, dict) or claims.get("iss") != ISSUER:
        return "not a token of this gateway (iss)"
    if claims.get("sub") != key.public_key:
        return "the token is for another key"
    if not hmac.compare_digest(given, _mac(key.secret, f"{head}.{body}")):
        return "bad token signature"
    expiry = claims.get("exp")
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
