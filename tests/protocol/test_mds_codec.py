"""MDS codec: the exact examples of qfex-api.md §13 decode to what they say, and what the simulator
writes reads back the same. Malformed frames raise ProtocolError with the raw text; unknown fields
and unknown types never do."""

from __future__ import annotations

from decimal import Decimal as D

import orjson
import pytest

from qfex_oms.protocol import ProtocolError, mds

LEVEL2 = b"""{"type": "level2", "symbol": "AAPL-USD",
 "bid": [["10101.10", "0.45054140"], ["10101.00", "0.55054140"]],
 "ask": [["10102.55", "0.57753524"], ["10102.65", "0.57753524"]],
 "sequence": 30272539, "time": "2025-09-04T09:26:39.545268322Z"}"""
BBO = (b'{"type":"bbo","symbol":"AAPL-USD","bid":[["10101.10","0.45054140"]],"ask":[["10102.55",'
       b'"0.57753524"]],"sequence":30272539,"time":"2025-09-04T09:26:39.545268322Z"}')
TRADE = (b'{"type":"trade","trade_id":"ab59768f-f81e-4535-80c0-7b35f6709704","time":"2025-08-20T09:26:36.'
         b'861195808Z","symbol":"PLTR-USD","size":"0.100000","price":"157.025000","side":"SELL",'
         b'"execution_type":"T"}')
CANDLE = (b'{"type":"candle","symbol":"PLTR-USD","start":"2025-08-20T09:27:00Z","resolution":"1MIN",'
          b'"low":"155.700000","high":"157.225000","open":"156.475000","close":"156.900000",'
          b'"usdVolume":16700,"trades":16}')
MARK = b'{"type":"mark_price","symbol":"AAPL-USD","price":"437.45","time":"2025-05-08T20:52:48.000Z"}'
FUNDING = (b'{"type":"funding","sequence":50,"time":"2014-11-07T08:19:27.028459Z","symbol":"AAPL-USD",'
           b'"time_remaining":30,"funding_rate":"0.021"}')
UNDERLIER = (b'{"type":"underlier","symbol":"AAPL-USD","price":"437.45","time":"2025-05-08T20:52:48.000Z",'
             b'"source":"external"}')
OI = (b'{"type":"open_interest","symbol":"AAPL-USD","open_interest":"1000000",'
      b'"time":"2025-05-08T20:52:48.000Z"}')
MINMAX = (b'{"type":"minmax_price","symbol":"AAPL-USD","min_price":"400.00","max_price":"450.00",'
          b'"time":"2025-05-08T20:52:48.000Z"}')
STATS = b"""{"type": "market_stats", "sequence": 30272540, "time": "2025-09-04T09:26:40Z", "symbol": "*",
 "bbos": [{"time": "2025-09-04T09:26:39.545268322Z", "symbol": "AAPL-USD",
           "bid": [["10101.1", "0.4505414"]], "ask": [["10102.55", "0.57753524"]]}],
 "mark_prices": [{"time": "2025-09-04T09:26:39.545268322Z", "symbol": "AAPL-USD", "price": "10102"}],
 "open_interests": [{"time": "2025-09-04T09:26:39.545268322Z", "symbol": "AAPL-USD",
                     "open_interest": "12.5"}],
 "daily_volumes": [{"symbol": "AAPL-USD", "volume": "12.5"}]}"""
T_BOOK = mds.parse_time("2025-09-04T09:26:39.545268322Z")


def one(raw: bytes) -> mds.MdsMessage:
    (message,) = mds.decode(raw)
    return message


def test_level2_example() -> None:
    assert one(LEVEL2) == mds.BookImage(
        symbol="AAPL-USD", bid=((D("10101.10"), D("0.45054140")), (D("10101.00"), D("0.55054140"))),
        ask=((D("10102.55"), D("0.57753524")), (D("10102.65"), D("0.57753524"))),
        sequence=30272539, time_ns=T_BOOK)
    assert T_BOOK % 1_000_000_000 == 545268322  # nanoseconds kept exactly


def test_bbo_example_and_empty_sides() -> None:
    bbo = one(BBO)
    assert isinstance(bbo, mds.Bbo) and bbo.bid == ((D("10101.10"), D("0.45054140")),)
    assert one(b'{"type":"bbo","symbol":"X","ask":[]}') == mds.Bbo(symbol="X")
    assert one(b'{"type":"bbo","symbol":"X","bid":null}') == mds.Bbo(symbol="X")


def test_trade_example_and_lower_case_side() -> None:
    trade = one(TRADE)
    assert trade == mds.PublicTrade(symbol="PLTR-USD", price=D("157.025000"), size=D("0.100000"), side="SELL",
                                    trade_id="ab59768f-f81e-4535-80c0-7b35f6709704", execution_type="T",
                                    time_ns=mds.parse_time("2025-08-20T09:26:36.861195808Z"))
    old = one(b'{"type":"trade","symbol":"X","price":"1","size":"2","side":"sell","sequence":50}')
    assert isinstance(old, mds.PublicTrade) and old.side == "SELL" and old.sequence == 50


def test_candle_numbers_or_strings() -> None:
    candle = one(CANDLE)
    assert isinstance(candle, mds.Candle)
    assert (candle.usd_volume, candle.trades, candle.close) == (D(16700), 16, D("156.900000"))
    quoted = one(CANDLE.replace(b"16700", b'"16700.000000"').replace(b'"trades":16', b'"trades":"16"'))
    assert isinstance(quoted, mds.Candle) and (quoted.usd_volume, quoted.trades) == (D(16700), 16)


def test_last_value_examples() -> None:
    t = mds.parse_time("2025-05-08T20:52:48.000Z")
    assert one(MARK) == mds.MarkPrice("AAPL-USD", D("437.45"), t)
    assert one(FUNDING) == mds.Funding("AAPL-USD", D("0.021"), 30, 50,
                                       mds.parse_time("2014-11-07T08:19:27.028459Z"))
    assert one(FUNDING.replace(b'"time_remaining":30', b'"time_remaining":"30"')) == one(FUNDING)
    assert one(UNDERLIER) == mds.Underlier("AAPL-USD", D("437.45"), "external", None, t)
    assert one(OI) == mds.OpenInterest("AAPL-USD", D("1000000"), t)
    assert one(MINMAX) == mds.MinMaxPrice("AAPL-USD", D("400.00"), D("450.00"), t)


def test_market_stats_example() -> None:
    stats = one(STATS)
    assert isinstance(stats, mds.MarketStats) and stats.symbol == "*" and stats.sequence == 30272540
    assert stats.bbos[0].bid == ((D("10101.1"), D("0.4505414")),)
    assert stats.mark_prices == (mds.MarkPrice("AAPL-USD", D("10102"), T_BOOK),)
    assert stats.open_interests[0].open_interest == D("12.5")
    assert stats.daily_volumes == (mds.StatsVolume("AAPL-USD", D("12.5")),)


def test_three_frame_forms() -> None:
    flat = one(MARK)
    assert mds.decode(b"[" + MARK + b"," + BBO + b"]") == [flat, one(BBO)]
    envelope = {"type": "mark_price", "connection_id": "c", "message_id": 7,
                "contents": [{k: v for k, v in orjson.loads(MARK).items() if k != "type"}]}
    assert mds.decode(orjson.dumps(envelope)) == [flat]


def test_unknown_fields_types_and_err_are_tolerated() -> None:
    extra = orjson.loads(LEVEL2) | {"sig_figs": 1, "new_field": {"x": 1}}
    assert isinstance(one(orjson.dumps(extra)), mds.BookImage)
    unknown = one(b'{"type":"liquidations","symbol":"X"}')
    assert unknown == mds.UnknownMessage("liquidations", {"type": "liquidations", "symbol": "X"})
    err = one(b'{"err":{"error_code":"INVALID_SYMBOL","message":"no","incoming_message":null}}')
    assert err == mds.MdsError("INVALID_SYMBOL", "no", None)
    assert isinstance(one(b'{"type":"refdata","data":[]}'), mds.RefData)


@pytest.mark.parametrize("raw", [
    b"not json",
    b'{"type":"level2","bid":[]}',                                    # no symbol
    b'{"type":"level2","symbol":"X","bid":[["1"]]}',                  # not a pair
    b'{"type":"level2","symbol":"X","bid":[["1","2","3"]]}',
    b'{"type":"level2","symbol":"X","bid":[["abc","2"]]}',
    b'{"type":"level2","symbol":"X","bid":[[true,"2"]]}',
    b'{"type":"level2","symbol":"X","bid":"1"}',
    b'{"type":"level2","symbol":"X","sequence":"1.5"}',
    b'{"type":"level2","symbol":"X","time":"yesterday"}',
    b'{"type":"mark_price","symbol":"X","price":"1e999999"}',
    b'{"type":"mark_price","symbol":"X"}',
    b'[{"type":"mark_price","symbol":"X","price":"1"}, 5]',             # one bad item spoils the frame
    b'{"symbol":"X"}',
    b"42",
])
def test_malformed_frames_raise_protocol_error_with_raw(raw: bytes) -> None:
    with pytest.raises(ProtocolError) as caught:
        mds.decode(raw)
    assert caught.value.raw == raw.decode()


@pytest.mark.parametrize("raw", [LEVEL2, BBO, TRADE, CANDLE, MARK, FUNDING, UNDERLIER, OI, MINMAX, STATS])
def test_encode_is_flat_numbers_as_strings_and_reads_back(raw: bytes) -> None:
    message = one(raw)
    written = mds.encode(message)
    assert one(written) == message
    obj = orjson.loads(written)
    assert obj["type"] == orjson.loads(raw)["type"] and "contents" not in obj
    for key in ("price", "size", "funding_rate", "open_interest", "min_price", "max_price"):
        if key in obj:
            assert isinstance(obj[key], str)
    for side in ("bid", "ask"):
        assert all(isinstance(x, str) for level in obj.get(side, []) for x in level)


def test_subscribe_frame_is_flat() -> None:
    request = mds.Subscribe(channels=("level2",), symbols=("AAPL-USD", "US500-USD"))
    assert orjson.loads(mds.encode_subscribe(request)) == {
        "type": "subscribe", "channels": ["level2"], "symbols": ["AAPL-USD", "US500-USD"]}
    assert orjson.loads(mds.encode_subscribe(mds.Subscribe(("level2",), ("AAPL-USD",), sig_figs=(1,)))) == {
        "type": "subscribe", "channels": ["level2"], "symbols": ["AAPL-USD"], "sig_figs": [1]}
    candle = mds.Subscribe(("candle",), ("AAPL-USD",), intervals=("1MIN",))
    assert mds.decode_subscribe(mds.encode_subscribe(candle)) == candle
    unsub = b'{"type": "unsubscribe", "channels": ["bbo"], "symbols": ["SP500-USD"]}'
    assert mds.decode_subscribe(unsub) == mds.Subscribe(("bbo",), ("SP500-USD",), unsubscribe=True)
    for bad in (b'{"type":"subscribe","channels":"bbo","symbols":["X"]}', b'{"type":"auth"}', b"[]"):
        with pytest.raises(ProtocolError):
            mds.decode_subscribe(bad)


def test_time_round_trip() -> None:
    assert mds.format_time(T_BOOK) == "2025-09-04T09:26:39.545268322Z"
    assert mds.parse_time("2025-09-04T11:26:39.5+02:00") == mds.parse_time("2025-09-04T09:26:39.500Z")


@pytest.mark.parametrize(("raw", "kind"), [(LEVEL2, mds.BookImage), (BBO, mds.Bbo)])
def test_the_fast_book_path_agrees_with_the_converter(raw: bytes, kind: type) -> None:
    payload = orjson.loads(raw)
    payload["sig_figs"] = "1"
    assert one(orjson.dumps(payload)) == mds.converter.structure(payload, kind)


def test_the_number_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mds, "TEXT_MEMO_LIMIT", 3)
    for n in range(10):
        image = one(orjson.dumps({"type": "level2", "symbol": "X", "bid": [[f"{n}.5", "1"]]}))
        assert isinstance(image, mds.BookImage) and image.bid == ((D(f"{n}.5"), D(1)),)
    assert len(mds._TEXT_MEMO) <= 3
