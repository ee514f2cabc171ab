"""Every behaviour of the simulator that QFEX's documentation leaves open, in one place.

Each constant names a choice listed in README.md, "Simulator choices" (same numbering, ``C<n>``).
The engine, the validation and the server import these instead of repeating literals, so
changing a choice here changes it everywhere. Numbers that a test or a benchmark may want to vary live in
``qfex_oms.sim.settings.SimSettings`` instead; their defaults are documented there and in README.md.
"""

from __future__ import annotations

from enum import Enum

from qfex_oms.protocol import ErrorCode, OrderStatus

# C1: an unknown or missing public key is refused at the HTTP upgrade (no websocket is opened).
HANDSHAKE_REJECT_STATUS = 401

# C2: a failed `auth` answers {"authenticated": false} and keeps the connection open, so the
# client can retry with a fresh nonce before the deadline.
# C3: close code/reason when the 60 s auth deadline passes (QFEX documents neither).
AUTH_TIMEOUT_CLOSE_CODE = 1008
AUTH_TIMEOUT_CLOSE_REASON = "authentication timeout"
# C4: maximum nonce length (the docs say "max 100 characters", hex encoded).
MAX_NONCE_LENGTH = 100

# C5: any request other than `auth` before authentication gets this error code.
NOT_AUTHENTICATED_CODE = ErrorCode.PERMISSION_DENIED
NOT_AUTHENTICATED_MESSAGE = "authenticate first"

# C6: the name of the retry-after hint carried inside `err` for RateLimited (seconds, float).
RETRY_AFTER_FIELD = "retry_after_secs"

# C7: an ALO order that would cross is acknowledged and then cancelled with this status.
ALO_WOULD_CROSS_STATUS = OrderStatus.CANCELLED
# C8: an IOC/MARKET order that fills nothing (and a FOK that cannot fill fully) ends with this.
UNFILLED_IOC_STATUS = OrderStatus.CANCELLED
# C9: LIMIT/ALO without a price is refused with this status (no dedicated status exists).
MISSING_PRICE_STATUS = OrderStatus.REJECTED
# C10: an unknown order type (and STOP_MARKET, which a triggered stop trades as, C40) is refused with
# this; TAKE_PROFIT / STOP_LOSS stage stop orders (C39-C47).
UNSUPPORTED_ORDER_TYPE_STATUS = OrderStatus.INVALID_ORDER_TYPE

# C11: the price reported for a MARKET order (QFEX's CLI sends 0).
MARKET_ORDER_PRICE_TEXT = "0"

# C12: TWAP status strings (QFEX shows only the placeholder "ENGINE_STATUS").
TWAP_ACTIVE = "ACTIVE"
TWAP_COMPLETED = "COMPLETED"
TWAP_CANCELLED = "CANCELLED"
# C13: client_order_id of TWAP child orders: f"twap:{twap_id}:{n}" with n counting from 1.
TWAP_CHILD_CLIENT_ID = "twap:{twap_id}:{n}"
# C14: the first TWAP child is placed immediately; the next ones one interval apart.
TWAP_FIRST_CHILD_IMMEDIATE = True

# C15: `get_order` answers an `order_response` (as QFEX's CLI expects) and also finds closed
# orders, with their final status; unknown ids answer NO_SUCH_ORDER.
GET_ORDER_INCLUDES_CLOSED = True
# C16: page size of get_user_orders / get_user_trades when `limit` is absent (docs: 1000).
DEFAULT_PAGE_LIMIT = 1000

# C17: held frame of the "reorder" fault is delivered anyway after this long without a next frame.
REORDER_FLUSH_SECS = 0.5
# C18: close code used for a fault-injected disconnect and for Venue.drop_connections().
FAULT_DISCONNECT_CODE = 1011

# C19: a client close with this code is "expected": cancel-on-disconnect does not fire for it.
GRACEFUL_CLOSE_CODE = 1000

# C20: fees are not modelled; every fill carries this fee.
FEE = "0"
# C21: execution_type of every fill_response (only "NEW" appears in QFEX's example).
EXECUTION_TYPE = "NEW"

# C24: an IOC/FOK/MARKET order that trades on arrival gets ONE FILLED order_response, at the end of
# its sweep (with the last fill's trade_id and the final quantity_remaining), not one per fill; its
# fill_responses still come one per trade, as they happen. QFEX: "fill what's available -> return
# FILLED with quantity_remaining > 0 if partial". A GTC order and every resting order still get one
# FILLED per fill. False gives one per fill for IOC too (a client then cannot tell the last one).
IOC_SINGLE_FILLED_REPORT = True

# ---------------------------------------------------------------- account: positions, balances (issue 13)

# C25: a position's quantity is signed, negative = short. QFEX does not say so (qfex-api.md §4.6,
# §15.3); its definitions page sums q_i x (P_mark - P_entry), which only works with a signed q.
POSITION_SHORT_IS_NEGATIVE = True

# C26: the mark price of a symbol is its last trade price, until a test or the CLI pins one with
# Venue.set_mark(symbol, price); a pinned mark stays until set_mark(symbol, None) releases it.
# (QFEX's real mark is a median of oracle, EMA and book prices, §13.5.)

# C27: the margin check. An order needs (the part of its quantity that would increase the position)
# x price / leverage of available balance, price being its limit price, or for a MARKET order the
# best opposite price (else the mark). Refused orders get FAILED_MARGIN_CHECK and no ACK. A modify is
# checked the same way, with the margin the order already holds counted as available. Every resting
# order holds remaining x price / leverage of order margin (no netting against the position).
# Available balance = deposit + realised + unrealised + net funding - position margin - order margin;
# position margin = |q| x mark / leverage. Nothing is ever liquidated.
INSUFFICIENT_MARGIN_STATUS = OrderStatus.FAILED_MARGIN_CHECK
# maintenance margin rate = initial rate (1 / leverage) x this; QFEX's example: 0.05 -> 0.0333...
MAINTENANCE_MARGIN_FRACTION_TEXT = "0.6666666666666666666666666667"
# Money, prices and quantities the ledger reports are rounded to this many decimal places (they stay
# exact as floats for a 10-digit deposit); margin rates to ACCOUNT_RATE_PLACES.
ACCOUNT_AMOUNT_PLACES = 4
ACCOUNT_RATE_PLACES = 12

# C28: funding. Venue.apply_funding(symbol, rate), or every SimSettings.funding_interval seconds with
# SimSettings.funding_rate (off by default): each holder's net_funding changes by
# -quantity x mark x rate (a positive rate: longs pay, shorts receive). No fees.

# C29: close_position places a LIMIT IOC on the opposite side, sized to the whole position (capped at
# the symbol's max_quantity), priced at mark x (1 - collar) for a sell / (1 + collar) for a buy,
# rounded to the tick away from the mark and kept inside [min_price, max_price]. It answers like
# add_order (ACK, then fills and FILLED, or CANCELLED if nothing crossed).
CLOSE_POSITION_COLLAR_TEXT = "0.05"
# Closing a flat symbol answers one order_response with this status, quantity 0, a fresh order_id
# and the request's client_order_id (QFEX's CLI waits for an order_response); nothing is recorded.
# An unknown symbol answers BAD_SYMBOL the same way.
CLOSE_FLAT_STATUS = OrderStatus.REJECTED

# C30: leverage. Every account starts at the symbol's default_max_leverage (QFEX's refdata field;
# QFEX's example position shows 20). set_user_leverage accepts only a listed level and answers `ack`;
# anything else, or an unknown symbol, answers err InvalidParameter. A change is not margin-checked.
# user_leverage_response / available_leverage_levels_response are bare arrays of LeveragePublic
# rows {id, symbol, initial_margin, maintenance_margin, max_notional, leverage (a string)}: field names
# from QFEX's AsyncAPI (api-evangelist/qfex asyncapi/qfex-trade-asyncapi.yml @7b57e11,
# components.schemas.LeveragePublic; QFEX's legacy proto port.proto has the same message with
# max_position). One row per symbol (current leverage), resp. one per (symbol, allowed level);
# max_notional = max_quantity x max_price, informational only; limit/offset page both.

# C31: positions and balances are pushed on every change (not pulsed): after each request or event
# that changed them, one position_response per changed symbol and one balance_response, to every
# connection of the account subscribed to `positions` / `balances`. Subscribing answers
# {"subscribed": ...} then a snapshot: a position_response for every listed symbol (flat ones too,
# as in QFEX's example), resp. one balance_response.

# C-FAULTS: injected faults (drop, duplicate, reorder, latency, disconnect_after's frame count) act on
# the order flow only; position and balance pushes pass untouched, so a test that counts frames of its
# orders counts the same whether or not the account channels are subscribed.
FAULT_EXEMPT_KEYS = frozenset({"position_response", "balance_response"})

# ---------------------------------------------------------------- REST API (issue 15, qfex-api.md §8, §15)

# C32: the REST side is served by the same process on its own port (Venue.rest_url), with the same
# accounts. Private endpoints check the four HMAC headers with the websocket's rules (same clock skew,
# same per-account nonce store: a nonce used on either side cannot be used again on the other).
# Every refused authentication (missing or malformed header, unknown key, bad signature, reused
# nonce, stale timestamp, an x-qfex-requested-account-id other than the key's own user_id: the
# simulator has no subaccounts) answers this status with a problem+json body; the reason is logged,
# and is the problem's detail. REST requests are not rate limited (QFEX: "REST limits: NOT DOCUMENTED").
REST_AUTH_FAILED_STATUS = 401
REST_AUTH_FAILED_TITLE = "Unauthorized"
# Largest request body read (POST /user/leverage needs a few dozen bytes); a larger one answers 413.
REST_MAX_BODY = 64 * 1024

# C33: GET /refdata: `type` is "refdata" (the websocket example's), clobPairId is the symbol's
# position in SimSettings.symbols (from 1), underlier_price is the mark (C26) or "0" before any
# trade, price_change_24h is "0", base_asset is the symbol before "-", quote and margin asset "USD".
# An unknown ?ticker= answers 200 with an empty data array.
REFDATA_TYPE = "refdata"
REFDATA_QUOTE_ASSET = "USD"
# market_hours: QFEX shows {"tz": ..., "monday": {"open", "close"}, ...}; the simulator is always open.
REFDATA_MARKET_HOURS: dict[str, object] = {
    "tz": "UTC",
    **{day: {"open": "00:00:00", "close": "23:59:59"}
       for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")},
}

# C34: GET /user/positions lists every symbol, flat ones too (as the websocket snapshot does, C31).

# C35: GET /user/historic-orders lists every order of the account that is no longer open: filled,
# cancelled and rejected ones alike, TWAP children too, newest first (by status_ts, the order's last
# update). terminal_status is the final OrderStatus name; passive_qty is the quantity filled as maker;
# avg_price is null before any fill; start/end bound status_ts, inclusive.
# execution_state (undocumented) says how much filled:
EXECUTION_FILLED = "FILLED"
EXECUTION_PARTIAL = "PARTIALLY_FILLED"
EXECUTION_NONE = "UNFILLED"

# C36: GET /user/trade lists the account's side of every fill, newest first; order_timestamp is the
# fill's time in Unix seconds (the websocket's unit), margin_used = price x quantity / the account's
# current leverage on the symbol, fee 0 (C20), realised_pnl_change what the fill realised. start/end
# (or start_time/end_time) bound the fill time, inclusive; ordertype / orderdirection match the order
# type and side names exactly.

# C37: POST /user/leverage takes {"symbol", "leverage" (an integer)}, the websocket set_user_leverage
# params (QFEX documents the path only), with C30's rules; it answers 200 {"symbol", "leverage"},
# or 400 problem+json naming the refusal. Subscribed connections get the position and balance push.

# C38: an unknown path answers 404, a known path with another method 405, a malformed query or body
# 400, each as problem+json with RFC 9457's `errors[].location` (e.g. "query.limit") where one applies.

# ---------------------------------------------------------------- stop orders (issue 14, qfex-api.md §14)


# C39: a stop is staged two ways. (1) add_order with order_type TAKE_PROFIT / STOP_LOSS: price is the
# trigger, side the direction of the market order it becomes, order_time_in_force not read; quantity
# must respect the lot size only (not min/max), the trigger the tick size only (not the price bands).
# It answers an order_response ACK under the stop's id (order_id = stop_order_id, type TAKE_PROFIT /
# STOP_LOSS, price = trigger) and a stop_order_response push. (2) take_profit / stop_loss on any other
# add_order: the parent is refused with INVALID_TAKEPROFIT_PRICE / INVALID_STOPLOSS_PRICE when the
# price is on the wrong side of the parent's limit price (a MARKET parent: the mark, else the best
# opposite price), else its stops are staged when the parent FILLS, sized to what it filled (each
# later fill grows them: an order_response MODIFIED and a push), in the opposite direction, carrying
# the parent's client_order_id (QFEX's StopOrder has no parent id: this is the only link a client
# can read). A size beyond the position the stop would close is clipped to it; nothing to close,
# nothing staged. Cancelling or filling the parent does not touch its stops; a modify_order of the
# parent's take_profit / stop_loss applies to stops staged afterwards only.
ATTACHED_STOPS_INHERIT_CLIENT_ID = True

# C40: trigger. A SELL stop (closing a long): STOP_LOSS fires when mark <= trigger, TAKE_PROFIT when
# mark >= trigger; a BUY stop mirrors it. The mark is C26's (pinned, else the last trade), checked
# after every command and every set_mark. A fired stop becomes a reduce-only MARKET IOC order with
# the stop's id as its order_id (QFEX: stops "convert to a Market Order"), the stop's client_order_id,
# and this type in its order_response / fill_response (the enum value QFEX lists in both for it);
# its quantity is clipped to the position it closes. It answers ACK (type STOP_MARKET), then fills
# and FILLED, or CANCELLED if the book is empty (C8, C24): ordinary fills and reports. A stop with
# nothing left to close when it fires ends with REJECTED under its id instead.
TRIGGERED_ORDER_TYPE_NAME = "STOP_MARKET"
TRIGGERED_NOTHING_TO_CLOSE_STATUS = OrderStatus.REJECTED

# C41: refusals of a standalone stop (no ACK, the order_response under a new stop id is the answer):
# a size beyond the position it would close (QFEX: "cannot exceed your current position ... could
# cause your order to be rejected") answers this status; a trigger already crossed by the mark
# answers INVALID_TAKEPROFIT_PRICE / INVALID_STOPLOSS_PRICE (the statuses QFEX has for a bad TP/SL
# price; QFEX does not say whether such a stop fires or is refused). Before any mark, no side check.
STOP_EXCEEDS_POSITION_STATUS = OrderStatus.REJECTED
# "... or other stop orders to be cancelled": after every command, a live stop larger than the
# position it would close is cancelled (order_response CANCELLED), so when one leg of a bracket fires
# and closes the position, the other leg is cancelled.
CANCEL_STOPS_EXCEEDING_POSITION = True

# C42: stop_order_response is pushed (channel stop_orders) when a stop is staged and when it is
# modified or grown, with its live price and quantity. It has no status field, so it is never pushed
# for an ending: a stop's end is its order_response (CANCELLED, REJECTED, or the ACK of the order it
# became, C40). update_time is an ISO 8601 UTC string, as QFEX's schema has it. No snapshot on
# subscribe.

# C43: cancel_stop_order answers `ack` (what QFEX's CLI waits for) to the requester, then the
# order_response CANCELLED under the stop's id (QFEX's docs page: quantity and quantity_remaining 0,
# price the trigger, time_in_force GTC). A stop that is unknown, another account's, triggered or
# already ended answers only an order_response NO_SUCH_ORDER echoing the id (C23): no ack, since
# QFEX's CLI reads an ack as success.
STOP_CANCEL_ANSWERS_ACK = True
STOP_NOT_FOUND_STATUS = OrderStatus.NO_SUCH_ORDER
STOP_TIME_IN_FORCE_NAME = "GTC"

# C44: modify_stop_order accepts both shapes QFEX's sources give (with or without side/order_type;
# price and quantity each optional). side/order_type, when present, must match the stop, and symbol
# must: otherwise (and for a stop not live) it answers CANNOT_MODIFY_NO_SUCH_ORDER under the id sent.
# The new quantity must respect lot size, min and max (QFEX's modify page), and the position (C41);
# the new trigger the tick size and C41's side check. Success: `ack`, then order_response MODIFIED
# and a stop_order_response push. A refusal: the order_response alone, the stop unchanged.
STOP_MODIFY_NOT_FOUND_STATUS = OrderStatus.CANNOT_MODIFY_NO_SUCH_ORDER


class StopListing(Enum):
    """C45: where get_user_orders / get_order's all_orders_response lists live stops (qfex-api.md
    §14.4: the 2025-10-30 changelog says "stop orders shown in the orders key"; a docs rendering has a
    ``stop_orders`` key). BOTH serves every reader; the two others let a client's tests run against
    each reading alone (``venue.stop_rules.listing``)."""

    ORDERS_KEY = "orders"  # order_response rows, type TAKE_PROFIT / STOP_LOSS, price = trigger
    STOP_ORDERS_KEY = "stop_orders"  # stop_order_response rows (StopOrder)
    BOTH = "both"


STOP_LISTING = StopListing.BOTH
# Stops are not paged by limit/offset (like TWAPs); get_order on a stop's id answers its
# order_response (C15), live or ended.

# C46: cancel_all_orders (and cancel-on-disconnect) cancels live stops too, after the orders and
# TWAPs, one order_response CANCELLED each (QFEX does not say; "cancels all open orders" plus the
# 2025-10-30 change making stops orders). ``venue.stop_rules.cancel_all_covers_stops = False`` gives
# the other reading.
CANCEL_ALL_COVERS_STOPS = True

# C47: the refuse-stop-cancel fault (``venue.faults.refuse_stop_cancel(stop_id)``): cancel_stop_order
# on that stop answers an order_response with this status and no ack, and cancel_all_orders leaves
# it live, until the fault is cleared.
REFUSED_STOP_CANCEL_STATUS = OrderStatus.REJECTED

# C48: GET /user/historic-twaps ("Return historic TWAPs (cancelled or completed)", params symbol and
# limit) is documented without a row shape. Served as a {data, count} page like historic-orders, each
# row the websocket twap_response's fields under the same names with ISO timestamps
# (``protocol.rest.HistoricTwap``), newest first; an active TWAP is not listed.

# C49-C54: the market-data (MDS) endpoint, sim/mds.py, where qfex-api.md §13 is silent:
# C49: a subscribe is not acknowledged (no ack frame is documented; QFEX's CLI expects none).
# C50: an unreadable or non-subscribe frame answers {"err": {"error_code": "INVALID_JSON_FORMAT", ...}}
#      (§13.7's generic error frame) and keeps the connection; an unknown channel or symbol is
#      subscribed silently and never publishes.
# C51: ``sequence`` counts per (channel, symbol) from 1, on level2, bbo, trade and funding.
# C52: a trade's ``side`` is the aggressor's, ``trade_id`` the aggressor's fill id, ``execution_type``
#      "T" (the only value in the docs).
# C53: a level2 or bbo subscribe is answered at once with the current image (QFEX's next pulse would).
# C54: ``funding`` carries the simulator's funding rate with ``time_remaining`` to the next
#      settlement (0 when settlements are off), on every pulse.
# C55: the background market (sim/market.py, ``--market``) is an ordinary account trading through
#      the matching engine over the trade websocket (auth, rate limits, STP and TIF apply to it);
#      each step it sends cancel_all_orders, then re-quotes a few levels each side of a seeded
#      random walk (drift and volatility per symbol).

# C56: JWT auth (qfex-api.md §2.3: {"auth": {"jwt": ...}}; the upgrade carries ?jwt= per QFEX's AsyncAPI
# or Authorization: Bearer as QFEX's CLI sends). QFEX's tokens come from verify.qfex.com and cannot
# be checked here: the simulator accepts HS256 tokens signed with the account's secret whose ``sub``
# is its public key (sim.auth.mint_jwt makes one), and refuses any other as a bad signature.
