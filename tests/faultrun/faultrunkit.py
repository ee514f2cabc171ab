"""The seeded random-fault run: a workload under random faults, then an exact comparison with the venue.

One seed is one run: a fresh simulator on loopback, the manager under test on the first demo
account (every fault targets it), and a counterparty manager on the second (no faults) that makes
real fills: IOC orders crossing the first account's resting orders on ``S``, and resting liquidity
on ``T`` for the TWAP children (MARKET IOC) to fill against. The workload (three strategy tasks),
the counterparty and the fault injector each draw from their own ``random.Random`` derived from the
seed, so a seed names one workload and one fault schedule; the interleaving with the network is
real, so a replay reproduces the same schedule, not always the same timing.

After the workload, faults stop, the manager reconciles, and ``compare`` holds the book to the
simulator's records (``Venue.orders``/``trades``/``twaps``), exactly. Imported by name.
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import attrs
import trio
from simkit import CREDS, CREDS2, PUB, TIME_SCALE

from qfex_oms import (
    Halted,
    NotConnected,
    Order,
    OrderManager,
    OrderState,
    OrderStatusUnknown,
    QfexOmsError,
    ReconnectPolicy,
    RequestTimeout,
    Twap,
    TwapState,
    open_order_manager,
)
from qfex_oms.sim import SimOrder, Venue, open_simulator

S, T = "AAPL-USD", "TSLA-USD"  # S: limit orders and crossing fills; T: TWAPs against liquidity
WORKERS = 3
STEPS = 25  # per worker
FAST = ReconnectPolicy(initial=0.02, maximum=0.1, jitter=0.1)
OPTIONS: dict[str, Any] = {"request_timeout": 0.3, "handshake_timeout": 2.0, "kill_timeout": 2.0,
                           "reconnect": FAST}
SETTLE_WITHIN = 5.0  # seconds for the book to match once faults stop
REPLY_KINDS = ("order_response", "fill_response", "twap_response", "ack", "all_orders_response",
               "user_trades_response", None)
_QUERIES = ("all_orders_response", "user_trades_response", "get_user_orders", "get_user_trades")
_ENDED_BY_VENUE = {"ACK", "FILLED", "MODIFIED", "CANCELLED", "CANCELLED_STP"}


def replay_recipe(seed: int) -> str:
    return (f"replay: QFEX_FAULT_SEED={seed} .venv/bin/pytest -q -s tests/faultrun/test_random_faults.py"
            f"  (seed {seed}; -s shows the manager's and the simulator's logs)")


@attrs.define
class Intents:
    """What the strategy asked for, to hold the venue's end state to it."""

    placed: list[Order] = attrs.field(factory=list)
    twaps: list[Twap] = attrs.field(factory=list)
    cancels: dict[Order, str] = attrs.field(factory=dict)  # order -> how its cancel was asked
    twap_cancels: dict[Twap, str] = attrs.field(factory=dict)
    faults: list[str] = attrs.field(factory=list)  # the fault schedule, for the failure message
    received: list[str] = attrs.field(factory=list)  # every frame the manager read, for diagnosis
    sent: list[str] = attrs.field(factory=list)

    def frames_about(self, needle: str) -> list[str]:
        """Frames naming ``needle``, snapshots and trade lists left out (they name everything)."""
        return [f for f in self.sent + self.received if needle in f
                and not any(k in f for k in _QUERIES)]


# ====================================================================== the workload


class Strategy:
    """One strategy task of the account under test: place, cancel (each id kind), modify, TWAPs."""

    def __init__(self, oms: OrderManager, rng: random.Random, intents: Intents, name: str) -> None:
        self.oms, self.rng, self.intents, self.name = oms, rng, intents, name
        self.n = 0

    async def run(self, steps: int) -> None:
        ops: list[tuple[int, Callable[[], Awaitable[None]]]] = [
            (40, self.place), (22, self.cancel), (10, self.modify), (8, self.twap),
            (5, self.cancel_twap), (1, self.cancel_all)]
        for _ in range(steps):
            op = self.rng.choices([o for _, o in ops], [w for w, _ in ops])[0]
            try:
                await op()
            except QfexOmsError as exc:  # every refusal and loss the API documents
                if isinstance(exc, Halted):
                    self.oms.resume()
            await trio.sleep(self.rng.uniform(0, 0.02))

    def _client_id(self) -> str:
        self.n += 1
        shared = self.rng.random() < 0.25  # a few client ids shared by several orders
        return f"g{self.rng.randint(1, 3)}" if shared else f"{self.name}-{self.n}"

    async def place(self) -> None:
        side = self.rng.choice(("BUY", "SELL"))
        # BUYs at or below 100, SELLs above: the account never crosses itself.
        price = self.rng.choice(("99", "99.5", "100") if side == "BUY" else ("100.5", "101", "101.5"))
        try:
            order = await self.oms.place_order(S, side, str(self.rng.randint(1, 3)), price,
                                               client_order_id=self._client_id())
        except OrderStatusUnknown as exc:
            if isinstance(exc.order, Order):
                self.intents.placed.append(exc.order)
            raise
        self.intents.placed.append(order)

    def _known(self) -> list[Order]:
        return [o for o in self.intents.placed if o.state.is_live]

    async def cancel(self) -> None:
        live = self._known()
        if not live:
            return
        order = self.rng.choice(live)
        how = self.rng.choice(("order", "order_id", "client_order_id"))
        if how == "order_id" and order.order_id is None:
            how = "order"
        if how == "client_order_id":
            covered = [o for o in self.intents.placed
                       if o.client_order_id == order.client_order_id and o.symbol == order.symbol]
            call = self.oms.cancel(client_order_id=order.client_order_id, symbol=order.symbol)
        elif how == "order_id":
            covered = [order]
            call = self.oms.cancel(order_id=order.order_id, symbol=order.symbol)
        else:
            covered = [order]
            call = self.oms.cancel(order)
        await self._record(call, covered, how)

    async def _record(self, call: Awaitable[Any], covered: list[Order], how: str) -> None:
        try:
            result = await call
        except NotConnected:
            return  # nothing was sent: not a request
        if result.status in ("NOT_SENT", "HALTED"):
            return
        for order in covered:
            self.intents.cancels.setdefault(order, f"{how} -> {result.status}")

    async def modify(self) -> None:
        live = [o for o in self._known() if o.state is OrderState.OPEN]
        if not live:
            return
        order = self.rng.choice(live)
        side_prices = ("99", "99.5", "100") if order.side == "BUY" else ("100.5", "101", "101.5")
        if self.rng.random() < 0.5:
            await self.oms.modify_order(order, price=self.rng.choice(side_prices))
        else:
            await self.oms.modify_order(order, quantity=str(self.rng.randint(1, 4)))

    async def twap(self) -> None:
        self.n += 1
        try:
            twap = await self.oms.place_twap(
                T, self.rng.choice(("BUY", "SELL")), total_quantity=str(self.rng.randint(2, 6)),
                num_orders=self.rng.randint(2, 4), order_interval_secs=self.rng.randint(30, 120),
                client_twap_id=f"{self.name}-t{self.n}")
        except OrderStatusUnknown as exc:
            if isinstance(exc.order, Twap):
                self.intents.twaps.append(exc.order)
            raise
        self.intents.twaps.append(twap)

    async def cancel_twap(self) -> None:
        live = [t for t in self.intents.twaps if not t.state.is_terminal]
        if not live:
            return
        twap = self.rng.choice(live)
        how = self.rng.choice(("twap", "twap_id", "client_twap_id"))
        if how == "twap_id" and twap.twap_id is not None:
            call = self.oms.cancel(twap_id=twap.twap_id, symbol=twap.symbol)
        elif how == "client_twap_id":
            call = self.oms.cancel(client_twap_id=twap.client_twap_id, symbol=twap.symbol)
        else:
            how, call = "twap", self.oms.cancel(twap)
        try:
            result = await call
        except NotConnected:
            return
        if result.status not in ("NOT_SENT", "HALTED"):
            self.intents.twap_cancels.setdefault(twap, f"{how} -> {result.status}")

    async def cancel_all(self) -> None:
        orders = list(self.intents.placed)
        twaps = list(self.intents.twaps)
        try:
            report = await self.oms.cancel_all()
        finally:
            self.oms.resume()
        for order in orders:
            self.intents.cancels.setdefault(order, f"cancel_all (clean={report.clean})")
        for twap in twaps:
            self.intents.twap_cancels.setdefault(twap, f"cancel_all (clean={report.clean})")


async def counterparty(oms: OrderManager, rng: random.Random, venue: Venue) -> None:
    """Real fills: IOCs crossing the account's orders on S, liquidity on T for the TWAP children."""
    while True:
        try:
            for side, price in (("SELL", "101"), ("BUY", "99")):
                resting = sum(o.remaining for o in venue.open_orders(CREDS2.public_key, T)
                              if o.side == side)
                if resting < 20:
                    await oms.place_order(T, side, "30", price)
            if rng.random() < 0.6:
                side = rng.choice(("BUY", "SELL"))
                await oms.place_order(S, side, str(rng.randint(1, 3)), "102" if side == "BUY" else "98",
                                      time_in_force="IOC")
        except QfexOmsError:
            pass
        await trio.sleep(rng.uniform(0.01, 0.05))


async def injector(venue: Venue, rng: random.Random, intents: Intents) -> None:
    """Random faults on the account under test, one every few tens of milliseconds."""
    faults = venue.faults
    while True:
        await trio.sleep(rng.uniform(0.005, 0.04))
        pick = rng.random()
        kind = rng.choice(REPLY_KINDS)
        if pick < 0.25:
            faults.drop_next(1, kind=kind, public_key=PUB)
            intents.faults.append(f"drop {kind}")
        elif pick < 0.40:
            faults.duplicate_next(rng.randint(1, 2), kind=kind, public_key=PUB)
            intents.faults.append(f"duplicate {kind}")
        elif pick < 0.55:
            faults.reorder_next(1, kind=kind, public_key=PUB)
            intents.faults.append(f"reorder {kind}")
        elif pick < 0.65:
            latency = rng.choice((0.0, 0.0, 0.01, 0.03, 0.08))
            faults.set_latency(latency, public_key=PUB)
            intents.faults.append(f"latency {latency}")
        elif pick < 0.77:
            frames, silent = rng.randint(0, 6), rng.random() < 0.5
            faults.disconnect_after(frames, public_key=PUB, silent=silent)
            intents.faults.append(f"disconnect after {frames} {'silent' if silent else 'close'}")
        elif pick < 0.90:
            faults.fill_races_cancel(1, public_key=PUB)
            intents.faults.append("fill races cancel")
        else:
            request = rng.choice(("cancel_order", "cancel_order", "add_order", None))
            faults.lose_requests(1, request, public_key=PUB)
            intents.faults.append(f"lose {request} + silent drop")


# ====================================================================== the comparison


def expected_state(sim: SimOrder) -> OrderState | None:
    """The book's state for a venue order; None for an order the venue refused (never accepted)."""
    if sim.is_open:
        return OrderState.OPEN
    if sim.remaining == 0 and sim.filled > 0:
        return OrderState.FILLED
    if str(sim.status) not in _ENDED_BY_VENUE:
        return None
    return OrderState.CANCELLED


def compare(oms: OrderManager, venue: Venue, intents: Intents) -> list[str]:
    """Every way the manager's book differs from the venue's records for the account (empty: equal)."""
    problems = list(oms.core.tracker.check_invariants())
    traded: dict[str, list[Any]] = {}
    for trade in venue.trades(PUB):
        traded.setdefault(trade.order_id, []).append(trade)
    for sim in venue.orders(PUB):
        problems += _compare_order(oms, sim, traded.get(sim.order_id, []))
    for order in oms.orders(open_only=False):
        if order.state in (OrderState.UNKNOWN, OrderState.PENDING_NEW, OrderState.PENDING_CANCEL):
            problems.append(f"unsettled: {order.describe()}")
        elif order.order_id is not None and venue.order(order.order_id) is None:
            problems.append(f"the venue never had {order.describe()}")
        elif order.order_id is None and order.filled_quantity:
            # Never bound to a venue order (its add_order was lost, or refused): CANCELLED or
            # REJECTED are both honest, a fill is not.
            problems.append(f"no order_id but filled: {order.describe()}")
    for order, how in intents.cancels.items():
        sim = venue.order(order.order_id) if order.order_id else None
        if sim is not None and sim.is_open:
            problems.append(f"LOST CANCEL: cancel asked ({how}) but the venue still rests "
                            f"{sim.order_id} ({sim.client_order_id}); the book says {order.state}")
    problems += _compare_twaps(oms, venue, intents)
    return problems


def _compare_order(oms: OrderManager, sim: SimOrder, trades: list[Any]) -> list[str]:
    want = expected_state(sim)
    if want is None:
        return []
    order = oms.order(sim.order_id)
    where = f"{sim.order_id} ({sim.client_order_id}, venue {sim.status} open={sim.is_open})"
    if order is None:
        return [f"MISSING: the venue has {where}, the book does not"]
    problems = []
    if order.state is not want:
        label = "INVENTED CANCEL" if order.state is OrderState.CANCELLED else "WRONG STATE"
        problems.append(f"{label}: {where} is {order.state} in the book, {want} on the venue")
    if order.filled_quantity != sim.filled:
        problems.append(f"FILLED QTY: {where}: book {order.filled_quantity}, venue {sim.filled}")
    venue_total = sum((t.quantity for t in trades), Decimal(0))
    if order.fill_total != venue_total:
        label = "DOUBLE FILL" if order.fill_total > venue_total else "MISSING FILL"
        problems.append(f"{label}: {where}: book's fills {order.fill_total}, venue's trades "
                        f"{venue_total}")
    if sorted(f.trade_id for f in order.fills or ()) != sorted(t.trade_id for t in trades):
        problems.append(f"TRADE IDS: {where}: book {[f.trade_id for f in order.fills or ()]}, "
                        f"venue {[t.trade_id for t in trades]}")
    if sim.is_open and (order.remaining_quantity, order.price) != (sim.remaining, sim.price):
        problems.append(f"RESTING: {where}: book {order.remaining_quantity} @ {order.price}, "
                        f"venue {sim.remaining} @ {sim.price}")
    return problems


def _compare_twaps(oms: OrderManager, venue: Venue, intents: Intents) -> list[str]:
    problems = []
    by_id = {t.twap_id: t for t in oms.twaps() if t.twap_id is not None}
    for sim in venue.twaps(PUB):
        twap = by_id.get(sim.twap_id)
        if twap is None:
            same = [t.describe() for t in oms.twaps() if t.client_twap_id == sim.client_twap_id]
            problems.append(f"MISSING TWAP: {sim.twap_id} ({sim.client_twap_id}, {sim.status}, "
                            f"filled {sim.filled_quantity}); the book has {same}")
            continue
        if twap.state.value != sim.status:
            problems.append(f"TWAP STATE: {sim.twap_id} ({sim.client_twap_id}): book {twap.state}, "
                            f"venue {sim.status}")
        if twap.filled_quantity != sim.filled_quantity:
            problems.append(f"TWAP FILLED: {sim.twap_id} ({sim.client_twap_id}): "
                            f"book {twap.filled_quantity}, venue {sim.filled_quantity}")
    for twap in oms.twaps():
        if twap.state in (TwapState.UNKNOWN, TwapState.PENDING_NEW, TwapState.PENDING_CANCEL):
            problems.append(f"unsettled TWAP: {twap.describe()}")
    for twap, how in intents.twap_cancels.items():
        sim = next((s for s in venue.twaps(PUB) if s.twap_id == twap.twap_id), None)
        if sim is not None and sim.active:
            problems.append(f"LOST TWAP CANCEL: asked ({how}); {sim.twap_id} still active")
    return problems


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_CLIENT_ID = re.compile(r"\b(s\d+w\d+-t?\d+)\b")


def evidence(intents: Intents, problems: list[str], per_id: int = 25) -> str:
    """The frames the manager sent and read about each order or TWAP a problem names, by time."""
    ids = dict.fromkeys(m for p in problems for m in _UUID.findall(p) + _CLIENT_ID.findall(p))
    out = []
    for needle in ids:
        frames = sorted(intents.frames_about(needle))
        cut = "" if len(frames) <= per_id else f" (last {per_id} of {len(frames)})"
        out.append(f"frames about {needle}{cut}:")
        out += [f"    {f[:400]}" for f in frames[-per_id:]]
    return "\n".join(out)


# ====================================================================== one seed


async def _reconcile(oms: OrderManager) -> None:
    """Reconcile once the connection is back; a reconcile lost to a late fault is retried."""
    with trio.move_on_after(SETTLE_WITHIN):
        while True:
            if oms.connected:
                try:
                    await oms.reconcile()
                    return
                except (RequestTimeout, NotConnected):
                    pass
            await trio.sleep(0.02)


async def _settled(oms: OrderManager, venue: Venue, intents: Intents) -> list[str]:
    """Wait (bounded) for the book to equal the venue, reconciling now and then; the last difference."""
    problems = compare(oms, venue, intents)
    with trio.move_on_after(SETTLE_WITHIN):
        tick = 0
        while problems:
            await trio.sleep(0.02)
            tick += 1
            if tick % 50 == 0:  # once a second: what a strategy's periodic reconcile would do
                await _reconcile(oms)
            problems = compare(oms, venue, intents)
    return problems


async def run_seed(seed: int, steps: int = STEPS) -> tuple[list[str], Intents]:
    """One run: workload and faults, then quiesce, reconcile and compare. Returns the differences."""
    intents = Intents()
    rngs = [random.Random(f"{seed}:{part}") for part in ("cp", "faults", *range(WORKERS))]
    async with open_simulator(time_scale=TIME_SCALE) as venue, \
            open_order_manager(venue.url, CREDS2, request_timeout=5.0) as other, \
            open_order_manager(venue.url, CREDS, rest_url=venue.rest_url, **OPTIONS) as oms:
        if seed % 2:  # half the seeds keep pre-trade risk's open totals; the final check recounts them
            oms.open_quantity("AAPL-USD")
        oms.on_frame_received = lambda raw: intents.received.append(
            f"{trio.current_time():.3f} <- {raw if isinstance(raw, str) else raw.decode()}")
        oms.on_frame_sent = lambda raw: intents.sent.append(f"{trio.current_time():.3f} -> {raw.decode()}")
        async with trio.open_nursery() as background:
            background.start_soon(counterparty, other, rngs[0], venue)
            background.start_soon(injector, venue, rngs[1], intents)
            async with trio.open_nursery() as workload:
                for k in range(WORKERS):
                    strategy = Strategy(oms, rngs[2 + k], intents, f"s{seed}w{k}")
                    workload.start_soon(strategy.run, steps)
            background.cancel_scope.cancel()
        venue.faults.clear_all()
        with trio.move_on_after(SETTLE_WITHIN):  # the TWAPs finish on their own
            while venue.twaps(PUB, active_only=True):  # noqa: ASYNC110 - the venue's own clock
                await trio.sleep(0.02)
        await _reconcile(oms)
        problems = await _settled(oms, venue, intents)
    return problems, intents
