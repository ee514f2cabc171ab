"""Authentication failures end the ``open_order_manager`` block with a clear error, and never hang."""

from __future__ import annotations

from functools import partial

import pytest
import trio
from simkit import CREDS, PUB, manager
from trio_websocket import ConnectionClosed, WebSocketRequest, serve_websocket
from waiting import wait_until

from qfex_oms import AuthenticationError, ConnectError, Credentials, open_order_manager
from qfex_oms.sim import Venue, open_simulator


async def test_bad_secret_raises_authentication_error(venue: Venue) -> None:
    with trio.fail_after(5), pytest.raises(AuthenticationError,
                                           match=r"refused the signature of public key qfex_pub_demo.*clock"):
        async with manager(venue, Credentials(PUB, "not-the-secret")):
            pytest.fail("the block must not run with a bad secret")
    # The failed attempt left no connection or task behind.
    await wait_until(lambda: venue.connection_count(PUB) == 0, what="the refused connection to close")


async def test_unknown_api_key_raises_authentication_error(venue: Venue) -> None:
    with trio.fail_after(5), pytest.raises(AuthenticationError, match="HTTP 401"):
        async with manager(venue, Credentials("qfex_pub_nobody", "whatever")):
            pytest.fail("the block must not run with an unknown key")


async def test_nothing_listening_raises_connect_error_not_authentication_error() -> None:
    """A network failure is not an authentication failure (issue 17): ConnectError, with the hint
    for a loopback URL that the simulator is not running."""
    async with open_simulator() as closed_venue:
        url = closed_venue.url
    with trio.fail_after(5), pytest.raises(ConnectError, match=r"could not connect.*qfex-oms sim"):
        async with manager(closed_venue, CREDS):
            pytest.fail(f"nothing listens on {url}")


async def test_good_credentials_connect_and_leaving_closes(venue: Venue) -> None:
    with trio.fail_after(5):
        async with manager(venue) as oms:
            assert oms.connected
            assert venue.connection_count(PUB) == 1
        await wait_until(lambda: venue.connection_count(PUB) == 0, what="the venue to see the close")


async def test_an_error_in_the_block_comes_out_as_itself(venue: Venue) -> None:
    with pytest.raises(KeyError, match="from the strategy"):
        async with manager(venue):
            raise KeyError("from the strategy")


async def test_a_silent_exchange_fails_the_handshake_in_time() -> None:
    """An exchange that accepts the socket and never answers the auth: bounded, clear error."""

    closed: list[bool] = []

    async def silent(request: WebSocketRequest) -> None:
        ws = await request.accept()
        closed.append(False)
        with trio.move_on_after(5):
            try:
                while True:
                    await ws.get_message()
            except ConnectionClosed:
                closed[-1] = True  # the manager closed the socket it gave up on

    async with trio.open_nursery() as nursery:
        server = await nursery.start(partial(serve_websocket, silent, "127.0.0.1", 0, None))
        url = f"ws://127.0.0.1:{server.port}"
        with trio.fail_after(3), pytest.raises(ConnectError, match="no answer in time"):
            async with open_order_manager(url, CREDS, handshake_timeout=0.3):
                pytest.fail("no handshake happened")
        await wait_until(lambda: closed == [True], what="the socket to be closed")
        nursery.cancel_scope.cancel()
