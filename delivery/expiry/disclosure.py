"""What every message about a card discloses: until when it is valid, or that it does
not expire, and where its terms are.

The gift email (text and HTML), the gift text message, the printable card, the packing
slip and the expiry reminder all say it from one :class:`Disclosure`, made from the
card's ledger row. A card issued before cards had terms recorded gets its marketplace's
terms URL of today.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from ledger import CardView, last_valid_day
from ledger.expiry_policy import terms_url


@dataclass(frozen=True, slots=True)
class Disclosure:
    valid_until: dt.date | None
    """The last (UTC) day the card can be used; None: it does not expire."""
    terms_url: str


def of_card(card: CardView) -> Disclosure:
    return Disclosure(
        last_valid_day(card.expires_at) if card.expires_at else None,
        card.terms_url or terms_url(card.marketplace),
    )
