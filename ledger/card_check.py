"""Checking a card without redeeming it: what it holds, told no more than a redemption
attempt would tell (the balance page of the HTTP API asks this).

Same rules and the same counters as :mod:`ledger.redemption`: a well-formed code that no
card has counts toward the per-client lockout, a mistyped one does not, and a locked-out
client is told only to wait, whatever it typed. A card that could be redeemed here shows
its value (redeeming it would); any other card gets the answer a redemption would give
(already redeemed, for another store, not active yet, cancelled), without its value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from giftq.db import utcnow
from giftq.settings import get_settings
from ledger.codes import ClaimCode, get_vault
from ledger.errors import CodeNotValid
from ledger.expiry import expired_on
from ledger.marketplaces import get_marketplace
from ledger.models import Card, CardStatus
from ledger.redemption import lockout, record_failure


@dataclass(frozen=True, slots=True)
class CardCheck:
    status: str
    """``active`` (redeemable here), ``redeemed``, ``expired``, ``other_marketplace``,
    ``not_active`` or ``voided``."""
    amount: int | None = None
    """Only for ``active``."""
    card_marketplace: str | None = None
    """Only for ``other_marketplace``."""
    expired_on: dt.date | None = None
    """Only for ``expired``: the day it stopped being valid."""
    expires_at: dt.datetime | None = None
    """Only for ``active``: when it stops being valid (None: it does not expire)."""


def check_card(session: Session, code: str, *, marketplace: str, client: str) -> CardCheck:
    """Raises ``CodeMistyped``, ``CodeNotValid`` (counted) or ``TooManyAttempts``; the caller
    commits, so that a counted failure stays counted."""
    market = get_marketplace(marketplace)
    now = utcnow()
    scopes = [(f"client:{client}", get_settings().redeem_max_failures_per_client)]
    refusal = lockout(session, scopes, now)
    if refusal is not None:
        raise refusal
    claim = ClaimCode.parse(code)
    card = session.scalars(
        select(Card).where(Card.code_hash == get_vault().lookup_hash(claim.normalized))
    ).one_or_none()
    if card is None:
        record_failure(session, scopes, CodeNotValid.reason, now)
        raise CodeNotValid("this is not a valid gift card code")
    if card.status == CardStatus.VOIDED:
        return CardCheck("voided")
    if card.status == CardStatus.REDEEMED:
        return CardCheck("redeemed")
    if (day := expired_on(card, now)) is not None:
        return CardCheck("expired", expired_on=day)
    if card.marketplace != market.code:
        return CardCheck("other_marketplace", card_marketplace=card.marketplace)
    if card.status == CardStatus.INACTIVE:
        return CardCheck("not_active")
    return CardCheck("active", amount=card.amount, expires_at=card.expires_at)
