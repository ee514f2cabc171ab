"""The manager's own websocket client (qfex_oms.client.wsconn) against a real websocket server.

A trio-websocket server plays the venue, so each behaviour is checked against another
implementation of RFC 6455: messages both ways (a large one arrives fragmented over many reads),
pings answered while open, the close reason carried by ``ConnectionClosed``, a refused upgrade
named by its HTTP status, concurrent senders never interleaving their frames, and wss:// over TLS.
The manager on both transports (``connection.TRANSPORT``) places and cancels alike.
"""

from __future__ import annotations

import shutil
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
import trio_websocket
from simkit import manager
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from qfex_oms import AuthenticationError, Credentials
from qfex_oms.client.connection import TRANSPORT
from qfex_oms.client.wsconn import UpgradeRejected, WsClient, connect_ws
from qfex_oms.sim import Venue

Handler = Callable[[trio_websocket.WebSocketConnection], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler, reject: int | None = None) -> AsyncIterator[str]:
    async def accept(request: trio_websocket.WebSocketRequest) -> None:
        if reject is not None:
            await request.reject(reject)
            return
        await handler(await request.accept())

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio_websocket.serve_websocket, accept, "127.0.0.1", 0, None)
        yield f"ws://127.0.0.1:{listeners.port}/path?api_key=k"
        nursery.cancel_scope.cancel()


async def open_client(url: str) -> WsClient:
    with trio.fail_after(5):
        return await connect_ws(url, max_message_size=1 << 24)


async def test_messages_both_ways_and_a_large_one_over_many_reads() -> None:
    big = "x" * 300_000  # several reads of 64 KiB on our side

    async def echo(ws: trio_websocket.WebSocketConnection) -> None:
        while True:
            message = await ws.get_message()
            await ws.send_message(big if message == "big" else f"echo {message}")

    async with server(echo) as url:
        client = await open_client(url)
        with trio.fail_after(5):
            await client.send_message("hello")
            assert await client.get_message() == "echo hello"
            await client.send_message("big")
            assert await client.get_message() == big
            await client.aclose()


async def test_the_reader_hands_each_message_over_and_answers_pings() -> None:
    pinged = trio.Event()

    async def venue(ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message("one")
        await ws.ping(b"are you there")  # returns once our pong came back
        pinged.set()
        await ws.send_message("two")
        await ws.aclose(4001, "goodbye")

    got: list[str | bytes] = []
    async with server(venue) as url:
        client = await open_client(url)
        with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as caught:
            await client.run_reader(got.append)
    assert pinged.is_set()
    assert got == ["one", "two"]
    assert caught.value.reason.code == 4001
    assert caught.value.reason.reason == "goodbye"


async def test_a_refused_upgrade_names_its_http_status() -> None:
    async def never(ws: trio_websocket.WebSocketConnection) -> None:
        raise AssertionError("not reached")

    async with server(never, reject=403) as url:
        with trio.fail_after(5), pytest.raises(UpgradeRejected) as caught:
            await connect_ws(url, max_message_size=1 << 20)
    assert caught.value.status_code == 403


async def test_the_manager_words_a_refused_upgrade_as_the_session_does(venue: Venue) -> None:
    """An unknown public key: the simulator refuses the upgrade with 401 (tests/manager/
    test_manager_auth.py checks the wording), on either transport alike."""
    messages = []
    for transport in ("wsproto", "trio-websocket"):
        token = TRANSPORT.set(transport)
        try:
            with trio.fail_after(5), pytest.raises(AuthenticationError) as caught:
                async with manager(venue, Credentials("qfex_pub_nobody", "whatever")):
                    pytest.fail("the block must not run with an unknown key")
        finally:
            TRANSPORT.reset(token)
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert "HTTP 401" in messages[0]


async def test_concurrent_senders_take_turns_and_a_send_after_close_raises() -> None:
    received: list[str] = []
    done = trio.Event()

    async def collect(ws: trio_websocket.WebSocketConnection) -> None:
        while len(received) < 300:
            received.append(str(await ws.get_message()))
        done.set()
        await trio.sleep_forever()

    async with server(collect) as url:
        client = await open_client(url)
        with trio.fail_after(5):
            async with trio.open_nursery() as nursery:
                for sender in range(3):
                    async def send(sender: int = sender) -> None:
                        for i in range(100):
                            await client.send_message(f"{sender}:{i}:" + "y" * 2000)
                    nursery.start_soon(send)
            await done.wait()
            with trio.move_on_after(1):
                await client.aclose()
        with pytest.raises(trio_websocket.ConnectionClosed):
            await client.send_message("late")
    # every frame whole (the server would have failed on an interleaved one), each sender in order
    for sender in range(3):
        mine = [int(m.split(":")[1]) for m in received if m.startswith(f"{sender}:")]
        assert mine == list(range(100))


@pytest.mark.parametrize("transport", ["wsproto", "trio-websocket"])
async def test_the_manager_trades_on_either_transport(venue: Venue, transport: str) -> None:
    token = TRANSPORT.set(transport)
    try:
        async with manager(venue) as oms:
            order = await oms.place_order("AAPL-USD", "BUY", "1", "100")
            result = await oms.cancel(order)
            assert result.status == "CANCELLED"
            session = oms.connection.session
            assert session is not None
            assert isinstance(session.ws, WsClient) is (transport == "wsproto")
    finally:
        TRANSPORT.reset(token)


async def test_wss_over_tls_with_the_servers_name_checked(tmp_path: Path) -> None:
    """Production QFEX is wss://: the TLS handshake, the server's name checked against its
    certificate (``localhost`` here, self-signed with the openssl command line)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    await trio.run_process([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                            "-keyout", str(key), "-out", str(cert)], capture_stdout=True, capture_stderr=True)
    server_side = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_side.load_cert_chain(cert, key)
    client_side = ssl.create_default_context(cafile=str(cert))

    async def echo(ws: trio_websocket.WebSocketConnection) -> None:
        await ws.send_message(f"echo {await ws.get_message()}")
        await trio.sleep_forever()

    async def accept(request: trio_websocket.WebSocketRequest) -> None:
        await echo(await request.accept())

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio_websocket.serve_websocket, accept, "127.0.0.1", 0, server_side)
        with trio.fail_after(5):
            url = f"wss://localhost:{listeners.port}/?api_key=k"
            client = await connect_ws(url, max_message_size=1 << 20, ssl_context=client_side)
            await client.send_message("over tls")
            assert await client.get_message() == "echo over tls"
            with trio.move_on_after(1):
                await client.aclose()
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def batching_server(*frames: Any) -> AsyncIterator[str]:
    """A wsproto server that accepts, then writes ``frames`` (wsproto events) in one send: they
    reach the client in one read."""
    async def handler(stream: trio.SocketStream) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        while True:
            ws.receive_data(await stream.receive_some(65536))
            if any(isinstance(event, Request) for event in ws.events()):
                break
        await stream.send_all(ws.send(AcceptConnection()) + b"".join(ws.send(f) for f in frames))
        await trio.sleep(5)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, handler, 0)
        yield f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/"
        nursery.cancel_scope.cancel()


async def test_messages_read_together_with_the_close_are_all_handed_over() -> None:
    async with batching_server(TextMessage("one"), TextMessage("two"), CloseConnection(4002, "bye")) as url:
        client = await open_client(url)
        got: list[str | bytes] = []
        with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as caught:
            await client.run_reader(got.append)
    assert got == ["one", "two"]
    assert caught.value.reason.code == 4002


async def test_a_message_over_the_limit_ends_the_connection_after_the_ones_before_it() -> None:
    big = TextMessage("z" * 5000)
    async with batching_server(TextMessage("small"), big, TextMessage("after")) as url:
        with trio.fail_after(5):
            client = await connect_ws(url, max_message_size=4096)
        got: list[str | bytes] = []
        with trio.fail_after(5), pytest.raises(trio_websocket.ConnectionClosed) as caught:
            await client.run_reader(got.append)
    assert got == ["small"]
    assert caught.value.reason.code == 1009
