"""Errors that say what to do: each message asserted in substance, through the command where a user
meets it (subprocess), before anything connects where it can be known before."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from structlog.testing import capture_logs

from qfex_oms.app.config import ConfigError, GuardLimits, load_config
from qfex_oms.app.runner import log_order_events
from qfex_oms.client.events import EventStream
from qfex_oms.client.session import connect_failure, rejected_upgrade
from qfex_oms.core.events import OrderUpdated
from qfex_oms.core.states import OrderState
from qfex_oms.errors import AuthenticationError, ConnectError, QfexOmsError

NOTHING_LISTENING = "ws://127.0.0.1:1"


def _cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("QFEX_")}
    return subprocess.run([sys.executable, "-m", "qfex_oms", *args], capture_output=True, text=True, cwd=cwd,
                          env={**base, "NO_COLOR": "1", "COLUMNS": "200", **env}, timeout=60, check=False)


def _error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    """The one error line of a failed command."""
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    lines = [line for line in proc.stderr.splitlines() if line.startswith("qfex-oms: error: ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


# ---------------------------------------------------------------------- keys, network


def test_a_wrong_public_key_names_the_key_the_venue_and_the_variable(tmp_path: Path) -> None:
    line = _error(_cli("check", cwd=tmp_path, QFEX_PUBLIC_KEY="qfex_pub_nope", QFEX_SECRET_KEY="x"), 3)
    assert "refused the public key qfex_pub_nope (HTTP 401" in line
    assert "check the public key" in line and "UAT keys do not work on production" in line
    assert "environment variable QFEX_PUBLIC_KEY" in line and "config/sim.toml" in line


def test_a_wrong_secret_says_signature_secret_or_clock(tmp_path: Path) -> None:
    line = _error(_cli("check", cwd=tmp_path, QFEX_PUBLIC_KEY="qfex_pub_demo", QFEX_SECRET_KEY="wrong"), 3)
    assert "refused the signature of public key qfex_pub_demo" in line
    assert "the secret key does not match" in line
    assert "clock is off" in line and "unix_ts" in line and "sync it (NTP)" in line
    assert "QFEX_SECRET_KEY" in line and "wrong" not in line  # the secret itself is never echoed


def test_nothing_listening_is_a_connect_error_asking_for_the_simulator(tmp_path: Path) -> None:
    line = _error(_cli("check", "--url", NOTHING_LISTENING, cwd=tmp_path), 3)
    assert f"could not connect to {NOTHING_LISTENING}" in line
    assert "is `qfex-oms sim` running?" in line and "qfex-oms sim --port" in line
    assert "AuthenticationError" not in line and "OSError(" not in line


def test_connect_errors_are_not_authentication_errors() -> None:
    loopback = connect_failure("ws://localhost:8765", OSError(111, "Connection refused"))
    assert isinstance(loopback, ConnectError) and isinstance(loopback, QfexOmsError)
    assert not isinstance(loopback, AuthenticationError)
    assert str(loopback) == ("could not connect to ws://localhost:8765: Connection refused; is `qfex-oms "
                             "sim` running? start one with `qfex-oms sim --port PORT` and pass the URL it "
                             "prints to --url") and loopback.url == "ws://localhost:8765"
    remote = connect_failure("wss://trade.qfex.io", trio.TooSlowError())
    assert "no answer in time" in str(remote) and "check the URL, the network" in str(remote)
    assert "qfex-oms sim" not in str(remote)
    assert "HTTP 502" in str(rejected_upgrade("wss://trade.qfex.io", 502, "k"))
    assert "refused the public key k (HTTP 403" in str(rejected_upgrade("wss://trade.qfex.io", 403, "k"))


@contextmanager
def _busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        yield taken.getsockname()[1]


def test_a_busy_simulator_port_is_one_line(tmp_path: Path) -> None:
    with _busy_port() as port:
        proc = _cli("sim", "--port", str(port), cwd=tmp_path)
    line = _error(proc, 2)
    assert line == (f"qfex-oms: error: cannot listen on 127.0.0.1:{port}: the address is already in use "
                    "(another `qfex-oms sim`?); pick another --port, or --port 0 for a free one")
    assert len(proc.stderr.splitlines()) == 1 and proc.stdout == ""


# ---------------------------------------------------------------------- config


@pytest.mark.parametrize(("body", "message"), [
    ("[manager]\nrequest_timeout = -1\n", "manager.request_timeout: expected a number > 0, got -1.0"),
    ("[guard]\nmax_open_orders = -5\n", "guard.max_open_orders: expected an integer >= 0, got -5"),
    ("[guard]\nmax_position = -1\n", "guard.max_position: expected a number >= 0, got Decimal('-1')"),
    ("[guard]\nmax_disconnect_seconds = 0\n", "guard.max_disconnect_seconds: expected a number > 0, got 0.0"),
    ("[manager]\nkill_timeout = \"2\"\n", "manager.kill_timeout: expected a number > 0, got str '2'"),
    ("[manager]\ntimeout = 1\n", "unknown key manager.timeout (known: request_timeout,"),
    ("[manager]\njournal_failure = \"ignore\"\n",
     "manager.journal_failure: expected \"halt_new_orders\" or \"continue\", got 'ignore'"),
    ("[runner]\nshutdown_timeout = -2\n", "runner.shutdown_timeout: expected a number > 0, got -2.0"),
    ("[exchange2]\n", "unknown section [exchange2]"),
])
def test_every_config_error_names_the_file_and_the_dotted_key(tmp_path: Path, body: str,
                                                              message: str) -> None:
    file = tmp_path / "my config.toml"
    file.write_text(f'[exchange]\nurl = "embedded"\n{body}')
    with pytest.raises(ConfigError) as caught:
        load_config(file)
    assert str(caught.value).startswith(f"{file}: {message}"), caught.value


def test_a_config_error_reaches_the_command_as_one_line(tmp_path: Path) -> None:
    file = tmp_path / "c.toml"
    file.write_text('[exchange]\nurl = "embedded"\n[manager]\nrequest_timeout = -1\n')
    line = _error(_cli("check", "--config", str(file), cwd=tmp_path), 2)
    assert line == f"qfex-oms: error: {file}: manager.request_timeout: expected a number > 0, got -1.0"


def test_guard_limits_are_validated_in_code_too() -> None:
    with pytest.raises(ValueError) as caught:
        GuardLimits(max_open_orders=-5)
    assert str(caught.value) == "guard.max_open_orders: expected an integer >= 0, got -5"


# ---------------------------------------------------------------------- strategies and parameters


@pytest.mark.parametrize(("source", "message"), [
    ("def run(oms, ctx):\n    pass\n", "run must be `async def run(oms, ctx)`; it is a plain `def`"),
    ("async def run(oms):\n    pass\n", "run must take two parameters, (oms, ctx); it is `run(oms)`"),
    ("async def run(oms, ctx, extra):\n    pass\n", "it is `run(oms, ctx, extra)`"),
])
def test_a_strategy_entry_point_is_checked_before_connecting(tmp_path: Path, source: str,
                                                             message: str) -> None:
    strategy = tmp_path / "bad.py"
    strategy.write_text(source)
    # Nothing listens at the URL: had it connected first, the error would be a connection error (3).
    line = _error(_cli("run", str(strategy), "--url", NOTHING_LISTENING, cwd=tmp_path), 2)
    assert line.startswith(f"qfex-oms: error: {strategy}: run must") and message in line, line


def test_a_parameter_that_is_not_a_number_is_named(tmp_path: Path) -> None:
    proc = _cli("run", "strategies/quoter.py", "-p", "mid=abc", "-p", "cycles=1", "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert "InvalidOperation" in error and "parameters that are not numbers: mid='abc'" in error


# ---------------------------------------------------------------------- the runner's log line


class _Order:
    """The order as it is by the time the log task reads the event: already CANCELLED."""

    def describe(self) -> dict[str, object]:
        return {"symbol": "AAPL-USD", "order_id": "o-1", "client_order_id": "c-1", "state": "CANCELLED"}


class _Manager:
    """Only ``events()``: the log task's one dependency (a lagging reader cannot be staged reliably
    with a live manager, so the events are handed over directly, in a real ``EventStream`` that
    ends after them)."""

    def __init__(self, events: list[Any]) -> None:
        self._events = events

    def events(self) -> EventStream:
        stream = EventStream(high_water=100)
        for event in self._events:
            stream.push(event)
        stream.close()
        return stream


async def test_the_order_updated_line_shows_the_events_state() -> None:
    order = _Order()
    events = [OrderUpdated(order, OrderState.PENDING_NEW, OrderState.OPEN, "ACK"),  # type: ignore[arg-type]
              OrderUpdated(order, OrderState.OPEN, OrderState.CANCELLED, "CANCELLED")]  # type: ignore[arg-type]
    with capture_logs() as logs:
        await log_order_events(_Manager(events))  # type: ignore[arg-type]
    lines = [(e["previous"], e["state"]) for e in logs if e["event"] == "order updated"]
    assert lines == [("PENDING_NEW", "OPEN"), ("OPEN", "CANCELLED")]


async def test_the_order_log_writes_what_was_published_before_it_was_cancelled() -> None:
    # The run ends (the log task is cancelled) right after the exit policy's last events were
    # published: they are still written, not lost with the task.
    order = _Order()
    events = [OrderUpdated(order, OrderState.PENDING_NEW, OrderState.OPEN, "ACK"),  # type: ignore[arg-type]
              OrderUpdated(order, OrderState.OPEN, OrderState.PENDING_CANCEL, None),  # type: ignore[arg-type]
              OrderUpdated(order, OrderState.PENDING_CANCEL, OrderState.CANCELLED, "CANCELLED")]  # type: ignore[arg-type]
    manager = _Manager([])
    stream = EventStream(high_water=100)
    manager.events = lambda: stream  # type: ignore[method-assign]
    with capture_logs() as logs:
        async with trio.open_nursery() as nursery:
            await nursery.start(log_order_events, manager)
            for event in events:
                stream.push(event)
            nursery.cancel_scope.cancel()  # no checkpoint between: the task has read one at most
    lines = [e["state"] for e in logs if e["event"] == "order updated"]
    assert lines == ["OPEN", "PENDING_CANCEL", "CANCELLED"]
