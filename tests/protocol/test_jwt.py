"""``protocol.jwt``: the one HS256 implementation the simulator and the gateway share."""

from __future__ import annotations

import pytest

from qfex_oms.protocol import jwt


def test_a_minted_token_parses_back_and_checks_only_with_its_secret() -> None:
    token = jwt.mint_hs256({"sub": "pub", "exp": 10}, "secret")
    parsed = jwt.parse(token)
    assert parsed is not None and parsed.hs256
    assert (parsed.claim("sub"), parsed.claim("exp"), parsed.header) == ("pub", 10, jwt.HEADER)
    assert parsed.signed_by("secret") and not parsed.signed_by("other")
    head, _, mac = token.split(".")
    assert "=" not in token  # base64url without padding, as RFC 7519 writes it
    tampered = jwt.parse(f"{head}.{jwt.mint_hs256({'sub': 'admin', 'exp': 10}, 'x').split('.')[1]}.{mac}")
    assert tampered is not None and not tampered.signed_by("secret")


@pytest.mark.parametrize("token", ["", "a.b", "a.b.c.d", "!!!.e30.", "W10.e30.",  # [] is no header
                                   "e30.bm90IGpzb24."])
def test_anything_but_three_base64url_parts_of_json_objects_is_not_a_token(token: str) -> None:
    assert jwt.parse(token) is None


def test_another_algorithm_is_never_signed_by_anything() -> None:
    token = jwt.mint_hs256({"sub": "pub"}, "secret")
    parsed = jwt.parse(token)
    assert parsed is not None
    unsigned = jwt.Token({"alg": "none"}, parsed.claims, parsed.signed, parsed.signature)
    assert not unsigned.hs256 and not unsigned.signed_by("secret")
