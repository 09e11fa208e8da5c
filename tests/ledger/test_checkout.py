"""Checkout: hold up to the order total, capture or release, refund within what was captured."""

from __future__ import annotations

import pytest

from ledger import apply_balance, capture, reconcile, refund, release
from ledger.errors import InsufficientFunds, InvalidRequest, NotFound


def settle(books, fn, checkout_id: int, amount: int | None = None):
    kwargs = {} if amount is None else {"amount": amount}
    return books.run(fn, checkout_id, idempotency_key=books.key(fn.__name__), **kwargs)


def usd(books):
    with books.Session() as session:
        return {t.currency: t for t in reconcile(session).currencies}["USD"]


def test_hold_covers_the_whole_order_when_the_balance_allows(books) -> None:
    books.fund("alice", 5000)
    state = books.apply("alice", 3000, order="order-7")
    assert (state.held, state.remaining_to_pay, state.outstanding) == (3000, 0, 3000)
    assert (state.order_ref, state.order_total, state.currency) == ("order-7", 3000, "USD")
    assert books.balance("alice") == 2000
    totals = usd(books)
    assert (totals.wallet, totals.hold, totals.outstanding_liability) == (2000, 3000, 5000)
    books.reconciled()


def test_hold_stops_at_the_balance_and_says_what_is_left_to_pay(books) -> None:
    books.fund("alice", 1200)
    state = books.apply("alice", 5000)
    assert (state.held, state.remaining_to_pay) == (1200, 3800)
    assert books.balance("alice") == 0


@pytest.mark.parametrize("funded", [False, True])
def test_a_zero_balance_holds_nothing(books, funded: bool) -> None:
    if funded:
        books.fund("alice", 500)
        books.apply("alice", 500, order="spends-it-all")
    before = books.counts()
    state = books.apply("alice", 2500, order="order-2")
    assert state.checkout_id is None
    assert (state.held, state.remaining_to_pay, state.outstanding) == (0, 2500, 0)
    after = books.counts()
    assert (after["transactions"], after["checkouts"]) == (before["transactions"], before["checkouts"])
    books.reconciled()


def test_capture_part_then_the_rest(books) -> None:
    books.fund("alice", 5000)
    state = books.apply("alice", 4000)
    part = settle(books, capture, state.checkout_id, 1500)
    assert (part.captured, part.outstanding) == (1500, 2500)
    rest = settle(books, capture, state.checkout_id)
    assert (rest.captured, rest.released, rest.outstanding) == (4000, 0, 0)
    with pytest.raises(InsufficientFunds):
        settle(books, capture, state.checkout_id, 1)
    with pytest.raises(InsufficientFunds):
        settle(books, capture, state.checkout_id)
    totals = usd(books)
    assert (totals.wallet, totals.hold, totals.revenue) == (1000, 0, 4000)
    books.reconciled()


def test_release_gives_the_hold_back(books) -> None:
    books.fund("alice", 5000)
    state = books.apply("alice", 4000)
    settle(books, capture, state.checkout_id, 1000)
    released = settle(books, release, state.checkout_id, 500)
    assert (released.captured, released.released, released.outstanding) == (1000, 500, 2500)
    assert books.balance("alice") == 1500
    everything = settle(books, release, state.checkout_id)
    assert (everything.released, everything.outstanding) == (3000, 0)
    assert books.balance("alice") == 4000
    with pytest.raises(InsufficientFunds, match="0 USD held"):
        settle(books, release, state.checkout_id, 1)
    books.reconciled()


def test_settling_more_than_is_held_is_refused(books) -> None:
    books.fund("alice", 5000)
    state = books.apply("alice", 2000)
    for fn in (capture, release):
        with pytest.raises(InsufficientFunds, match="2000 USD held"):
            settle(books, fn, state.checkout_id, 2001)
    with pytest.raises(InvalidRequest):
        settle(books, capture, state.checkout_id, -5)
    assert books.balance("alice") == 3000


def test_refund_never_exceeds_what_was_captured(books) -> None:
    books.fund("alice", 5000)
    state = books.apply("alice", 3000)
    settle(books, capture, state.checkout_id, 2000)
    settle(books, release, state.checkout_id)
    assert books.balance("alice") == 3000
    first = settle(books, refund, state.checkout_id, 1500)
    assert (first.captured, first.refunded) == (2000, 1500)
    with pytest.raises(InsufficientFunds, match="500 USD captured and not refunded"):
        settle(books, refund, state.checkout_id, 501)
    last = settle(books, refund, state.checkout_id, 500)
    assert last.refunded == 2000
    with pytest.raises(InsufficientFunds):
        settle(books, refund, state.checkout_id, 1)
    assert books.balance("alice") == 5000
    totals = usd(books)
    assert (totals.wallet, totals.revenue, totals.hold) == (5000, 0, 0)
    books.reconciled()


def test_refund_before_capture_is_refused(books) -> None:
    books.fund("alice", 100)
    state = books.apply("alice", 100)
    with pytest.raises(InsufficientFunds):
        settle(books, refund, state.checkout_id, 1)
    with pytest.raises(InvalidRequest):
        settle(books, refund, state.checkout_id, 0)


def test_checkouts_are_per_account_and_marketplace(books) -> None:
    books.fund("alice", 1000)
    books.fund("alice", 700, "CA")
    books.fund("bob", 300)
    us = books.apply("alice", 5000)
    ca = books.apply("alice", 5000, "CA")
    assert (us.held, us.currency, ca.held, ca.currency) == (1000, "USD", 700, "CAD")
    assert books.balance("bob") == 300


def test_unknown_checkout_and_bad_arguments(books) -> None:
    for fn in (capture, release):
        with pytest.raises(NotFound):
            books.run(fn, 424242, idempotency_key=books.key())
    with pytest.raises(NotFound):
        books.run(refund, 424242, amount=5, idempotency_key=books.key())
    for order_ref in ("", "o" * 201):
        with pytest.raises(InvalidRequest, match="order_ref"):
            books.run(
                apply_balance,
                account="alice",
                marketplace="US",
                order_ref=order_ref,
                order_total=5,
                idempotency_key=books.key(),
            )
    with pytest.raises(InvalidRequest):
        books.apply("alice", 0)
