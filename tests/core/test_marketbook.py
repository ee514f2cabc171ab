"""The local market book, synchronously: reading a level2 image, refusing what cannot be trusted
(backwards sequence, older frame, crossed or negative book) without touching the book, and a
hypothesis run that random images and increments keep it uncrossed and equal to a reference."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given
from hypothesis import strategies as st

from qfex_oms.core.marketbook import Applied, Ignored, MarketBook, MarketBooks, ResyncNeeded
from qfex_oms.protocol import mds

SYM = "AAPL-USD"


def image(bid: list[tuple[str, str]], ask: list[tuple[str, str]], seq: int | None = None,
          t: int | None = None) -> mds.BookImage:
    return mds.BookImage(SYM, tuple((D(p), D(s)) for p, s in bid), tuple((D(p), D(s)) for p, s in ask),
                         seq, t)


def test_image_gives_best_mid_spread_depth() -> None:
    book = MarketBook(SYM)
    result = book.apply(image([("100", "1"), ("99.5", "2"), ("99", "3")], [("101", "4"), ("102", "5")],
                              seq=1, t=10), received=5.0)
    assert result == Applied(SYM, mds.LEVEL2)
    assert (book.best_bid, book.best_ask, book.mid, book.spread) == (D(100), D(101), D("100.5"), D(1))
    assert book.depth(2) == ([(D(100), D(1)), (D("99.5"), D(2))], [(D(101), D(4)), (D(102), D(5))])
    quote = book.bbo()
    assert quote is not None and (quote.bid_price, quote.ask_size) == (D(100), D(4))
    assert (quote.stamp.exchange_ns, quote.stamp.received) == (10, 5.0)
    # A full image replaces everything, levels missing from it included; order on the wire does not matter.
    book.apply(image([("98", "1"), ("98.5", "1")], [], seq=2, t=11), 6.0)
    assert book.depth() == ([(D("98.5"), D(1)), (D(98), D(1))], [])
    assert book.mid is None and book.spread is None


def test_empty_book_reads_none() -> None:
    book = MarketBook(SYM)
    assert (book.best_bid, book.best_ask, book.mid, book.bbo(), book.mark) == (None, None, None, None, None)
    assert book.stale(now=0.0, seconds=1.0)


def _refused(book: MarketBook, message: mds.MdsMessage, fragment: str) -> None:
    before = book.depth(), book.bbo(), book.mark
    result = book.apply(message, 9.0)
    assert isinstance(result, ResyncNeeded) and fragment in result.reason, result
    assert (book.depth(), book.bbo(), book.mark) == before  # untouched
    assert book.needs_resync is not None and book.stale(now=9.0, seconds=100.0)


def test_backwards_sequence_older_frame_crossed_negative_are_refused_then_recovered() -> None:
    book = MarketBook(SYM)
    book.apply(image([("100", "1")], [("101", "1")], seq=10, t=1000), 1.0)
    _refused(book, image([("100", "2")], [("101", "1")], seq=9, t=2000), "backwards")
    _refused(book, image([("100", "2")], [("101", "1")], seq=11, t=999), "older")
    _refused(book, image([("101", "1")], [("101", "1")], seq=11, t=1001), "crossed")
    _refused(book, image([("100", "-1")], [("101", "1")], seq=11, t=1001), "<= 0")
    _refused(book, image([("100", "1"), ("100", "2")], [("101", "1")], seq=11, t=1001), "repeated")
    assert book.apply(image([("100", "3")], [("101", "1")], seq=11, t=1001), 10.0) == Applied(SYM, mds.LEVEL2)
    assert book.needs_resync is None and book.depth(1)[0] == [(D(100), D(3))]
    assert not book.stale(now=10.5, seconds=1.0) and book.stale(now=12.0, seconds=1.0)


def test_restart_accepts_a_venue_whose_sequence_started_again() -> None:
    book = MarketBook(SYM)
    book.apply(image([("100", "1")], [], seq=500, t=1000), 1.0)
    assert isinstance(book.apply(image([("100", "2")], [], seq=1, t=5), 2.0), ResyncNeeded)
    book.restart()
    assert isinstance(book.apply(image([("100", "2")], [], seq=1, t=5), 3.0), Applied)


def test_bbo_mark_funding_trades() -> None:
    book = MarketBook(SYM, trade_history=2)
    book.apply(mds.Bbo(SYM, ((D(10), D(1)),), ((D(11), D(2)),), 1, 100), 1.0)
    quote = book.bbo()
    assert quote is not None and quote.mid == D("10.5") and quote.stamp.exchange_ns == 100
    assert isinstance(book.apply(mds.Bbo(SYM, ((D(12), D(1)),), ((D(11), D(2)),), 2, 101), 2.0), ResyncNeeded)
    book.apply(mds.MarkPrice(SYM, D("10.4"), 200), 3.0)
    assert book.mark is not None and book.mark.price == D("10.4") and book.mark.stamp.received == 3.0
    assert isinstance(book.apply(mds.MarkPrice(SYM, D("10.3"), 199), 4.0), ResyncNeeded)
    book.apply(mds.Funding(SYM, D("0.021"), 30, 1, 5), 3.0)
    assert book.funding is not None and (book.funding.rate, book.funding.time_remaining) == (D("0.021"), 30)
    for n in range(3):
        book.apply(mds.PublicTrade(SYM, D(10 + n), D(1), "BUY", f"t{n}"), 5.0)
    assert [t.trade_id for t in book.trades] == ["t1", "t2"]  # bounded
    assert isinstance(book.apply(mds.PublicTrade(SYM, D(1), D(1), "BUY", "t2"), 6.0), Ignored)
    assert isinstance(book.apply(mds.PublicTrade(SYM, D(1), D(1), "BUY", "t0"), 6.0), Applied)  # evicted id


def test_bbo_is_the_fresher_of_channel_and_image() -> None:
    book = MarketBook(SYM)
    book.apply(mds.Bbo(SYM, ((D(10), D(1)),), ((D(11), D(2)),)), 1.0)
    book.apply(image([("10.5", "1")], [("10.7", "1")]), 2.0)
    quote = book.bbo()
    assert quote is not None and quote.bid_price == D("10.5")
    book.apply(mds.Bbo(SYM, ((D("10.6"), D(1)),), ((D("10.7"), D(2)),)), 3.0)
    quote = book.bbo()
    assert quote is not None and quote.bid_price == D("10.6")


def test_market_stats_fans_out() -> None:
    books = MarketBooks()
    stats = mds.MarketStats("*", bbos=(mds.StatsBbo("A", ((D(1), D(1)),), ((D(2), D(1)),)),),
                            mark_prices=(mds.MarkPrice("B", D(5)),))
    assert books.apply(stats, 1.0) == [Applied("A", mds.BBO), Applied("B", mds.MARK_PRICE)]
    mark = books.book("B").mark
    assert mark is not None and mark.price == D(5)
    assert isinstance(books.apply(mds.UnknownMessage("x", {}), 1.0)[0], Ignored)


def test_increments() -> None:
    book = MarketBook(SYM)
    assert isinstance(book.apply_increment(True, D(100), D(1), 1.0, sequence=1), Applied)
    book.apply_increment(False, D(101), D(1), 1.0, sequence=2)
    assert isinstance(book.apply_increment(True, D(101), D(1), 1.0, sequence=3), ResyncNeeded)  # would cross
    assert isinstance(book.apply_increment(True, D(99), D(1), 1.0, sequence=1), ResyncNeeded)  # backwards
    book.apply_increment(True, D(100), D(0), 1.0, sequence=4)
    assert book.best_bid is None and book.best_ask == D(101)


prices = st.integers(min_value=1, max_value=60).map(lambda n: D(n) / 2)
sizes = st.integers(min_value=0, max_value=5).map(D)
levels = st.dictionaries(prices, sizes.filter(bool), max_size=25)
ops = st.one_of(
    st.tuples(st.just("image"), levels, levels),
    st.tuples(st.just("inc"), st.booleans(), prices, sizes),
)


@given(st.lists(ops, max_size=60))
def test_random_images_and_increments_keep_the_book_uncrossed_and_equal_to_a_reference(operations) -> None:
    book = MarketBook(SYM)
    ref: dict[bool, dict[D, D]] = {True: {}, False: {}}
    for n, op in enumerate(operations, start=1):
        if op[0] == "image":
            _, bid, ask = op
            message = mds.BookImage(SYM, tuple(bid.items()), tuple(ask.items()), sequence=n)
            if isinstance(book.apply(message, float(n)), Applied):
                ref = {True: dict(bid), False: dict(ask)}
            else:
                assert bid and ask and max(bid) >= min(ask)
        else:
            _, is_bid, price, size = op
            if isinstance(book.apply_increment(is_bid, price, size, float(n), sequence=n), Applied):
                if size:
                    ref[is_bid][price] = size
                else:
                    ref[is_bid].pop(price, None)
        bids, asks = book.depth()
        assert bids == sorted(ref[True].items(), reverse=True)
        assert asks == sorted(ref[False].items())
        if bids and asks:
            assert bids[0][0] < asks[0][0]
