"""REST failures become clear errors: 401s, problem answers, timeouts, retries, unreachable hosts;
and no log line ever carries the secret, a signature or a nonce."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest
import structlog
import trio
from restkit import http_server, silent_server
from simkit import CREDS, PUB, SECRET
from waiting import wait_until

from qfex_oms.client.rest import RestAuthenticationError, RestClient, RestRequestFailed
from qfex_oms.client.session import Credentials
from qfex_oms.errors import AuthenticationError, InvalidArgument, NotConnected, RequestFailed, RequestTimeout
from qfex_oms.protocol import rest as r
from qfex_oms.sim import Venue

POSITIONS = orjson.dumps({"positions": None, "balance": {
    "deposit": 1, "realised_pnl": 0, "order_margin": 0, "position_margin": 0, "unrealised_pnl": 0,
    "net_funding": 0, "available_balance": 1}})
JSON = [(b"content-type", b"application/json")]


async def test_a_wrong_secret_is_a_401_authentication_error_with_qfex_words(venue: Venue) -> None:
    async with RestClient(venue.rest_url or "", Credentials(PUB, "not-the-secret")) as rest:
        with pytest.raises(RestAuthenticationError) as caught:
            await rest.positions()
    error = caught.value
    assert isinstance(error, AuthenticationError)
    assert (error.status, error.title, error.detail) == (401, "Unauthorized", "bad signature")
    assert "GET /user/positions refused: HTTP 401 Unauthorized: bad signature" in str(error)


async def test_a_reused_nonce_and_a_foreign_subaccount_are_refused(venue: Venue) -> None:
    creds = r.RestCredentials(PUB, SECRET)
    headers = r.auth_headers(creds)
    async with httpx.AsyncClient(base_url=venue.rest_url or "") as http:
        assert (await http.get("/user/positions", headers=headers)).status_code == 200
        again = await http.get("/user/positions", headers=headers)
        assert again.status_code == 401 and again.json()["detail"] == "nonce already used"
        assert again.headers["content-type"] == "application/problem+json"
    mine = r.RestCredentials(PUB, SECRET, venue.user_id(PUB))
    async with RestClient(venue.rest_url or "", mine) as rest:
        assert (await rest.positions()).balance.deposit > 0  # its own account id is accepted
    other = r.RestCredentials(PUB, SECRET, "11111111-1111-1111-1111-111111111111")
    async with RestClient(venue.rest_url or "", other) as rest:
        with pytest.raises(RestAuthenticationError, match="unknown account_id"):
            await rest.positions()


async def test_problem_answers_become_request_failed_with_location(rest: RestClient) -> None:
    with pytest.raises(RestRequestFailed) as caught:
        await rest.exchange(r.RestRequest("GET", "/user/historic-orders", (("limit", "5000"),)))
    assert caught.value.status == 400 and caught.value.problem.errors[0].location == "query.limit"
    with pytest.raises(RestRequestFailed, match="Not Found"):
        await rest.exchange(r.RestRequest("GET", "/nope"))
    with pytest.raises(RestRequestFailed, match="Method Not Allowed"):
        await rest.exchange(r.RestRequest("GET", "/user/leverage"))


async def test_bad_arguments_are_refused_before_sending(venue: Venue, rest: RestClient) -> None:
    with pytest.raises(InvalidArgument, match=r"query.limit"):
        await rest.historic_orders(limit=0)
    with pytest.raises(InvalidArgument, match="positive integer"):
        await rest.set_leverage("AAPL-USD", 0)
    async with RestClient(venue.rest_url or "") as anonymous:
        assert len(await anonymous.instruments()) == 3  # public
        with pytest.raises(InvalidArgument, match="needs credentials"):
            await anonymous.positions()


async def test_no_answer_is_a_request_timeout_after_bounded_retries() -> None:
    async with silent_server() as (url, accepted):
        async with RestClient(url, CREDS, timeout=0.2, retries=2, backoff=0) as rest:
            with pytest.raises(RequestTimeout, match=r"GET /user/positions: no answer .* within 0.2 s"):
                await rest.positions()
        await wait_until(lambda: accepted[0] == 3, what="three attempts")


async def test_a_post_is_not_retried() -> None:
    async with silent_server() as (url, _), RestClient(url, CREDS, timeout=0.2, retries=2, backoff=0) as rest:
        with structlog.testing.capture_logs() as logs, pytest.raises(RequestTimeout):
            await rest.set_leverage("AAPL-USD", 10)
    assert not [e for e in logs if e["event"] == "rest.retry"]


async def test_an_unreachable_host_is_not_connected() -> None:
    sock = trio.socket.socket()
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    async with RestClient(f"http://127.0.0.1:{port}", CREDS, retries=1, backoff=0) as rest:
        with pytest.raises(NotConnected, match="cannot reach"):
            await rest.positions()


async def test_5xx_and_429_are_retried_for_a_get_then_answered() -> None:
    answers = [(503, [(b"retry-after", b"0")], b""), (429, [(b"retry-after", b"0")], b""),
               (200, JSON, POSITIONS)]

    async def script(scope: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return answers.pop(0)

    async with http_server(script) as url, RestClient(url, CREDS, retries=2, backoff=0) as rest:
        assert (await rest.positions()).balance.deposit == 1
    assert answers == []


async def test_an_error_without_problem_json_and_a_malformed_body_are_clear() -> None:
    answers = [(502, [(b"content-type", b"text/html")], b"<html>bad gateway</html>"),
               (200, JSON, b'{"positions": [], "balance": {"deposit": "lots"}}')]

    async def script(scope: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        return answers.pop(0)

    async with http_server(script) as url, RestClient(url, CREDS, retries=0) as rest:
        with pytest.raises(RestRequestFailed) as caught:
            await rest.positions()
        assert (caught.value.status, caught.value.title, caught.value.detail) == (
            502, "Bad Gateway", "<html>bad gateway</html>")
        with pytest.raises(RequestFailed, match="MalformedResponse") as malformed:
            await rest.positions()
        assert not isinstance(malformed.value, RestRequestFailed)


class Recording(httpx.AsyncHTTPTransport):
    """The real transport, remembering every header value it sent."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.extend(v for k, v in request.headers.items() if k.startswith("x-qfex"))
        return await super().handle_async_request(request)


async def test_secrets_signatures_and_nonces_are_never_logged(
    venue: Venue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    transports = [Recording(), Recording()]
    with structlog.testing.capture_logs() as logs:
        async with RestClient(venue.rest_url or "", CREDS, transport=transports[0]) as rest:
            await rest.positions()
            await rest.historic_orders(symbol="AAPL-USD")
        wrong = Credentials(PUB, "wrong")
        async with RestClient(venue.rest_url or "", wrong, transport=transports[1]) as bad:
            with pytest.raises(RestAuthenticationError):
                await bad.positions()
    text = caplog.text + repr(logs)
    secrets = [SECRET, "wrong"] + [v for t in transports for v in t.sent if v != PUB and not v.isdigit()]
    assert len(secrets) == 2 + 3 * 2  # a signature and a nonce per request
    assert logs and caplog.text  # something was logged, and none of it is secret
    for secret in secrets:
        assert secret not in text
