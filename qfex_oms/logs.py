"""The package's logging: structlog loggers that hand their events to the standard ``logging`` module.

A library does not decide where its logs go. ``get_logger(name)`` gives a structlog logger over
``logging.getLogger(name)``: the event's fields are kept on the ``LogRecord`` (``record.qfex_event``)
and its message is ``event key=value ...``, so a host application routes, filters and silences the
package through ``logging`` as it does any other library (``logging.getLogger("qfex_oms")``).
Without a handler configured nothing is printed (a ``NullHandler`` on ``qfex_oms`` keeps
``logging``'s last-resort handler quiet). The ``qfex-oms`` command configures ``logging`` itself
(``configure_logging``): stderr as console lines or JSON, optionally JSON lines to a file, UTC ISO
timestamps for every record, the simulator's included.

A disabled level costs one ``isEnabledFor`` check (cached by ``logging``) before anything is built.

The redaction processor is the last line of defence: code never passes secrets to a logger, and
anything under a key that looks like one (secret, signature, hmac, password, jwt, token) is replaced
before rendering, including inside nested dicts such as an ``err`` frame's echoed request.

Logging costs time linear in what is logged and writes a bounded line: a raw frame is logged through
``cap_frame`` (its head, the cut marked), and the processor caps whatever a caller passes anyway.
"""

from __future__ import annotations

import datetime as dt
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


EVENT_ATTRIBUTE = "qfex_event"  # the LogRecord attribute holding the event's fields
_HANDLER_MARK = "_qfex_oms_handler"  # on the handlers configure_logging installs (and replaces)
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}

logging.getLogger("qfex_oms").addHandler(logging.NullHandler())


def _text(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def to_stdlib(_: Any, __: str, event_dict: dict[str, Any]) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The last processor: the arguments of the ``logging.Logger`` call. The message reads well
    under any formatter (``order updated symbol=AAPL-USD state=OPEN``); the fields ride on the record
    for a structured formatter (``configure_logging``'s, or the host's)."""
    exc_info = event_dict.pop("exc_info", None)
    event = _text(event_dict.get("event", ""))
    fields = " ".join(f"{k}={_text(v)}" for k, v in event_dict.items() if k != "event")
    return (f"{event} {fields}" if fields else event,), {"extra": {EVENT_ATTRIBUTE: event_dict},
                                                        "exc_info": exc_info}


# The list structlog.testing.capture_logs fills in place: while it captures, the package's events go
# to it (whatever their level), as they did when the package logged through structlog's defaults.
_GLOBAL_PROCESSORS: list[Any] = structlog.get_config()["processors"]


_LogCapture = structlog.testing.LogCapture


def _capturing() -> bool:
    return bool(_GLOBAL_PROCESSORS) and type(_GLOBAL_PROCESSORS[-1]) is _LogCapture


def _to_capture(logger: Any, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    if _capturing():
        for processor in _GLOBAL_PROCESSORS:
            event_dict = processor(logger, method, event_dict)  # LogCapture raises DropEvent
    return event_dict


_PROCESSORS: list[Any] = [_to_capture, structlog.contextvars.merge_contextvars, redact_secrets, to_stdlib]


_G, _LC = _GLOBAL_PROCESSORS, _LogCapture  # short names for the checks below, inlined for speed


class PackageLogger(structlog.stdlib.BoundLogger):
    """structlog's stdlib logger that asks ``logging`` first: a disabled level returns at once."""

    def debug(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._logger.isEnabledFor(logging.DEBUG) or (_G and type(_G[-1]) is _LC):
            return self._proxy_to_logger("debug", event, *args, **kw)
        return None

    def info(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._logger.isEnabledFor(logging.INFO) or (_G and type(_G[-1]) is _LC):
            return self._proxy_to_logger("info", event, *args, **kw)
        return None

    def warning(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._logger.isEnabledFor(logging.WARNING) or (_G and type(_G[-1]) is _LC):
            return self._proxy_to_logger("warning", event, *args, **kw)
        return None

    warn = warning

    def error(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._logger.isEnabledFor(logging.ERROR) or (_G and type(_G[-1]) is _LC):
            return self._proxy_to_logger("error", event, *args, **kw)
        return None

    def exception(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._logger.isEnabledFor(logging.ERROR) or (_G and type(_G[-1]) is _LC):
            kw.setdefault("exc_info", True)
            return self._proxy_to_logger("error", event, *args, **kw)
        return None

    def critical(self, event: str | None = None, *args: Any, **kw: Any) -> Any:
        if self._logger.isEnabledFor(logging.CRITICAL) or (_G and type(_G[-1]) is _LC):
            return self._proxy_to_logger("critical", event, *args, **kw)
        return None


def get_logger(name: str) -> Any:
    """The logger every module of the package uses (named ``qfex_oms.…``): a structlog logger whose
    events become ``logging`` records of the logger ``name``; see the module's docstring."""
    return PackageLogger(logging.getLogger(name), processors=_PROCESSORS, context={})


# ---------------------------------------------------------------------- the command's configuration


def _from_record(_: Any, __: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """A record's event: the package's fields when it has them, its message otherwise (another
    library's record); then its logger, level and time (UTC, ISO 8601, from the record's creation)."""
    record: logging.LogRecord = event_dict["_record"]
    fields = getattr(record, EVENT_ATTRIBUTE, None)
    out: dict[str, Any] = dict(fields) if isinstance(fields, dict) else {"event": event_dict["event"]}
    if not isinstance(fields, dict):  # another library's record: redacted here, the package's already were
        out = redact_secrets(None, "", out)
    out = {"timestamp": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat().replace("+00:00", "Z"),
           "level": record.levelname.lower(), "event": out.get("event"), "logger": record.name, **out}
    for key in ("_record", "_from_structlog", "exc_info", "stack_info"):
        if key in event_dict:
            out[key] = event_dict[key]
    return out


def _json_dumps(value: Any, **_: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _formatter(kind: str, *, tty: bool) -> logging.Formatter:
    renderer: Any
    if kind == "json":
        renderer = structlog.processors.JSONRenderer(serializer=_json_dumps)
    elif tty:
        renderer = structlog.dev.ConsoleRenderer(colors=True)
    else:
        renderer = structlog.processors.KeyValueRenderer(key_order=["timestamp", "level", "event"])
    processors: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if kind == "json" or not tty:
        processors.append(structlog.processors.format_exc_info)
    pre_chain: list[Any] = [_from_record]
    return structlog.stdlib.ProcessorFormatter(processors=[*processors, renderer],
                                               foreign_pre_chain=pre_chain)


def configure_logging(level: str = "info", json_file: str | None = None, *, console: str = "console",
                      stream: TextIO | None = None) -> None:
    """The ``qfex-oms`` command's logging (an application's decision, never the library's): records
    of ``level`` and above, from every library, to ``stream`` (stderr: stdout carries only the
    command's output) as console lines (``console="console"``: coloured on a terminal, key=value
    otherwise) or JSON lines (``console="json"``), and as JSON lines appended to ``json_file``.
    Calling it again replaces what it installed before."""
    root = unconfigure_logging()
    stream = stream or sys.stderr
    handlers: list[logging.Handler] = [logging.StreamHandler(stream)]
    handlers[0].setFormatter(_formatter(console, tty=stream.isatty()))
    if json_file:
        handlers.append(logging.FileHandler(json_file, encoding="utf-8"))
        handlers[1].setFormatter(_formatter("json", tty=False))
    for handler in handlers:
        setattr(handler, _HANDLER_MARK, True)
        root.addHandler(handler)
    root.setLevel(_LEVELS[level.lower()])


def unconfigure_logging() -> logging.Logger:
    """Remove (and close) the handlers ``configure_logging`` installed; returns the root logger."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(handler)
        handler.close()
    return root
