"""Processing: issue an order's cards and create one delivery row per send.

An order's cards are issued in one ledger transaction; a bulk order of thousands of
lines goes in chunks of ``GIFTQ_ISSUE_CHUNK_SIZE`` lines, one database transaction
each (the ledger call, the lines' card ids and their deliveries commit together), so
that a crash loses at most the chunk in flight and a rerun resumes at the first line
without a card. A line with a card is never issued again; the ledger's idempotency key
per chunk is a second guard.

Physical cards are issued inactive (activated when fulfilment reports them shipped), and
their gifts are due at the vendor's next cut-off (:mod:`delivery.channels.physical.cutoff`).
Gifts due now are queued at once for their channel's workers; later ones stay
``scheduled`` for the due dispatcher, and so do the gifts of a channel that has no back
end configured here (listed by ``giftq ops failures`` as waiting).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, insert, select, update
from sqlalchemy.orm import Session

from delivery.channels import registry
from delivery.channels.physical.cutoff import next_cutoff
from delivery.errors import NotFound
from delivery.metrics import instruments
from delivery.models import Channel, Delivery, DeliveryKind, Order, OrderLine, OrderStatus, new_delivery_row
from delivery.outbox import enqueue_deliveries
from delivery.states import DeliveryStatus
from giftq.db import utcnow
from giftq.settings import get_settings
from ledger import CardSpec, issue_cards


@dataclass(frozen=True, slots=True)
class Progress:
    order_id: int
    status: str
    issued: int
    """Cards issued by this call."""

    @property
    def done(self) -> bool:
        return self.status not in (OrderStatus.ISSUING, OrderStatus.RECEIVED)


def card_reference(order_id: int, position: int) -> str:
    return f"giftq:order:{order_id}:line:{position}"


def issue_next_chunk(session: Session, order_id: int, *, chunk_size: int | None = None) -> Progress:
    """Issue the next chunk of an order's cards in the caller's transaction."""
    order = session.scalars(
        select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    ).one_or_none()
    if order is None:
        raise NotFound(f"no order {order_id}")
    if order.status not in (OrderStatus.RECEIVED, OrderStatus.ISSUING):
        return Progress(order.id, order.status, 0)

    size = chunk_size or get_settings().issue_chunk_size
    lines = list(
        session.scalars(
            select(OrderLine)
            .where(OrderLine.order_id == order.id, OrderLine.card_id.is_(None))
            .order_by(OrderLine.position)
            .limit(size)
        )
    )
    now = utcnow()
    # A short chunk was the last one; only a full one needs to ask whether more are left.
    last = len(lines) < size or not session.scalar(
        select(
            exists().where(
                OrderLine.order_id == order.id,
                OrderLine.card_id.is_(None),
                OrderLine.position > lines[-1].position,
            )
        )
    )
    rows = _issue(session, order, lines, now) if lines else []
    if last:
        rows.append(_confirmation(order, now))
    # The chunk's deliveries (and the receipt, after the last chunk): one INSERT.
    if rows:
        ids = session.scalars(insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True), rows)
        queued: dict[str, list[int]] = {}
        for delivery_id, row in zip(ids, rows, strict=True):
            if row["status"] == DeliveryStatus.QUEUED:
                queued.setdefault(str(row["channel"]), []).append(delivery_id)
        for channel, delivery_ids in queued.items():
            enqueue_deliveries(session, channel, delivery_ids)
    order.status = OrderStatus.ISSUED if last else OrderStatus.ISSUING
    order.updated_at = now
    session.flush()
    if last:
        instruments.after_commit(session, instruments.ORDERS, outcome="issued")
    return Progress(order.id, order.status, len(lines))


def _issue(
    session: Session, order: Order, lines: Sequence[OrderLine], now: dt.datetime
) -> list[dict[str, Any]]:
    """Issue the cards of ``lines`` (one ledger call); returns their gift deliveries' values."""
    specs = [
        CardSpec(
            marketplace=line.marketplace,
            amount=line.amount,
            active=line.channel != Channel.PHYSICAL,
            reference=card_reference(order.id, line.position),
            origin=line.origin,
        )
        for line in lines
    ]
    key = f"giftq:order:{order.id}:lines:{lines[0].position}-{lines[-1].position}"
    cards = issue_cards(session, specs, idempotency_key=key)
    for currency in {card.currency for card in cards}:
        issued = sum(1 for card in cards if card.currency == currency)
        instruments.after_commit(session, instruments.CARDS_ISSUED, issued, currency=currency)
    # One executemany for the chunk (the ORM would flush one UPDATE per line).
    session.execute(
        update(OrderLine),
        [
            {"id": line.id, "card_id": card.card_id, "card_last4": card.last4}
            for line, card in zip(lines, cards, strict=True)
        ],
    )
    return [
        gift_delivery(line, card.card_id, to_address=_address(line, order), now=now)
        for line, card in zip(lines, cards, strict=True)
    ]


def _address(line: OrderLine, order: Order) -> str | None:
    if line.channel == Channel.SMS:
        return line.recipient_phone
    if line.channel == Channel.PHYSICAL:
        return None
    if line.channel == Channel.PRINTABLE:
        # A card to print goes to the person who prints it and hands it over.
        return order.purchaser_email
    return line.recipient_email


def gift_delivery(
    line: OrderLine,
    card_id: int,
    *,
    to_address: str | None,
    now: dt.datetime,
    parent_id: int | None = None,
    to_name: str | None = None,
) -> dict[str, Any]:
    """Values of a new gift delivery: queued if it can go now, else scheduled.

    A channel with no back end configured here keeps its gifts ``scheduled``: the due
    dispatcher releases them once one is, and ops see them waiting meanwhile.
    """
    due = max(line.due_at, now)
    if line.channel == Channel.PHYSICAL:
        # Physical cards go to the vendor in batches: each is due at the next cut-off.
        due = next_cutoff(due)
    ready = Channel(line.channel) in registry.configured() and due <= now
    return new_delivery_row(
        order_id=line.order_id,
        line_id=line.id,
        card_id=card_id,
        kind=DeliveryKind.GIFT,
        channel=Channel(line.channel),
        status=DeliveryStatus.QUEUED if ready else DeliveryStatus.SCHEDULED,
        to_name=to_name or line.recipient_name,
        to_address=to_address,
        due_at=due,
        now=now,
        parent_id=parent_id,
    )


def _confirmation(order: Order, now: dt.datetime) -> dict[str, Any]:
    """The order confirmation to the purchaser: the receipt, sent as soon as all is issued."""
    return new_delivery_row(
        order_id=order.id,
        kind=DeliveryKind.CONFIRMATION,
        channel=Channel.EMAIL,
        to_name=order.purchaser_name,
        to_address=order.purchaser_email,
        due_at=now,
        now=now,
    )


def mark_failed(session: Session, order_id: int, error: str) -> None:
    """Issuance was refused for good: record why; no more of its cards are issued."""
    failed = session.execute(
        update(Order)
        .where(Order.id == order_id, Order.status.in_([OrderStatus.RECEIVED, OrderStatus.ISSUING]))
        .values(status=OrderStatus.FAILED, error=error[:2000], updated_at=utcnow())
    )
    if failed.rowcount:  # type: ignore[attr-defined]
        instruments.after_commit(session, instruments.ORDERS, outcome="failed")
