"""The balance page's check of a card, in a transaction of its own (see
:mod:`ledger.card_check` for the rules)."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from ledger import CardCheck, check_card
from ledger.errors import RedemptionRefused

__all__ = ["CardCheck", "check_card", "check_card_code"]


def check_card_code(
    session_maker: sessionmaker[Session], code: str, *, marketplace: str, client: str
) -> CardCheck:
    """:func:`check_card` in a transaction of its own that keeps a counted failure."""
    with session_maker() as session:
        session.begin()
        try:
            found = check_card(session, code, marketplace=marketplace, client=client)
        except RedemptionRefused:
            session.commit()
            raise
        session.commit()
        return found
