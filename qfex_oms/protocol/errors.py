"""Errors raised by the pure protocol layer.

Following h11's split, ``ProtocolError`` means the *exchange* sent something we cannot read (remote
fault), while ``RequestError`` is what a *server* (the simulator) raises about a client's frame.
"""

from __future__ import annotations

from typing import Any

from qfex_oms.protocol.enums import ErrorCode


class ProtocolError(Exception):
    """A frame could not be decoded. ``raw`` keeps the text so it can be logged as received."""

    def __init__(self, message: str, raw: bytes | str) -> None:
        super().__init__(message)
        self.raw = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")


class RequestError(Exception):
    """A client request is malformed; ``code`` is the QFEX ``err.error_code`` to answer with."""

    def __init__(self, code: ErrorCode, message: str, incoming: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.incoming = incoming
