"""structlog setup: readable on a terminal, JSON lines to a file when configured, secrets redacted.

The redaction processor is the last line of defence: code never passes secrets to a logger, and
anything under a key that looks like one (secret, signature, hmac, password, jwt, token) is replaced
before rendering, including inside nested dicts such as an ``err`` frame's echoed request.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "***"
_SENSITIVE = ("secret", "signature", "hmac", "password", "jwt", "token")


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and any(s in k.lower() for s in _SENSITIVE)
                else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return _scrub(event_dict)


class _JsonLinesTee:
    """Renders the console line and also appends the event as one JSON line to a file."""

    def __init__(self, console: Any, file: TextIO) -> None:
        self.console, self.file = console, file

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        line = orjson.dumps(event_dict, default=str).decode()
        self.file.write(line + "\n")
        self.file.flush()
        return self.console(logger, name, event_dict)


def configure_logging(level: str = "info", json_file: str | None = None, *,
                      stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    console: Any = (structlog.dev.ConsoleRenderer(colors=stream.isatty()) if stream.isatty()
                    else structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]))
    renderer = _JsonLinesTee(console, open(json_file, "a")) if json_file else console  # noqa: SIM115
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
