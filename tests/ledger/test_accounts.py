"""Balances now and at a past instant; history newest first with the balance after each entry."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import StatementError

from giftq.db import utcnow
from ledger import balance, capture, history, refund, release
from ledger.errors import InvalidRequest, UnknownMarketplace


def test_balance_of_an_unknown_account_is_zero(books) -> None:
    result = books.run(balance, account="nobody", marketplace="de")
    assert (result.account, result.marketplace, result.currency, result.amount) == ("nobody", "DE", "EUR", 0)
    with pytest.raises(UnknownMarketplace):
        books.run(balance, account="nobody", marketplace="XX")


def test_balance_at_past_instants(books) -> None:
    instants = [utcnow()]
    amounts = [0]
    books.fund("alice", 1000)
    instants.append(utcnow())
    amounts.append(1000)
    state = books.apply("alice", 400)
    instants.append(utcnow())
    amounts.append(600)
    books.run(release, state.checkout_id, amount=150, idempotency_key="release")
    instants.append(utcnow())
    amounts.append(750)
    books.fund("alice", 50)
    instants.append(utcnow())
    amounts.append(800)
    for at, expected in zip(instants, amounts, strict=True):
        result = books.run(balance, account="alice", marketplace="US", at=at)
        assert (result.amount, result.at) == (expected, at)
    assert books.run(balance, account="alice", marketplace="US").amount == 800
    assert books.run(balance, account="alice", marketplace="US").at is None
    long_ago = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert books.run(balance, account="alice", marketplace="US", at=long_ago).amount == 0
    # Another time zone names the same instant.
    tokyo = instants[2].astimezone(dt.timezone(dt.timedelta(hours=9)))
    assert books.run(balance, account="alice", marketplace="US", at=tokyo).amount == 600


def test_balance_at_refuses_a_naive_datetime(books) -> None:
    books.fund("alice", 10)
    with pytest.raises(StatementError, match="naive datetime"):
        books.run(balance, account="alice", marketplace="US", at=dt.datetime(2030, 1, 1))


def make_history(books) -> list[tuple[str, int]]:
    """Wallet movements of alice, oldest first, as (transaction kind, amount)."""
    moves = []
    for amount in (1000, 250, 75):
        books.fund("alice", amount)
        moves.append(("redeem", amount))
    held = books.apply("alice", 600)
    moves.append(("hold", -600))
    books.run(release, held.checkout_id, amount=100, idempotency_key="rel")
    moves.append(("release", 100))
    books.run(capture, held.checkout_id, idempotency_key="cap")
    books.run(refund, held.checkout_id, amount=200, idempotency_key="ref")
    moves.append(("refund", 200))
    books.fund("bob", 999)  # someone else's entries never show
    for amount in (5, 6, 7, 8):
        books.fund("alice", amount)
        moves.append(("redeem", amount))
    return moves


@pytest.mark.parametrize("limit", [1, 3, 4, 50])
def test_history_pages_newest_first_with_running_balance(books, limit: int) -> None:
    moves = make_history(books)
    items, cursor, pages = [], None, 0
    while True:
        page = books.run(history, account="alice", marketplace="US", cursor=cursor, limit=limit)
        assert page.currency == "USD"
        assert len(page.items) <= limit
        items += page.items
        pages += 1
        cursor = page.next_cursor
        if cursor is None:
            break
        assert len(page.items) == limit
    assert pages == -(-len(moves) // limit)
    assert [(i.kind, i.amount) for i in items] == list(reversed(moves))
    assert len({i.entry_id for i in items}) == len(items)
    assert [i.entry_id for i in items] == sorted((i.entry_id for i in items), reverse=True)
    running = 0
    for item in reversed(items):
        running += item.amount
        assert item.balance_after == running
        assert item.balance_after >= 0
    assert items[0].balance_after == books.balance("alice")
    assert [i.posted_at for i in items] == sorted((i.posted_at for i in items), reverse=True)


def test_history_of_an_unknown_account_is_empty(books) -> None:
    page = books.run(history, account="nobody", marketplace="JP")
    assert (page.currency, page.items, page.next_cursor) == ("JPY", [], None)


@pytest.mark.parametrize("cursor", ["", "not-a-cursor", "eA", "!!!!"])
def test_history_refuses_a_forged_cursor(books, cursor: str) -> None:
    books.fund("alice", 10)
    with pytest.raises(InvalidRequest, match="cursor"):
        books.run(history, account="alice", marketplace="US", cursor=cursor)


@pytest.mark.parametrize("limit", [0, 501])
def test_history_limit_is_bounded(books, limit: int) -> None:
    with pytest.raises(InvalidRequest, match="limit"):
        books.run(history, account="alice", marketplace="US", limit=limit)
