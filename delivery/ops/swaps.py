"""Swapping a card into another marketplace, as ops do it for its holder.

The ledger voids the card and issues the converted value as a new card
(:func:`ledger.swap_card`); here the new card reaches the holder the way every code in
giftq does: never in an answer, always by a delivery. The new card goes by email (a gift
delivery on the card's order line), to the address the last email gift of the card went
to, or to a corrected one ops give. The line then points at the new card (as after a
reissue), and gifts of the old card that had not gone out are stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery import lifecycle
from delivery.addresses import UndeliverableAddress, deliverable_email
from delivery.channels import registry
from delivery.errors import NotFound, OpsRefused
from delivery.models import Channel, Delivery, DeliveryKind, OrderLine, SuppressedAddress, new_delivery_row
from delivery.ops.lookups import DeliveryView, views
from delivery.outbox import enqueue_deliveries
from delivery.states import PENDING
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from ledger import SwapResult, get_card, swap_card
from ledger.errors import InvalidState
from ledger.errors import NotFound as NoCard


@dataclass(frozen=True, slots=True)
class SwapReport:
    swap_id: int
    old_card_id: int
    new_card_id: int
    new_card: str
    """The new card as ops may see it: ``#id ••••-XXXX``."""
    from_marketplace: str
    to_marketplace: str
    from_amount: int
    from_currency: str
    to_amount: int
    to_currency: str
    rate: str
    rate_date: str | None
    transaction_id: int
    delivery: DeliveryView
    """The email that carries the new code to the holder."""
    cancelled_deliveries: list[int]
    """Gifts of the old card that had not gone out, stopped."""


def swap(
    session: Session,
    card_id: int,
    *,
    marketplace: str,
    email: str | None = None,
    idempotency_key: str | None = None,
) -> SwapReport:
    """Swap an unredeemed card into ``marketplace`` and email the new card to its holder."""
    try:
        get_card(session, card_id)
    except NoCard as exc:
        raise NotFound(str(exc)) from None
    line = session.scalars(
        select(OrderLine)
        .where(OrderLine.card_id == card_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one_or_none()
    if line is None:
        raise OpsRefused(
            f"card {card_id} is not the current card of any order line; no holder to send a new card to"
        )
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
    emailed = [d for d in gifts if d.channel == Channel.EMAIL and d.to_address]
    address = _address(email, emailed[-1].to_address if emailed else line.recipient_email, card_id)
    if session.get(SuppressedAddress, address.lower()) is not None:
        raise OpsRefused(
            f"{address} is suppressed after a permanent failure; "
            f"clear it first (giftq ops unsuppress {address}) or give another address"
        )
    try:
        result = swap_card(
            session,
            card_id,
            to_marketplace=marketplace,
            idempotency_key=idempotency_key or f"giftq:ops:swap:{card_id}",
        )
    except InvalidState as exc:
        raise OpsRefused(str(exc)) from None
    now = utcnow()
    cancelled = []
    for d in gifts:
        if d.status in PENDING:
            lifecycle.cancel(d, now)
            cancelled.append(d.id)
    line.card_id, line.card_last4 = result.new_card.card_id, result.new_card.last4
    ready = Channel.EMAIL in registry.configured()
    delivery = Delivery(
        **new_delivery_row(
            order_id=line.order_id,
            line_id=line.id,
            card_id=result.new_card.card_id,
            kind=DeliveryKind.GIFT,
            channel=Channel.EMAIL,
            status=S.QUEUED if ready else S.SCHEDULED,
            to_name=gifts[-1].to_name if gifts else line.recipient_name,
            to_address=address,
            due_at=now,
            now=now,
            parent_id=gifts[-1].id if gifts else None,
        )
    )
    session.add(delivery)
    session.flush()
    if ready:
        enqueue_deliveries(session, Channel.EMAIL, [delivery.id])
    return _report(result, views(session, [delivery], with_log=False)[0], cancelled)


def _address(given: str | None, known: str | None, card_id: int) -> str:
    address = given or known
    if not address:
        raise OpsRefused(f"card {card_id} never went by email: give the holder's email address")
    try:
        return deliverable_email(address)
    except UndeliverableAddress as exc:
        raise OpsRefused(f"email: {exc}") from None


def _report(result: SwapResult, delivery: DeliveryView, cancelled: list[int]) -> SwapReport:
    new = result.new_card
    return SwapReport(
        swap_id=result.swap_id,
        old_card_id=result.old_card_id,
        new_card_id=new.card_id,
        new_card=delivery.card or f"#{new.card_id}",
        from_marketplace=result.from_marketplace,
        to_marketplace=result.to_marketplace,
        from_amount=result.from_amount,
        from_currency=result.from_currency,
        to_amount=result.to_amount,
        to_currency=result.to_currency,
        rate=format(result.rate, "f"),
        rate_date=result.rate_date.isoformat() if result.rate_date else None,
        transaction_id=result.transaction_id,
        delivery=delivery,
        cancelled_deliveries=cancelled,
    )
