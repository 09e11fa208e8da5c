"""Reconciliation: per currency, where the money is; and every broken invariant, named."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from giftq.db import is_sqlite
from ledger import capture, reconcile, release, void_card


def report(books):
    with books.Session() as session:
        return reconcile(session)


def test_an_empty_ledger_reconciles(books) -> None:
    result = report(books)
    assert (result.ok, result.currencies, result.problems) == (True, [], [])


def test_figures_per_currency(books) -> None:
    spent, _unspent = books.issue(6000, 4000)
    books.redeem(spent.code.reveal(), "alice")
    state = books.apply("alice", 2500)
    books.run(capture, state.checkout_id, amount=1000, idempotency_key="c")
    books.run(release, state.checkout_id, amount=500, idempotency_key="r")
    voided, _ = books.issue(300, 200, marketplace="DE")
    books.run(void_card, voided.card_id, idempotency_key="v")
    books.issue(10_000, marketplace="JP")

    result = report(books)
    assert result.ok, result.problems
    figures = {
        t.currency: (t.card, t.wallet, t.hold, t.revenue, t.funding, t.outstanding_liability, t.total)
        for t in result.currencies
    }
    assert figures == {
        "EUR": (200, 0, 0, 0, -200, 200, 0),
        "JPY": (10_000, 0, 0, 0, -10_000, 10_000, 0),
        "USD": (4000, 4000, 1000, 1000, -10_000, 9000, 0),
    }
    assert [t.currency for t in result.currencies] == ["EUR", "JPY", "USD"]


@contextmanager
def tampering(books) -> Iterator[Session]:
    """A transaction with the database's guards off: what a bad migration or a DBA could do."""
    with books.Session.begin() as session:
        if is_sqlite(session):
            names = session.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger'")).scalars()
            for name in list(names):
                session.execute(text(f'DROP TRIGGER "{name}"'))
        else:
            session.execute(text("SET LOCAL session_replication_role = replica"))
        yield session


def wallet_id(books, owner: str) -> int:
    return books.sql("SELECT id FROM ledger_accounts WHERE kind = 'wallet' AND owner = :o", o=owner)[0][0]


def test_a_stale_stored_balance_is_reported(books) -> None:
    books.fund("alice", 500)
    wallet = wallet_id(books, "alice")
    with tampering(books) as session:
        session.execute(text("UPDATE ledger_accounts SET balance = balance + 1 WHERE id = :i"), {"i": wallet})
    result = report(books)
    assert not result.ok
    assert any("stored balance 501 but entries sum to 500" in p for p in result.problems), result.problems


def test_an_unbalanced_transaction_is_reported(books) -> None:
    result = books.fund("alice", 500)
    with tampering(books) as session:
        session.execute(
            text(
                "INSERT INTO ledger_entries (transaction_id, account_id, currency, amount, posted_at)"
                " SELECT transaction_id, account_id, currency, 7, posted_at FROM ledger_entries"
                " WHERE transaction_id = :t AND amount > 0"
            ),
            {"t": result.transaction_id},
        )
    problems = report(books).problems
    assert f"transaction {result.transaction_id} does not sum to zero in USD (7)" in problems
    assert "USD: accounts sum to 7, not zero" in problems


def test_a_card_whose_account_disagrees_with_its_status_is_reported(books) -> None:
    card = books.issue_one(800)
    books.redeem(card.code.reveal(), "alice")
    with tampering(books) as session:
        session.execute(text("UPDATE ledger_cards SET status = 'active' WHERE id = :i"), {"i": card.card_id})
    problems = report(books).problems
    assert f"card {card.card_id} is active with face value 800 but its account holds 0" in problems


def test_a_checkout_whose_hold_disagrees_is_reported(books) -> None:
    books.fund("alice", 500)
    state = books.apply("alice", 300)
    with tampering(books) as session:
        session.execute(
            text("UPDATE ledger_checkouts SET captured = 100 WHERE id = :id"), {"id": state.checkout_id}
        )
    problems = report(books).problems
    assert f"checkout {state.checkout_id}: hold account holds 300, expected 200" in problems


@pytest.mark.parametrize("database_url", ["postgresql-fresh"], indirect=True)
def test_a_negative_balance_is_reported(books) -> None:
    # Only reachable by removing the CHECK itself (SQLite cannot drop a CHECK in place);
    # a database of its own, since the schema changes.
    books.fund("alice", 500)
    wallet = wallet_id(books, "alice")
    with tampering(books) as session:
        session.execute(text("ALTER TABLE ledger_accounts DROP CONSTRAINT ck_ledger_accounts_balance_floor"))
        session.execute(text("UPDATE ledger_accounts SET balance = -1 WHERE id = :id"), {"id": wallet})
    problems = report(books).problems
    assert f"wallet account {wallet} is below zero" in problems
