"""Many strategies, one account (issue 18), in the pure core: attribution, namespaces, and cancels
that never touch an order outside their intent, even one the book does not know about."""

from __future__ import annotations

from decimal import Decimal

import pytest
from attrs import define
from corekit import SYMBOL, ack, new_id, resp
from hypothesis import given, settings
from hypothesis import strategies as st

from qfex_oms.core import OmsCore
from qfex_oms.core.cancel import CancelIntent, CancelScope, group_by_client_id, unknown_members_in
from qfex_oms.core.model import Order, own_client_id, strategy_of, valid_strategy, wire_client_id
from qfex_oms.core.replay import attribution_note, replay
from qfex_oms.core.snapshot import note_order_ids
from qfex_oms.protocol import codec
from qfex_oms.protocol import messages as m
from qfex_oms.protocol.enums import CancelIdType, OrderStatus, OrderType, Side, TimeInForce

OTHER = "TSLA-USD"


def place(core: OmsCore, strategy: str | None, cid: str, *, side: Side = Side.BUY,
          symbol: str = SYMBOL, tags: frozenset[str] = frozenset()) -> Order:
    order = core.place_order(symbol, side, OrderType.LIMIT, TimeInForce.GTC, Decimal("1"),
                             Decimal("200"), wire_client_id(strategy, cid), strategy=strategy, tags=tags)
    core.take_frames()
    return order


def ack_as(core: OmsCore, order: Order, order_id: str) -> None:
    """An ACK describing the order exactly (corekit's speaks for BUY orders only)."""
    core.on_reply(m.OrderResponse(
        order_id=order_id, symbol=order.symbol, status=OrderStatus.ACK, side=order.side,
        type=order.order_type, time_in_force=order.time_in_force, quantity=order.quantity,
        price=order.price, quantity_remaining=order.quantity, client_order_id=order.client_order_id))
    assert order.order_id == order_id


def cancels(core: OmsCore) -> list[tuple[CancelIdType, str]]:
    return [(f.cancel_order_id_type, f.order_id) for f in core.take_frames()
            if isinstance(f, m.CancelOrder)]


# ---------------------------------------------------------------------- namespaces

def test_namespace_is_reversible_and_names_its_strategy() -> None:
    wire = wire_client_id("mm", "bid-1")
    assert wire == "mm:bid-1"
    assert strategy_of(wire) == "mm" and own_client_id(wire, "mm") == "bid-1"
    assert strategy_of("bid-1") is None and wire_client_id(None, "bid-1") == "bid-1"
    # QFEX's TWAP children are named twap:<id>:<n>: not a strategy's namespace.
    assert strategy_of("twap:T1:1") is None and not valid_strategy("twap")
    assert not valid_strategy("a" * 17) and not valid_strategy("m:m") and valid_strategy("mm_2-b")


def test_orders_carry_strategy_and_tags_and_two_strategies_get_different_wire_ids(core: OmsCore) -> None:
    a = place(core, "mm", "bid-1", tags=frozenset({"quote"}))
    b = place(core, "arb", "bid-1")
    assert (a.strategy, a.tags, a.own_client_order_id) == ("mm", frozenset({"quote"}), "bid-1")
    assert (b.strategy, b.own_client_order_id) == ("arb", "bid-1")
    assert a.client_order_id != b.client_order_id
    assert a.wire_client_order_id == "mm:bid-1"


def test_adopted_order_is_attributed_by_its_namespace_or_to_no_one(core: OmsCore) -> None:
    core.on_reply(resp("x-1", "ACK", cid="mm:bid-9", qty="1", remaining="1"))
    core.on_reply(resp("x-2", "ACK", cid="someone-else", qty="1", remaining="1"))
    core.take_events()
    assert core.tracker.by_order_id("x-1").strategy == "mm"  # type: ignore[union-attr]
    assert core.tracker.by_order_id("x-2").strategy is None  # type: ignore[union-attr]


def test_twap_carries_attribution_and_its_children_inherit_it(core: OmsCore) -> None:
    twap = core.place_twap(SYMBOL, Side.BUY, Decimal("4"), 2, 30, False, "mm:rb-1", strategy="mm",
                           tags=frozenset({"rebalance"}))
    core.take_frames()
    assert twap.strategy == "mm" and twap.own_client_twap_id == "rb-1"
    core.on_reply(m.TwapResponse(twap_id="T1", client_twap_id="mm:rb-1", status="ACTIVE", symbol=SYMBOL,
                                 side=Side.BUY, total_quantity=Decimal("4"), total_num_orders=2,
                                 order_interval_secs=30, reduce_only=False))
    core.on_reply(resp("child-1", "ACK", cid="twap:T1:1", qty="2", remaining="2"))
    child = core.tracker.by_order_id("child-1")
    assert child is not None and child in twap.children
    assert child.strategy == "mm" and child.tags == frozenset({"rebalance"})


def test_replay_keeps_the_strategy_of_every_order() -> None:
    live = OmsCore()
    live.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal("1"), Decimal("200"),
                     "mm:bid-1", strategy="mm")
    live.place_twap(SYMBOL, Side.SELL, Decimal("4"), 2, 30, False, "arb:t-1", strategy="arb")
    rebuilt = OmsCore()
    replay(rebuilt, [("out", codec.encode(f)) for f in live.take_frames()])
    (order,) = list(rebuilt.tracker.orders())
    (twap,) = rebuilt.tracker.twaps()
    assert order.strategy == "mm" and order.own_client_order_id == "bid-1"
    assert twap.strategy == "arb" and twap.own_client_twap_id == "t-1"


# ---------------------------------------------------------------------- the resolver

def test_unacked_order_of_a_strategy_goes_by_its_namespaced_client_id(core: OmsCore) -> None:
    order = place(core, "mm", "bid-1")
    core.cancel(CancelIntent(order))
    assert cancels(core) == [(CancelIdType.CLIENT_ORDER_ID, "mm:bid-1")]


def test_same_client_id_in_two_strategies_never_cancels_the_other(core: OmsCore) -> None:
    mine = [place(core, "mm", "bid-1"), place(core, "mm", "bid-1")]
    theirs = place(core, "arb", "bid-1")
    for order in [*mine, theirs]:
        ack(core, order)
    requests = core.cancel_where(CancelScope(strategy="mm"))
    assert cancels(core) == [(CancelIdType.CLIENT_ORDER_ID, "mm:bid-1")]  # both of mine, one frame
    assert all(r.targets == mine for r in requests)


def test_group_with_an_outsider_goes_order_by_order(core: OmsCore) -> None:
    buy = place(core, "mm", "q")
    sell = place(core, "mm", "q", side=Side.SELL)
    ids = [ack(core, buy), ack(core, sell)]
    core.cancel_where(CancelScope(strategy="mm", side=Side.BUY))
    assert cancels(core) == [(CancelIdType.ORDER_ID, ids[0])]


def test_a_side_filter_never_uses_a_client_id_the_exchange_may_share_unseen(core: OmsCore) -> None:
    orders = [place(core, "mm", "q"), place(core, "mm", "q")]
    ids = [ack(core, o) for o in orders]
    core.cancel_where(CancelScope(strategy="mm", side=Side.BUY))
    # The book knows only buys under mm:q, but an unknown mm:q sell may rest on the exchange.
    assert sorted(cancels(core)) == sorted((CancelIdType.ORDER_ID, i) for i in ids)


def test_unattributed_and_twap_child_ids_are_never_cancelled_by_client_id_for_a_strategy() -> None:
    scope = CancelScope(strategy="mm")
    assert not unknown_members_in(scope, SYMBOL, "bid-1")
    assert not unknown_members_in(scope, SYMBOL, "twap:T1:1")
    assert not unknown_members_in(scope, SYMBOL, "arb:bid-1")
    assert unknown_members_in(scope, SYMBOL, "mm:bid-1")
    assert unknown_members_in(CancelScope(symbol=SYMBOL), SYMBOL, "anything")
    assert not unknown_members_in(CancelScope(symbol=SYMBOL, tags=frozenset({"a"})), SYMBOL, "mm:x")
    assert not group_by_client_id(scope, [], [])


def test_pending_order_sharing_an_unprefixed_id_in_a_strategy_scope_waits_for_its_ack(core: OmsCore) -> None:
    order = core.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal("1"),
                             Decimal("200"), "plain", strategy="mm")  # strategy given, id not namespaced
    core.take_frames()
    core.cancel_where(CancelScope(strategy="mm"))
    assert cancels(core) == []  # held: an order of no strategy may share "plain"
    order_id = ack(core, order)
    assert cancels(core) == [(CancelIdType.ORDER_ID, order_id)]


def test_symbol_scope_groups_by_client_id(core: OmsCore) -> None:
    orders = [place(core, None, "x"), place(core, None, "x"), place(core, None, "y", symbol=OTHER)]
    for order in orders:
        ack(core, order)
    core.cancel_where(CancelScope(symbol=SYMBOL))
    assert cancels(core) == [(CancelIdType.CLIENT_ORDER_ID, "x")]


def test_cancel_where_includes_twaps_of_the_scope_only(core: OmsCore) -> None:
    core.place_twap(SYMBOL, Side.BUY, Decimal("4"), 2, 30, False, "mm:t", strategy="mm")
    core.place_twap(SYMBOL, Side.BUY, Decimal("4"), 2, 30, False, "arb:t", strategy="arb")
    core.take_frames()
    core.cancel_where(CancelScope(strategy="mm"))
    assert cancels(core) == [(CancelIdType.CLIENT_TWAP_ID, "mm:t")]


# ---------------------------------------------------------------------- the property

@define
class Resting:
    """An order on the exchange: the truth, which the book may know only in part (or not at all)."""

    symbol: str
    side: Side
    strategy: str | None
    wire_cid: str
    tags: frozenset[str]
    order_id: str
    known: bool
    acked: bool

    def in_scope(self, scope: CancelScope) -> bool:
        return ((scope.symbol is None or scope.symbol == self.symbol)
                and (scope.side is None or scope.side == self.side)
                and (scope.strategy is None or scope.strategy == self.strategy)
                and (not scope.tags or scope.tags <= self.tags))


_resting = st.builds(
    lambda symbol, side, strategy, cid, tags, known, acked: (symbol, side, strategy, cid, tags, known, acked),
    st.sampled_from([SYMBOL, OTHER]), st.sampled_from([Side.BUY, Side.SELL]),
    st.sampled_from(["mm", "arb", None]), st.sampled_from(["bid-1", "bid-2", "twap:T9:1"]),
    st.frozensets(st.sampled_from(["a", "b"])), st.booleans(), st.booleans())
_scopes = st.builds(CancelScope, st.sampled_from([None, SYMBOL, OTHER]),
                    st.sampled_from([None, Side.BUY, Side.SELL]), st.sampled_from([None, "mm", "arb"]),
                    st.sampled_from([None, frozenset({"a"}), frozenset({"a", "b"})]))


@settings(max_examples=1500, deadline=None)
@given(st.lists(_resting, max_size=12), _scopes)
def test_no_frame_ever_touches_an_order_outside_the_intent(rows: list[tuple], scope: CancelScope) -> None:
    """The exchange's client-id membership includes orders the book does not know (another
    process's, a lost answer's): a client-id frame reaches every one of them."""
    core = OmsCore()
    exchange: list[Resting] = []
    book: dict[int, Resting] = {}
    # The ACKed ones first, each ACKed at once: an ACK binds the oldest pending order of its id.
    for symbol, side, strategy, cid, tags, known, acked in sorted(rows, key=lambda row: not row[6]):
        # Only a strategy names orders in its namespace; a TWAP child is named by QFEX.
        wire = cid if cid.startswith("twap:") else wire_client_id(strategy, cid)
        truth = Resting(symbol, side, strategy, wire, tags, new_id(), known, acked)
        exchange.append(truth)
        if known:
            order = core.place_order(symbol, side, OrderType.LIMIT, TimeInForce.GTC, Decimal("1"),
                                     Decimal("200"), wire, strategy=strategy, tags=tags)
            core.take_frames()
            if acked:
                ack_as(core, order, truth.order_id)
            book[order.local_id] = truth
    core.take_events()
    if scope.whole_account:
        return  # the shell's cancel_all_orders, by definition inside the intent

    core.cancel_where(scope)
    frames = core.take_frames()
    # Fewest frames: never more than one per order (a group's members not ACKed yet also get one
    # by id on their ACK, in case the group's frame reached the exchange before them).
    assert len(frames) <= sum(1 for r in book.values() if r.in_scope(scope))
    for order in list(core.tracker.pending_new()):  # held cancels go out on the ACK
        ack_as(core, order, book[order.local_id].order_id)
        frames += core.take_frames()

    touched: list[Resting] = []
    for frame in frames:
        assert isinstance(frame, m.CancelOrder)
        if frame.cancel_order_id_type is CancelIdType.ORDER_ID:
            touched += [r for r in exchange if r.order_id == frame.order_id]
        else:
            assert frame.cancel_order_id_type is CancelIdType.CLIENT_ORDER_ID
            touched += [r for r in exchange if r.symbol == frame.symbol and r.wire_cid == frame.order_id]
    outside = [r for r in touched if not r.in_scope(scope)]
    assert not outside, (scope, outside)
    # ... and every order the book knows in the intent is cancelled.
    assert {id(r) for r in book.values() if r.in_scope(scope)} <= {id(r) for r in touched}


@pytest.mark.parametrize("strategy", ["mm", None])
def test_view_cancel_by_own_client_id_maps_to_its_namespace(core: OmsCore, strategy: str | None) -> None:
    order = place(core, strategy, "bid-1")
    ack(core, order)
    core.cancel(CancelIntent(client_order_id=wire_client_id(strategy, "bid-1"), symbol=SYMBOL))
    assert cancels(core) == [(CancelIdType.CLIENT_ORDER_ID, wire_client_id(strategy, "bid-1"))]


def test_replay_gives_tags_noted_before_the_frame_back_to_the_order_and_twap() -> None:
    live = OmsCore()
    records: list[tuple[str, bytes]] = [
        ("note", attribution_note("order", SYMBOL, "mm:bid-1", frozenset({"quote", "l1"}))),
        ("note", attribution_note("twap", SYMBOL, "mm:t-1", frozenset({"rebalance"}))),
    ]
    live.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal("1"), Decimal("200"),
                     "mm:bid-1", strategy="mm")
    live.place_order(SYMBOL, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal("1"), Decimal("200"),
                     "mm:bid-1", strategy="mm")  # a second under the same id, with no tags noted
    live.place_twap(SYMBOL, Side.SELL, Decimal("4"), 2, 30, False, "mm:t-1", strategy="mm")
    records += [("out", codec.encode(f)) for f in live.take_frames()]
    rebuilt = OmsCore()
    stats = replay(rebuilt, records)  # type: ignore[arg-type]
    first, second = rebuilt.tracker.orders()
    assert stats.skipped == 0 and stats.notes == 2
    assert first.tags == frozenset({"quote", "l1"}) and second.tags == frozenset()
    assert rebuilt.tracker.twaps()[0].tags == frozenset({"rebalance"})
    # A reader that knows only settlement notes (the journal's compaction) finds no order in it.
    assert note_order_ids(records[0][1]) == []
