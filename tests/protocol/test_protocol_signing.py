"""HMAC auth (qfex-api.md §2.3-2.5): the signing recipe, ``make_auth`` and the encoded auth frame."""

from __future__ import annotations

import json
import re
import time

import pytest

from qfex_oms.protocol import decode_request, encode, make_auth, sign, verify
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.signing import new_nonce

# Self-computed vector from qfex-api.md §2.4.
SECRET = "qfex_secret_yyyyyy"
NONCE = "c0ffee"
UNIX_TS = 1760545414
SIGNATURE = "222adbb0993646affe345a15f3c5b45e7123d4ff2c38dc4245c81ffb24c66d64"
PUBLIC = "qfex_pub_xxxxx"
ACCOUNT = "11111111-1111-1111-1111-111111111111"


def test_sign_matches_documented_vector():
    assert sign(SECRET, NONCE, UNIX_TS) == SIGNATURE


def test_sign_is_lowercase_hex_sha256():
    sig = sign(SECRET, new_nonce(), int(time.time()))
    assert re.fullmatch(r"[0-9a-f]{64}", sig)


def test_verify_accepts_the_vector():
    assert verify(SECRET, NONCE, UNIX_TS, SIGNATURE)


@pytest.mark.parametrize(
    ("secret", "nonce", "unix_ts", "signature"),
    [
        pytest.param(SECRET, NONCE, UNIX_TS, "0" + SIGNATURE[1:], id="first-char-flipped"),
        pytest.param(SECRET, NONCE, UNIX_TS, SIGNATURE[:-1] + "5", id="last-char-flipped"),
        pytest.param(SECRET, NONCE, UNIX_TS, SIGNATURE[:-2], id="truncated"),
        pytest.param(SECRET, NONCE, UNIX_TS, SIGNATURE.upper(), id="uppercase"),
        pytest.param(SECRET, NONCE, UNIX_TS, "", id="empty"),
        pytest.param("qfex_secret_zzzzzz", NONCE, UNIX_TS, SIGNATURE, id="wrong-secret"),
        pytest.param(SECRET, "c0ffef", UNIX_TS, SIGNATURE, id="wrong-nonce"),
        pytest.param(SECRET, NONCE, UNIX_TS + 1, SIGNATURE, id="wrong-ts"),
    ],
)
def test_verify_rejects_tampering(secret, nonce, unix_ts, signature):
    assert verify(secret, nonce, unix_ts, signature) is False


def test_verify_rejects_non_ascii_signature_without_raising():
    assert verify(SECRET, NONCE, UNIX_TS, "é" * 64) is False


def test_make_auth_with_fixed_inputs_uses_the_recipe():
    auth = make_auth(PUBLIC, SECRET, unix_ts=UNIX_TS, nonce=NONCE)
    assert auth == m.Auth(
        hmac=m.HmacAuth(public_key=PUBLIC, nonce=NONCE, unix_ts=UNIX_TS, signature=SIGNATURE)
    )


def test_make_auth_defaults_nonce_and_clock():
    before = int(time.time())
    auth = make_auth(PUBLIC, SECRET)
    after = int(time.time())
    block = auth.hmac
    assert block is not None
    assert block.public_key == PUBLIC
    assert re.fullmatch(r"[0-9a-f]{32}", block.nonce)
    assert type(block.unix_ts) is int
    assert before <= block.unix_ts <= after
    assert verify(SECRET, block.nonce, block.unix_ts, block.signature)
    assert auth.jwt is None
    assert auth.account_id is None


def test_make_auth_nonces_are_fresh():
    nonces = {make_auth(PUBLIC, SECRET).hmac.nonce for _ in range(50)}
    assert len(nonces) == 50


def test_encoded_auth_frame_has_exact_documented_shape():
    frame = json.loads(encode(make_auth(PUBLIC, SECRET, unix_ts=UNIX_TS, nonce=NONCE)))
    assert frame == {
        "type": "auth",
        "params": {
            "hmac": {
                "public_key": PUBLIC,
                "nonce": NONCE,
                "unix_ts": UNIX_TS,
                "signature": SIGNATURE,
            }
        },
    }
    assert type(frame["params"]["hmac"]["unix_ts"]) is int


def test_encoded_auth_frame_unix_ts_is_a_json_integer():
    raw = encode(make_auth(PUBLIC, SECRET, unix_ts=UNIX_TS, nonce=NONCE))
    assert b'"unix_ts":1760545414,' in raw


def test_encoded_auth_frame_with_account_id():
    auth = make_auth(PUBLIC, SECRET, unix_ts=UNIX_TS, nonce=NONCE, account_id=ACCOUNT)
    frame = json.loads(encode(auth))
    assert frame["params"]["account_id"] == ACCOUNT
    assert set(frame["params"]) == {"hmac", "account_id"}
    assert frame["params"]["hmac"]["signature"] == SIGNATURE


def test_encoded_jwt_auth_frame():
    frame = json.loads(encode(m.Auth(jwt="eyJhbGciOiJFUzI1NiJ9.x.y", account_id=ACCOUNT)))
    assert frame == {
        "type": "auth",
        "params": {"jwt": "eyJhbGciOiJFUzI1NiJ9.x.y", "account_id": ACCOUNT},
    }


def test_simulator_can_verify_a_decoded_auth_frame():
    raw = encode(make_auth(PUBLIC, SECRET, account_id=ACCOUNT))
    auth = decode_request(raw)
    assert isinstance(auth, m.Auth)
    assert auth.account_id == ACCOUNT
    assert verify(SECRET, auth.hmac.nonce, auth.hmac.unix_ts, auth.hmac.signature)
    assert not verify("other-secret", auth.hmac.nonce, auth.hmac.unix_ts, auth.hmac.signature)
