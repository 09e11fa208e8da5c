"""Expiry and reinstatement: a card's remaining value moves to breakage, and can come back.

- :func:`expire_card`: card -> breakage (transaction kind ``expire``), the card's whole
  remaining value (cards redeem whole, so that is its face value), and the card's status
  becomes ``expired``, for good. Only an unredeemed card past its ``expires_at`` expires.
  A card redeemed into a wallet is never touched: that balance is the customer's.
- :func:`expire_due`: every card due, one ledger transaction each under the key
  ``giftq:expire:<card id>``, so that a rerun, or two runs at once, expire a card once.
- :func:`reinstate_card`: breakage -> a new card of the same value (transaction kind
  ``reinstate``), whose row names the card it replaces (``replaces_card_id``, unique: one
  reinstatement per card). The new card is a new load: its expiry runs from now under the
  marketplace's policy. The expired card keeps its status; its code stays dead.

Nothing is deleted: breakage is an account like funding (one per marketplace, no
balance column), and reconciliation counts it.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from giftq.db import utcnow
from ledger import idempotency
from ledger.accounts import breakage_account
from ledger.cards import CardSpec, CardView, IssuedCard, create_cards, load_issued, lock_card
from ledger.errors import InvalidState
from ledger.expiry_policy import last_valid_day
from ledger.models import Card, CardStatus
from ledger.posting import Leg, post

UNREDEEMED = (CardStatus.ACTIVE.value, CardStatus.INACTIVE.value)


def is_past_expiry(card: Card | CardView, now: dt.datetime) -> bool:
    return card.expires_at is not None and card.expires_at <= now


def expire_card(
    session: Session, card_id: int, *, idempotency_key: str, now: dt.datetime | None = None
) -> CardView:
    """Move an unredeemed, expired card's value to its marketplace's breakage account."""
    card = lock_card(session, card_id)
    request = {"card_id": card_id}
    if idempotency.lookup(session, idempotency_key, "expire_card", request) is not None:
        return CardView.of(card)
    now = now or utcnow()
    if card.status not in UNREDEEMED:
        raise InvalidState(f"card {card_id} is {card.status}; only an unredeemed card expires")
    if not is_past_expiry(card, now):
        until = f"valid until {last_valid_day(card.expires_at)}" if card.expires_at else "does not expire"
        raise InvalidState(f"card {card_id} {until}; it cannot be expired now")
    idempotency.claim(session, idempotency_key, "expire_card", request)
    post(
        session,
        "expire",
        [
            Leg(card.account_id, card.currency, -card.amount),
            Leg(breakage_account(session, card.marketplace), card.currency, card.amount),
        ],
        at=now,
    )
    card.status = CardStatus.EXPIRED.value
    card.expired_at = now
    session.flush()
    idempotency.complete(session, idempotency_key, request)
    return CardView.of(card)


def due_for_expiry(session: Session, *, now: dt.datetime, limit: int = 1000) -> list[int]:
    """Ids of unredeemed cards past their expiry, oldest expiry first."""
    return list(
        session.scalars(
            select(Card.id)
            .where(Card.status.in_(UNREDEEMED), Card.expires_at <= now)
            .order_by(Card.expires_at, Card.id)
            .limit(limit)
        )
    )


def expire_key(card_id: int) -> str:
    return f"giftq:expire:{card_id}"


def expire_due(session: Session, *, now: dt.datetime | None = None, limit: int = 1000) -> list[CardView]:
    """Expire up to ``limit`` due cards in the caller's transaction, one posting each."""
    now = now or utcnow()
    expired = []
    for card_id in due_for_expiry(session, now=now, limit=limit):
        try:
            expired.append(expire_card(session, card_id, idempotency_key=expire_key(card_id), now=now))
        except InvalidState:
            continue  # redeemed or voided since the query (a concurrent run): nothing to do
    return expired


def reinstate_card(session: Session, card_id: int, *, idempotency_key: str) -> IssuedCard:
    """Issue a replacement for an expired card, with its value taken back from breakage.

    The same key answers with the same replacement; a second reinstatement of one card
    under another key is refused (``InvalidState``), and the database holds that too.
    """
    card = lock_card(session, card_id)
    request = {"card_id": card_id}
    replay = idempotency.lookup(session, idempotency_key, "reinstate_card", request)
    if replay is not None:
        return load_issued(session, [replay["card_id"]])[0]
    if card.status != CardStatus.EXPIRED:
        raise InvalidState(f"card {card_id} is {card.status}; only an expired card can be reinstated")
    already = session.scalar(select(Card.id).where(Card.replaces_card_id == card_id))
    if already is not None:
        raise InvalidState(f"card {card_id} was reinstated before, as card {already}")
    idempotency.claim(session, idempotency_key, "reinstate_card", request)
    now = utcnow()
    spec = CardSpec(
        card.marketplace,
        card.amount,
        active=card.activated_at is not None,
        reference=card.reference,
        origin=card.origin,
    )
    (new,) = create_cards(session, [spec], now, replaces=card.id)
    post(
        session,
        "reinstate",
        [
            Leg(breakage_account(session, card.marketplace), card.currency, -card.amount),
            Leg(new.account_id, new.currency, new.amount),
        ],
        at=now,
    )
    idempotency.complete(session, idempotency_key, {"card_id": new.card_id})
    return new.issued


def expired_on(card: Card, now: dt.datetime) -> dt.date | None:
    """The (UTC) day an expired card stopped being valid, or None while it is not expired."""
    return expired_day(card.status, card.expires_at, now)


def expired_day(status: str, expires_at: dt.datetime | None, now: dt.datetime) -> dt.date | None:
    """:func:`expired_on` from a card's status and expiry (as a database function answers them)."""
    past = expires_at is not None and expires_at <= now
    if status == CardStatus.EXPIRED or (status in UNREDEEMED and past):
        return expires_at.astimezone(dt.UTC).date() if expires_at else now.date()
    return None


def expiring(
    session: Session, *, after: dt.datetime, until: dt.datetime, limit: int = 1000
) -> list[CardView]:
    """Active cards (value still on them) that expire after ``after`` and by ``until``."""
    cards = session.scalars(
        select(Card)
        .where(Card.status == CardStatus.ACTIVE.value, Card.expires_at > after, Card.expires_at <= until)
        .order_by(Card.expires_at, Card.id)
        .limit(limit)
    )
    return [CardView.of(card) for card in cards]
