"""The cancels in flight, indexed three ways. Bookkeeping only: no frames, no events, no state moves.

QFEX has no request ids, so an answer finds its cancel by what was sent: ``(symbol, id type, id)``.
Several cancels may be in flight under one key (an id sent again, a group and a single cancel); each
key keeps them oldest first, as QFEX answers frames in order. The book also knows, by request
``seq``, the keys each request was sent under (to unregister it), and, by order ``local_id``, every
request covering that order (including ones held for its ACK, which have no key yet).

``cancelling`` decides what a cancel does; this class only remembers which are out.
"""

from __future__ import annotations

from qfex_oms.core.model import CancelRequest, Order
from qfex_oms.protocol.enums import CancelIdType

CancelKey = tuple[str, CancelIdType, str]


class CancelBook:
    """Read ``by_key`` and ``by_order`` directly only to test for emptiness or membership (the reply
    path does, to skip cancel work in one dict lookup); change them through the methods."""

    __slots__ = ("by_key", "by_order", "keys_by_seq")

    def __init__(self) -> None:
        self.by_key: dict[CancelKey, list[CancelRequest]] = {}
        self.keys_by_seq: dict[int, list[CancelKey]] = {}
        self.by_order: dict[int, list[CancelRequest]] = {}

    def register(self, request: CancelRequest, key: CancelKey) -> None:
        """Queue the request under a key it sent; another request under the same key stays queued."""
        requests = self.by_key.get(key)
        if requests is None:
            self.by_key[key] = [request]
        elif request not in requests:
            requests.append(request)
        keys = self.keys_by_seq.get(request.seq)
        if keys is None:
            self.keys_by_seq[request.seq] = [key]
        elif key not in keys:
            keys.append(key)

    def oldest(self, key: CancelKey) -> CancelRequest | None:
        """The oldest open cancel sent under ``key``: the one an answer for that key is for."""
        requests = self.by_key.get(key)
        return requests[0] if requests else None

    def newest(self, key: CancelKey) -> CancelRequest | None:
        """The cancel a new intent under ``key`` joins (unless it asks to retry)."""
        requests = self.by_key.get(key)
        return requests[-1] if requests else None

    def under(self, key: CancelKey) -> list[CancelRequest]:
        """Every open cancel sent under ``key`` (a copy: the caller may attach while iterating)."""
        return list(self.by_key.get(key, ()))

    def attach(self, request: CancelRequest, order: Order) -> None:
        """The request covers this order (it named it, or its answer will)."""
        if order not in request.targets:
            request.targets.append(order)
        requests = self.by_order.setdefault(order.local_id, [])
        if request not in requests:
            requests.append(request)

    def open_for(self, order: Order) -> CancelRequest | None:
        """The first cancel covering the order that has not finished."""
        for request in self.by_order.get(order.local_id, ()):
            if not request.done:
                return request
        return None

    def open_requests(self) -> list[CancelRequest]:
        """Every open request once, by seq (those on the wire and those held for an ACK)."""
        found = {r.seq: r for requests in self.by_key.values() for r in requests if not r.done}
        for requests in self.by_order.values():
            for request in requests:
                if not request.done:
                    found[request.seq] = request
        return list(found.values())

    def other_out(self, order: Order, request: CancelRequest) -> bool:
        """Whether another cancel of this order is on the wire (its answer is still to come)."""
        return any(other is not request and other.frame_sent and not other.done
                   for other in self.by_order.get(order.local_id, ()))

    def covering(self, order: Order, credit: bool) -> list[CancelRequest]:
        """The cancels an end of this order may settle: those attached to it, and those sent by its
        id (or, with ``credit``, by its client id: a group cancel takes members it did not know)."""
        requests = list(self.by_order.get(order.local_id, ()))
        if not self.by_key:
            return requests
        keys = [(order.symbol, CancelIdType.ORDER_ID, order.order_id or "")]
        if credit:
            keys.append((order.symbol, CancelIdType.CLIENT_ORDER_ID, order.client_order_id))
        for key in keys:
            request = self.oldest(key)
            if request is not None and request not in requests:
                self.attach(request, order)
                requests.append(request)
        return requests

    def remove(self, request: CancelRequest) -> None:
        """Forget a finished request under every key and order it was filed by."""
        for key in self.keys_by_seq.pop(request.seq, ()):
            requests = self.by_key.get(key)
            if requests is not None and request in requests:
                requests.remove(request)
                if not requests:
                    del self.by_key[key]
        for order in request.targets:
            requests = self.by_order.get(order.local_id)
            if requests is not None:
                requests[:] = [r for r in requests if r is not request]
                if not requests:
                    del self.by_order[order.local_id]
