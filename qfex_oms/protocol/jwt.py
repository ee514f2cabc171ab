"""HS256 JSON Web Tokens, as far as this package needs them: the simulator's (tests and ``qfex-oms
sim`` users trying ``auth = "jwt"``, CHOICES C56) and the gateway's (``gateway.tokens``), each minted
and checked by the party that holds the secret.

A client never reads a token: QFEX's come from QFEX and are sent as given (``Credentials(jwt=)``).
Only HS256 is understood; what a token must claim (issuer, subject, expiry) is the caller's rule.
Pure: no clock, no I/O.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

import orjson
from attrs import frozen

HEADER = {"alg": "HS256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, signed: str) -> bytes:
    return hmac.new(secret.encode(), signed.encode(), hashlib.sha256).digest()


def mint_hs256(claims: Mapping[str, Any], secret: str) -> str:
    """``header.claims.signature``, base64url without padding, signed with ``secret``."""
    signed = f"{_b64(orjson.dumps(HEADER))}.{_b64(orjson.dumps(dict(claims)))}"
    return f"{signed}.{_b64(_mac(secret, signed))}"


@frozen
class Token:
    """A token taken apart, its signature not checked yet (``signed_by``)."""

    header: dict[str, Any]
    claims: dict[str, Any]
    signed: str  # the "header.claims" text the signature covers
    signature: bytes

    @property
    def hs256(self) -> bool:
        return self.header.get("alg") == "HS256"

    def signed_by(self, secret: str) -> bool:
        """Whether ``secret`` made the signature (HS256; compared in constant time)."""
        return self.hs256 and hmac.compare_digest(self.signature, _mac(secret, self.signed))

    def claim(self, name: str) -> Any:
        return self.claims.get(name)


def parse(token: str) -> Token | None:
    """The token's parts, or None when it is not three base64url parts of which the first two are
    JSON objects."""
    try:
        head, body, mac = token.split(".")
        header: Any = orjson.loads(_unb64(head))
        claims: Any = orjson.loads(_unb64(body))
        signature = _unb64(mac)
    except ValueError:  # a wrong part count, bad base64 (binascii.Error), bad JSON
        return None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return None
    return Token(header, claims, f"{head}.{body}", signature)
