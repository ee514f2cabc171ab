"""Replay fixes: connection boundaries, and records the core cannot apply never stop recovery."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from journalkit import Script

from qfex_oms.core.engine import OmsCore
from qfex_oms.core.replay import replay
from qfex_oms.core.states import OrderState
from qfex_oms.journal import Journal


def replay_script(tmp_path: Path, script: Script) -> tuple[OmsCore, object]:
    path = tmp_path / "j.sqlite"
    script.write(path)
    core = OmsCore()
    stats = replay(core, ((r.direction, r.raw) for r in Journal.read(path).records()))
    return core, stats


def test_a_reconnect_is_replayed_as_a_lost_connection(tmp_path: Path) -> None:
    """Live: a modify lost at a disconnect is finished by connection_lost, so the strategy may modify
    again after the reconnect. Replay must see the same boundary or it refuses the second modify."""
    s = Script().connect().place("a").ack("a", "A").modify("A", "101")
    s.connect().modify("A", "102").modified("a", "A", "102")
    core, stats = replay_script(tmp_path, s)
    assert (stats.skipped, stats.connections) == (0, 2)
    order = core.tracker.by_order_id("A")
    assert order is not None and (order.state, order.price) == (OrderState.OPEN, Decimal("102"))
    assert core._modifies == {}


def test_an_order_pending_at_a_reconnect_is_unknown_after_it(tmp_path: Path) -> None:
    s = Script().connect().place("a").connect()
    core, stats = replay_script(tmp_path, s)
    (order,) = core.tracker.orders()
    assert order.state is OrderState.UNKNOWN and order.needs_settlement
    assert stats.connections == 2


def test_the_second_subscribe_of_one_handshake_is_not_a_new_connection(tmp_path: Path) -> None:
    s = Script().connect().place("a").ack("a", "A").cancel("A")
    core, stats = replay_script(tmp_path, s)
    assert stats.connections == 1
    assert core.tracker.by_order_id("A").state is OrderState.UNKNOWN  # the cancel was in flight at the end


def test_an_unknown_cancel_mode_is_skipped(tmp_path: Path) -> None:
    s = Script().connect().place("a").ack("a", "A")
    s.raw("out", b'{"type": "cancel_order", "params": {"order_id": "A", "symbol": "AAPL-USD", '
                 b'"cancel_order_id_type": "SOMETHING_NEW"}}')
    s.cancelled("a", "A")
    core, stats = replay_script(tmp_path, s)
    assert stats.skipped == 1
    assert core.tracker.by_order_id("A").state is OrderState.CANCELLED


def test_garbage_records_are_skipped(tmp_path: Path) -> None:
    s = Script().connect().place("a").raw("in", b"not json").raw("out", b'{"type": "nope"}').ack("a", "A")
    core, stats = replay_script(tmp_path, s)
    assert stats.skipped == 2
    assert core.tracker.by_order_id("A").state is OrderState.OPEN


def test_a_core_failure_on_one_record_does_not_stop_recovery(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    s = Script().connect().place("a").ack("a", "A").place("b").ack("b", "B")
    original = OmsCore.on_reply
    calls = []

    def flaky(self: OmsCore, reply: object) -> None:
        calls.append(reply)
        if len(calls) == 1:
            raise RuntimeError("a core bug")
        original(self, reply)

    monkeypatch.setattr(OmsCore, "on_reply", flaky)
    core, stats = replay_script(tmp_path, s)
    assert stats.skipped == 1
    assert core.tracker.by_order_id("B").state is OrderState.OPEN


def test_a_malformed_settlement_note_is_skipped_and_recovery_goes_on() -> None:
    from qfex_oms.core.replay import replay

    core = OmsCore()
    stats = replay(core, [("note", b"{}"), ("note", b"not json"),
                          ("note", b'{"settled": {"fills": [{"trade_id": 5}], "orders": []}}')])
    assert stats.skipped == 3 and stats.notes == 0
