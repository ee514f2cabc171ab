"""JWT authentication (issue 13): the ``{"auth": {"jwt": ...}}`` frame with ``?jwt=`` on the upgrade,
and ``Authorization: Bearer`` on QFEX's REST API, against the simulator's own tokens (CHOICES C56)."""

from __future__ import annotations

import time

import pytest
import trio
from simkit import PUB, manager

from qfex_oms import AuthenticationError, Credentials
from qfex_oms.client.rest import RestClient
from qfex_oms.client.session import auth_frame, url_with_key
from qfex_oms.sim import Venue, mint_jwt

S = "AAPL-USD"


def _token(venue: Venue, ttl: float = 600.0) -> str:
    return mint_jwt(venue.account(PUB), time.time(), ttl)


async def test_a_jwt_alone_trades_and_reads_the_rest_api(venue: Venue) -> None:
    creds = Credentials("", jwt=_token(venue))
    async with manager(venue, creds, rest_url=venue.rest_url) as oms:
        order = await oms.place_order(S, "BUY", "1", "100", client_order_id="jwt-1")
        assert (await oms.cancel(order)).status == "CANCELLED"
        assert venue.orders(PUB)[0].client_order_id == "jwt-1"  # the JWT's account, nobody else's
    async with RestClient(venue.rest_url or "", creds) as rest:
        page = await rest.historic_orders()
        assert [o.client_order_id for o in page.data] == ["jwt-1"]


async def test_an_expired_jwt_is_refused_with_a_message_saying_so(venue: Venue) -> None:
    creds = Credentials("", jwt=_token(venue, ttl=-10))
    with trio.fail_after(5), pytest.raises(AuthenticationError, match="refused the JWT"):
        async with manager(venue, creds):
            pytest.fail("an expired token must not connect")


async def test_a_forged_jwt_with_a_public_key_is_refused_at_auth(venue: Venue) -> None:
    head, body, _ = _token(venue).split(".")
    creds = Credentials(PUB, jwt=f"{head}.{body}.AAAA")
    with trio.fail_after(5), pytest.raises(AuthenticationError, match="refused the JWT"):
        async with manager(venue, creds):
            pytest.fail("a forged token must not authenticate")


def test_the_jwt_goes_in_the_frame_and_the_url_never_in_repr() -> None:
    creds = Credentials("", jwt="tok.en.sig", account_id="sub-1")
    frame = auth_frame(creds)
    assert (frame.jwt, frame.hmac, frame.account_id) == ("tok.en.sig", None, "sub-1")
    assert url_with_key("wss://trade.qfex.com", "", "tok.en.sig") == "wss://trade.qfex.com/?jwt=tok.en.sig"
    assert "tok.en.sig" not in repr(creds)
