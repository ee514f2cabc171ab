"""The records the tracker keeps: orders, TWAPs, fills and in-flight cancels.

They are mutable attrs classes with slots, owned by the core: strategies get them read-only by
convention (the manager hands out the live objects so ``order.state`` is always current).
Fill accounting never double counts: ``fill_total`` sums distinct trade ids (``fill_response`` or
a snapshot's trades), the leaves floor is the smallest ``quantity_remaining`` a reply reported, and
the filled quantity is the larger of the two views, not their sum. An adopted order's quantity is
what the exchange told us, a lower bound: it grows only when its distinct trades add up to more
(``grow_to_trades``), never because the leaves view already counted a trade.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Context, Decimal
from typing import Any

from attrs import define, field

from qfex_oms.core.states import OrderState, TwapState
from qfex_oms.protocol.enums import CancelIdType, OrderType, Side, TimeInForce

ZERO = Decimal(0)
NO_TAGS: frozenset[str] = frozenset()

# ---------------------------------------------------------------------- strategy namespaces
# Several strategies share one account, and QFEX's client ids are not unique: a cancel by client id
# ends every order on the symbol that shares it (qfex-api.md §3.2). So a strategy's client ids go on
# the wire as ``<strategy>:<its own id>`` (the same spelling the gateway uses for its clients), and
# an id carrying that prefix belongs to that strategy, whoever placed it (an order adopted from the
# exchange, a journal replayed). QFEX documents no client id limits (§3.1: NOT DOCUMENTED); this
# package keeps ids to 64 characters (``core.args``), so a name of at most 16 leaves 47 for the id.
# ``twap`` is reserved: QFEX's TWAP children are named ``twap:<twap_id>:<n>`` (``core.twaps``).
STRATEGY_SEPARATOR = ":"
MAX_STRATEGY_LENGTH = 16
RESERVED_STRATEGIES = frozenset({"twap"})
_STRATEGY_NAME = re.compile(r"^[A-Za-z0-9_-]{1,16}$")


def valid_strategy(name: object) -> bool:
    return (isinstance(name, str) and bool(_STRATEGY_NAME.match(name))
            and name.lower() not in RESERVED_STRATEGIES)


def strategy_prefix(strategy: str) -> str:
    return f"{strategy}{STRATEGY_SEPARATOR}"


def wire_client_id(strategy: str | None, client_id: str) -> str:
    """The id sent to QFEX for a strategy's own id (unchanged without a strategy)."""
    return client_id if strategy is None else f"{strategy}{STRATEGY_SEPARATOR}{client_id}"


def strategy_of(wire_id: str | None) -> str | None:
    """The strategy whose namespace a wire id is in, or None (outside every namespace)."""
    if not wire_id:
        return None
    name, sep, _ = wire_id.partition(STRATEGY_SEPARATOR)
    return name if sep and valid_strategy(name) else None


def own_client_id(wire_id: str, strategy: str | None) -> str:
    """The id as the strategy gave it: the wire id without its namespace prefix."""
    if strategy is not None and wire_id.startswith(strategy_prefix(strategy)):
        return wire_id[len(strategy) + len(STRATEGY_SEPARATOR):]
    return wire_id

# Monotonic seconds. The core stamps orders through ``OmsCore.clock``, this by default; a test or a
# replay may give its own. Reading a clock is the one outside fact the core takes itself: the stamps
# are metrics only, no decision depends on them.
Clock = Callable[[], float]
system_clock: Clock = time.monotonic

# Wall-clock seconds minus monotonic seconds, read once when this module loads. An order keeps only
# monotonic stamps and shows wall times as stamp + offset (``Order.sent_wall`` ...): two floats and
# two slots per stamp were a fifth of an order's memory (bench row 6). The trade-off: a step of the
# wall clock after start (NTP, an operator) shifts the displayed wall times by that step, while the
# latencies, differences of monotonic stamps, stay right.
WALL_CLOCK_OFFSET = time.time() - time.monotonic()


def wall_time(monotonic: float | None) -> float | None:
    """The wall-clock seconds of a monotonic stamp (None stays None), by the process's offset."""
    return None if monotonic is None else monotonic + WALL_CLOCK_OFFSET


@define(slots=True, eq=False)
class Fill:
    trade_id: str
    order_id: str
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal | None = None
    timestamp: float | None = None


def remaining_of(quantity: Decimal, fill_total: Decimal, leaves_floor: Decimal | None,
                 context: Context | None = None) -> Decimal:
    """``Order.remaining_quantity`` from its parts: the size less the distinct trades, or the lowest
    leaves a report gave when they say less is left (``size - filled_quantity``, written as
    ``min(size - trades, leaves)``: one subtraction, and the leaves exact). A function so the
    open totals (``core.open_totals``) use the same rule without a property call, in their own
    exact ``context`` rather than whatever context the calling task has."""
    left = quantity - fill_total if context is None else context.subtract(quantity, fill_total)
    if leaves_floor is not None and leaves_floor < left:
        left = leaves_floor
    return left if left > ZERO else ZERO


@define(slots=True, eq=False, weakref_slot=False)
class OrderExtra:
    """What few orders ever carry, kept off ``Order`` itself (bench row 6: each slot is 8 bytes on
    every one of 100,000 orders). Created the first time one of these is set to something; the
    ``Order`` properties of the same names read and write through it."""

    reduce_only: bool | None = None
    take_profit: Decimal | None = None
    stop_loss: Decimal | None = None
    modify_in_doubt: tuple[Decimal | None, Decimal | None] | None = None
    fills: list[Fill] | None = None
    tags: frozenset[str] = NO_TAGS
    adopted: bool = False
    cancel_requested: bool = False


_NO_EXTRA = OrderExtra()  # read through when an order has none; never written


@define(slots=True, eq=False, init=False, weakref_slot=False)
class Order:
    local_id: int
    symbol: str
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal
    price: Decimal | None
    client_order_id: str
    order_id: str | None = None
    state: OrderState = OrderState.PENDING_NEW
    last_status: str | None = None
    fill_total: Decimal = ZERO
    leaves_floor: Decimal | None = None
    twap_id: str | None = None
    # The strategy asked for a cancel the exchange never answered (write failed, answer lost, cut off
    # by a disconnect): owed until the order ends; a resync that finds it open sends the cancel again.
    cancel_owed: bool = False
    needs_settlement: bool = False  # NO_SUCH_ORDER or UNKNOWN: settle from fills and a snapshot
    seq: int = 0  # core sequence of the last local action, to fence snapshots taken before it
    update_time: float | None = None
    # Metrics (issue 17), monotonic seconds, None until it happened: when the core queued its
    # add_order (the shell writes it at once; None for an order learnt from the exchange), when
    # QFEX first accepted it (out of PENDING_NEW into OPEN, FILLED or CANCELLED: a reject or a lost
    # answer is no acceptance), the last time a cancel was sent for it, and when it ended (any
    # terminal state). The wall-clock times (``sent_wall`` ...) are derived: ``wall_time``.
    sent_at: float | None = None
    acked_at: float | None = None
    cancel_sent_at: float | None = None
    ended_at: float | None = None
    # Attribution (issue 18): the strategy that owns it (None: the account's, or an adopted order
    # outside every namespace) and free-form tags (``tags``, in ``OrderExtra``), set at placement;
    # ``client_order_id`` is the wire id (the core correlates by it), ``own_client_order_id`` the
    # id the strategy gave.
    strategy: str | None = None
    # reduce_only, take_profit, stop_loss, modify_in_doubt, fills, tags, adopted, cancel_requested:
    # see OrderExtra; read and set them through the properties of those names. ``extra`` is public
    # so the reply path can skip a property call (~670 instructions) when an order has none.
    extra: OrderExtra | None = None

    def __init__(self, local_id: int, symbol: str, side: Side, order_type: OrderType,
                 time_in_force: TimeInForce, quantity: Decimal, price: Decimal | None,
                 client_order_id: str, *, reduce_only: bool | None = None,
                 take_profit: Decimal | None = None, stop_loss: Decimal | None = None,
                 modify_in_doubt: tuple[Decimal | None, Decimal | None] | None = None,
                 fills: list[Fill] | None = None, tags: frozenset[str] = NO_TAGS,
                 adopted: bool = False, cancel_requested: bool = False,
                 **fields: Any) -> None:
        self.__attrs_init__(local_id, symbol, side, order_type, time_in_force, quantity, price,
                            client_order_id, **fields)
        if (reduce_only is not None or take_profit is not None or stop_loss is not None
                or modify_in_doubt is not None or fills is not None or tags or adopted
                or cancel_requested):
            self.extra = OrderExtra(reduce_only, take_profit, stop_loss, modify_in_doubt, fills,
                                    tags, adopted, cancel_requested)

    def _extras(self) -> OrderExtra:
        extra = self.extra
        if extra is None:
            extra = self.extra = OrderExtra()
        return extra

    @property
    def reduce_only(self) -> bool | None:
        return (self.extra or _NO_EXTRA).reduce_only

    @reduce_only.setter
    def reduce_only(self, value: bool | None) -> None:
        if value is not None or self.extra is not None:
            self._extras().reduce_only = value

    @property
    def take_profit(self) -> Decimal | None:
        return (self.extra or _NO_EXTRA).take_profit

    @take_profit.setter
    def take_profit(self, value: Decimal | None) -> None:
        if value is not None or self.extra is not None:
            self._extras().take_profit = value

    @property
    def stop_loss(self) -> Decimal | None:
        return (self.extra or _NO_EXTRA).stop_loss

    @stop_loss.setter
    def stop_loss(self, value: Decimal | None) -> None:
        if value is not None or self.extra is not None:
            self._extras().stop_loss = value

    @property
    def modify_in_doubt(self) -> tuple[Decimal | None, Decimal | None] | None:
        """A modify whose answer never came: its (quantity, price). The exchange may or may not have
        applied it, so the size the leaves refer to is in doubt until a report names one."""
        return (self.extra or _NO_EXTRA).modify_in_doubt

    @modify_in_doubt.setter
    def modify_in_doubt(self, value: tuple[Decimal | None, Decimal | None] | None) -> None:
        if value is not None or self.extra is not None:
            self._extras().modify_in_doubt = value

    @property
    def fills(self) -> list[Fill] | None:
        """Its distinct fills, in arrival order (None before the first)."""
        return (self.extra or _NO_EXTRA).fills

    @fills.setter
    def fills(self, value: list[Fill] | None) -> None:
        if value is not None or self.extra is not None:
            self._extras().fills = value

    @property
    def tags(self) -> frozenset[str]:
        return (self.extra or _NO_EXTRA).tags

    @tags.setter
    def tags(self, value: frozenset[str]) -> None:
        if value or self.extra is not None:
            self._extras().tags = value

    @property
    def adopted(self) -> bool:
        """Learnt from the exchange, not placed by this manager (a TWAP child, an order placed
        elsewhere, one a snapshot or a fill named first)."""
        return (self.extra or _NO_EXTRA).adopted

    @adopted.setter
    def adopted(self, value: bool) -> None:
        if value or self.extra is not None:
            self._extras().adopted = value

    @property
    def cancel_requested(self) -> bool:
        """A cancel waits for its ACK (see CancelResolver)."""
        return (self.extra or _NO_EXTRA).cancel_requested

    @cancel_requested.setter
    def cancel_requested(self, value: bool) -> None:
        if value or self.extra is not None:
            self._extras().cancel_requested = value

    @property
    def sent_wall(self) -> float | None:
        return wall_time(self.sent_at)

    @property
    def acked_wall(self) -> float | None:
        return wall_time(self.acked_at)

    @property
    def cancel_sent_wall(self) -> float | None:
        return wall_time(self.cancel_sent_at)

    @property
    def ended_wall(self) -> float | None:
        return wall_time(self.ended_at)

    def note_sent(self, clock: Clock) -> None:
        self.sent_at = clock()

    @property
    def own_client_order_id(self) -> str:
        """The client id as the strategy gave it (``client_order_id`` is what went on the wire)."""
        return own_client_id(self.client_order_id, self.strategy)

    @property
    def wire_client_order_id(self) -> str:
        return self.client_order_id

    @property
    def ack_latency(self) -> float | None:
        """Seconds from sending the order to QFEX accepting it (None unless both happened here)."""
        if self.sent_at is None or self.acked_at is None:
            return None
        return self.acked_at - self.sent_at

    @property
    def filled_quantity(self) -> Decimal:
        if self.leaves_floor is None:
            return self.fill_total
        return max(self.fill_total, self.quantity - self.leaves_floor)

    @property
    def remaining_quantity(self) -> Decimal:
        return remaining_of(self.quantity, self.fill_total, self.leaves_floor)

    def note_leaves(self, leaves: Decimal | None) -> None:
        """A report's leaves only ever lower the floor: reports of one size may come out of order."""
        if leaves is not None and (self.leaves_floor is None or leaves < self.leaves_floor):
            self.leaves_floor = leaves if leaves >= ZERO else ZERO

    def grow_to_trades(self, quantity: Decimal) -> None:
        """An adopted order about to count a new trade of ``quantity``: its size was learnt from a
        reply (a FILLED report may carry the fill's size, not the order's) or from one trade, so it
        is at least the sum of its distinct trades. Comparing against ``fill_total``, not the leaves
        view, keeps a trade a FILLED report already counted from being counted twice."""
        if self.adopted and self.fill_total + quantity > self.quantity:
            self.quantity = self.fill_total + quantity

    def grow_to_fill(self, least: Decimal) -> None:
        """An adopted order's fill of ``q`` with ``leaves`` left: right after that trade the
        exchange's order held at least ``q + leaves`` (fills overtake each other, so an earlier
        fill may arrive after the one it was adopted from, and say more was left). The leaves
        floor stays: every fill's leaves are of that same size."""
        if self.adopted and least > self.quantity:
            self.quantity = least

    @property
    def is_open(self) -> bool:
        return self.state.is_live

    @property
    def average_price(self) -> Decimal | None:
        if not self.fills:
            return None
        qty = sum((f.quantity for f in self.fills), ZERO)
        return sum((f.price * f.quantity for f in self.fills), ZERO) / qty if qty else None

    def could_be(self, side: Side | None, order_type: OrderType | None, tif: TimeInForce | None,
                 price: Decimal | None, quantity: Decimal | None) -> bool:
        """Whether a reply carrying these attributes (None: not given) can describe this order.

        Client ids are not unique, so a reply for an id the book lacks is matched on what the order
        looks like. ``quantity`` is a lower bound (a fill and what remains of the order after it);
        the price is not compared for MARKET orders, whose wire price is a protection price.
        """
        return ((side is None or side == self.side)
                and (order_type is None or order_type == self.order_type)
                and (tif is None or tif == self.time_in_force)
                and (price is None or self.price is None or self.order_type is OrderType.MARKET
                     or price == self.price)
                and (quantity is None or quantity <= self.quantity))

    def describe(self) -> dict[str, object]:
        """The order's identity for a log line."""
        return {"symbol": self.symbol, "order_id": self.order_id,
                "client_order_id": self.client_order_id, "state": str(self.state)}




@define(slots=True, eq=False)
class Twap:
    local_id: int
    symbol: str
    side: Side
    total_quantity: Decimal
    num_orders: int
    order_interval_secs: int
    reduce_only: bool
    client_twap_id: str
    twap_id: str | None = None
    state: TwapState = TwapState.PENDING_NEW
    last_status: str | None = None
    filled_quantity: Decimal = ZERO
    average_fill_price: Decimal | None = None
    children: list[Order] = field(factory=list)
    cancel_requested: bool = False
    cancel_owed: bool = False  # as Order.cancel_owed: a lost TWAP cancel is sent again if it runs
    # Cancels that may have ended it and were never answered: a cancel frame for it (until its
    # answer), a cancel_all, a disconnect under cancel_on_disconnect. QFEX's snapshot lists only
    # active TWAPs, so absence proves only that it ended (snapshot._ended_as weighs the evidence).
    # A snapshot showing it active clears the doubt of every cancel sent before it.
    cancels_in_doubt: int = 0
    # A cancel of ours found it gone (NO_SUCH_ORDER): it had ended before, not by our hand.
    gone_before_cancel: bool = False
    adopted: bool = False
    seq: int = 0
    strategy: str | None = None  # as Order.strategy
    tags: frozenset[str] = NO_TAGS

    @property
    def is_open(self) -> bool:
        return not self.state.is_terminal

    @property
    def own_client_twap_id(self) -> str:
        """The client TWAP id as the strategy gave it (``client_twap_id`` is the wire id)."""
        return own_client_id(self.client_twap_id, self.strategy)

    def describe(self) -> dict[str, object]:
        return {"symbol": self.symbol, "twap_id": self.twap_id,
                "client_twap_id": self.client_twap_id, "state": str(self.state)}


@define(slots=True, eq=False)
class CancelRequest:
    """One cancel intent in flight. It is done once the exchange has answered for every order it covers.

    ``targets`` are the orders (or the TWAP) known to be covered when the cancel was resolved; a cancel
    by client id also collects orders the exchange cancels that were unknown locally (``cancelled``).
    ``refused`` are targets the exchange answered for with NO_SUCH_ORDER or a refusal while others
    were still in flight (a group cancel also sends one by id for a member ACKed after it went).
    """

    seq: int
    mode: CancelIdType
    value: str
    symbol: str
    targets: list[Order] = field(factory=list)
    twap: Twap | None = None
    status: str | None = None
    cancelled: list[Order] = field(factory=list)
    done: bool = False
    frame_sent: bool = False
    sends: int = 0  # frames queued for it (a retry adds one); a withdrawn one is taken back
    refused: list[Order] = field(factory=list)
    refusal: str | None = None  # the status of the last such answer

    def settled(self) -> bool:
        """Every order it covers has ended or has had its answer."""
        return all(t.state.is_terminal or t in self.refused for t in self.targets)

    @property
    def key(self) -> tuple[str, CancelIdType, str]:
        return (self.symbol, self.mode, self.value)


@define(slots=True, eq=False)
class ModifyRequest:
    seq: int
    order: Order
    price: Decimal | None
    quantity: Decimal | None
    status: str | None = None
    done: bool = False
