"""The core's shape (issue 12): one object composed of a tracker and a cancel book, one name per
concept, and every log line about an order carrying the order's identity."""

from __future__ import annotations

from decimal import Decimal

from corekit import ack, fill, place
from structlog.testing import capture_logs

from qfex_oms.client import events as client_events
from qfex_oms.core import CancelBook, OmsCore, OrderTracker
from qfex_oms.core import events as core_events
from qfex_oms.core.snapshot import apply_snapshot
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import Side

IDENTITY = ("symbol", "order_id", "client_order_id")


def test_the_core_is_one_object_that_owns_a_tracker_and_a_cancel_book() -> None:
    core = OmsCore()
    assert OmsCore.__mro__ == (OmsCore, object), "no mixin chain"
    assert isinstance(core.tracker, OrderTracker) and isinstance(core.cancels, CancelBook)


def test_the_event_names_are_one_per_concept_with_the_old_ones_kept_as_aliases() -> None:
    assert core_events.RequestFailed is core_events.RequestErrored
    assert client_events.RequestFailed is core_events.RequestErrored
    assert core_events.Event is core_events.CoreEvent


def _trade(order_id: str, trade_id: str, qty: str) -> m.Trade:
    return m.Trade(trade_id=trade_id, order_id=order_id, symbol="AAPL-USD", side=Side.BUY,
                   price=Decimal("200"), quantity=Decimal(qty), client_order_id="c1")


def test_every_log_line_about_a_dropped_or_held_fill_names_the_order(core: OmsCore) -> None:
    order = place(core)
    ack(core, order, "X1")
    core.on_reply(fill("X1", "1", "2", trade_id="t1"))
    sibling_a, sibling_b = place(core, cid="twin"), place(core, cid="twin")
    with capture_logs() as logs:
        core.on_reply(fill("X1", "1", "2", trade_id="t1"))  # a replay: 'duplicate fill ignored'
        core.on_reply(fill("X1", "2", "1", trade_id="t1"))  # other numbers: a warning
        core.on_reply(fill("X1", "0", "3", trade_id="t2"))  # malformed
        core.on_reply(fill("X2", "1", "2", trade_id="t3", cid="twin"))  # fits both twins: held
        apply_snapshot(core, core.seq, m.AllOrdersResponse(orders=[], twaps=[]), [_trade("X1", "t1", "1")])
    about_orders = [e for e in logs if {"order_id", "client_order_id", "trade_id"} & set(e)]
    assert {e["event"] for e in about_orders} >= {
        "duplicate fill ignored", "duplicate trade_id with other numbers dropped",
        "malformed fill dropped: quantity and price must be positive", "fill held until its order is known"}
    for entry in about_orders:
        missing = [key for key in IDENTITY if key not in entry]
        assert not missing, f"{entry['event']!r} lacks {missing}: {entry}"
    assert sibling_a.order_id is None and sibling_b.order_id is None
