from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery.errors import NotFound, OpsRefused
from delivery.models import Delivery, OrderLine
from delivery.ops import cards, lookups
from ledger import get_card


def test_a_card_being_sent_is_not_voided(Session: sessionmaker[Session], issued_order: Any) -> None:
    issued_order()
    with Session.begin() as s:
        card_id = s.scalars(select(OrderLine.card_id)).one()
        s.execute(update(Delivery).where(Delivery.kind == "gift").values(status="sending"))
    with pytest.raises(OpsRefused, match="being sent right now"), Session.begin() as s:
        cards.void(s, card_id)
    with Session() as s:
        assert get_card(s, card_id).status == "active"


def test_an_unknown_card_is_not_found(Session: sessionmaker[Session]) -> None:
    with Session.begin() as s:
        with pytest.raises(NotFound, match="no card 999"):
            cards.void(s, 999)
        with pytest.raises(NotFound, match="no card 999"):
            cards.activate(s, 999)
        with pytest.raises(NotFound, match="mistyped"):
            lookups.lookup_card_by_code(s, "7K3M-Q9RT-ZX2B-PW4NQ")
