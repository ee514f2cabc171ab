"""HMAC authentication for the trade socket (qfex-api.md §2.4).

``signature = hex(HMAC-SHA256(secret, f"{nonce}:{unix_ts}"))`` with a 32-hex-char random nonce and
the Unix time in whole seconds. The secret never leaves this module's arguments.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time

from qfex_oms.protocol.messages import Auth, HmacAuth


def sign(secret_key: str, nonce: str, unix_ts: int) -> str:
    message = f"{nonce}:{unix_ts}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def verify(secret_key: str, nonce: str, unix_ts: int, signature: str) -> bool:
    # Bytes, not str: compare_digest raises on non-ASCII str, and the signature is untrusted input.
    return hmac.compare_digest(sign(secret_key, nonce, unix_ts).encode(), signature.encode())


def new_nonce() -> str:
    return secrets.token_hex(16)


def make_auth(
    public_key: str,
    secret_key: str,
    *,
    unix_ts: int | None = None,
    nonce: str | None = None,
    account_id: str | None = None,
) -> Auth:
    nonce = nonce or new_nonce()
    ts = int(time.time()) if unix_ts is None else unix_ts
    block = HmacAuth(public_key=public_key, nonce=nonce, unix_ts=ts, signature=sign(secret_key, nonce, ts))
    return Auth(hmac=block, account_id=account_id)
