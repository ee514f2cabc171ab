"""Every behaviour of the simulator that QFEX's documentation leaves open, in one place.

Each constant names a choice listed in README.md, "Simulator choices" (same numbering, ``C<n>``).
The engine, the validation and the server import these instead of repeating literals, so
changing a choice here changes it everywhere. Numbers that a test or a benchmark may want to vary live in
``qfex_oms.sim.settings.SimSettings`` instead; their defaults are documented there and in README.md.
"""

from __future__ import annotations

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
# C10: stop orders (TAKE_PROFIT/STOP_LOSS/STOP_MARKET) are not simulated.
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
