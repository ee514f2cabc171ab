"""The sans-IO half: signing headers, reading them back, and the shapes' wire rules (qfex-api.md §15)."""

from __future__ import annotations

from decimal import Decimal as D

import orjson
import pytest

from qfex_oms.protocol import rest as r
from qfex_oms.protocol.errors import ProtocolError

CREDS = r.RestCredentials("qfex_pub_xxxxx", "qfex_secret_yyyyyy", "acct-1")
ROW = {"clobPairId": "4", "symbol": "GOOG-USD", "underlier_price": "154.16", "price_change_24h": "-2.1",
       "tick_size": "0.05", "lot_size": "0.001", "min_price": "112", "max_price": "209",
       "min_quantity": "0.001", "max_quantity": "100000000", "default_max_leverage": 20,
       "base_asset": "GOOG", "quote_asset": "USD", "margin_asset": "USD",
       "order_time_in_force": ["GTC", "IOC", "FOK"], "order_types": ["LIMIT", "MARKET", "ALO"],
       "market_hours": {"tz": "America/New_York", "monday": {"open": "04:00:00", "close": "20:00:00"}},
       "status": "ACTIVE", "product_category": "EQUITY"}


def test_headers_sign_nonce_colon_timestamp_with_the_documented_vector() -> None:
    headers = r.auth_headers(CREDS, unix_ts=1760545414, nonce="c0ffee")
    assert headers == {
        "x-qfex-public-key": "qfex_pub_xxxxx", "x-qfex-nonce": "c0ffee", "x-qfex-timestamp": "1760545414",
        "x-qfex-hmac-signature": "222adbb0993646affe345a15f3c5b45e7123d4ff2c38dc4245c81ffb24c66d64",
        "x-qfex-requested-account-id": "acct-1"}
    assert "qfex_secret_yyyyyy" not in repr(CREDS)
    auth = r.auth_from_headers(headers)
    assert not isinstance(auth, str) and auth.hmac is not None
    assert (auth.hmac.nonce, auth.hmac.unix_ts, auth.account_id) == ("c0ffee", 1760545414, "acct-1")


@pytest.mark.parametrize("stamp", ["", "12.5", "-1", "1e9", "\uff19\uff19"])
def test_a_malformed_timestamp_header_is_named(stamp: str) -> None:
    headers = {**r.auth_headers(CREDS), "x-qfex-timestamp": stamp}
    assert isinstance(r.auth_from_headers(headers), str)


def test_refdata_reads_strings_writes_strings_and_drops_a_bad_row_alone() -> None:
    body = orjson.dumps({"type": "refdata", "data": [ROW, {**ROW, "symbol": "BAD-USD", "tick_size": True}]})
    answer = r.decode(body, r.RefdataResponse)
    assert [row.symbol for row in answer.data] == ["GOOG-USD"]
    assert answer.rejected and "BAD-USD" in answer.rejected[0]
    assert answer.data[0].tick_size == D("0.05") and answer.data[0].clob_pair_id == "4"
    assert orjson.loads(r.encode_body(answer))["data"] == [ROW]
    assert r.decode(b'{"type": "refdata", "data": null}', r.RefdataResponse).data == ()


def test_null_arrays_are_empty_and_unknown_keys_are_ignored() -> None:
    page = r.decode(b'{"$schema": "x", "count": 0, "data": null}', r.HistoricOrdersPage)
    assert page == r.HistoricOrdersPage(0, ())
    with pytest.raises(ProtocolError, match="HistoricOrdersPage"):
        r.decode(b'{"count": "many"}', r.HistoricOrdersPage)


def test_queries_round_trip_through_their_parameters() -> None:
    query = r.TradesQuery(symbol="AAPL-USD", orderdirection="BUY", limit=10, offset=5)
    assert r.TradesQuery.from_params(dict(query.request().query)) == query
    with pytest.raises(r.QueryError) as caught:
        r.HistoricOrdersQuery.from_params({"limit": "1001"})
    assert caught.value.location == "query.limit"
    with pytest.raises(r.QueryError):
        r.HistoricOrdersQuery.from_params({"start": "yesterday"})


def test_problems_are_read_defensively() -> None:
    full = r.parse_problem(400, "Bad Request", orjson.dumps({
        "title": "Bad Request", "status": 400, "detail": "Property foo is required but is missing.",
        "errors": [{"location": "body.items[3].tags", "message": "m", "value": None}]}))
    assert full.detail.startswith("Property foo") and full.errors[0].location == "body.items[3].tags"
    odd = r.parse_problem(418, "", b'{"title": 7, "detail": ["x"]}')
    assert (odd.title, odd.detail) == ("I'm a Teapot", "")
    assert r.parse_problem(599, "", b"x" * 5000).detail.endswith("...")
