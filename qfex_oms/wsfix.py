"""A fix for trio-websocket issue #184, applied once on import by the session and the simulator.

trio-websocket's reader answers every ping with a pong, even after our own close frame went out.
wsproto then refuses the pong (``LocalProtocolError``: nothing may follow a close) inside the
reader task, which fails the nursery the connection lives in. RFC 6455 §5.5.2 owes no pong once
the closing handshake has started, so a ping that crosses our close is skipped here. The manager
closes on every exit and every restart, and venues ping, so without this an exit could raise out
of the strategy's ``async with`` and a restart could end the manager (tests/manager/
test_manager_close_race.py stages the race through a proxy).

The fix wraps one private method; if a future trio-websocket renames it, nothing is patched and the
manager's supervisor still treats the error as a lost connection (connection._CONNECTION_ERRORS).
Remove this module once trio-websocket ships its own fix (pull request #198).
"""

from __future__ import annotations

from typing import Any

from trio_websocket import WebSocketConnection
from wsproto.connection import ConnectionState

UNFIXED: Any = getattr(WebSocketConnection, "_handle_ping_event", None)  # kept for the tests


def _install() -> bool:
    original = UNFIXED
    if original is None or getattr(original, "qfex_fixed", False):
        return original is not None

    async def handle_ping(self: WebSocketConnection, event: Any) -> None:
        state = getattr(getattr(self, "_wsproto", None), "state", ConnectionState.OPEN)
        if state is not ConnectionState.OPEN:
            return  # our close (or theirs) is under way: no pong is owed, and wsproto refuses one
        await original(self, event)

    handle_ping.qfex_fixed = True  # type: ignore[attr-defined]
    WebSocketConnection._handle_ping_event = handle_ping  # type: ignore[method-assign]  # noqa: SLF001
    return True


INSTALLED = _install()
