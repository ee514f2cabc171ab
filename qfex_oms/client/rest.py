"""An async client for QFEX's REST API (qfex-api.md §8, §15), on httpx, under trio (httpx runs on
trio through anyio).

``async with RestClient(base_url, credentials) as rest: rows = await rest.refdata()``. Requests and
shapes come from ``qfex_oms.protocol.rest`` (sans-IO); this module only sends them. What it adds:

* every private request is signed afresh per attempt (a new nonce each time), with the subaccount
  header when the credentials name an account;
* a deadline per attempt (``timeout``, through ``trio.fail_after`` and httpx's own timeouts) and a
  bounded retry with capped exponential backoff for idempotent requests (every GET here), on
  timeouts, lost connections, 429 and 5xx answers. ``POST /user/leverage`` is tried once;
* QFEX's RFC 9457 problem answers become the package's exceptions, carrying QFEX's title and detail:
  401/403 ``RestAuthenticationError`` (an ``AuthenticationError``), any other error status
  ``RestRequestFailed`` (a ``RequestFailed``); no answer in time ``RequestTimeout``; a host that
  cannot be reached ``NotConnected``; a body that cannot be read ``RequestFailed``;
* log lines name the method, path, status and attempt only: never a header, so never the key's
  signature, nonce or secret.
"""

from __future__ import annotations

import math
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

import httpx
import trio

from qfex_oms.core.refdata import Instruments
from qfex_oms.errors import AuthenticationError, InvalidArgument, NotConnected, RequestFailed, RequestTimeout
from qfex_oms.logs import get_logger
from qfex_oms.protocol import rest as r
from qfex_oms.protocol.errors import ProtocolError

T = TypeVar("T")
log = get_logger("qfex_oms.rest")

QFEX_REST_URL = "https://api.qfex.com"
QFEX_UAT_REST_URL = "https://api.qfex.io"  # qfex-api.md §15.1
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
_AUTH_STATUSES = frozenset({401, 403})


def _summary(problem: r.Problem) -> str:
    return ": ".join(part for part in (problem.title, problem.detail) if part)


class RestRequestFailed(RequestFailed):
    """QFEX answered a REST request with an error status. ``status``, ``title`` and ``detail`` are
    QFEX's (RFC 9457); ``problem`` the whole answer, ``errors`` included."""

    def __init__(self, request: str, problem: r.Problem) -> None:
        super().__init__(request, f"HTTP {problem.status}", _summary(problem))
        self.status = problem.status
        self.title = problem.title
        self.detail = problem.detail
        self.problem = problem


class RestAuthenticationError(AuthenticationError):
    """QFEX refused the REST request's credentials (401 or 403): a wrong key or secret, a stale clock
    (QFEX accepts "typically ±5 minutes"), a reused nonce or an account the key may not act for."""

    def __init__(self, request: str, problem: r.Problem) -> None:
        super().__init__(f"{request} refused: HTTP {problem.status} {_summary(problem)}".rstrip())
        self.request = request
        self.status = problem.status
        self.title = problem.title
        self.detail = problem.detail
        self.problem = problem


class RestClient:
    """QFEX's REST API. ``credentials`` (anything with ``public_key``, ``secret_key`` and
    ``account_id``, such as ``Credentials``) may be None for the public ``refdata`` only."""

    def __init__(
        self,
        base_url: str,
        credentials: Any = None,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.25,
        max_backoff: float = 2.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if timeout <= 0 or retries < 0:
            raise InvalidArgument("timeout must be > 0 and retries >= 0")
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._credentials = None if credentials is None else r.RestCredentials(
            credentials.public_key, getattr(credentials, "secret_key", ""),
            getattr(credentials, "account_id", None), getattr(credentials, "jwt", None))
        self._transport = transport
        self._http: httpx.AsyncClient | None = None

    async def __aenter__(self) -> RestClient:
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=httpx.Timeout(self.timeout), transport=self._transport,
            follow_redirects=False, headers={"user-agent": "qfex-oms"})
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._http is not None:
            with trio.CancelScope(shield=True):
                await self._http.aclose()
            self._http = None

    # ------------------------------------------------------------------ endpoints

    async def refdata(self, ticker: str | None = None) -> r.RefdataResponse:
        """``GET /refdata`` (public). Rows that cannot be read are left out and named in ``rejected``."""
        response = await self.send(r.refdata_request(ticker), r.RefdataResponse)
        for reason in response.rejected:
            log.warning("rest.refdata_row_dropped", reason=reason)
        return response

    async def instruments(self) -> Instruments:
        """Every symbol's trading rules from ``GET /refdata``, for ``core.refdata`` checks."""
        return Instruments.from_refdata((await self.refdata()).data)

    async def positions(self) -> r.PositionsBalance:
        """``GET /user/positions``: every position and the balance."""
        return await self.send(r.positions_request(), r.PositionsBalance)

    async def historic_orders(
        self,
        *,
        symbol: str | None = None,
        client_order_id: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = r.DEFAULT_LIMIT,
        offset: int = 0,
    ) -> r.HistoricOrdersPage:
        """``GET /user/historic-orders``: closed orders with ``terminal_status`` and ``filled_qty``."""
        query = r.HistoricOrdersQuery(symbol, client_order_id, start, end, limit, offset)
        return await self.send(_checked(query.request), r.HistoricOrdersPage)

    async def historic_twaps(self, *, symbol: str | None = None,
                             limit: int = r.DEFAULT_LIMIT) -> r.HistoricTwapsPage:
        """``GET /user/historic-twaps``: ended TWAPs (row shape assumed: ``HistoricTwap``)."""
        return await self.send(_checked(r.HistoricTwapsQuery(symbol, limit).request),
                               r.HistoricTwapsPage)

    async def trades(
        self,
        *,
        exchange_order_id: str | None = None,
        symbol: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        ordertype: str | None = None,
        orderdirection: str | None = None,
        limit: int = r.DEFAULT_LIMIT,
        offset: int = 0,
    ) -> r.TradesPage:
        """``GET /user/trade``: the account's fills (``exchange_order_id`` is QFEX's order id)."""
        query = r.TradesQuery(exchange_order_id, symbol, start, end, ordertype, orderdirection, limit, offset)
        return await self.send(_checked(query.request), r.TradesPage)

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """``POST /user/leverage`` (body shape assumed from the websocket's, see ``SetLeverage``)."""
        if isinstance(leverage, bool) or not isinstance(leverage, int) or leverage < 1:
            raise InvalidArgument(f"leverage must be a positive integer, got {leverage!r}")
        await self.exchange(r.SetLeverage(symbol, leverage).request())  # the answer is undocumented

    # ------------------------------------------------------------------ transport

    async def send(self, request: r.RestRequest, kind: type[T]) -> T:
        """Send ``request`` (retrying an idempotent one) and decode the answer as ``kind``."""
        body = await self.exchange(request)
        try:
            return r.decode(body, kind)
        except ProtocolError as exc:
            log.warning("rest.malformed_answer", request=request.name, error=str(exc))
            raise RequestFailed(request.name, "MalformedResponse", str(exc)) from None

    async def exchange(self, request: r.RestRequest) -> bytes:
        """Send ``request`` (retrying an idempotent one); the body of its successful answer."""
        if request.private and self._credentials is None:
            raise InvalidArgument(f"{request.name} needs credentials (a public and a secret key)")
        attempts = 1 + (self.retries if request.idempotent else 0)
        for attempt in range(1, attempts + 1):
            last = attempt == attempts
            try:
                response = await self._attempt(request)
            except (RequestTimeout, NotConnected, _ConnectionLost) as exc:
                if last:
                    raise exc.public() if isinstance(exc, _ConnectionLost) else exc from None
                log.info("rest.retry", request=request.name, attempt=attempt, reason=str(exc))
                await trio.sleep(self._delay(attempt, None))
                continue
            status = response.status_code
            log.debug("rest.answer", request=request.name, status=status, attempt=attempt)
            if status < 400:
                return response.content
            problem = r.parse_problem(status, response.reason_phrase, response.content)
            if status in _RETRY_STATUSES and not last:
                log.info("rest.retry", request=request.name, attempt=attempt, status=status,
                         title=problem.title)
                await trio.sleep(self._delay(attempt, response.headers.get("retry-after")))
                continue
            log.info("rest.refused", request=request.name, status=status, title=problem.title,
                     detail=problem.detail)
            if status in _AUTH_STATUSES:
                raise RestAuthenticationError(request.name, problem)
            raise RestRequestFailed(request.name, problem)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: r.RestRequest) -> httpx.Response:
        if self._http is None:
            raise NotConnected("RestClient is not open: use it as `async with RestClient(...)`")
        headers = request.headers(self._credentials)  # signed now: a fresh nonce per attempt
        try:
            with trio.fail_after(self.timeout):
                return await self._http.request(
                    request.method, request.path, params=request.query, content=request.body,
                    headers=headers)
        except (trio.TooSlowError, httpx.TimeoutException):
            raise RequestTimeout(f"{request.name}: no answer from {self.base_url} within "
                                 f"{self.timeout:g} s") from None
        except httpx.ConnectError as exc:
            raise NotConnected(f"{request.name}: cannot reach {self.base_url}: {exc}") from None
        except httpx.TransportError as exc:
            raise _ConnectionLost(request.name, f"{type(exc).__name__} {exc}".strip()) from None

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        """Capped exponential backoff; a 429's ``Retry-After`` (seconds) is honoured up to the cap."""
        delay = self.backoff * 2.0 ** (attempt - 1)
        if retry_after is not None:
            try:
                hinted = float(retry_after)
            except ValueError:
                hinted = math.nan
            if math.isfinite(hinted) and hinted >= 0:
                delay = hinted
        return min(delay, self.max_backoff)


class _ConnectionLost(Exception):
    """The connection broke mid-request: retried like a timeout, raised as ``RequestFailed``."""

    def __init__(self, request: str, reason: str) -> None:
        super().__init__(f"{request}: connection lost ({reason})")
        self.request = request
        self.reason = reason

    def public(self) -> RequestFailed:
        return RequestFailed(self.request, "ConnectionLost", self.reason)


def _checked(build: Any) -> r.RestRequest:
    try:
        request: r.RestRequest = build()
    except r.QueryError as exc:
        raise InvalidArgument(str(exc)) from None
    return request
