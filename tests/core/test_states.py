"""The transition tables, checked exhaustively."""

from __future__ import annotations

from corekit import ack, place, resp
from structlog.testing import capture_logs

from qfex_oms.core import OmsCore, OrderEvent, OrderState
from qfex_oms.core.events import Unmatched
from qfex_oms.core.states import ORDER_TRANSITIONS, TWAP_TRANSITIONS, TwapState, next_order_state

FILL_EVENTS = {OrderEvent.PARTIAL_FILL, OrderEvent.FULL_FILL}
# Answers to a request that may still arrive after the order ended; they leave the state unchanged.
LATE_ANSWERS = {OrderEvent.NO_SUCH_ORDER, OrderEvent.CANCEL_REFUSED, OrderEvent.CANCELLED,
                OrderEvent.EXPIRE, OrderEvent.REJECT}


def test_every_state_has_a_row() -> None:
    assert set(ORDER_TRANSITIONS) == set(OrderState)
    assert set(TWAP_TRANSITIONS) == set(TwapState)


def test_terminal_states_leave_only_for_a_late_fill() -> None:
    for state in (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED):
        for event in OrderEvent:
            target = next_order_state(state, event)
            if target is None or target is state:
                continue
            assert event in FILL_EVENTS and target.is_terminal, (state, event, target)


def test_terminal_states_accept_only_fills_and_late_answers() -> None:
    for state in (OrderState.FILLED, OrderState.CANCELLED, OrderState.REJECTED):
        for event in ORDER_TRANSITIONS[state]:
            assert event in FILL_EVENTS | LATE_ANSWERS, (state, event)


def test_nothing_but_a_rejection_reaches_rejected() -> None:
    for state, row in ORDER_TRANSITIONS.items():
        for event, target in row.items():
            if target is OrderState.REJECTED and state is not OrderState.REJECTED:
                assert event is OrderEvent.REJECT, (state, event)


def test_loss_never_produces_rejected() -> None:
    for state in OrderState:
        assert next_order_state(state, OrderEvent.LOST) in (None, OrderState.UNKNOWN)


def test_a_cancel_refusal_rolls_back_to_open() -> None:
    assert next_order_state(OrderState.PENDING_CANCEL, OrderEvent.CANCEL_REFUSED) is OrderState.OPEN
    assert next_order_state(OrderState.PENDING_CANCEL, OrderEvent.NO_SUCH_ORDER) is OrderState.OPEN


def test_an_illegal_event_is_logged_with_the_order_context_and_dropped() -> None:
    core = OmsCore()
    order = place(core, cid="ill")
    oid = ack(core, order)
    core.on_reply(resp(oid, "CANCELLED", cid="ill"))
    core.take_events()
    with capture_logs() as logs:
        core.on_reply(resp(oid, "MODIFIED", cid="ill"))
    assert order.state is OrderState.CANCELLED
    (entry,) = [e for e in logs if e["event"] == "illegal order transition dropped"]
    assert entry["order_id"] == oid and entry["client_order_id"] == "ill"
    assert entry["symbol"] == "AAPL-USD" and entry["order_event"] == "MODIFIED"
    assert any(isinstance(e, Unmatched) for e in core.take_events())
