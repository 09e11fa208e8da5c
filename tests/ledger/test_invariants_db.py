"""Invariants the database enforces on its own: raw SQL through a session, past the Python API."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from giftq.db import is_sqlite
from ledger import capture, sqlutil, void_card
from ledger.models import Entry

POSTED = "'2030-01-01 00:00:00.000000'"


def scalar(session: Session, sql: str, **params: object) -> int:
    return int(session.execute(text(sql), params).scalar_one())


def ids(books) -> dict[str, int]:
    """A funded wallet, an unredeemed card's account, the funding and revenue accounts."""
    card = books.issue_one(1000)
    books.fund("alice", 500)
    books.run(capture, books.apply("alice", 100).checkout_id, idempotency_key="c")  # opens revenue
    with books.Session() as s:
        return {
            "card": scalar(s, "SELECT account_id FROM ledger_cards WHERE id = :i", i=card.card_id),
            "card_id": card.card_id,
            "wallet": scalar(s, "SELECT id FROM ledger_accounts WHERE kind = 'wallet' AND owner = 'alice'"),
            "funding": scalar(s, "SELECT id FROM ledger_accounts WHERE kind = 'funding'"),
            "revenue": scalar(s, "SELECT id FROM ledger_accounts WHERE kind = 'revenue'"),
        }


def post_raw(session: Session, legs: Sequence[tuple[int, int]], currency: str = "USD") -> int:
    """Insert a ledger transaction by hand, in the order the ledger itself uses on each engine."""
    entry = (
        "INSERT INTO ledger_entries (transaction_id, account_id, currency, amount, posted_at)"
        f" VALUES (:t, :a, :c, :n, {POSTED})"
    )
    if is_sqlite(session):
        txn = scalar(session, "SELECT coalesce(max(id), 0) + 1 FROM ledger_transactions")
        for account, amount in legs:
            session.execute(text(entry), {"t": txn, "a": account, "c": currency, "n": amount})
        session.execute(
            text(f"INSERT INTO ledger_transactions (id, kind, posted_at) VALUES (:t, 'raw', {POSTED})"),
            {"t": txn},
        )
    else:
        txn = scalar(
            session,
            f"INSERT INTO ledger_transactions (kind, posted_at) VALUES ('raw', {POSTED}) RETURNING id",
        )
        for account, amount in legs:
            session.execute(text(entry), {"t": txn, "a": account, "c": currency, "n": amount})
    return txn


def refused(books, *statements: str, match: str, **params: object) -> None:
    """Every statement runs in one transaction, committed; the database must refuse."""
    with pytest.raises(IntegrityError, match=match), books.Session.begin() as session:
        for statement in statements:
            session.execute(text(statement), params)


def test_a_balanced_raw_transaction_is_accepted(books) -> None:
    acct = ids(books)
    with books.Session.begin() as session:
        post_raw(session, [(acct["wallet"], -400), (acct["revenue"], 400)])
    assert books.balance("alice") == 0
    books.reconciled()


def test_entries_and_transactions_are_append_only(books) -> None:
    ids(books)
    before = books.counts()
    for statement, table in [
        ("UPDATE ledger_entries SET amount = amount + 1", "ledger_entries"),
        ("UPDATE ledger_entries SET posted_at = posted_at", "ledger_entries"),
        ("DELETE FROM ledger_entries", "ledger_entries"),
        ("DELETE FROM ledger_entries WHERE amount < 0", "ledger_entries"),
        ("UPDATE ledger_transactions SET kind = 'other'", "ledger_transactions"),
        ("DELETE FROM ledger_transactions", "ledger_transactions"),
    ]:
        refused(books, statement, match=f"{table} is append-only")
    assert books.counts() == before
    books.reconciled()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("table", ["ledger_entries", "ledger_transactions"])
def test_truncate_is_refused_on_postgresql(books, table: str) -> None:
    ids(books)
    refused(books, f"TRUNCATE {table} CASCADE", match="append-only: TRUNCATE refused")
    books.reconciled()


def test_an_unbalanced_raw_transaction_is_refused(books) -> None:
    acct = ids(books)
    before = books.counts()
    session = books.Session()
    try:
        session.begin()
        if is_sqlite(session):
            # No deferred triggers: inserting the transaction row, after its entries, checks them.
            with pytest.raises(IntegrityError, match="does not sum to zero"):
                post_raw(session, [(acct["card"], 100), (acct["funding"], -99)])
        else:
            # Every statement succeeds; the deferred constraint trigger refuses at COMMIT.
            post_raw(session, [(acct["card"], 100), (acct["funding"], -99)])
            with pytest.raises(IntegrityError, match="does not sum to zero in USD"):
                session.commit()
    finally:
        session.rollback()
        session.close()
    assert books.counts() == before
    books.reconciled()


def test_a_one_legged_raw_transaction_is_refused(books) -> None:
    acct = ids(books)
    with (
        pytest.raises(IntegrityError, match="at least two"),
        books.Session.begin() as session,
    ):
        post_raw(session, [(acct["funding"], 5)])


def test_entries_cannot_join_an_already_posted_transaction(books) -> None:
    acct = ids(books)
    txn = books.sql("SELECT max(id) FROM ledger_transactions")[0][0]
    refused(
        books,
        "INSERT INTO ledger_entries (transaction_id, account_id, currency, amount, posted_at)"
        f" VALUES (:t, :a, 'USD', 5, {POSTED}), (:t, :f, 'USD', -5, {POSTED})",
        match="(same database transaction|already posted)",
        t=txn,
        a=acct["card"],
        f=acct["funding"],
    )


def test_an_entry_in_another_currency_than_its_account_is_refused(books) -> None:
    acct = ids(books)
    with pytest.raises(IntegrityError, match="currency differs"), books.Session.begin() as session:
        post_raw(session, [(acct["card"], 100), (acct["funding"], -100)], currency="EUR")


def test_a_wallet_cannot_go_below_zero(books) -> None:
    acct = ids(books)
    assert books.balance("alice") == 400
    with pytest.raises(IntegrityError, match="balance_floor"), books.Session.begin() as session:
        post_raw(session, [(acct["wallet"], -401), (acct["revenue"], 401)])
    assert books.balance("alice") == 400
    books.reconciled()


def test_a_card_cannot_go_below_zero(books) -> None:
    acct = ids(books)
    with pytest.raises(IntegrityError, match="balance_floor"), books.Session.begin() as session:
        post_raw(session, [(acct["card"], -1001), (acct["wallet"], 1001)])


def test_a_direct_balance_update_is_refused(books) -> None:
    acct = ids(books)
    for value in ("balance + 1", "balance - 1", "0"):
        refused(
            books,
            f"UPDATE ledger_accounts SET balance = {value} WHERE id = :i",
            match="changes only by posting entries",
            i=acct["wallet"],
        )
    # Writing back the same value changes nothing; PostgreSQL and SQLite both let it pass.
    books.sql("UPDATE ledger_accounts SET balance = balance WHERE id = :i", i=acct["wallet"])
    assert books.balance("alice") == 400


def test_a_funding_account_cannot_carry_a_balance(books) -> None:
    acct = ids(books)
    refused(
        books,
        "UPDATE ledger_accounts SET balance = 0 WHERE id = :i",
        match="(balance|posting)",
        i=acct["funding"],
    )


def test_a_card_is_redeemed_at_most_once(books) -> None:
    card = books.issue_one(300)
    result = books.redeem(card.code.reveal(), "alice")
    refused(
        books,
        "INSERT INTO ledger_redemptions (card_id, wallet_account_id, transaction_id, redeemed_at)"
        f" SELECT card_id, wallet_account_id, transaction_id, {POSTED} FROM ledger_redemptions"
        " WHERE card_id = :c",
        match="(unique|UNIQUE)",
        c=result.card_id,
    )


def test_a_redeemed_or_voided_card_never_changes(books) -> None:
    redeemed, voided = books.issue(300, 400)
    books.redeem(redeemed.code.reveal(), "alice")
    books.run(void_card, voided.card_id, idempotency_key="v")
    update = "UPDATE ledger_cards SET status = :s WHERE id = :i"
    for status in ("active", "inactive", "voided"):
        refused(books, update, match="redeemed", s=status, i=redeemed.card_id)
    for status in ("active", "inactive", "redeemed"):
        refused(books, update, match="voided", s=status, i=voided.card_id)


def test_a_cards_code_and_amount_never_change(books) -> None:
    card = books.issue_one(300)
    for change in ("amount = amount + 1", "code_hash = :h"):
        refused(
            books,
            f"UPDATE ledger_cards SET {change} WHERE id = :i",
            match="never change",
            i=card.card_id,
            h=b"\x00" * 32,
        )


def test_checkout_figures_stay_consistent(books) -> None:
    books.fund("alice", 500)
    state = books.apply("alice", 300)
    for change, constraint in [
        ("refunded = captured + 1", "refund_within_captured"),
        ("captured = held + 1", "settled_within_held"),
        ("released = -1", "non_negative"),
    ]:
        refused(
            books,
            f"UPDATE ledger_checkouts SET {change} WHERE id = :i",
            match=constraint,
            i=state.checkout_id,
        )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_rows_copied_in_meet_the_same_checks(books, monkeypatch: pytest.MonkeyPatch) -> None:
    """COPY, which bulk issuance uses, fires the same triggers as INSERT (here for two rows)."""
    monkeypatch.setattr(sqlutil, "COPY_FROM_ROWS", 2)
    acct = ids(books)
    before = books.counts()
    posted = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    for legs, currency, match in [
        ([(acct["card"], 100), (acct["funding"], -99)], "USD", "does not sum to zero"),
        ([(acct["card"], -1001), (acct["wallet"], 1001)], "USD", "balance_floor"),
        ([(acct["card"], 5), (acct["funding"], -5)], "EUR", "currency differs"),
    ]:
        with pytest.raises(IntegrityError, match=match), books.Session.begin() as session:
            txn = scalar(
                session,
                f"INSERT INTO ledger_transactions (kind, posted_at) VALUES ('raw', {POSTED}) RETURNING id",
            )
            rows = [
                {
                    "transaction_id": txn,
                    "account_id": a,
                    "currency": currency,
                    "amount": n,
                    "posted_at": posted,
                }
                for a, n in legs
            ]
            sqlutil.copy_many(session, Entry, rows)
    assert books.counts() == before
    books.reconciled()
