"""Cards: issuance (funding -> card), activation, voiding (card -> funding), code access."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from ledger import (
    CardSpec,
    CardView,
    ClaimCode,
    activate_card,
    find_card,
    get_card,
    issue_cards,
    reconcile,
    reveal_code,
    reveal_codes,
    void_card,
)
from ledger.cards import MAX_CARD_AMOUNT
from ledger.errors import CodeMistyped, InvalidRequest, InvalidState, NotFound, UnknownMarketplace
from ledger.models import Account, Card, Entry, LedgerTransaction


def totals(books) -> dict[str, object]:
    with books.Session() as session:
        return {t.currency: t for t in reconcile(session).currencies}


def test_issue_writes_one_transaction_for_a_whole_order(books) -> None:
    specs = [
        CardSpec("US", 2500, reference="order:1/line:1"),
        CardSpec("US", 5000, reference="order:1/line:2"),
        CardSpec("DE", 3000, active=False, reference="order:1/line:3"),
    ]
    issued = books.run(issue_cards, specs, idempotency_key="order-1")
    assert [(c.marketplace, c.currency, c.amount, c.status) for c in issued] == [
        ("US", "USD", 2500, "active"),
        ("US", "USD", 5000, "active"),
        ("DE", "EUR", 3000, "inactive"),
    ]
    assert len({c.code for c in issued}) == 3
    assert all(c.last4 == c.code.normalized[-4:] for c in issued)
    counts = books.counts()
    # One ledger transaction: a card entry each, one funding entry per marketplace.
    assert (counts["transactions"], counts["entries"], counts["cards"]) == (1, 5, 3)
    with books.Session() as session:
        funding = session.execute(
            select(Account.marketplace, Entry.amount)
            .join(Entry, Entry.account_id == Account.id)
            .where(Account.kind == "funding")
        ).all()
        assert sorted(tuple(f) for f in funding) == [("DE", -3000), ("US", -7500)]
        assert session.execute(select(LedgerTransaction.kind)).scalar_one() == "issue"
        views = [get_card(session, c.card_id) for c in issued]
    assert [v.reference for v in views] == [s.reference for s in specs]
    assert views[2].activated_at is None
    assert views[0].activated_at == views[0].issued_at
    usd, eur = totals(books)["USD"], totals(books)["EUR"]
    assert (usd.card, usd.funding, eur.card, eur.funding) == (7500, -7500, 3000, -3000)
    books.reconciled()


def test_issued_code_is_found_and_revealed_but_views_are_masked(books) -> None:
    card = books.issue_one(4200)
    view = books.run(find_card, card.code.reveal().lower().replace("-", " "))
    assert isinstance(view, CardView)
    assert (view.card_id, view.amount, view.last4, view.status) == (card.card_id, 4200, card.last4, "active")
    assert card.code.normalized not in repr(view)
    assert card.code.normalized not in repr(card)
    assert books.run(reveal_code, card.card_id) == card.code
    never_issued = ClaimCode.generate()
    with pytest.raises(NotFound, match=f"ending {never_issued.last4}"):
        books.run(find_card, never_issued.reveal())
    with pytest.raises(CodeMistyped):
        # One wrong symbol: always caught by the check (a rotation would be caught only
        # 31 times in 32).
        first = card.code.normalized[0]
        books.run(find_card, ("Y" if first != "Y" else "Z") + card.code.normalized[1:])
    with pytest.raises(NotFound):
        books.run(get_card, 999_999)
    with pytest.raises(NotFound):
        books.run(reveal_code, 999_999)


@pytest.mark.parametrize(
    "specs, error, match",
    [
        ([], InvalidRequest, "empty"),
        (["US 100"], InvalidRequest, "not a CardSpec"),
        ([CardSpec("XX", 100)], UnknownMarketplace, "unknown marketplace"),
        ([CardSpec("US", 0)], InvalidRequest, "positive"),
        ([CardSpec("US", -5)], InvalidRequest, "positive"),
        ([CardSpec("US", MAX_CARD_AMOUNT + 1)], InvalidRequest, "ceiling"),
        ([CardSpec("US", 100, reference="r" * 201)], InvalidRequest, "reference"),
        ([CardSpec("US", 100), CardSpec("US", 10.0)], TypeError, r"specs\[1\]"),  # type: ignore[arg-type]
    ],
)
def test_issue_validates_every_spec_and_writes_nothing(books, specs, error, match) -> None:
    with pytest.raises(error, match=match):
        books.run(issue_cards, specs, idempotency_key=books.key())
    assert books.counts()["keys"] == 0


def test_marketplace_is_case_insensitive(books) -> None:
    assert books.issue_one(100, "uk").marketplace == "UK"


def test_inactive_card_activates_once(books) -> None:
    card = books.issue_one(1000, active=False)
    first = books.run(activate_card, card.card_id, idempotency_key="activate-1")
    assert first.status == "active"
    assert first.activated_at is not None
    again = books.run(activate_card, card.card_id, idempotency_key="activate-2")
    assert (again.status, again.activated_at) == ("active", first.activated_at)
    assert books.counts()["transactions"] == 1, "activation moves no money"


def test_activating_a_redeemed_or_voided_card_is_refused(books) -> None:
    redeemed, voided = books.issue(100, 200)
    books.redeem(redeemed.code.reveal())
    books.run(void_card, voided.card_id, idempotency_key=books.key())
    for card in (redeemed, voided):
        with pytest.raises(InvalidState):
            books.run(activate_card, card.card_id, idempotency_key=books.key())
    with pytest.raises(NotFound):
        books.run(activate_card, 999_999, idempotency_key=books.key())


@pytest.mark.parametrize("active", [True, False])
def test_void_returns_the_value_to_funding(books, active: bool) -> None:
    card, kept = books.issue(3000, 1000, active=active)
    view = books.run(void_card, card.card_id, idempotency_key="void")
    assert (view.status, view.last4) == ("voided", card.last4)
    assert view.voided_at is not None
    usd = totals(books)["USD"]
    assert (usd.card, usd.funding) == (1000, -1000)
    with books.Session() as session:
        balance = session.execute(
            select(Account.balance).join(Card, Card.account_id == Account.id).where(Card.id == card.card_id)
        ).scalar_one()
    assert balance == 0
    assert books.counts()["transactions"] == 2
    books.reconciled()
    assert kept.status == ("active" if active else "inactive")


def test_only_an_unredeemed_card_can_be_voided(books) -> None:
    redeemed, voided = books.issue(100, 200)
    books.redeem(redeemed.code.reveal())
    books.run(void_card, voided.card_id, idempotency_key=books.key())
    for card in (redeemed, voided):
        with pytest.raises(InvalidState, match="only an unredeemed card"):
            books.run(void_card, card.card_id, idempotency_key=books.key())
    with pytest.raises(NotFound):
        books.run(void_card, 999_999, idempotency_key=books.key())
    assert books.balance("alice") == 100
    books.reconciled()


def test_card_accounts_hold_the_face_value(books) -> None:
    cards = books.issue(111, 222, 333)
    with books.Session() as session:
        rows = session.execute(
            select(Card.id, Account.kind, Account.balance).join(Account, Account.id == Card.account_id)
        ).all()
    assert sorted(tuple(r) for r in rows) == [
        (c.card_id, "card", c.amount) for c in sorted(cards, key=lambda c: c.card_id)
    ]


def test_reveal_codes_opens_a_batch_and_leaves_out_unknown_ids(books) -> None:
    cards = books.issue(100, 200, 300)
    with books.Session() as session:
        codes = reveal_codes(session, [c.card_id for c in cards] + [987654])
    assert codes == {c.card_id: c.code for c in cards}


def test_a_large_order_goes_in_whole_and_balanced(books) -> None:
    """Past ``COPY_FROM_ROWS`` rows PostgreSQL takes cards, accounts and entries by COPY:
    the same rows, ids in order, and the same triggers and checks as a small order."""
    specs = [
        CardSpec(("US", "DE", "JP")[i % 3], 100 + i, active=i % 7 != 0, reference=f"order:9/line:{i}")
        for i in range(150)
    ]
    issued = books.run(issue_cards, specs, idempotency_key="order-9")
    assert [(c.marketplace, c.amount) for c in issued] == [(s.marketplace, s.amount) for s in specs]
    assert [c.status for c in issued] == ["active" if s.active else "inactive" for s in specs]
    ids = [c.card_id for c in issued]
    assert ids == sorted(ids) and len(set(ids)) == 150
    with books.Session() as session:
        rows = {c.id: c for c in session.scalars(select(Card))}
        for card, spec in zip(issued, specs, strict=True):
            row = rows[card.card_id]
            assert (row.reference, row.amount, row.code_last4) == (spec.reference, spec.amount, card.last4)
            assert session.get(Account, row.account_id).balance == spec.amount
        kinds = session.execute(select(LedgerTransaction.kind)).scalars().all()
        assert kinds == ["issue"]
        assert len(session.execute(select(Entry)).scalars().all()) == 150 + 3  # a funding leg per marketplace
    assert books.run(reveal_codes, ids) == {c.card_id: c.code for c in issued}
    assert books.run(issue_cards, specs, idempotency_key="order-9") == issued
    assert books.redeem(issued[1].code.reveal(), "ada", "DE").balance_after == 101
    books.reconciled()
