"""Posting: balanced transactions only, integer money only; JPY has no minor unit."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from ledger import (
    CardSpec,
    apply_balance,
    balance,
    capture,
    issue_cards,
    reconcile,
    refund,
    release,
)
from ledger.accounts import funding_account, open_account, revenue_account
from ledger.errors import InvalidRequest
from ledger.models import AccountKind, Entry, LedgerTransaction
from ledger.posting import Leg, check_amount, post

NOT_MONEY = [1.0, 12.5, Decimal("10"), True, False, "100", None]


@pytest.mark.parametrize("amount", NOT_MONEY, ids=repr)
def test_check_amount_refuses_anything_but_int(amount: object) -> None:
    with pytest.raises(TypeError, match="int count of minor units"):
        check_amount(amount)


@pytest.mark.parametrize("amount", [0, -1, -500])
def test_check_amount_refuses_non_positive(amount: int) -> None:
    with pytest.raises(InvalidRequest, match="positive"):
        check_amount(amount)


def test_check_amount_accepts_int() -> None:
    assert check_amount(1) == 1
    assert check_amount(10**12) == 10**12


@pytest.mark.parametrize(
    "legs, error",
    [
        ([Leg(1, "USD", 5)], "at least two legs"),
        ([Leg(1, "USD", 5), Leg(2, "USD", -4)], "does not sum to zero"),
        ([Leg(1, "USD", 5), Leg(2, "EUR", -5)], "does not sum to zero"),
        ([Leg(1, "USD", 0), Leg(2, "USD", 0)], "zero moves nothing"),
    ],
)
def test_post_refuses_unbalanced_legs_before_the_database(legs: list[Leg], error: str) -> None:
    # No session at all: the refusal must come before any statement.
    with pytest.raises(InvalidRequest, match=error):
        post(None, "test", legs)  # type: ignore[arg-type]


@pytest.mark.parametrize("amount", [5.0, Decimal(5), True])
def test_post_refuses_non_int_legs(amount: object) -> None:
    with pytest.raises(TypeError):
        post(None, "test", [Leg(1, "USD", amount), Leg(2, "USD", -5)])  # type: ignore[arg-type]


def test_post_writes_one_balanced_transaction(books) -> None:
    def move(session):
        card = open_account(session, AccountKind.CARD, "US", None)
        funding = funding_account(session, "US")
        txn = post(session, "test", [Leg(card, "USD", 700), Leg(funding, "USD", -700)])
        return txn, card, funding

    txn, card, funding = books.run(move)
    with books.Session() as session:
        entries = session.execute(
            select(Entry.account_id, Entry.amount).where(Entry.transaction_id == txn).order_by(Entry.id)
        ).all()
        assert [tuple(e) for e in entries] == [(card, 700), (funding, -700)]
        assert session.get(LedgerTransaction, txn).kind == "test"
    books.reconciled()


def test_post_balances_per_currency_in_one_transaction(books) -> None:
    def move(session):
        legs = [
            Leg(open_account(session, AccountKind.CARD, "US", None), "USD", 100),
            Leg(funding_account(session, "US"), "USD", -100),
            Leg(open_account(session, AccountKind.CARD, "DE", None), "EUR", 90),
            Leg(funding_account(session, "DE"), "EUR", -90),
        ]
        return post(session, "test", legs)

    books.run(move)
    with books.Session() as session:
        totals = {t.currency: t for t in reconcile(session).currencies}
    assert (totals["USD"].card, totals["EUR"].card) == (100, 90)
    books.reconciled()


def test_an_entry_in_another_currency_than_its_account_is_refused(books) -> None:
    def move(session):
        card = open_account(session, AccountKind.CARD, "US", None)
        post(session, "test", [Leg(card, "EUR", 100), Leg(funding_account(session, "DE"), "EUR", -100)])

    with pytest.raises(DBAPIError, match="currency differs"):
        books.run(move)
    assert books.counts()["entries"] == 0


@pytest.mark.parametrize("amount", [25.0, Decimal("25"), True])
def test_every_money_argument_refuses_non_int(books, amount: object) -> None:
    with pytest.raises(TypeError):
        books.run(issue_cards, [CardSpec("US", amount)], idempotency_key=books.key())  # type: ignore[arg-type]
    books.fund("alice", 5000)
    with pytest.raises(TypeError):
        books.run(
            apply_balance,
            account="alice",
            marketplace="US",
            order_ref="o",
            order_total=amount,
            idempotency_key=books.key(),
        )
    state = books.apply("alice", 3000)
    for settle in (capture, release):
        with pytest.raises(TypeError):
            books.run(settle, state.checkout_id, amount=amount, idempotency_key=books.key())
    books.run(capture, state.checkout_id, idempotency_key=books.key())
    with pytest.raises(TypeError):
        books.run(refund, state.checkout_id, amount=amount, idempotency_key=books.key())
    assert books.balance("alice") == 2000
    books.reconciled()


def test_jpy_has_no_minor_unit_and_works_end_to_end(books) -> None:
    card = books.issue_one(5000, "JP")
    assert (card.currency, card.amount) == ("JPY", 5000)
    redeemed = books.redeem(card.code.reveal(), "hanako", "jp")
    assert (redeemed.currency, redeemed.balance_after) == ("JPY", 5000)
    state = books.apply("hanako", 3001, "JP")
    assert (state.currency, state.held, state.remaining_to_pay) == ("JPY", 3001, 0)
    books.run(capture, state.checkout_id, amount=1, idempotency_key=books.key())
    books.run(release, state.checkout_id, idempotency_key=books.key())
    assert books.run(balance, account="hanako", marketplace="JP").amount == 4999
    with books.Session() as session:
        [jpy] = reconcile(session).currencies
    assert (jpy.currency, jpy.wallet, jpy.revenue, jpy.funding, jpy.total) == ("JPY", 4999, 1, -5000, 0)


def test_revenue_and_funding_accounts_keep_no_balance_column(books) -> None:
    def accounts(session):
        return funding_account(session, "US"), revenue_account(session, "US")

    funding, revenue = books.run(accounts)
    books.issue(100, 200)
    rows = books.sql("SELECT id, balance FROM ledger_accounts WHERE id IN (:f, :r)", f=funding, r=revenue)
    assert {tuple(r) for r in rows} == {(funding, None), (revenue, None)}
