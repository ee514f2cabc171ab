"""Logging: JSON lines to a file when configured, the order's identity on every order line, no secrets."""

from __future__ import annotations

import io
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import pytest
from clikit import REPO, arun_cli, cli_env, explain, secrets_in, write_config
from simkit import CREDS2, manager_at

from qfex_oms.logs import (
    FRAME_LOG_LIMIT,
    REDACTED,
    VALUE_LOG_LIMIT,
    cap_frame,
    configure_logging,
    get_logger,
    unconfigure_logging,
)

IDENTITY = ("symbol", "order_id", "client_order_id")


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    level = logging.getLogger().level
    try:
        yield
    finally:
        unconfigure_logging()
        logging.getLogger().setLevel(level)


async def test_a_run_writes_json_lines_with_order_identity_and_no_secret(
        sim_url: str, tmp_path: Path) -> None:
    log_file = tmp_path / "oms.log.jsonl"
    config = write_config(tmp_path / "logs.toml", sim_url,
                          logging={"level": "debug", "json_file": str(log_file)},
                          strategy={"orders": 3, "hold": 0.2, "twap": True})
    # The keys come from the environment, as they would for UAT; the secret must never be printed.
    env = cli_env(QFEX_PUBLIC_KEY="qfex_pub_demo", QFEX_SECRET_KEY="qfex_secret_demo")
    async with manager_at(sim_url, CREDS2) as counter:
        await counter.place_order("AAPL-USD", "SELL", "1", "150")  # rest-0 (a BUY at 150) fills
        proc = await arun_cli("run", str(REPO / "tests/runner/resting_strategy.py"), "--config", str(config),
                              env=env)
    assert proc.returncode == 0, explain(proc)

    text = log_file.read_text()
    lines = [orjson.loads(line) for line in text.splitlines()]
    assert all({"event", "level", "timestamp"} <= set(line) for line in lines)
    events = {line["event"] for line in lines}
    assert {"connected", "order updated", "order filled", "twap updated", "kill switch finished",
            "exit policy: cancelled everything"} <= events
    order_lines = [line for line in lines if "order_id" in line or "client_order_id" in line]
    assert len(order_lines) >= 10
    for line in order_lines:
        missing = [key for key in IDENTITY if key not in line]
        assert not missing, f"{line['event']!r} lacks {missing}: {line}"
    filled = [line for line in lines if line["event"] == "order filled"]
    assert [(f["client_order_id"], f["symbol"], f["price"]) for f in filled] == [
        ("rest-0", "AAPL-USD", "150")]
    assert all(f["order_id"] for f in filled)
    twap_lines = [line for line in lines if line["event"] == "twap updated"]
    assert all(line["client_twap_id"] == "rest-twap" and line["twap_id"] for line in twap_lines)

    # The terminal copy (key=value on stderr: not a TTY here) carries the same identity.
    assert "event='order filled'" in proc.stderr and "client_order_id='rest-0'" in proc.stderr
    assert secrets_in([text, proc.stdout, proc.stderr]) == []


def test_redaction_covers_keys_nested_frames_and_raw_text(tmp_path: Path, restore_structlog: None) -> None:
    stream = io.StringIO()
    log_file = tmp_path / "r.jsonl"
    configure_logging("debug", str(log_file), stream=stream)
    log = get_logger("qfex_oms.test")
    log.warning("exchange error", incoming={"type": "auth", "params": {
        "hmac": {"public_key": "qfex_pub_demo", "nonce": "n", "unix_ts": 1, "signature": "deadbeef"}}})
    log.warning("malformed frame", raw='{"type":"auth","params":{"hmac":{"signature":"deadbeef"}}}')
    log.info("repr", value="{'secret_key': 'qfex_secret_demo', 'jwt': 'abc.def'}", password="hunter2",
             api_token="t0k3n", frames=[{"Signature": "deadbeef"}], raw_bytes=b'{"signature": "deadbeef"}')
    log.debug("harmless", symbol="AAPL-USD", order_id="o-1", client_order_id="c-1")
    for output in (stream.getvalue(), log_file.read_text()):
        for secret in ("deadbeef", "qfex_secret_demo", "abc.def", "hunter2", "t0k3n"):
            assert secret not in output
        assert REDACTED in output and "o-1" in output
    lines = [orjson.loads(line) for line in log_file.read_text().splitlines()]
    assert lines[0]["incoming"]["params"]["hmac"] == REDACTED
    assert lines[2]["password"] == REDACTED and lines[2]["frames"] == [{"Signature": REDACTED}]
    assert lines[3] == {**lines[3], "symbol": "AAPL-USD", "order_id": "o-1", "client_order_id": "c-1"}


def test_the_level_filters_and_exceptions_reach_the_file(tmp_path: Path, restore_structlog: None) -> None:
    stream = io.StringIO()
    log_file = tmp_path / "e.jsonl"
    configure_logging("warning", str(log_file), stream=stream)
    log = get_logger("qfex_oms.test")
    log.info("too quiet")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("crashed")
    lines = [orjson.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["crashed"]
    assert "ValueError: boom" in lines[0]["exception"] and "Traceback" in stream.getvalue()


# ---------------------------------------------------------------------- cost and length of a logged frame


class _Hang(Exception):
    pass


@contextmanager
def hang_guard(seconds: int = 5) -> Iterator[None]:
    """Fail instead of hanging. NOT a performance assertion: the bound is far above the linear cost (a
    few milliseconds); it only stops a quadratic redaction (minutes at 300 KB) from stalling the suite.
    SIGALRM interrupts a long regex too: CPython's ``re`` checks for signals while it matches."""
    def expire(*_: object) -> None:
        raise _Hang(f"logging one frame did not finish in {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# A quote, then a key-like word repeated: the old regex tried every split of the run (quadratic).
PATHOLOGICAL = ['"' + "token" * 60_000, "'" + "secret" * 50_000, '"token' * 50_000,
                '"signature": "' + "\\" * 300_000, ('"hmac"' + " " * 1000) * 300]


@pytest.mark.parametrize("text", PATHOLOGICAL, ids=["quote-word", "apostrophe-word", "many-quotes",
                                                     "open-value", "keys-and-spaces"])
def test_a_hostile_300_kb_frame_is_logged_without_a_hang(text: str, tmp_path: Path,
                                                          restore_structlog: None) -> None:
    stream = io.StringIO()
    configure_logging("debug", str(tmp_path / "h.jsonl"), stream=stream)
    log = get_logger("qfex_oms.test")
    with hang_guard():
        log.warning("malformed frame", raw=text)  # as the reader logs it, uncapped by the caller
        log.warning("malformed frame", raw=cap_frame(text))
    assert all(len(line) < 2 * VALUE_LOG_LIMIT for line in stream.getvalue().splitlines())


def test_a_frame_is_capped_with_the_cut_marked() -> None:
    frame = '{"type":"quote","data":"' + "x" * 10_000_000 + '"}'
    capped = cap_frame(frame)
    assert capped == frame[:FRAME_LOG_LIMIT] + f"…[+{len(frame) - FRAME_LOG_LIMIT} chars]"
    raw = frame.encode()
    assert cap_frame(raw, 10) == '{"type":"q' + f"…[+{len(raw) - 10} bytes]"
    assert cap_frame('{"a":1}') == '{"a":1}'  # a short frame is whole, unmarked
    assert cap_frame("é".encode() * 3, 3) == "é\ufffd…[+3 bytes]"  # a character cut in two is marked too


def test_any_long_value_is_capped_in_the_log_line(tmp_path: Path, restore_structlog: None) -> None:
    """The last line of defence: a caller that forgets ``cap_frame`` still writes a bounded line, and a
    frame echoed as a deep or wide structure (an ``err``'s ``incoming_message``) is bounded too."""
    stream = io.StringIO()
    log_file = tmp_path / "c.jsonl"
    configure_logging("debug", str(log_file), stream=stream)
    log = get_logger("qfex_oms.test")
    deep: dict[str, object] = {"leaf": 1}
    for _ in range(900):  # deeper than orjson renders (254) and close to Python's recursion limit
        deep = {"a": deep}
    log.warning("malformed frame", raw="y" * 10_000_000, raw_bytes=b"z" * 1_000_000,
                incoming={"wide": list(range(1_000_000)), "deep": deep, "k" * 1_000_000: "v"})
    for output in (stream.getvalue(), log_file.read_text()):
        assert len(output) < 200_000
        assert f"…[+{10_000_000 - VALUE_LOG_LIMIT} chars]" in output
        assert f"…[+{1_000_000 - VALUE_LOG_LIMIT} bytes]" in output


SECRET_HEX = "DEADBEEFCAFEF00D" * 4


@pytest.mark.parametrize("quote", ['"', "'"])
def test_a_secret_straddling_the_cap_is_not_leaked_even_in_part(quote: str) -> None:
    """Every cut from before the key to after the value: no character of the secret survives (the
    secret is the only upper-case text, so one upper-case letter would be a leaked piece of it)."""
    q = quote
    head = f"{{{q}type{q}: {q}auth{q}, {q}pad{q}: {q}{'x' * 100}{q}, "
    frame = f"{head}{q}hmac{q}: {{{q}signature{q} : {q}{SECRET_HEX}{q}, {q}nonce{q}: {q}n{q}}}}}"
    for limit in range(len(head), len(frame) + 1):
        for raw in (frame, frame.encode()):
            capped = cap_frame(raw, limit)
            assert not any(c.isupper() for c in capped), (limit, capped)
            assert capped.startswith(frame[:min(limit, len(head))])


def test_escaped_quotes_and_unterminated_values_are_redacted() -> None:
    assert cap_frame(r'{"signature": "ab\"CD\\", "x": "keep"}') == r'{"signature": "***", "x": "keep"}'
    assert cap_frame("{'jwt': 'AB\\'CD'}") == "{'jwt': '***'}"
    assert cap_frame('{"api_token":"OPEN') == '{"api_token":"***"'
    assert cap_frame('["secret", "kept"]') == '["secret", "kept"]'  # a word as a value is no key
