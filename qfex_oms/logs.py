"""structlog setup: readable on a terminal, JSON lines to a file when configured, secrets redacted.

The redaction processor is the last line of defence: code never passes secrets to a logger, and
anything under a key that looks like one (secret, signature, hmac, password, jwt, token) is replaced
before rendering, including inside nested dicts such as an ``err`` frame's echoed request.
"""

from __future__ import annotations

import logging
import re
import sys
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "***"
_SENSITIVE = ("secret", "signature", "hmac", "password", "jwt", "token")


# A sensitive key with a string value inside text (a raw frame logged as a string, a repr): JSON's
# "key": "value" and Python's 'key': 'value'.
_IN_TEXT = re.compile(
    r"""(?P<key>(?P<q>["'])[^"']*(?:""" + "|".join(_SENSITIVE)
    + r""")[^"']*(?P=q)\s*:\s*)(?P<v>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')""",
    re.IGNORECASE)


def _scrub_text(text: str) -> str:
    if not any(s in text.lower() for s in _SENSITIVE):
        return text
    return _IN_TEXT.sub(lambda m: f"{m['key']}{m['q']}{REDACTED}{m['q']}", text)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: REDACTED if isinstance(k, str) and any(s in k.lower() for s in _SENSITIVE)
                else _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    if isinstance(value, str):
        return _scrub_text(value)
    if isinstance(value, bytes):
        return _scrub_text(value.decode("utf-8", "replace"))
    return value


def redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    return _scrub(event_dict)


class _JsonLinesTee:
    """Renders the console line and also appends the event as one JSON line to a file."""

    def __init__(self, console: Any, file: TextIO) -> None:
        self.console, self.file = console, file

    def __call__(self, logger: Any, name: str, event_dict: dict[str, Any]) -> str:
        # The file gets a formatted traceback; a terminal's ConsoleRenderer formats its own.
        line = orjson.dumps(structlog.processors.format_exc_info(logger, name, dict(event_dict)),
                            default=str).decode()
        self.file.write(line + "\n")
        self.file.flush()
        return self.console(logger, name, event_dict)


def configure_logging(level: str = "info", json_file: str | None = None, *,
                      stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    console: Any = (structlog.dev.ConsoleRenderer(colors=stream.isatty()) if stream.isatty()
                    else structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]))
    renderer = _JsonLinesTee(console, open(json_file, "a")) if json_file else console  # noqa: SIM115
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    if not stream.isatty():
        processors.append(structlog.processors.format_exc_info)
    structlog.configure(
        processors=[*processors, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
