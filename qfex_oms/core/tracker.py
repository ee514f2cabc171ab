"""OrderTracker: every order and TWAP the manager knows, and the indices to find them by any id.

Keys (design.md "Architecture"): ``order_id`` once known; the local submit key (``local_id``) for
every order, ACKed or not; ``(symbol, client_order_id)`` to a list of orders because QFEX client ids
are not unique; ``twap_id`` and ``(symbol, client_twap_id)`` for TWAPs; TWAP -> child orders; and
open orders by symbol for the kill switch and the strategies' queries. State changes go through
``set_state`` so the open-by-symbol index can never drift; ``check_invariants`` proves it in tests.

From the first ``open_quantity`` call on, it also keeps per symbol the remaining quantity of the open
orders on each side (``core.open_totals``), so pre-trade risk reads a symbol's exposure in constant
time however many orders rest (issue 15).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal

from qfex_oms.core.model import Order, Twap, strategy_of
from qfex_oms.core.open_totals import OpenTotals
from qfex_oms.core.states import OrderState, TwapState
from qfex_oms.protocol.enums import OrderType, Side, TimeInForce

ClientKey = tuple[str, str]
# symbol -> client_order_id -> the one order, or a list when several share the id (QFEX allows it).
# Nested rather than keyed by (symbol, client_order_id) and a list per id: that was ~120 bytes per
# order of tuples and one-element lists, a tenth of the memory budget per tracked order.
ClientIndex = dict[str, dict[str, "Order | list[Order]"]]


class OrderTracker:
    __slots__ = (
        "_by_client",
        "_by_local",
        "_by_order_id",
        "_next_local",
        "_open_by_symbol",
        "_pending_new",
        "_pending_twaps",
        "_twap_by_client",
        "_twap_by_id",
        "_twaps",
        "open_totals",
        "trade_ids",
    )

    def __init__(self) -> None:
        self._next_local = 1
        self._by_local: dict[int, Order] = {}
        self._by_order_id: dict[str, Order] = {}
        self._pending_new: dict[ClientKey, deque[Order]] = {}
        self._by_client: ClientIndex = {}
        self._open_by_symbol: dict[str, dict[int, Order]] = {}
        self.open_totals: OpenTotals | None = None  # kept from the first open_quantity call
        self._twaps: dict[int, Twap] = {}
        self._twap_by_id: dict[str, Twap] = {}
        self._twap_by_client: dict[ClientKey, Twap] = {}
        self._pending_twaps: dict[ClientKey, deque[Twap]] = {}
        self.trade_ids: set[str] = set()

    # ------------------------------------------------------------------ orders

    def _local_id(self) -> int:
        local = self._next_local
        self._next_local += 1
        return local

    def new_order(
        self,
        symbol: str,
        side: Side,
        order_type: OrderType,
        time_in_force: TimeInForce,
        quantity: Decimal,
        price: Decimal | None,
        client_order_id: str,
        **extra: object,
    ) -> Order:
        order = Order(self._local_id(), symbol, side, order_type, time_in_force, quantity, price,
                      client_order_id, **extra)  # type: ignore[arg-type]
        if order.strategy is None:
            order.strategy = strategy_of(client_order_id)
        self._insert(order)
        if order.order_id is None:
            self._pending_new.setdefault((symbol, client_order_id), deque()).append(order)
        return order

    def _insert(self, order: Order) -> None:
        self._by_local[order.local_id] = order
        if order.order_id is not None:
            self._by_order_id[order.order_id] = order
        by_id = self._by_client.setdefault(order.symbol, {})
        present = by_id.get(order.client_order_id)
        if present is None:
            by_id[order.client_order_id] = order
        elif isinstance(present, list):
            present.append(order)
        else:
            by_id[order.client_order_id] = [present, order]
        if order.state.is_live:
            self._open_by_symbol.setdefault(order.symbol, {})[order.local_id] = order
            if self.open_totals is not None:
                self.open_totals.moved(order, live=True)

    def bind(self, order: Order, order_id: str) -> None:
        """Give a pending order its exchange id (ACK, or any reply that names it first)."""
        if order.order_id == order_id:
            return
        key = (order.symbol, order.client_order_id)
        queue = self._pending_new.get(key)
        if queue is not None:
            if queue and queue[0] is order:
                queue.popleft()  # the usual case: ACKs come in submit order
            elif order in queue:
                queue.remove(order)
            if not queue:
                del self._pending_new[key]
                if not self._pending_new:  # _shrink_pending, inline: every ACK comes this way
                    self._pending_new = {}
        order.order_id = order_id
        self._by_order_id[order_id] = order

    def bind_sole_pending(self, symbol: str, client_order_id: str | None, order_id: str,
                          quantity: Decimal | None) -> Order | None:
        """An ACK's common case, ``pending`` and ``bind`` in one call (bench row 1: a call costs
        ~440 instructions): the one order waiting under this client id, bound to ``order_id``, if
        it is the only one and the answer names no larger size than it has. Otherwise None, and
        nothing changed: the caller applies the full rule."""
        key = (symbol, client_order_id or "")
        queue = self._pending_new.get(key)
        if queue is None or len(queue) != 1:
            return None
        order = queue[0]
        if quantity is not None and quantity > order.quantity:
            return None
        del self._pending_new[key]
        if not self._pending_new:  # as in bind
            self._pending_new = {}
        order.order_id = order_id
        self._by_order_id[order_id] = order
        return order

    def set_state(self, order: Order, state: OrderState) -> None:
        totals = self.open_totals
        if totals is not None and order.state.is_live is not state.is_live:
            totals.moved(order, live=state.is_live)
        order.state = state
        book = self._open_by_symbol.get(order.symbol)
        if book is None:
            book = self._open_by_symbol[order.symbol] = {}
        if state.is_live:
            book[order.local_id] = order
        else:
            book.pop(order.local_id, None)
            if order.order_id is None:
                self._drop_pending(order)

    # ------------------------------------------------------------------ open totals

    def open_share(self, order: Order) -> Decimal | None:
        """What the order counts for in its symbol's open total now (None when it counts for
        nothing, or no totals are kept). Taken before changing an open order's size, fills or
        leaves, and handed to ``reshare`` after."""
        return None if self.open_totals is None else self.open_totals.share(order)

    def reshare(self, order: Order, before: Decimal | None) -> None:
        """Move the order's symbol total by what its share became since ``open_share``."""
        if self.open_totals is not None:
            self.open_totals.reshare(order, before)

    def set_twap_id(self, order: Order, twap_id: str) -> None:
        """Name the order a TWAP's child: from now on it counts inside its TWAP's remainder."""
        before = self.open_share(order)
        order.twap_id = twap_id
        self.reshare(order, before)

    def keep_open_totals(self) -> OpenTotals:
        """The open totals, counted from the open orders the first time and kept from then on."""
        if self.open_totals is None:
            self.open_totals = OpenTotals(self.open_orders())
        return self.open_totals

    def open_quantity(self, symbol: str) -> tuple[Decimal, Decimal]:
        """The remaining quantity of the symbol's open orders, (buys, sells), TWAP children left
        out (their TWAP's remainder counts them): constant time once kept, for pre-trade risk."""
        return self.keep_open_totals().quantity(symbol)

    def open_quantities(self) -> dict[str, tuple[Decimal, Decimal]]:
        """``open_quantity`` of every symbol with an open order."""
        return self.keep_open_totals().quantities()

    def _drop_pending(self, order: Order) -> None:
        key = (order.symbol, order.client_order_id)
        queue = self._pending_new.get(key)
        if queue is not None and order in queue:
            queue.remove(order)
            if not queue:
                del self._pending_new[key]
                self._shrink_pending()

    def _shrink_pending(self) -> None:
        """A dict never gives back its table: after a burst of 100,000 placements the empty pending
        index held 5 MB, 53 bytes per order still tracked (bench row 6). A fresh one when it empties."""
        if not self._pending_new:
            self._pending_new = {}

    def remove(self, order: Order) -> None:
        """Forget a closed order (retention). Its trade ids stay, so a replayed fill is still a duplicate."""
        self._by_local.pop(order.local_id, None)
        if order.order_id is not None:
            self._by_order_id.pop(order.order_id, None)
        by_id = self._by_client.get(order.symbol, {})
        rest = [o for o in self._members(order.symbol, order.client_order_id) if o is not order]
        if not rest:
            by_id.pop(order.client_order_id, None)
        else:
            by_id[order.client_order_id] = rest[0] if len(rest) == 1 else rest
        if self._open_by_symbol.get(order.symbol, {}).pop(order.local_id, None) is not None \
                and self.open_totals is not None:
            self.open_totals.moved(order, live=False)
        self._drop_pending(order)

    def adopt(self, order: Order) -> Order:
        """Insert an order learnt from the exchange (placed elsewhere, or a TWAP child)."""
        order.local_id = self._local_id()
        order.adopted = True
        if order.strategy is None:
            # Its wire id may carry a strategy's namespace (``core.model``): that strategy's order.
            order.strategy = strategy_of(order.client_order_id)
        self._insert(order)
        return order

    @property
    def order_id_index(self) -> Mapping[str, Order]:
        """order_id -> order, live (the dict itself, not a copy): for the core's reply path, which
        reads it once per reply and must not pay a method call for it. Never write through it."""
        return self._by_order_id

    @property
    def twap_id_index(self) -> Mapping[str, Twap]:
        """twap_id -> TWAP, live, as ``order_id_index`` (the reply path asks it of every reply whose
        id the order index lacks, an ACK's included). Never write through it."""
        return self._twap_by_id

    def by_order_id(self, order_id: str | None) -> Order | None:
        return self._by_order_id.get(order_id) if order_id else None

    def by_local_id(self, local_id: int) -> Order | None:
        return self._by_local.get(local_id)

    def first_pending(self, symbol: str, client_order_id: str | None) -> Order | None:
        queue = self._pending_new.get((symbol, client_order_id or ""))
        return queue[0] if queue else None

    def pending(self, symbol: str, client_order_id: str | None) -> Sequence[Order]:
        """The orders still waiting for an id under this client id, in submit order (do not mutate)."""
        return self._pending_new.get((symbol, client_order_id or ""), ())

    def pending_elsewhere(self, symbol: str, client_order_id: str | None) -> bool:
        """Whether an order waiting for its ACK under this client id is on another symbol (and none
        on ``symbol``): a reply naming that client id on ``symbol`` is then suspect. A scan of the
        pending keys, on the rare adoption path only."""
        if not client_order_id or (symbol, client_order_id) in self._pending_new:
            return False
        return any(cid == client_order_id for _, cid in self._pending_new)

    def pending_new(self) -> Iterator[Order]:
        for queue in self._pending_new.values():
            yield from queue

    def _members(self, symbol: str, client_order_id: str) -> list[Order]:
        present = self._by_client.get(symbol, {}).get(client_order_id)
        if present is None:
            return []
        return present if isinstance(present, list) else [present]

    def members(self, symbol: str, client_order_id: str) -> list[Order]:
        return list(self._members(symbol, client_order_id))

    def live_members(self, symbol: str, client_order_id: str) -> list[Order]:
        return [o for o in self._members(symbol, client_order_id) if o.state.is_live]

    def open_orders(self, symbol: str | None = None) -> list[Order]:
        if symbol is not None:
            return list(self._open_by_symbol.get(symbol, {}).values())
        return [o for book in self._open_by_symbol.values() for o in book.values()]

    def open_count(self) -> int:
        """How many orders are live, without building the list (the guard asks on every update)."""
        return sum(len(book) for book in self._open_by_symbol.values())

    def orders(self) -> Iterator[Order]:
        return iter(self._by_local.values())

    def __len__(self) -> int:
        return len(self._by_local)

    # ------------------------------------------------------------------ TWAPs

    def new_twap(self, twap: Twap) -> Twap:
        twap.local_id = self._local_id()
        if twap.strategy is None:
            twap.strategy = strategy_of(twap.client_twap_id)
        self._twaps[twap.local_id] = twap
        if twap.twap_id is None:
            self._pending_twaps.setdefault((twap.symbol, twap.client_twap_id), deque()).append(twap)
        else:
            self._twap_by_id[twap.twap_id] = twap
        if twap.client_twap_id:
            self._twap_by_client[(twap.symbol, twap.client_twap_id)] = twap
        return twap

    def bind_twap(self, twap: Twap, twap_id: str) -> None:
        queue = self._pending_twaps.get((twap.symbol, twap.client_twap_id))
        if queue is not None and twap in queue:
            queue.remove(twap)
            if not queue:
                del self._pending_twaps[(twap.symbol, twap.client_twap_id)]
        twap.twap_id = twap_id
        self._twap_by_id[twap_id] = twap

    def set_twap_state(self, twap: Twap, state: TwapState) -> None:
        twap.state = state
        if state.is_terminal and twap.twap_id is None:
            queue = self._pending_twaps.get((twap.symbol, twap.client_twap_id))
            if queue is not None and twap in queue:
                queue.remove(twap)
                if not queue:
                    del self._pending_twaps[(twap.symbol, twap.client_twap_id)]

    def first_pending_twap(self, symbol: str, client_twap_id: str | None) -> Twap | None:
        queue = self._pending_twaps.get((symbol, client_twap_id or ""))
        return queue[0] if queue else None

    def pending_twaps(self, symbol: str, client_twap_id: str | None) -> Sequence[Twap]:
        """The TWAPs still waiting for an id under this client id, in submit order (do not mutate)."""
        return tuple(self._pending_twaps.get((symbol, client_twap_id or ""), ()))

    def twap_by_id(self, twap_id: str | None) -> Twap | None:
        return self._twap_by_id.get(twap_id) if twap_id else None

    def twap_by_client(self, symbol: str, client_twap_id: str) -> Twap | None:
        return self._twap_by_client.get((symbol, client_twap_id))

    def twaps(self, open_only: bool = False) -> list[Twap]:
        return [t for t in self._twaps.values() if not open_only or t.is_open]

    def link_child(self, twap: Twap, order: Order) -> None:
        if order.twap_id is None and twap.twap_id is not None:
            self.set_twap_id(order, twap.twap_id)
        if order.strategy is None:  # QFEX names children itself: they are their TWAP's strategy's
            order.strategy, order.tags = twap.strategy, twap.tags
        if order not in twap.children:
            twap.children.append(order)

    # ------------------------------------------------------------------ checks

    def check_invariants(self) -> list[str]:
        """Every index agrees with the orders; used by the property tests after every step."""
        problems: list[str] = []
        for order in self._by_local.values():
            if order.order_id is not None and self._by_order_id.get(order.order_id) is not order:
                problems.append(f"order_id index misses {order.describe()}")
            if order not in self._members(order.symbol, order.client_order_id):
                problems.append(f"client index misses {order.describe()}")
            is_open = order.local_id in self._open_by_symbol.get(order.symbol, {})
            if is_open != order.state.is_live:
                problems.append(f"open index wrong for {order.describe()}")
            if order.remaining_quantity < 0 or order.filled_quantity < 0:
                problems.append(f"negative quantity on {order.describe()}")
            fills = order.fills or ()
            if len({f.trade_id for f in fills}) != len(fills):
                problems.append(f"duplicate fill on {order.describe()}")
        for order_id, order in self._by_order_id.items():
            if order.order_id != order_id or self._by_local.get(order.local_id) is not order:
                problems.append(f"stale order_id index entry {order_id}")
        for key, queue in self._pending_new.items():
            for order in queue:
                if order.order_id is not None or (order.symbol, order.client_order_id) != key:
                    problems.append(f"pending index wrong for {order.describe()}")
                if self._by_local.get(order.local_id) is not order:
                    problems.append(f"pending order not tracked {order.describe()}")
        for book in self._open_by_symbol.values():
            for order in book.values():
                if not order.state.is_live:
                    problems.append(f"closed order in open index {order.describe()}")
        if self.open_totals is not None:
            problems.extend(self.open_totals.problems(self.open_orders()))
        return problems
