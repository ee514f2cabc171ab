"""Gateway-minted JWTs (``qfex_oms.gateway.tokens``): a client authenticates with a token instead of
its secret, as QFEX allows with its own; the gateway checks signature, issuer, key and expiry."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
import pytest
from gwkit import ARB, MM, OPS, client, gateway_on
from simkit import PUB
from trio_websocket import open_websocket_url

from qfex_oms import AuthenticationError, Credentials, open_order_manager
from qfex_oms.gateway import GatewayConfig
from qfex_oms.gateway.tokens import check_token, mint_token, token_key
from qfex_oms.protocol import encode
from qfex_oms.protocol import messages as m
from qfex_oms.sim import Venue, mint_jwt
from qfex_oms.sim.settings import Account

SYM = "AAPL-USD"
NOW = 1_760_545_414.0


def test_a_token_stands_for_its_key_until_it_expires() -> None:
    config = GatewayConfig((MM, ARB, OPS))
    token = mint_token(MM, NOW, ttl=60)
    assert check_token(token, MM, NOW + 59) is None
    assert token_key(token, config, NOW) == MM
    assert check_token(token, MM, NOW + 60) == "the token has expired"
    assert token_key(token, config, NOW + 60) is None
    assert check_token(token, ARB, NOW) == "the token is for another key"
    # Another key's secret, a tampered claim, a foreign issuer, no expiry, alg "none": refused.
    forged = mint_token(MM.__class__(MM.public_key, "not the secret", "mm"), NOW)
    assert check_token(forged, MM, NOW) == "bad token signature"
    head, body, mac = token.split(".")
    claims = _unb(body)
    tampered = f"{head}.{_b64(orjson.dumps({**claims, 'sub': ARB.public_key}))}.{mac}"
    assert token_key(tampered, config, NOW) is None
    # The simulator's tokens (CHOICES C56: the same recipe, no issuer) are not the gateway's.
    sim_token = mint_jwt(Account(MM.public_key, MM.secret), NOW)
    assert check_token(sim_token, MM, NOW) == "not a token of this gateway (iss)"
    unsigned = f"{_b64(orjson.dumps({'alg': 'none'}))}.{body}."
    assert check_token(unsigned, MM, NOW) is not None
    assert check_token("garbage", MM, NOW) == "not a JWT"
    with pytest.raises(ValueError):
        mint_token(MM, NOW, ttl=0)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb(text: str) -> Any:
    return orjson.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


async def test_a_client_trades_through_the_gateway_with_a_token_alone(venue: Venue) -> None:
    async with gateway_on(venue) as gw:
        token = mint_token(ARB, time.time(), ttl=60)
        # No public key, no secret: the token names the key (?jwt= and {"auth": {"jwt": ...}}).
        async with open_order_manager(gw.url, Credentials("", jwt=token), request_timeout=5.0,
                                      handshake_timeout=5.0) as arb:
            order = await arb.place_order(SYM, "BUY", "1", "190", client_order_id="bid-1")
            assert order.client_order_id == "bid-1"
            assert [o.client_order_id for o in venue.open_orders(PUB, SYM)] == ["arb:bid-1"]
            async with client(gw, MM) as mm:  # an ordinary key beside it sees nothing of arb's
                assert not (await mm.fetch_open_orders(SYM)).orders
        # The key's public key with its token passes too; with another key's token, refused.
        async with open_order_manager(gw.url, Credentials(ARB.public_key, jwt=token),
                                      request_timeout=5.0, handshake_timeout=5.0) as again:
            assert again.connected
        with pytest.raises(AuthenticationError):
            async with open_order_manager(gw.url, Credentials(MM.public_key, jwt=token),
                                          request_timeout=5.0, handshake_timeout=5.0):
                pass
        expired = mint_token(ARB, time.time() - 120, ttl=60)
        with pytest.raises(AuthenticationError):
            async with open_order_manager(gw.url, Credentials("", jwt=expired),
                                          request_timeout=5.0, handshake_timeout=5.0):
                pass
        # Keyed by its public key on the upgrade, a connection cannot log in with another's token.
        async with open_websocket_url(f"{gw.url}?api_key={MM.public_key}") as ws:
            await ws.send_message(encode(m.Auth(jwt=token)).decode())
            assert orjson.loads(await ws.get_message()) == {"authenticated": False}
            await ws.send_message(encode(m.Auth(jwt=mint_token(MM, time.time()))).decode())
            assert orjson.loads(await ws.get_message()) == {"authenticated": True}
