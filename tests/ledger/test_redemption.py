"""Redemption: the whole card into a recipient account, once; every refusal a customer meets."""

from __future__ import annotations

import datetime as dt
import unicodedata

import pytest
from sqlalchemy import select

from ledger import ClaimCode, activate_card, get_card, redeem, redeem_code, void_card
from ledger import redemption as redemption_module
from ledger.errors import (
    AlreadyRedeemed,
    CardNotActive,
    CardVoided,
    CodeMistyped,
    CodeNotValid,
    InvalidRequest,
    RedemptionRefused,
    TooManyAttempts,
    UnknownMarketplace,
    WrongMarketplace,
)
from ledger.models import Redemption, RedemptionFailure


def typo_of(code: ClaimCode) -> str:
    shown = code.reveal()
    replacement = "X" if shown[0] != "X" else "Y"
    return replacement + shown[1:]


def test_redeem_moves_the_whole_card_once(books) -> None:
    card = books.issue_one(2500)
    books.fund("alice", 1000)
    result = books.redeem(card.code.reveal().lower(), "alice", "us", key="r-1")
    assert (result.card_id, result.account, result.marketplace) == (card.card_id, "alice", "US")
    assert (result.amount, result.currency, result.balance_after) == (2500, "USD", 3500)
    assert books.balance("alice") == 3500
    view = books.run(get_card, card.card_id)
    assert view.status == "redeemed"
    assert view.redeemed_at is not None
    assert view.redeemed_at.isoformat() == result.redeemed_at
    with books.Session() as session:
        row = session.execute(select(Redemption).where(Redemption.card_id == card.card_id)).scalar_one()
        assert row.transaction_id == result.transaction_id
    books.reconciled()


def test_a_code_pasted_with_look_alikes_redeems(books) -> None:
    card = books.issue_one(1500)
    groups = card.code.reveal().split("-")
    full_width = "".join(chr(ord(symbol) + 0xFEE0) for symbol in groups[0])
    names = {"A": "A", "B": "VE", "E": "IE", "H": "EN", "K": "KA", "M": "EM", "P": "ER", "C": "ES", "T": "TE"}
    cyrillic = {ord(s): unicodedata.lookup(f"CYRILLIC CAPITAL LETTER {n}") for s, n in names.items()}
    pasted = (
        "\ufeff"
        + full_width
        + "\u2013"
        + groups[1].translate(cyrillic)
        + "\u00a0\u2014\u00a0"
        + groups[2].lower()
        + "\u2212\u200b"
        + groups[3].translate(cyrillic)
        + "\n"
    )
    assert books.redeem(pasted, "olga").amount == 1500
    assert books.balance("olga") == 1500


def test_not_valid_and_mistyped_are_distinct(books) -> None:
    card = books.issue_one()
    with pytest.raises(CodeNotValid) as not_valid:
        books.redeem(ClaimCode.generate().reveal())
    with pytest.raises(CodeMistyped) as mistyped:
        books.redeem(typo_of(card.code))
    assert (not_valid.value.reason, mistyped.value.reason) == ("not_valid", "mistyped")
    assert not isinstance(not_valid.value, CodeMistyped)
    assert not isinstance(mistyped.value, CodeNotValid)
    assert books.redeem(card.code.reveal()).amount == card.amount


def test_already_redeemed_to_this_account_or_another(books) -> None:
    card = books.issue_one(800)
    books.redeem(card.code.reveal(), "alice")
    with pytest.raises(AlreadyRedeemed) as mine:
        books.redeem(card.code.reveal(), "alice")
    assert mine.value.to_this_account is True
    assert "your balance" in str(mine.value)
    with pytest.raises(AlreadyRedeemed) as theirs:
        books.redeem(card.code.reveal(), "bob")
    assert theirs.value.to_this_account is False
    assert "another account" in str(theirs.value)
    # Alice's account in another marketplace is another balance.
    with pytest.raises(AlreadyRedeemed) as elsewhere:
        books.redeem(card.code.reveal(), "alice", "CA")
    assert elsewhere.value.to_this_account is False
    assert (books.balance("alice"), books.balance("bob")) == (800, 0)
    assert books.counts()["redemptions"] == 1


def test_wrong_marketplace_leaves_the_card_redeemable_at_home(books) -> None:
    us_card, de_card = books.issue_one(500, "US"), books.issue_one(700, "DE")
    with pytest.raises(WrongMarketplace, match="United States"):
        books.redeem(us_card.code.reveal(), "alice", "CA")
    # Same currency is still the wrong store.
    with pytest.raises(WrongMarketplace):
        books.redeem(de_card.code.reveal(), "alice", "FR")
    assert books.redeem(us_card.code.reveal(), "alice", "US").amount == 500
    assert books.redeem(de_card.code.reveal(), "alice", "DE").amount == 700
    with pytest.raises(UnknownMarketplace):
        books.redeem(us_card.code.reveal(), "alice", "ZZ")


def test_inactive_card_redeems_once_activated(books) -> None:
    card = books.issue_one(1200, active=False)
    with pytest.raises(CardNotActive, match="not active yet"):
        books.redeem(card.code.reveal())
    books.run(activate_card, card.card_id, idempotency_key="ship-1")
    assert books.redeem(card.code.reveal()).balance_after == 1200


def test_voided_card_is_refused(books) -> None:
    card = books.issue_one(900)
    books.run(void_card, card.card_id, idempotency_key="void-1")
    with pytest.raises(CardVoided, match=card.last4):
        books.redeem(card.code.reveal())
    assert books.balance("alice") == 0


def test_account_must_be_named(books) -> None:
    card = books.issue_one()
    for account in ("", "   ", "a" * 201, None):
        with pytest.raises(InvalidRequest):
            books.redeem(card.code.reveal(), account)


# --- lockout --------------------------------------------------------------------------------


def failures(books) -> int:
    return books.counts()["failures"]


def attempt(books, code: str, account: str, client: str | None = None) -> None:
    redeem_code(
        books.Session, code, account=account, marketplace="US", idempotency_key=books.key(), client=client
    )


def test_guessing_locks_the_account_out(books, set_env) -> None:
    set_env(redeem_max_failures_per_account=3, redeem_window_seconds=600)
    card = books.issue_one(100)
    for _ in range(3):
        with pytest.raises(CodeNotValid):
            attempt(books, ClaimCode.generate().reveal(), "eve")
    assert failures(books) == 3
    with pytest.raises(TooManyAttempts, match="this account") as locked:
        attempt(books, card.code.reveal(), "eve")
    assert 1 <= locked.value.retry_after <= 601
    assert locked.value.reason == "too_many_attempts"
    assert failures(books) == 3, "a locked-out attempt is not itself a failure"
    # Another account is not affected.
    assert books.redeem(card.code.reveal(), "frank").amount == 100


def test_mistyped_codes_never_lock_an_honest_customer_out(books, set_env) -> None:
    """A typo is answered from the check character alone: it tells nothing about any card."""
    set_env(redeem_max_failures_per_account=3, redeem_max_failures_per_client=3)
    card = books.issue_one(400)
    shown = card.code.reveal()
    clumsy = [typo_of(card.code), shown[:-1], shown + "7", shown.replace("-", "*"), "U" * 17] * 3
    for typed in clumsy:
        with pytest.raises(CodeMistyped):
            attempt(books, typed, "gus", client="198.51.100.20")
    assert failures(books) == 0
    result = redeem_code(
        books.Session,
        shown,
        account="gus",
        marketplace="US",
        idempotency_key="r-gus",
        client="198.51.100.20",
    )
    assert result.amount == 400


def test_the_account_lockout_spans_marketplaces(books, set_env) -> None:
    """One allowance of guesses per account, not one per store."""
    set_env(redeem_max_failures_per_account=3, redeem_window_seconds=600)
    fr_card = books.issue_one(900, "FR")
    for market in ("US", "CA", "DE"):
        with pytest.raises(CodeNotValid):
            redeem_code(
                books.Session,
                ClaimCode.generate().reveal(),
                account="mallory",
                marketplace=market,
                idempotency_key=books.key(),
            )
    for market in ("FR", "JP", "US"):
        with pytest.raises(TooManyAttempts, match="this account"):
            redeem_code(
                books.Session,
                fr_card.code.reveal() if market == "FR" else ClaimCode.generate().reveal(),
                account="mallory",
                marketplace=market,
                idempotency_key=books.key(),
            )
    assert failures(books) == 3
    # The same card still redeems for an account that did not guess.
    assert books.redeem(fr_card.code.reveal(), "nadia", "FR").amount == 900


def test_lockout_retry_after_counts_from_the_oldest_failure(books, set_env, monkeypatch) -> None:
    set_env(redeem_max_failures_per_account=2, redeem_window_seconds=600)
    card = books.issue_one(100)
    t0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)
    clock = [t0]
    monkeypatch.setattr(redemption_module, "utcnow", lambda: clock[0])
    for offset in (0, 30):
        clock[0] = t0 + dt.timedelta(seconds=offset)
        with pytest.raises(CodeNotValid):
            attempt(books, ClaimCode.generate().reveal(), "eve")
    clock[0] = t0 + dt.timedelta(seconds=100)
    with pytest.raises(TooManyAttempts) as locked:
        attempt(books, card.code.reveal(), "eve")
    assert locked.value.retry_after == 501
    # When the oldest failure leaves the window, one failure remains: under the limit.
    clock[0] = t0 + dt.timedelta(seconds=600)
    assert books.redeem(card.code.reveal(), "eve").amount == 100


def test_guessing_from_one_client_locks_that_client_out(books, set_env) -> None:
    set_env(redeem_max_failures_per_account=100, redeem_max_failures_per_client=3)
    card, other = books.issue(100, 200)
    for account in ("a1", "a2", "a3"):
        with pytest.raises(CodeMistyped):
            attempt(books, typo_of(card.code), account, client="203.0.113.9")  # not counted
        with pytest.raises(CodeNotValid):
            attempt(books, ClaimCode.generate().reveal(), account, client="203.0.113.9")
    with pytest.raises(TooManyAttempts, match="this client") as locked:
        attempt(books, card.code.reveal(), "a4", client="203.0.113.9")
    assert locked.value.retry_after >= 1
    # The same accounts from another client, or with no client named, are not locked.
    assert books.redeem(card.code.reveal(), "a1", client="198.51.100.7").amount == 100
    assert books.redeem(other.code.reveal(), "a2").amount == 200


def test_failures_count_only_when_committed(books, set_env) -> None:
    set_env(redeem_max_failures_per_account=2)
    card = books.issue_one(100)
    for _ in range(5):
        with books.Session() as session, pytest.raises(CodeNotValid):
            redeem(
                session,
                ClaimCode.generate().reveal(),
                account="eve",
                marketplace="US",
                idempotency_key=books.key(),
            )
        # The session closes without a commit: the caller chose not to keep the failure.
    assert failures(books) == 0
    assert books.redeem(card.code.reveal(), "eve").amount == 100


def test_refusals_that_are_not_guesses_do_not_count(books, set_env) -> None:
    set_env(redeem_max_failures_per_account=2)
    redeemed, voided, inactive = books.issue(100, 200, 300)
    inactive_card = books.issue_one(400, active=False)
    books.redeem(redeemed.code.reveal(), "alice")
    books.run(void_card, voided.card_id, idempotency_key=books.key())
    refusals: list[RedemptionRefused] = []
    for code, market in [
        (redeemed.code, "US"),
        (voided.code, "US"),
        (inactive_card.code, "US"),
        (inactive.code, "CA"),
    ] * 2:
        with pytest.raises(RedemptionRefused) as caught:
            redeem_code(
                books.Session, code.reveal(), account="eve", marketplace=market, idempotency_key=books.key()
            )
        refusals.append(caught.value)
    assert {r.reason for r in refusals} == {"already_redeemed", "voided", "not_active", "wrong_marketplace"}
    assert not any(r.counts_as_failure for r in refusals)
    assert failures(books) == 0
    assert books.redeem(inactive.code.reveal(), "eve").amount == 300


def test_failure_rows_name_the_scope_not_the_code(books) -> None:
    code = ClaimCode.generate()
    with pytest.raises(CodeNotValid):
        attempt(books, code.reveal(), "eve", client="c-1")
    with books.Session() as session:
        rows = session.execute(select(RedemptionFailure.scope, RedemptionFailure.reason)).all()
    assert sorted(tuple(r) for r in rows) == [("account:eve", "not_valid"), ("client:c-1", "not_valid")]


def test_a_retried_success_is_still_a_success_after_a_lockout(books, set_env) -> None:
    """The storefront retries a redemption whose answer it lost; guesses locked the account since."""
    set_env(redeem_max_failures_per_account=2, redeem_window_seconds=600)
    card = books.issue_one(700)
    first = redeem_code(
        books.Session, card.code.reveal(), account="ida", marketplace="US", idempotency_key="r-ida"
    )
    for _ in range(2):
        with pytest.raises(CodeNotValid):
            attempt(books, ClaimCode.generate().reveal(), "ida")
    again = redeem_code(
        books.Session, card.code.reveal(), account="ida", marketplace="US", idempotency_key="r-ida"
    )
    assert again == first
    # Anything else from that account is refused while the lockout lasts, a valid code included.
    other = books.issue_one(300)
    with pytest.raises(TooManyAttempts):
        attempt(books, other.code.reveal(), "ida")
    with pytest.raises(TooManyAttempts):
        attempt(books, typo_of(other.code), "ida")
    assert failures(books) == 2
