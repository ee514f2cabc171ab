"""TWAP placement, both cancel modes and child orders, in the pure core."""

from __future__ import annotations

from decimal import Decimal

from corekit import SYMBOL, fill, resp

from qfex_oms.core import CancelIntent, OmsCore, OrderState, TwapState
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, ErrorCode, OrderStatus, Side


def _twap(core: OmsCore, ctid: str = "rb-1"):
    twap = core.place_twap(SYMBOL, Side.BUY, Decimal(10), 5, 30, False, ctid)
    (frame,) = core.take_frames()
    assert isinstance(frame, m.AddTwap) and frame.client_twap_id == ctid
    return twap


def _twap_resp(twap_id: str, status: str, ctid: str = "rb-1", filled: str = "0") -> m.TwapResponse:
    return m.TwapResponse(twap_id=twap_id, symbol=SYMBOL, status=status, side=Side.BUY,
                          client_twap_id=ctid, total_quantity=Decimal(10),
                          filled_quantity=Decimal(filled), total_num_orders=5,
                          order_interval_secs=30, reduce_only=False)


def test_twap_accepted_then_cancelled_by_twap_id_through_an_order_response() -> None:
    core = OmsCore()
    twap = _twap(core)
    core.on_reply(_twap_resp("tw-1", "ACTIVE"))
    assert twap.twap_id == "tw-1" and twap.state is TwapState.ACTIVE
    request = core.cancel(CancelIntent(twap))
    assert core.take_frames() == [m.CancelOrder("tw-1", SYMBOL, CancelIdType.TWAP_ID)]
    assert twap.state is TwapState.PENDING_CANCEL
    core.on_reply(m.OrderResponse("tw-1", SYMBOL, OrderStatus.CANCELLED))
    assert twap.state is TwapState.CANCELLED and request.done and request.status == "CANCELLED"


def test_twap_cancel_by_client_twap_id_answered_by_a_twap_response() -> None:
    core = OmsCore()
    twap = _twap(core, "rb-2")
    core.on_reply(_twap_resp("tw-2", "ACTIVE", "rb-2"))
    request = core.cancel(CancelIntent(client_twap_id="rb-2", symbol=SYMBOL))
    # The strategy asked for the client_twap_id mode, so that is what goes on the wire.
    assert core.take_frames() == [m.CancelOrder("rb-2", SYMBOL, CancelIdType.CLIENT_TWAP_ID)]
    assert twap.state is TwapState.PENDING_CANCEL
    core.on_reply(_twap_resp("tw-2", "CANCELLED", "rb-2"))
    assert twap.state is TwapState.CANCELLED and request.done


def test_twap_cancel_by_client_id_for_an_unknown_twap_goes_by_client_twap_id() -> None:
    core = OmsCore()
    request = core.cancel(CancelIntent(client_twap_id="elsewhere", symbol=SYMBOL))
    assert core.take_frames() == [m.CancelOrder("elsewhere", SYMBOL, CancelIdType.CLIENT_TWAP_ID)]
    core.on_reply(m.OrderResponse("elsewhere", SYMBOL, OrderStatus.NO_SUCH_ORDER))
    assert request.done and request.status == "NO_SUCH_ORDER"


def test_twap_rejected_by_err_and_children_are_linked() -> None:
    core = OmsCore()
    bad = _twap(core, "bad")
    core.on_reply(m.Err(ErrorCode.INVALID_PARAMETER, "num_orders",
                        {"type": "add_twap", "params": {"symbol": SYMBOL, "client_twap_id": "bad"}}))
    assert bad.state is TwapState.REJECTED
    twap = _twap(core, "good")
    core.on_reply(_twap_resp("tw-3", "ACTIVE", "good"))
    core.on_reply(resp("child-1", "ACK", cid="twap:tw-3:1", qty="2", remaining="2"))
    core.on_reply(fill("child-1", "2", "0", trade_id="tc-1", cid="twap:tw-3:1"))
    (child,) = twap.children
    assert child.adopted and child.twap_id == "tw-3" and child.state is OrderState.FILLED
    assert twap.filled_quantity == Decimal(2)
    core.on_reply(_twap_resp("tw-3", "COMPLETED", "good", filled="10"))
    assert twap.state is TwapState.COMPLETED and twap.filled_quantity == Decimal(10)
