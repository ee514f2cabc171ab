"""Who owns what: the strategy behind an order, TWAP or stop, and the rewriting of QFEX's frames.

Pure bookkeeping on the gateway's side of the manager's public API (no I/O). An id on the wire is
owned by the strategy whose namespace prefix its client id carries (``namespace``); an answer
without one (a cancel's ``NO_SUCH_ORDER`` echoes the order id with an empty client id; a TWAP's
children carry QFEX's own ids) is owned through the order, TWAP or stop id it names, learnt from
earlier frames or from the manager's book (which the journal rebuilds after a restart).

QFEX is silent on how it names a TWAP's children (qfex-api.md §3.5); our simulator names them
``twap:<twap_id>:<n>`` (its CHOICES). ``TWAP_CHILD_PREFIX`` reads that shape, so a child is its
TWAP's owner's even before the manager has adopted it; on QFEX an unknown shape simply goes
through the manager's book (an order whose ``twap_id`` is known).
"""

from __future__ import annotations

from typing import Any

from qfex_oms.client.manager import OrderManager
from qfex_oms.gateway.namespace import split

TWAP_CHILD_PREFIX = "twap:"
# Frames that report on an order/TWAP/stop: the client-id field and the id field of each.
ID_FIELDS: dict[str, tuple[str, str]] = {
    "order_response": ("client_order_id", "order_id"),
    "fill_response": ("client_order_id", "order_id"),
    "twap_response": ("client_twap_id", "twap_id"),
    "stop_order_response": ("client_order_id", "stop_order_id"),
}
_CLIENT_CANCEL_KINDS = ("client_order_id", "client_twap_id")


class Owners:
    """Strategy of every id seen in a namespace, plus the manager's book as a fallback."""

    def __init__(self, oms: OrderManager, strategies: set[str]) -> None:
        self.oms = oms
        self.strategies = strategies
        self._by_id: dict[str, str] = {}

    def learn_from_book(self) -> int:
        """After a restart: every order, TWAP and stop the manager knows, by its client id."""
        for order in self.oms.orders(open_only=False):
            self.note(order.client_order_id, order.order_id)
        for twap in self.oms.twaps():
            self.note(twap.client_twap_id, twap.twap_id)
        for stop in self.oms.stops(open_only=False):
            self.note(stop.client_order_id, stop.stop_order_id)
        return len(self._by_id)

    def note(self, wire_client_id: str | None, exchange_id: str | None) -> str | None:
        strategy = self.strategy_of(wire_client_id)
        if strategy is not None and exchange_id:
            self._by_id[exchange_id] = strategy
        return strategy

    def strategy_of(self, wire_client_id: str | None) -> str | None:
        strategy, _ = split(wire_client_id)
        return strategy if strategy in self.strategies else None

    def owner(self, wire_client_id: str | None, exchange_id: str | None) -> str | None:
        """The strategy owning a reported order/TWAP/stop, or None (nobody's: never delivered)."""
        strategy = self.note(wire_client_id, exchange_id)
        if strategy is not None or not exchange_id:
            return strategy
        known = self._by_id.get(exchange_id)
        if known is not None:
            return known
        if wire_client_id and wire_client_id.startswith(TWAP_CHILD_PREFIX):
            twap_id = wire_client_id[len(TWAP_CHILD_PREFIX):].rpartition(":")[0]
            known = self._by_id.get(twap_id)
            if known is not None:
                self._by_id[exchange_id] = known
                return known
        order = self.oms.order(exchange_id)
        if order is not None:
            strategy = self.strategy_of(order.client_order_id) or (
                self._by_id.get(order.twap_id) if order.twap_id else None)
            if strategy is not None:
                self._by_id[exchange_id] = strategy
        return strategy

    def owns(self, strategy: str, wire_client_id: str | None, exchange_id: str | None) -> bool:
        return self.owner(wire_client_id, exchange_id) == strategy


def rewrite(key: str, body: dict[str, Any]) -> None:
    """Strip the namespace from a report's client id, in place."""
    field = ID_FIELDS[key][0]
    value = body.get(field)
    if isinstance(value, str):
        strategy, own = split(value)
        if strategy is not None:
            body[field] = own


def _echoed_client_ids(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """An ``err``'s echoed params and the names of those that hold a client id (a cancel by client
    id names one in ``order_id``); no params: an empty dict."""
    incoming = body.get("incoming_message")
    if not isinstance(incoming, dict) or not isinstance(params := incoming.get("params"), dict):
        return {}, []
    fields = [f for f in ("client_order_id", "client_twap_id") if isinstance(params.get(f), str)]
    if incoming.get("type") == "cancel_order" and isinstance(params.get("order_id"), str) \
            and params.get("cancel_order_id_type") in _CLIENT_CANCEL_KINDS:
        fields.append("order_id")
    return params, fields


def echo_for(strategy: str, body: dict[str, Any]) -> None:
    """An ``err`` rewritten, in place, for the connection that sent what it echoes: the ids in its
    own namespace back to its own; an operator's echo keeps the others' prefixes, as it sent them."""
    params, fields = _echoed_client_ids(body)
    for name in fields:
        owner, own = split(params[name])
        if owner == strategy:
            params[name] = own


def err_owner(owners: Owners, body: dict[str, Any]) -> str | None:
    """The strategy an ``err`` concerns when no client's request is waiting for it
    (``requesters``), from the request it echoes (qfex-api.md §4.9); rewrites the echo's ids back
    to the client's own. None: nobody's (the gateway's own queries)."""
    params, fields = _echoed_client_ids(body)
    owner = None
    for name in fields:  # a client id in a strategy's namespace names it; the last one wins
        strategy = owners.strategy_of(params[name])
        if strategy is not None:
            owner, params[name] = strategy, split(params[name])[1]
    if "order_id" not in fields and isinstance(params.get("order_id"), str):
        owner = owners.owner(None, params["order_id"]) or owner
    if owner is None and isinstance(params.get("stop_order_id"), str):
        owner = owners.owner(None, params["stop_order_id"])
    return owner
