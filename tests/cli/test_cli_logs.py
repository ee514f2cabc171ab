"""Logging: JSON lines to a file when configured, the order's identity on every order line, no secrets."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import structlog
from clikit import CREDS2, REPO, arun_cli, cli_env, client, explain, secrets_in, write_config

from qfex_oms.logs import REDACTED, configure_logging

IDENTITY = ("symbol", "order_id", "client_order_id")


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    try:
        yield
    finally:
        tee = structlog.get_config()["processors"][-1]
        if hasattr(tee, "file"):
            tee.file.close()
        structlog.reset_defaults()


async def test_a_run_writes_json_lines_with_order_identity_and_no_secret(
        sim_url: str, tmp_path: Path) -> None:
    log_file = tmp_path / "oms.log.jsonl"
    config = write_config(tmp_path / "logs.toml", sim_url,
                          logging={"level": "debug", "json_file": str(log_file)},
                          strategy={"orders": 3, "hold": 0.2, "twap": True})
    # The keys come from the environment, as they would for UAT; the secret must never be printed.
    env = cli_env(QFEX_PUBLIC_KEY="qfex_pub_demo", QFEX_SECRET_KEY="qfex_secret_demo")
    async with client(sim_url, CREDS2) as counter:
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
    log = structlog.get_logger("test")
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
    log = structlog.get_logger("test")
    log.info("too quiet")
    try:
        raise ValueError("boom")
    except ValueError:
        log.exception("crashed")
    lines = [orjson.loads(line) for line in log_file.read_text().splitlines()]
    assert [line["event"] for line in lines] == ["crashed"]
    assert "ValueError: boom" in lines[0]["exception"] and "Traceback" in stream.getvalue()
