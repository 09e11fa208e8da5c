"""What ops do to one card in the ledger: void it, activate it.

Voiding here is more than :func:`ledger.void_card`: a gift still waiting to carry the
card is cancelled with it (a dead code must not reach anyone), and a card being sent
right now is refused (try again in a minute). Activation is the ledger's own, for a
physical card that arrived without the vendor's report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery import lifecycle
from delivery.errors import NotFound, OpsRefused
from delivery.models import Delivery, DeliveryKind
from delivery.states import PENDING
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from ledger import CardView, activate_card, get_card, void_card
from ledger.errors import InvalidState
from ledger.errors import NotFound as NoCard


@dataclass(frozen=True, slots=True)
class VoidReport:
    card: CardView
    cancelled_deliveries: list[int] = field(default_factory=list)
    """Gifts of the card that had not gone out, stopped with it."""


def _card(session: Session, card_id: int) -> CardView:
    try:
        return get_card(session, card_id)
    except NoCard as exc:
        raise NotFound(str(exc)) from None


def void(session: Session, card_id: int) -> VoidReport:
    """Void an unredeemed card (its value goes back to funding) and stop its unsent gifts."""
    _card(session, card_id)
    gifts = list(
        session.scalars(
            select(Delivery)
            .where(Delivery.card_id == card_id, Delivery.kind == DeliveryKind.GIFT)
            .order_by(Delivery.id)
            .with_for_update()
        )
    )
    if any(d.status == S.SENDING for d in gifts):
        raise OpsRefused(f"card {card_id} is being sent right now; try again in a minute")
    try:
        view = void_card(session, card_id, idempotency_key=f"giftq:ops:void:{card_id}")
    except InvalidState as exc:
        raise OpsRefused(str(exc)) from None
    now = utcnow()
    report = VoidReport(view)
    for d in gifts:
        if d.status in PENDING:
            lifecycle.cancel(d, now)
            report.cancelled_deliveries.append(d.id)
    session.flush()
    return report


def activate(session: Session, card_id: int) -> CardView:
    """Make an inactive (physical) card redeemable; an active one stays as it is."""
    _card(session, card_id)
    try:
        return activate_card(session, card_id, idempotency_key=f"giftq:ops:activate:{card_id}")
    except InvalidState as exc:
        raise OpsRefused(str(exc)) from None
