"""Swaps: a card voided and its value issued in another marketplace at a dated rate, in one
ledger transaction (both engines)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from ledger import ClaimCode, swap_card, swap_code
from ledger.errors import (
    CardVoided,
    CodeNotValid,
    IdempotencyConflict,
    InvalidRequest,
    InvalidState,
    NoExchangeRate,
    RateConflict,
)
from ledger.models import Card, Entry, LedgerTransaction
from ledger.swaps import convert, list_rates, rate_on, set_rate
from ledger.swaps.models import Swap
from tests.ledger.conftest import LedgerDriver

TODAY = dt.datetime.now(dt.UTC).date()
YESTERDAY = TODAY - dt.timedelta(days=1)
LAST_YEAR = TODAY - dt.timedelta(days=365)


def _swap(books: LedgerDriver, card_id: int, to: str = "UK", key: str = "swap-1") -> object:
    return books.run(swap_card, card_id, to_marketplace=to, idempotency_key=key)


# --- rates --------------------------------------------------------------------------------


def test_the_rate_on_a_day_is_the_latest_loaded_from_that_day_or_before(books: LedgerDriver) -> None:
    books.run(set_rate, "USD", "GBP", "0.80", LAST_YEAR)
    books.run(set_rate, "USD", "GBP", "0.7912", YESTERDAY)
    books.run(set_rate, "USD", "GBP", "0.70", TODAY + dt.timedelta(days=3))

    assert books.run(rate_on, "USD", "GBP", TODAY).rate == Decimal("0.7912")
    assert books.run(rate_on, "USD", "GBP", YESTERDAY - dt.timedelta(days=1)).rate == Decimal("0.80")
    with pytest.raises(NoExchangeRate, match="no exchange rate from USD to GBP"):
        books.run(rate_on, "USD", "GBP", LAST_YEAR - dt.timedelta(days=1))
    with pytest.raises(NoExchangeRate):
        books.run(rate_on, "GBP", "USD", TODAY)  # a rate is one way: the other needs its own
    assert [r.effective_from for r in books.run(list_rates, from_currency="usd")] == [
        LAST_YEAR,
        YESTERDAY,
        TODAY + dt.timedelta(days=3),
    ]


def test_a_loaded_rate_never_changes(books: LedgerDriver) -> None:
    books.run(set_rate, "USD", "GBP", "0.79", TODAY)
    books.run(set_rate, "USD", "GBP", Decimal("0.7900"), TODAY)  # the same value: nothing to do
    with pytest.raises(RateConflict, match=r"0\.79 already"):
        books.run(set_rate, "USD", "GBP", "0.78", TODAY)
    assert [r.rate for r in books.run(list_rates)] == [Decimal("0.79")]


@pytest.mark.parametrize(
    ("source", "target", "rate", "error"),
    [
        ("USD", "GBP", 0.79, TypeError),
        ("USD", "GBP", True, TypeError),
        ("USD", "GBP", "abc", InvalidRequest),
        ("USD", "GBP", "0", InvalidRequest),
        ("USD", "GBP", "-1.2", InvalidRequest),
        ("USD", "GBP", "NaN", InvalidRequest),
        ("USD", "GBP", "Infinity", InvalidRequest),
        ("USD", "USD", "1", InvalidRequest),
        ("USD", "XXX", "1", InvalidRequest),
    ],
)
def test_bad_rates_are_refused_and_nothing_is_stored(
    books: LedgerDriver, source: str, target: str, rate: object, error: type[Exception]
) -> None:
    with pytest.raises(error):
        books.run(set_rate, source, target, rate, TODAY)
    assert books.run(list_rates) == []


@given(
    amount=st.integers(min_value=1, max_value=10**9),
    rate=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1000), places=4),
    pair=st.sampled_from([("USD", "GBP"), ("USD", "JPY"), ("JPY", "EUR"), ("EUR", "CAD")]),
)
def test_conversion_rounds_down_to_the_minor_unit(amount: int, rate: Decimal, pair: tuple[str, str]) -> None:
    source, target = pair
    digits = {"USD": 2, "GBP": 2, "EUR": 2, "CAD": 2, "JPY": 0}
    exact = Fraction(amount) * Fraction(rate) * Fraction(10) ** (digits[target] - digits[source])
    converted = convert(amount, rate, source, target)
    assert type(converted) is int
    assert converted <= exact < converted + 1


def test_conversion_examples() -> None:
    assert convert(5000, Decimal("0.7912"), "USD", "GBP") == 3956  # 39.56 exactly
    assert convert(999, Decimal("0.79"), "USD", "GBP") == 789  # 7.8921 -> 7.89
    assert convert(5000, Decimal("151.37"), "USD", "JPY") == 7568  # 7568.5 yen -> 7568
    assert convert(1000, Decimal("0.0061"), "JPY", "EUR") == 610


# --- swapping -----------------------------------------------------------------------------


def test_a_swap_voids_the_card_and_issues_the_converted_value_in_one_transaction(
    books: LedgerDriver,
) -> None:
    books.run(set_rate, "USD", "GBP", "0.79", YESTERDAY)
    old = books.issue_one(5000, "US")
    before = books.counts()["transactions"]

    result = _swap(books, old.card_id)

    assert (result.from_amount, result.to_amount) == (5000, 3950)
    assert (result.from_currency, result.to_currency) == ("USD", "GBP")
    assert (result.rate, result.rate_date) == (Decimal("0.79"), YESTERDAY)
    assert result.new_card.marketplace == "UK" and result.new_card.amount == 3950
    assert books.counts()["transactions"] == before + 1
    with books.Session() as s:
        assert s.get_one(Card, old.card_id).status == "voided"
        new = s.get_one(Card, result.new_card.card_id)
        assert (new.status, new.marketplace, new.currency, new.amount) == ("active", "UK", "GBP", 3950)
        txn = s.get_one(LedgerTransaction, result.transaction_id)
        assert txn.kind == "swap"
        legs = sorted(
            (e.currency, e.amount) for e in s.scalars(select(Entry).where(Entry.transaction_id == txn.id))
        )
        assert legs == [("GBP", -3950), ("GBP", 3950), ("USD", -5000), ("USD", 5000)]
        row = s.scalars(select(Swap)).one()
        assert (row.old_card_id, row.new_card_id, row.transaction_id) == (
            old.card_id,
            result.new_card.card_id,
            txn.id,
        )
        assert (row.rate, row.rate_date, row.from_amount, row.to_amount) == ("0.79", YESTERDAY, 5000, 3950)
    books.reconciled()

    with pytest.raises(CardVoided):
        books.redeem(old.code.reveal(), "bob", "US")
    assert books.redeem(result.new_card.code.reveal(), "bob", "UK").balance_after == 3950


def test_the_same_key_returns_the_first_swap_and_another_request_conflicts(books: LedgerDriver) -> None:
    books.run(set_rate, "USD", "GBP", "0.79", TODAY)
    books.run(set_rate, "USD", "EUR", "0.92", TODAY)
    old = books.issue_one(5000, "US")
    first = _swap(books, old.card_id, key="same")
    counts = books.counts()

    again = _swap(books, old.card_id, key="same")

    assert again.swap_id == first.swap_id
    assert again.new_card.code == first.new_card.code
    assert books.counts() == counts
    with pytest.raises(IdempotencyConflict):
        _swap(books, old.card_id, to="DE", key="same")


def test_between_marketplaces_of_one_currency_no_rate_is_needed(books: LedgerDriver) -> None:
    old = books.issue_one(2500, "DE")
    result = _swap(books, old.card_id, to="FR")
    assert (result.to_amount, result.rate, result.rate_date) == (2500, Decimal(1), None)
    books.reconciled()


def test_the_yen_has_no_minor_unit(books: LedgerDriver) -> None:
    books.run(set_rate, "USD", "JPY", "151.37", TODAY)
    old = books.issue_one(5000, "US")
    assert _swap(books, old.card_id, to="JP").to_amount == 7568
    books.reconciled()


def _refused(books: LedgerDriver, card_id: int, error: type[Exception], match: str, to: str = "UK") -> None:
    counts = books.counts()
    with pytest.raises(error, match=match):
        _swap(books, card_id, to=to, key=f"refused-{card_id}-{to}")
    assert books.counts() == counts, "a refused swap leaves nothing behind"


def test_only_an_active_card_swaps(books: LedgerDriver) -> None:
    books.run(set_rate, "USD", "GBP", "0.79", TODAY)
    redeemed = books.issue_one(1000, "US")
    books.redeem(redeemed.code.reveal(), "alice", "US")
    inactive = books.issue_one(1000, "US", active=False)
    swapped = books.issue_one(1000, "US")
    _swap(books, swapped.card_id)

    _refused(books, redeemed.card_id, InvalidState, "is redeemed")
    _refused(books, inactive.card_id, InvalidState, "activate it first")
    _refused(books, swapped.card_id, InvalidState, "is voided")


def test_no_rate_and_other_bad_requests_are_refused_with_nothing_written(books: LedgerDriver) -> None:
    books.run(set_rate, "USD", "GBP", "0.79", TODAY + dt.timedelta(days=1))  # not in effect yet
    card = books.issue_one(1000, "US")
    _refused(books, card.card_id, NoExchangeRate, "no exchange rate from USD to GBP")
    _refused(books, card.card_id, InvalidRequest, "a US card already", to="US")
    _refused(books, card.card_id, InvalidRequest, "unknown marketplace", to="XX")
    books.run(set_rate, "USD", "JPY", "0.001", TODAY)
    _refused(books, books.issue_one(100, "US").card_id, InvalidRequest, "less than one minor unit", to="JP")


def test_the_holder_swaps_by_code_and_a_wrong_code_counts_toward_the_lockout(books: LedgerDriver) -> None:
    old = books.issue_one(4000, "DE")
    result = books.run(
        swap_code,
        old.code.reveal().lower(),
        to_marketplace="FR",
        idempotency_key="by-code",
        client="198.51.100.7",
    )
    assert result.old_card_id == old.card_id and result.to_amount == 4000

    unknown = ClaimCode.generate().reveal()  # well-formed, but no card has it
    with books.Session() as s, s.begin(), pytest.raises(CodeNotValid):
        swap_code(s, unknown, to_marketplace="FR", idempotency_key="guess", client="198.51.100.7")
    failures = books.sql("SELECT scope FROM ledger_redemption_failures")
    assert [row.scope for row in failures] == ["client:198.51.100.7"]
