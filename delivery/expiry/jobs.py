"""The expiry job (beat's ``giftq.expire_cards``, ``giftq ops expire``): expire due cards,
then remind recipients of cards that expire soon.

- Expiry: each unredeemed card past its ``expires_at`` moves its value to breakage
  (:func:`ledger.expire_due`, one ledger transaction per card, keyed per card), and its
  gift deliveries that have not gone out are cancelled: a dead code must reach no one.
  Cards redeemed into a wallet are never touched; that balance is the customer's.
- Reminders: a card with value that expires within ``GIFTQ_EXPIRY_REMINDER_DAYS`` gets one
  reminder (kind ``expiry_reminder``) the way its gift went: an email to the address its
  gift email went to, a text to the number its gift text went to. The reminder and its
  ``expiry_reminders`` row are written together; the row's key is the card, so a rerun or
  a second beat never sends a second one. Cards printed at home or posted have no
  address of their recipient: they get no reminder.

Both work in the caller's transaction and enqueue after it commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from delivery import lifecycle
from delivery.channels import registry
from delivery.expiry.models import ExpiryReminder
from delivery.models import Channel, Delivery, DeliveryKind, new_delivery_row
from delivery.outbox import enqueue_deliveries
from delivery.states import PENDING
from delivery.states import DeliveryStatus as S
from giftq.settings import get_settings
from ledger import expire_due, expiring

REMINDED_AFTER = frozenset({S.SENT, S.DELIVERED})
"""A gift in one of these reached (or was handed on to) its recipient's mailbox."""


@dataclass(frozen=True, slots=True)
class ExpiryReport:
    expired_cards: list[int] = field(default_factory=list)
    cancelled_deliveries: list[int] = field(default_factory=list)
    """Unsent gifts of the cards that expired."""
    reminders: list[int] = field(default_factory=list)
    """Reminder deliveries created (one per card)."""


def run(session: Session, *, now: dt.datetime, limit: int = 1000) -> ExpiryReport:
    """Expire what is due and queue what reminders are due, up to ``limit`` of each."""
    report = ExpiryReport()
    expire_cards(session, now=now, limit=limit, report=report)
    remind(session, now=now, limit=limit, report=report)
    return report


def expire_cards(session: Session, *, now: dt.datetime, limit: int, report: ExpiryReport) -> None:
    expired = [card.card_id for card in expire_due(session, now=now, limit=limit)]
    report.expired_cards.extend(expired)
    if not expired:
        return
    unsent = session.scalars(
        select(Delivery)
        .where(Delivery.card_id.in_(expired), Delivery.status.in_(sorted(PENDING)))
        .order_by(Delivery.id)
        .with_for_update()
    )
    for delivery in unsent:
        lifecycle.cancel(delivery, now)
        report.cancelled_deliveries.append(delivery.id)
    session.flush()


def remind(session: Session, *, now: dt.datetime, limit: int, report: ExpiryReport) -> None:
    days = get_settings().expiry_reminder_days
    if not days:
        return
    soon = expiring(session, after=now, until=now + dt.timedelta(days=days), limit=limit)
    cards = {card.card_id: card for card in soon}
    if not cards:
        return
    reminded = set(
        session.scalars(select(ExpiryReminder.card_id).where(ExpiryReminder.card_id.in_(cards)))
    )
    gifts: dict[int, Delivery] = {}
    for gift in session.scalars(
        select(Delivery)
        .where(
            Delivery.card_id.in_([c for c in cards if c not in reminded]),
            Delivery.kind == DeliveryKind.GIFT,
            Delivery.channel.in_([Channel.EMAIL, Channel.SMS]),
            Delivery.status.in_(sorted(REMINDED_AFTER)),
        )
        .order_by(Delivery.id)
    ):
        gifts[gift.card_id or 0] = gift  # the latest gift (a resend's address) wins
    if not gifts:
        return
    rows = [
        new_delivery_row(
            order_id=gift.order_id,
            line_id=gift.line_id,
            card_id=card_id,
            kind=DeliveryKind.EXPIRY_REMINDER,
            channel=Channel(gift.channel),
            # A channel whose back end is gone here waits, listed by ops, as a gift would.
            status=S.QUEUED if Channel(gift.channel) in registry.configured() else S.SCHEDULED,
            to_name=gift.to_name,
            to_address=gift.to_address,
            due_at=now,
            now=now,
            parent_id=gift.id,
        )
        for card_id, gift in gifts.items()
    ]
    ids = list(session.scalars(insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True), rows))
    session.execute(
        insert(ExpiryReminder),
        [
            {"card_id": card_id, "delivery_id": delivery_id, "created_at": now}
            for card_id, delivery_id in zip(gifts, ids, strict=True)
        ],
    )
    for channel in {Channel(gift.channel) for gift in gifts.values()}:
        queued = [
            i
            for i, row in zip(ids, rows, strict=True)
            if row["channel"] == channel and row["status"] == S.QUEUED
        ]
        if queued:
            enqueue_deliveries(session, channel, queued)
    report.reminders.extend(ids)
