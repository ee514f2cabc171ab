"""Client ids on the wire through the gateway: ``<strategy>:<the client's own id>``.

The gateway shares one QFEX account among several clients, and QFEX's ``client_order_id`` is not
unique: a cancel by client id "cancels all orders for that symbol that share this client order id"
(qfex-api.md §3.2). So every client id a client sends (``client_order_id``, ``client_twap_id``) goes
out with its strategy's prefix and comes back with it stripped; a cancel by client id is sent only
inside the sender's namespace, so it can never match another client's order.

QFEX documents no length or charset limit for client ids (§3.1: NOT DOCUMENTED); this package keeps
them to ``core.args`` (1-64 characters of letters, digits and ``_ . : -``). A strategy name is 1-16
letters, digits, ``_`` or ``-`` (no ``:``), so the prefix is at most 17 characters, splits at the first
``:``, and leaves a client 47 characters: QFEX's own CLI generates 32 (§3.1), as does this package.
The rules are the in-process strategies' (``core.model``): one spelling, so an order placed through
the gateway and one placed by ``oms.for_strategy`` are attributed alike, and ``twap`` is reserved
for QFEX's TWAP children (``twap:<twap_id>:<n>``) there as here.
"""

from __future__ import annotations

import uuid

from qfex_oms.core.args import MAX_CLIENT_ID_LENGTH
from qfex_oms.core.model import MAX_STRATEGY_LENGTH, valid_strategy
from qfex_oms.core.model import STRATEGY_SEPARATOR as SEPARATOR

__all__ = ["MAX_CLIENT_SUFFIX", "MAX_STRATEGY_LENGTH", "SEPARATOR", "prefix_of", "split", "valid_strategy",
           "wrap"]

# The longest id a client may give: the prefix must still fit in QFEX's (our) client id limit.
MAX_CLIENT_SUFFIX = MAX_CLIENT_ID_LENGTH - MAX_STRATEGY_LENGTH - len(SEPARATOR)


def prefix_of(strategy: str) -> str:
    return f"{strategy}{SEPARATOR}"


def wrap(strategy: str, client_id: str | None) -> str:
    """The id sent to QFEX for a client's id; a missing/empty one is generated ("If empty, one is
    generated", §3.1), so every order of a client carries its namespace."""
    return f"{strategy}{SEPARATOR}{client_id or uuid.uuid4().hex}"


def split(wire_id: str | None) -> tuple[str | None, str]:
    """``(strategy, the client's id)`` of an id seen on the wire; ``(None, id)`` outside every
    namespace (orders placed around the gateway, TWAP children QFEX names itself)."""
    if not wire_id:
        return None, wire_id or ""
    strategy, sep, rest = wire_id.partition(SEPARATOR)
    if not sep or not valid_strategy(strategy):
        return None, wire_id
    return strategy, rest
