"""The hand-written encoders of add_order and cancel_order must write what the generic path writes."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given
from hypothesis import strategies as st

from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, OrderType, Side, TimeInForce

_dec = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000000"), places=3)
_opt = st.none() | _dec


def _generic(request: m.Request) -> bytes:
    return orjson.dumps({"type": type(request).TYPE, "params": codec.request_params(request)})


@given(st.builds(m.AddOrder, symbol=st.sampled_from(["AAPL-USD", "US500-USD"]),
                 side=st.sampled_from(list(Side)), order_type=st.sampled_from(list(OrderType)),
                 order_time_in_force=st.sampled_from(list(TimeInForce)), quantity=_dec, price=_opt,
                 client_order_id=st.none() | st.text(max_size=12), take_profit=_opt, stop_loss=_opt,
                 reduce_only=st.none() | st.booleans()))
def test_add_order_fast_encoder_matches_the_generic_one(request: m.AddOrder) -> None:
    assert codec.encode(request) == _generic(request)


@given(st.builds(m.CancelOrder, order_id=st.text(min_size=1, max_size=40),
                 symbol=st.sampled_from(["AAPL-USD", "TSLA-USD"]),
                 cancel_order_id_type=st.sampled_from(list(CancelIdType))))
def test_cancel_order_fast_encoder_matches_the_generic_one(request: m.CancelOrder) -> None:
    assert codec.encode(request) == _generic(request)
