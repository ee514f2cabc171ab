"""structlog setup: readable on a terminal, JSON lines to a file when configured, secrets redacted.

The redaction processor is the last line of defence: code never passes secrets to a logger, and
anything under a key that looks like one (secret, signature, hmac, password, jwt, token) is replaced
before rendering, including inside nested dicts such as an ``err`` frame's echoed request.

Logging costs time linear in what is logged and writes a bounded line: a raw frame is logged through
``cap_frame`` (its head, the cut marked), and the processor caps whatever a caller passes anyway.
"""

from __future__ import annotations

import itertools
import logging
import re
import sys
from typing import Any, TextIO

import orjson
import structlog

REDACTED = "***"
_SENSITIVE = ("secret", "signature", "hmac", "password", "jwt", "token")
FRAME_LOG_LIMIT = 2048  # characters (or bytes) of a frame kept in a log line: ``cap_frame``
VALUE_LOG_LIMIT = 16384  # any one string in a log event, whoever logged it (the last line of defence)
_EVENT_BUDGET = 65536  # characters of all the strings of one event together
_MAX_DEPTH = 32  # nested containers rendered (orjson refuses 255, Python's recursion limit is ~1000)
_MAX_ITEMS = 100  # items of one container rendered

# Every pattern here is a literal alternation or an unrolled loop: each character is consumed one way
# only, so no pattern backtracks more than linearly, and the scan below never goes back in the text.
_WORD = re.compile("|".join(_SENSITIVE), re.IGNORECASE)
_QUOTE = re.compile("[\"']")
_COLON = re.compile(r"\s*:\s*")
_BODY = {'"': re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL),
         "'": re.compile(r"[^'\\]*(?:\\.[^'\\]*)*", re.DOTALL)}


def _sensitive_value(text: str, key_start: int, key_end: int) -> int | None:
    """Where the quoted value of a sensitive key starts: ``key_start:key_end`` is the text between two
    quotes; it is a key when a colon follows, sensitive when it holds one of the words."""
    if _WORD.search(text, key_start, key_end) is None:
        return None
    colon = _COLON.match(text, key_end + 1)
    if colon is None or colon.end() >= len(text) or text[colon.end()] not in "\"'":
        return None
    return colon.end()


def _scrub_text(text: str) -> str:
    """Replace the string value of every sensitive key in ``text`` (a raw frame, a repr): JSON's
    ``"key": "value"`` and Python's ``'key': 'value'``, escaped quotes included.

    One pass from left to right (linear in the text: a hostile frame must not stall the trio loop). A
    value the text cuts off (``cap_frame`` cut it) is redacted to the end: no part of it is shown.
    """
    if _WORD.search(text) is None:
        return text
    parts: list[str] = []
    done = 0
    opening = _QUOTE.search(text)
    while opening is not None:
        closing = _QUOTE.search(text, opening.end())
        if closing is None:
            break
        value = _sensitive_value(text, opening.end(), closing.start())
        if value is None:
            opening = closing
            continue
        quote = text[value]
        end = _BODY[quote].match(text, value + 1).end()  # type: ignore[union-attr]  # matches ""
        parts += [text[done:value + 1], REDACTED, quote]
        done = end + 1 if end < len(text) else len(text)
        opening = _QUOTE.search(text, done)
    parts.append(text[done:])
    return "".join(parts)


def cap_frame(raw: bytes | bytearray | memoryview | str, limit: int = FRAME_LOG_LIMIT) -> str:
    """A frame as it may appear in a log line: its first ``limit`` characters (bytes, for bytes),
    secrets redacted, and the cut marked with what was left out (``…[+123456 bytes]``).

    Cut first, then redacted: the cost is bounded by ``limit``, whatever the frame's size, and a secret
    the cut splits is redacted to the cut, so not even its first characters are shown.
    """
    if isinstance(raw, str):
        head, cut, unit = raw[:limit], len(raw) - limit, "chars"
    else:
        head, cut, unit = bytes(raw[:limit]).decode("utf-8", "replace"), len(raw) - limit, "bytes"
    head = _scrub_text(head)
    return f"{head}…[+{cut} {unit}]" if cut > 0 else head


class _Budget:
    """What is left of one event's allowance of characters (shared by all its values)."""

    __slots__ = ("left",)

    def __init__(self, left: int) -> None:
        self.left = left

    def text(self, value: bytes | bytearray | str) -> str:
        capped = cap_frame(value, max(0, min(VALUE_LOG_LIMIT, self.left)))
        self.left -= len(capped)
        return capped


def _is_sensitive(key: object) -> bool:
    return isinstance(key, str) and _WORD.search(key) is not None


def _scrub(value: Any, budget: _Budget, depth: int = 0) -> Any:
    if isinstance(value, str | bytes | bytearray):
        return budget.text(value)
    if not isinstance(value, dict | list | tuple):
        return value
    if depth >= _MAX_DEPTH or budget.left <= 0:
        return f"…[{type(value).__name__} of {len(value)} left out]"
    budget.left -= 1
    more = len(value) - _MAX_ITEMS
    if isinstance(value, dict):
        out = {budget.text(k) if isinstance(k, str) else k:
               REDACTED if _is_sensitive(k) else _scrub(v, budget, depth + 1)
               for k, v in itertools.islice(value.items(), _MAX_ITEMS)}
        if more > 0:
            out["…"] = f"[+{more} items]"
        return out
    items = [_scrub(v, budget, depth + 1) for v in itertools.islice(value, _MAX_ITEMS)]
    if more > 0:
        items.append(f"…[+{more} items]")
    return items if isinstance(value, list) else tuple(items)


def redact_secrets(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Redact secrets and bound the event: each string capped, deep or wide structures cut, all marked.

    Linear in the size of what is logged, so logging can never stall the event loop."""
    scrubbed: dict[str, Any] = _scrub(event_dict, _Budget(_EVENT_BUDGET))
    return scrubbed


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
        return str(self.console(logger, name, event_dict))


def configure_logging(level: str = "info", json_file: str | None = None, *,
                      stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    console: Any = (structlog.dev.ConsoleRenderer(colors=stream.isatty()) if stream.isatty()
                    else structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"]))
    renderer: Any = _JsonLinesTee(console, open(json_file, "a")) if json_file else console  # noqa: SIM115
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


def get_logger(name: str) -> Any:
    """The logger every module of the package uses: one place decides how the library logs (issue 17
    routes it through the standard ``logging`` module, so a host application controls it)."""
    return structlog.get_logger(name)
