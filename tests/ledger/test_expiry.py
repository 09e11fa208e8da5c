"""Expiry: the policy as data, expiry to breakage, refusals at redemption, reinstatement,
and what the database holds by itself (both engines)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import IntegrityError

from ledger import (
    CardSpec,
    check_card,
    expire_card,
    expire_due,
    get_card,
    issue_cards,
    last_valid_day,
    reconcile,
    reinstate_card,
    rule_for,
)
from ledger.errors import CardExpired, InvalidRequest, InvalidState
from ledger.expiry_policy import ExpiryRule, terms_url
from ledger.models import Account, Card, Entry, LedgerTransaction

ISSUED = dt.datetime(2026, 8, 31, 15, 30, tzinfo=dt.UTC)
LATER = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


# --- the policy ------------------------------------------------------------------------------


def test_purchased_cards_in_the_us_canada_and_japan_never_expire() -> None:
    for marketplace in ("US", "CA", "JP"):
        assert rule_for(marketplace, "purchased").expires_at(ISSUED) is None


def test_promotional_cards_expire_after_the_months_of_their_rule_at_the_end_of_the_day() -> None:
    # 31 August plus six months is the last day of February; valid all of that day (UTC).
    stop = rule_for("US", "promotional").expires_at(ISSUED)
    assert stop == dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
    assert last_valid_day(stop) == dt.date(2027, 2, 28)


def test_german_purchased_cards_run_to_the_end_of_the_third_year_after_issue() -> None:
    stop = rule_for("DE", "purchased").expires_at(ISSUED)
    assert last_valid_day(stop) == dt.date(2029, 12, 31)


def test_what_the_table_does_not_name_does_not_expire_and_a_bad_origin_is_refused() -> None:
    assert ExpiryRule().expires_at(ISSUED) is None
    with pytest.raises(InvalidRequest, match="unknown card origin 'gifted'"):
        rule_for("US", "gifted")


def test_the_terms_url_is_per_marketplace(set_env) -> None:
    set_env(public_base_url="https://gifts.example")
    assert terms_url("DE") == "https://gifts.example/de/terms"
    set_env(terms_url="https://shop.example/{marketplace}/gift-card-terms")
    assert terms_url("UK") == "https://shop.example/uk/gift-card-terms"


# --- issuance records it -----------------------------------------------------------------------


def test_each_card_records_its_origin_expiry_and_terms(books) -> None:
    purchased, promo = books.run(
        issue_cards,
        [CardSpec("US", 2500), CardSpec("US", 1000, origin="promotional")],
        idempotency_key="mixed",
    )
    with books.Session() as session:
        first, second = get_card(session, purchased.card_id), get_card(session, promo.card_id)
    assert (first.origin, first.expires_at) == ("purchased", None)
    assert second.origin == "promotional"
    assert second.expires_at == rule_for("US", "promotional").expires_at(second.issued_at)
    assert first.terms_url == second.terms_url == "http://localhost:8000/us/terms"


def test_an_unknown_origin_is_refused_before_anything_is_written(books) -> None:
    with pytest.raises(InvalidRequest, match="unknown card origin"):
        books.run(issue_cards, [CardSpec("US", 100, origin="free")], idempotency_key="bad")
    assert books.counts()["cards"] == 0


# --- expiry ----------------------------------------------------------------------------------


def _promo(books, amount: int = 1500, marketplace: str = "US"):
    (card,) = books.run(
        issue_cards, [CardSpec(marketplace, amount, origin="promotional")], idempotency_key=books.key()
    )
    return card


def _breakage(books, marketplace: str = "US") -> int:
    with books.Session() as session:
        amounts = session.scalars(
            select(Entry.amount)
            .join(Account, Account.id == Entry.account_id)
            .where(Account.kind == "breakage", Account.marketplace == marketplace)
        )
        return sum(amounts)


def _stops_at(books, card_id: int, when: dt.datetime) -> None:
    with books.Session.begin() as session:
        session.get_one(Card, card_id).expires_at = when


def test_expiry_moves_the_remaining_value_to_breakage_one_transaction_per_card(books) -> None:
    due, other = _promo(books, 1500), _promo(books, 700)
    kept = books.issue_one(5000)  # purchased in the US: never expires
    expired = books.run(expire_due, now=LATER)
    assert sorted(v.card_id for v in expired) == sorted([due.card_id, other.card_id])
    assert all(v.status == "expired" and v.expired_at == LATER for v in expired)
    assert _breakage(books) == 2200
    with books.Session() as session:
        kinds = session.scalars(select(LedgerTransaction.kind).order_by(LedgerTransaction.id)).all()
        assert get_card(session, kept.card_id).status == "active"
        report = reconcile(session)
    assert kinds.count("expire") == 2
    assert report.ok, report.problems
    usd = next(t for t in report.currencies if t.currency == "USD")
    assert (usd.breakage, usd.card, usd.outstanding_liability) == (2200, 5000, 5000)
    # Run again: nothing more moves.
    assert books.run(expire_due, now=LATER) == []
    assert _breakage(books) == 2200


def test_a_card_redeemed_into_a_wallet_is_never_expired(books) -> None:
    card = _promo(books, 900)
    books.redeem(card.code.reveal(), "alice")
    assert books.run(expire_due, now=LATER) == []
    assert books.balance("alice") == 900
    with pytest.raises(InvalidState, match="only an unredeemed card expires"):
        books.run(expire_card, card.card_id, idempotency_key="x", now=LATER)


def test_a_card_not_yet_due_is_not_expired(books) -> None:
    card = _promo(books)
    assert books.run(expire_due) == []
    with pytest.raises(InvalidState, match="valid until"):
        books.run(expire_card, card.card_id, idempotency_key="early")
    never = books.issue_one()
    with pytest.raises(InvalidState, match="does not expire"):
        books.run(expire_card, never.card_id, idempotency_key="never", now=LATER)
    assert books.counts()["keys"] == 2  # the issues; refusals keep no key


def test_redeeming_an_expired_card_says_since_when_and_never_shows_the_code(books) -> None:
    card = _promo(books)
    # Past its expiry but not swept yet: refused all the same.
    _stops_at(books, card.card_id, dt.datetime(2026, 1, 2, tzinfo=dt.UTC))
    with pytest.raises(CardExpired) as refused:
        books.redeem(card.code.reveal(), "alice")
    assert str(refused.value) == "this card expired on 2026-01-02"
    assert refused.value.reason == "expired" and refused.value.expired_on == dt.date(2026, 1, 2)
    assert card.code.reveal() not in str(refused.value)
    books.run(expire_due)
    with pytest.raises(CardExpired, match="expired on 2026-01-02"):
        books.redeem(card.code.reveal(), "alice")
    with books.Session.begin() as session:
        answer = check_card(session, card.code.reveal(), marketplace="US", client="203.0.113.9")
    assert (answer.status, answer.expired_on, answer.amount) == ("expired", dt.date(2026, 1, 2), None)
    assert books.balance("alice") == 0


# --- reinstatement -------------------------------------------------------------------------------


def test_reinstating_issues_a_replacement_of_the_same_value_from_breakage(books) -> None:
    card = _promo(books, 1500)
    books.run(expire_due, now=LATER)
    new = books.run(reinstate_card, card.card_id, idempotency_key="r1")
    assert (new.amount, new.marketplace, new.status) == (1500, "US", "active")
    assert new.code.reveal() != card.code.reveal()
    with books.Session() as session:
        old_view, new_view = get_card(session, card.card_id), get_card(session, new.card_id)
        kinds = session.scalars(select(LedgerTransaction.kind)).all()
        report = reconcile(session)
    assert old_view.status == "expired"
    assert new_view.replaces_card_id == card.card_id
    assert new_view.origin == "promotional" and new_view.expires_at is not None
    assert new_view.expires_at > new_view.issued_at
    assert "reinstate" in kinds
    assert _breakage(books) == 0
    assert report.ok, report.problems
    assert books.redeem(new.code.reveal(), "alice").amount == 1500
    # The same key answers with the same card; another key is refused; the old code stays dead.
    again = books.run(reinstate_card, card.card_id, idempotency_key="r1")
    assert again.card_id == new.card_id and again.code.reveal() == new.code.reveal()
    with pytest.raises(InvalidState, match=f"reinstated before, as card {new.card_id}"):
        books.run(reinstate_card, card.card_id, idempotency_key="r2")
    with pytest.raises(CardExpired):
        books.redeem(card.code.reveal(), "bob")


def test_only_an_expired_card_is_reinstated(books) -> None:
    card = books.issue_one(500)
    with pytest.raises(InvalidState, match="only an expired card"):
        books.run(reinstate_card, card.card_id, idempotency_key="r")


# --- what the database holds ---------------------------------------------------------------------


def test_an_expired_card_never_changes_status_again(books) -> None:
    card = _promo(books)
    books.run(expire_due, now=LATER)
    for status in ("active", "inactive", "redeemed", "voided"):
        with pytest.raises(IntegrityError, match="expired card"), books.Session.begin() as session:
            session.execute(
                text("UPDATE ledger_cards SET status = :s WHERE id = :i"), {"s": status, "i": card.card_id}
            )


def test_a_card_is_reinstated_at_most_once_and_breakage_is_a_known_kind(books) -> None:
    card = _promo(books)
    books.run(expire_due, now=LATER)
    first = books.run(reinstate_card, card.card_id, idempotency_key="once")
    other = books.issue_one(100)
    with pytest.raises(IntegrityError), books.Session.begin() as session:
        session.execute(
            text("UPDATE ledger_cards SET replaces_card_id = :r WHERE id = :i"),
            {"r": card.card_id, "i": other.card_id},
        )
    with pytest.raises(IntegrityError, match="kind"), books.Session.begin() as session:
        session.execute(
            text(
                "INSERT INTO ledger_accounts (kind, marketplace, currency, owner, balance, created_at)"
                " VALUES ('spoilage', 'US', 'USD', '', NULL, :t)"
            ),
            {"t": LATER},
        )
    assert first.card_id != other.card_id
