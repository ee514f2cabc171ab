"""The wire forms the simulator's account replies take through the one codec (qfex-api.md §3.11, §4.6)."""

from __future__ import annotations

from decimal import Decimal as D

import orjson

from qfex_oms.protocol import decode_reply, decode_request, encode
from qfex_oms.protocol import messages as m

ROW = m.LeverageLevel(symbol="AAPL-USD", leverage="10", id="x", initial_margin=D("0.1"),
                      maintenance_margin=D("0.0666666667"), max_notional=D("1000000000.0"))


def test_leverage_replies_are_bare_arrays_of_leverage_public_rows():
    for kind in (m.UserLeverageResponse, m.AvailableLeverageLevelsResponse):
        raw = encode(kind((ROW,)))
        assert orjson.loads(raw) == {kind.KEY: [{"symbol": "AAPL-USD", "leverage": "10", "id": "x",
                                                 "initial_margin": 0.1, "maintenance_margin": 0.0666666667,
                                                 "max_notional": 1000000000.0}]}
        assert decode_reply(raw) == kind((ROW,))


def test_position_report_carries_the_margin_rates_and_reads_back_as_a_position_response():
    report = m.PositionReport(symbol="AAPL-USD", position=D("-2.0"), leverage=D("20.0"),
                              initial_margin=D("0.05"), maintenance_margin=D("0.033333333333"))
    raw = encode(report)
    assert b'"initial_margin":0.05' in raw and b'"position":-2.0' in raw
    decoded = decode_reply(raw)
    assert type(decoded) is m.PositionResponse
    assert (decoded.position, decoded.leverage) == (D("-2.0"), D("20.0"))


def test_new_requests_decode_from_the_documented_frames():
    assert decode_request('{"type":"set_user_leverage","params":{"symbol":"AAPL-USD","leverage":10}}') \
        == m.SetUserLeverage("AAPL-USD", D(10))
    assert decode_request('{"type":"close_position","params":{"symbol":"AAPL-USD",'
                          '"client_order_id":"my-close-order-1"}}') \
        == m.ClosePosition("AAPL-USD", "my-close-order-1")
    assert decode_request('{"type":"get_user_leverage","params":{"limit":10,"offset":0}}') \
        == m.GetUserLeverage(10, 0)
    assert decode_request('{"type":"get_available_leverage_levels","params":{}}') \
        == m.GetAvailableLeverageLevels()
