"""Cards: issuance (funding -> card), activation, voiding (card -> funding), code access.

A whole order's cards are issued in one ledger transaction: their accounts,
card rows and entries go in as bulk INSERTs, and the funding side is one entry
per marketplace. Funding accounts keep no balance column, so issuers running at
the same time never wait on each other.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from giftq.db import utcnow
from ledger import expiry_policy, idempotency
from ledger.accounts import funding_account
from ledger.codes import ClaimCode, Sealed, code_text, get_vault
from ledger.errors import InvalidRequest, InvalidState, NotFound
from ledger.expiry_policy import origin_of
from ledger.marketplaces import get_marketplace
from ledger.models import Account, AccountKind, Card, CardOrigin, CardStatus
from ledger.posting import Leg, check_amount, post
from ledger.sqlutil import copy_many

MAX_CARD_AMOUNT = 10**9
"""A sanity ceiling (ten million dollars in cents): anything above is a unit mistake."""


@dataclass(frozen=True, slots=True)
class CardSpec:
    marketplace: str
    amount: int
    active: bool = True
    reference: str | None = None
    """The caller's pointer back to its own records (e.g. ``order:42/line:3``)."""
    origin: str = CardOrigin.PURCHASED.value
    """``purchased`` or ``promotional``: with the marketplace, it picks the expiry rule."""


@dataclass(frozen=True, slots=True)
class CardView:
    """What may be shown about a card: never its code, only the last four characters."""

    card_id: int
    marketplace: str
    currency: str
    amount: int
    status: str
    last4: str
    reference: str | None
    issued_at: dt.datetime
    activated_at: dt.datetime | None
    redeemed_at: dt.datetime | None
    voided_at: dt.datetime | None
    origin: str = CardOrigin.PURCHASED.value
    expires_at: dt.datetime | None = None
    """None: the card does not expire."""
    terms_url: str | None = None
    expired_at: dt.datetime | None = None
    replaces_card_id: int | None = None

    @classmethod
    def of(cls, card: Card) -> CardView:
        return cls(
            card.id,
            card.marketplace,
            card.currency,
            card.amount,
            card.status,
            card.code_last4,
            card.reference,
            card.issued_at,
            card.activated_at,
            card.redeemed_at,
            card.voided_at,
            card.origin,
            card.expires_at,
            card.terms_url,
            card.expired_at,
            card.replaces_card_id,
        )


@dataclass(frozen=True, slots=True)
class IssuedCard:
    card_id: int
    marketplace: str
    currency: str
    amount: int
    status: str
    last4: str
    code: ClaimCode

    def __repr__(self) -> str:
        return f"IssuedCard(card_id={self.card_id}, amount={self.amount} {self.currency}, code={self.code!r})"


def _validate(spec: object, index: int) -> CardSpec:
    if not isinstance(spec, CardSpec):
        raise InvalidRequest(f"specs[{index}] is not a CardSpec")
    get_marketplace(spec.marketplace)
    check_amount(spec.amount, f"specs[{index}].amount")
    if spec.amount > MAX_CARD_AMOUNT:
        raise InvalidRequest(f"specs[{index}].amount {spec.amount} is above the ceiling {MAX_CARD_AMOUNT}")
    if spec.reference is not None and len(spec.reference) > 200:
        raise InvalidRequest(f"specs[{index}].reference is longer than 200 characters")
    origin_of(spec.origin)
    return spec


def issue_cards(session: Session, specs: Sequence[CardSpec], *, idempotency_key: str) -> list[IssuedCard]:
    """Issue every card in ``specs`` in one transaction; the codes come back once, here."""
    if not specs:
        raise InvalidRequest("specs is empty: nothing to issue")
    with _collector_paused():
        return _issue(session, specs, idempotency_key)


def _issue(session: Session, specs: Sequence[CardSpec], idempotency_key: str) -> list[IssuedCard]:
    checked = [_validate(spec, i) for i, spec in enumerate(specs)]
    # A purchased card's request reads as it did before cards had an origin: old keys replay.
    request = {
        "cards": [
            [s.marketplace.upper(), s.amount, s.active, s.reference]
            + ([s.origin] if s.origin != CardOrigin.PURCHASED else [])
            for s in checked
        ],
    }
    replay = idempotency.claim(session, idempotency_key, "issue_cards", request)
    if replay is not None:
        return load_issued(session, replay["card_ids"])

    now = utcnow()
    issued = create_cards(session, checked, now)
    per_market: dict[str, int] = defaultdict(int)
    legs = []
    for card in issued:
        per_market[card.marketplace] += card.amount
        legs.append(Leg(card.account_id, card.currency, card.amount))
    for market_code, total in per_market.items():
        currency = get_marketplace(market_code).currency
        legs.append(Leg(funding_account(session, market_code), currency, -total))
    post(session, "issue", legs, at=now)

    idempotency.complete(session, idempotency_key, {"card_ids": [c.card_id for c in issued]})
    return [c.issued for c in issued]


@dataclass(frozen=True, slots=True)
class NewCard:
    card_id: int
    account_id: int
    marketplace: str
    currency: str
    amount: int
    issued: IssuedCard


def create_cards(
    session: Session, specs: Sequence[CardSpec], now: dt.datetime, *, replaces: int | None = None
) -> list[NewCard]:
    """Insert checked cards and their accounts (bulk); the caller posts their value.

    Each card records its origin, its expiry under the marketplace's policy (counted from
    ``now``: issue, or the new load of a reinstatement) and its terms URL. Codes, lookup
    hashes and sealed codes are made for the whole batch at once (about 5 us a card), and
    the rows go in by COPY on PostgreSQL (:func:`ledger.sqlutil.copy_many`).
    """
    vault = get_vault()
    market_of = {code: get_marketplace(code) for code in {s.marketplace for s in specs}}
    markets = [market_of[s.marketplace] for s in specs]
    normalized = code_text.generate_many(len(specs))
    lookups = vault.lookup_hashes(normalized)
    key_id, blobs = vault.seal_many(normalized, lookups)
    codes = [ClaimCode(code) for code in normalized]
    account_ids = copy_many(
        session,
        Account,
        [
            {
                "kind": AccountKind.CARD.value,
                "marketplace": m.code,
                "currency": m.currency,
                "owner": None,
                "balance": 0,
                "created_at": now,
            }
            for m in markets
        ],
    )
    terms = {m.code: expiry_policy.terms_url(m.code) for m in market_of.values()}
    card_rows: list[dict[str, object]] = [
        {
            "account_id": account_id,
            "marketplace": market.code,
            "currency": market.currency,
            "amount": spec.amount,
            "status": (CardStatus.ACTIVE if spec.active else CardStatus.INACTIVE).value,
            "code_hash": lookup,
            "code_key_id": key_id,
            "code_ciphertext": blob,
            "code_last4": code.last4,
            "reference": spec.reference,
            "issued_at": now,
            "activated_at": now if spec.active else None,
            "origin": origin_of(spec.origin).value,
            "expires_at": expiry_policy.expires_at(market.code, spec.origin, now),
            "terms_url": terms[market.code],
            "replaces_card_id": replaces,
        }
        for spec, market, code, lookup, blob, account_id in zip(
            specs, markets, codes, lookups, blobs, account_ids, strict=True
        )
    ]
    card_ids = copy_many(session, Card, card_rows)
    return [
        NewCard(
            cid,
            account_id,
            m.code,
            m.currency,
            s.amount,
            IssuedCard(cid, m.code, m.currency, s.amount, str(row["status"]), code.last4, code),
        )
        for cid, account_id, m, s, row, code in zip(
            card_ids, account_ids, markets, specs, card_rows, codes, strict=True
        )
    ]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for one issuance, as it was before after it.

    A batch of 5,000 cards allocates some 100,000 objects that live until the call
    returns; the collector took them for long-lived and ran full collections over the
    whole process, a third of the issuing process's CPU. None of them is in a cycle.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def load_issued(session: Session, card_ids: list[int]) -> list[IssuedCard]:
    cards = {c.id: c for c in session.scalars(select(Card).where(Card.id.in_(card_ids)))}
    return [
        IssuedCard(c.id, c.marketplace, c.currency, c.amount, c.status, c.code_last4, _open(c))
        for c in (cards[i] for i in card_ids)
    ]


def _open(card: Card) -> ClaimCode:
    sealed = Sealed(card.code_key_id, card.code_ciphertext)
    return ClaimCode(get_vault().open(sealed, card.code_hash))


def lock_card(session: Session, card_id: int) -> Card:
    card = session.execute(
        select(Card).where(Card.id == card_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if card is None:
        raise NotFound(f"no card {card_id}")
    return card


def get_card(session: Session, card_id: int) -> CardView:
    card = session.get(Card, card_id)
    if card is None:
        raise NotFound(f"no card {card_id}")
    return CardView.of(card)


def get_cards(session: Session, card_ids: Sequence[int]) -> dict[int, CardView]:
    """Masked views of a batch of cards, in one query (ids of no card are absent)."""
    cards = session.scalars(select(Card).where(Card.id.in_(card_ids))).all() if card_ids else []
    return {card.id: CardView.of(card) for card in cards}


def find_card(session: Session, code: str) -> CardView:
    """Look a card up by the code a customer reads out (ops); answers with a masked view."""
    claim = ClaimCode.parse(code)
    card = session.execute(
        select(Card).where(Card.code_hash == get_vault().lookup_hash(claim.normalized))
    ).scalar_one_or_none()
    if card is None:
        raise NotFound(f"no card has the code ending {claim.last4}")
    return CardView.of(card)


def reveal_code(session: Session, card_id: int) -> ClaimCode:
    """Decrypt a card's code, to render it to its recipient (a scheduled send or a resend)."""
    card = session.get(Card, card_id)
    if card is None:
        raise NotFound(f"no card {card_id}")
    return _open(card)


def reveal_codes(session: Session, card_ids: Sequence[int]) -> dict[int, ClaimCode]:
    """:func:`reveal_code` for a batch of cards, in one query (a dispatch batch's gifts).

    Ids of cards that do not exist are absent from the answer: the caller decides
    whether that fails one item or all.
    """
    cards = session.scalars(select(Card).where(Card.id.in_(card_ids))).all() if card_ids else []
    return {card.id: _open(card) for card in cards}


def activate_card(session: Session, card_id: int, *, idempotency_key: str) -> CardView:
    """Make an inactive (physical, not yet shipped) card redeemable."""
    card = lock_card(session, card_id)
    request = {"card_id": card_id}
    if idempotency.lookup(session, idempotency_key, "activate_card", request) is not None:
        return CardView.of(card)
    if card.status not in (CardStatus.INACTIVE, CardStatus.ACTIVE):
        raise InvalidState(f"card {card_id} is {card.status}; it cannot be activated")
    idempotency.claim(session, idempotency_key, "activate_card", request)
    if card.status == CardStatus.INACTIVE:
        card.status = CardStatus.ACTIVE.value
        card.activated_at = utcnow()
        session.flush()
    idempotency.complete(session, idempotency_key, request)
    return CardView.of(card)


def void_card(session: Session, card_id: int, *, idempotency_key: str) -> CardView:
    """Cancel an unredeemed card: its value goes back to funding, its code stops working."""
    card = lock_card(session, card_id)
    request = {"card_id": card_id}
    if idempotency.lookup(session, idempotency_key, "void_card", request) is not None:
        return CardView.of(card)
    if card.status not in (CardStatus.ACTIVE, CardStatus.INACTIVE):
        raise InvalidState(f"card {card_id} is {card.status}; only an unredeemed card can be voided")
    idempotency.claim(session, idempotency_key, "void_card", request)
    now = utcnow()
    post(
        session,
        "void",
        [
            Leg(card.account_id, card.currency, -card.amount),
            Leg(funding_account(session, card.marketplace), card.currency, card.amount),
        ],
        at=now,
    )
    card.status = CardStatus.VOIDED.value
    card.voided_at = now
    session.flush()
    idempotency.complete(session, idempotency_key, {"card_id": card_id})
    return CardView.of(card)
