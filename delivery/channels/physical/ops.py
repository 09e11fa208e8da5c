"""What ops do with physical cards: see where each card is, send a batch again, mark a card
lost. Functions take the caller's session; codes are never shown (a card is
``#<id> ••••-XXXX``).

- :func:`awaiting`: cards not yet with the vendor (waiting for a cut-off, being handed
  over, or waiting to retry a failed hand-over), oldest due first;
- :func:`list_batches` / :func:`in_batch`: recent batches, and the cards of one;
- :func:`shipped`: shipped cards, newest first, with carrier and tracking number;
- :func:`resend_batch`: hand a batch to the vendor again (it lost the file): the cards of
  it that are still with the vendor, neither shipped nor replaced, under ``<ref>.r<n>``;
- :func:`mark_lost`: a card that will never arrive (lost in the post, or at the vendor):
  void it and put a new card for the same line in the next batch.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.channels.physical import backends, sealing, slips
from delivery.channels.physical.backends import Backend
from delivery.channels.physical.batches import manifest_row
from delivery.channels.physical.manifest import Batch, item_ref
from delivery.channels.physical.models import (
    BatchStatus,
    FulfilmentBatch,
    FulfilmentItem,
    FulfilmentReport,
    ReportEvent,
)
from delivery.channels.physical.reports import replace_card
from delivery.channels.physical.sender import brand
from delivery.errors import NotFound, OpsRefused
from delivery.models import Channel, Delivery, DeliveryKind, Order, OrderLine
from delivery.ops import DeliveryView
from delivery.ops.lookups import masked_card, views
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from ledger import get_card, reveal_codes
from ledger.models import CardStatus

WAITING = (S.SCHEDULED, S.QUEUED, S.SENDING, S.FAILED_RETRYABLE)
"""Not with the vendor yet (and not failed for good: ``giftq ops failures`` lists those)."""


@dataclass(frozen=True, slots=True)
class CardView:
    """A physical card as ops see it."""

    delivery_id: int
    item_ref: str
    order_id: int
    line_id: int | None
    card: str | None
    recipient_name: str
    ship_to: str
    """City, postal code and country."""
    status: str
    due_at: dt.datetime
    attempts: int
    last_error: str | None
    batch_ref: str | None = None
    carrier: str | None = None
    tracking_number: str | None = None
    reported: str | None = None
    """The vendor's last word: shipped, lost or damaged."""
    reported_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class BatchView:
    ref: str
    status: str
    backend: str
    cards: int
    created_at: dt.datetime
    updated_at: dt.datetime
    resends: int
    response: str | None


_GIFTS = (
    select(Delivery, OrderLine)
    .join(OrderLine, Delivery.line_id == OrderLine.id)
    .where(Delivery.channel == Channel.PHYSICAL, Delivery.kind == DeliveryKind.GIFT)
)
"""Physical gift deliveries with their lines (statements are immutable: each use adds to it)."""


def _views(session: Session, rows: Sequence[Any]) -> list[CardView]:
    ids = [d.id for d, _ in rows]
    batches: dict[int, str] = {}
    reports: dict[int, FulfilmentReport] = {}
    if ids:
        for delivery_id, ref in session.execute(
            select(FulfilmentItem.delivery_id, FulfilmentBatch.ref)
            .join(FulfilmentBatch, FulfilmentItem.batch_id == FulfilmentBatch.id)
            .where(FulfilmentItem.delivery_id.in_(ids))
            .order_by(FulfilmentItem.id)
        ):
            batches[delivery_id] = ref  # the latest batch wins
        for each in session.scalars(
            select(FulfilmentReport)
            .where(FulfilmentReport.delivery_id.in_(ids))
            .order_by(FulfilmentReport.id)
        ):
            reports[each.delivery_id] = each
    last4 = {d.card_id: get_card(session, d.card_id).last4 for d, _ in rows if d.card_id is not None}
    found = []
    for delivery, line in rows:
        address = line.recipient_address or {}
        report = reports.get(delivery.id)
        found.append(
            CardView(
                delivery_id=delivery.id,
                item_ref=item_ref(delivery.id),
                order_id=delivery.order_id,
                line_id=delivery.line_id,
                card=masked_card(delivery.card_id, last4.get(delivery.card_id or 0)),
                recipient_name=delivery.to_name,
                ship_to=" ".join(
                    str(address.get(k) or "") for k in ("city", "postal_code", "country")
                ).strip(),
                status=delivery.status,
                due_at=delivery.due_at,
                attempts=delivery.attempts,
                last_error=delivery.last_error,
                batch_ref=batches.get(delivery.id),
                carrier=report.carrier if report else None,
                tracking_number=report.tracking_number if report else None,
                reported=report.event if report else None,
                reported_at=report.created_at if report else None,
            )
        )
    return found


def awaiting(session: Session, *, limit: int = 100) -> list[CardView]:
    """Physical cards not yet with the vendor, the first due first."""
    rows = session.execute(
        _GIFTS.where(Delivery.status.in_(WAITING)).order_by(Delivery.due_at, Delivery.id).limit(limit)
    ).all()
    return _views(session, rows)


def shipped(session: Session, *, limit: int = 100) -> list[CardView]:
    """Shipped physical cards, the latest shipped first."""
    rows = session.execute(
        _GIFTS.join(FulfilmentReport, FulfilmentReport.delivery_id == Delivery.id)
        .where(FulfilmentReport.event == ReportEvent.SHIPPED)
        .order_by(FulfilmentReport.created_at.desc(), Delivery.id.desc())
        .limit(limit)
    ).all()
    return _views(session, rows)


def _batch(session: Session, ref: str) -> FulfilmentBatch:
    batch = session.scalars(
        select(FulfilmentBatch).where(FulfilmentBatch.ref == ref).with_for_update()
    ).one_or_none()
    if batch is None:
        raise NotFound(f"no fulfilment batch {ref}")
    return batch


def _view(batch: FulfilmentBatch) -> BatchView:
    return BatchView(
        batch.ref,
        batch.status,
        batch.backend,
        batch.cards,
        batch.created_at,
        batch.updated_at,
        batch.resends,
        batch.response,
    )


def list_batches(session: Session, *, limit: int = 50) -> list[BatchView]:
    """The latest batches first."""
    query = select(FulfilmentBatch).order_by(FulfilmentBatch.id.desc()).limit(limit)
    return [_view(b) for b in session.scalars(query)]


def in_batch(session: Session, ref: str) -> tuple[BatchView, list[CardView]]:
    """A batch and its cards, in manifest order."""
    batch = _batch(session, ref)
    rows = session.execute(
        _GIFTS.join(FulfilmentItem, FulfilmentItem.delivery_id == Delivery.id)
        .where(FulfilmentItem.batch_id == batch.id)
        .order_by(Delivery.id)
    )
    return _view(batch), _views(session, list(rows))


@dataclass(frozen=True, slots=True)
class ResendReport:
    name: str
    """What the vendor got: ``<ref>.r<n>``."""
    cards: int
    left_out: tuple[str, ...]
    """Item refs of the batch not sent again: shipped, replaced, or not with the vendor."""
    answer: str


def resend_batch(
    session: Session,
    ref: str,
    *,
    backend: Backend | None = None,
    sealer: sealing.Sealer | None = None,
) -> ResendReport:
    """Hand an accepted batch to the vendor again, with the cards it still holds.

    The cards' states do not change (they were ``sent`` and stay so); the batch counts
    the re-send. Raises (and changes nothing) when the hand-over fails.
    """
    batch = _batch(session, ref)
    if batch.status != BatchStatus.ACCEPTED:
        raise OpsRefused(f"batch {ref} is {batch.status}; only a batch the vendor accepted is sent again")
    rows = list(
        session.execute(
            select(Delivery, Order, OrderLine)
            .join(FulfilmentItem, FulfilmentItem.delivery_id == Delivery.id)
            .join(Order, Delivery.order_id == Order.id)
            .join(OrderLine, Delivery.line_id == OrderLine.id)
            .where(FulfilmentItem.batch_id == batch.id)
            .order_by(Delivery.id)
        )
    )
    reported = set(
        session.scalars(
            select(FulfilmentReport.delivery_id).where(
                FulfilmentReport.delivery_id.in_([d.id for d, _, _ in rows])
            )
        )
    )
    held = [
        (d, o, line)
        for d, o, line in rows
        if d.status == S.SENT
        and d.id not in reported
        and d.card_id == line.card_id
        and get_card(session, d.card_id or 0).status == CardStatus.INACTIVE
    ]
    kept = {d.id for d, _, _ in held}
    left_out = tuple(item_ref(d.id) for d, _, _ in rows if d.id not in kept)
    if not held:
        raise OpsRefused(f"nothing of batch {ref} is left to send: every card is shipped or replaced")
    sealer = sealer or sealing.from_settings()
    codes = reveal_codes(session, [d.card_id or 0 for d, _, _ in held])
    batch.resends += 1
    batch.updated_at = utcnow()
    again = Batch(
        batch.ref,
        batch.created_at,
        tuple(manifest_row(line, o, d.id, codes[d.card_id or 0], sealer) for d, o, line in held),
        resend=batch.resends,
    )
    backend = backend or backends.from_settings()
    answer = backend.hand_over(again, slips.render(again, brand()))
    session.flush()
    return ResendReport(again.name, len(held), left_out, answer)


def mark_lost(session: Session, card_id: int, *, detail: str = "") -> DeliveryView:
    """A card that will never arrive: void it; a new card for its line goes in the next batch.

    For a card with the vendor (``sent``) or shipped (``delivered``); returns the new
    delivery. A redeemed card arrived after all, and is refused.
    """
    found = session.execute(
        select(Delivery, Order)
        .join(Order, Delivery.order_id == Order.id)
        .where(
            Delivery.card_id == card_id,
            Delivery.channel == Channel.PHYSICAL,
            Delivery.kind == DeliveryKind.GIFT,
        )
        .order_by(Delivery.id.desc())
        .limit(1)
        .with_for_update(of=Delivery)
    ).one_or_none()
    if found is None:
        raise NotFound(f"no physical card {card_id}")
    delivery, order = found
    if delivery.status not in (S.SENT, S.DELIVERED):
        raise OpsRefused(
            f"card {card_id} is not with the vendor or shipped (its delivery {delivery.id} is "
            f"{delivery.status}); giftq ops reissue or cancel apply instead"
        )
    card = get_card(session, card_id)
    if card.status in (CardStatus.REDEEMED, CardStatus.VOIDED, CardStatus.EXPIRED):
        raise OpsRefused(f"card {card_id} is {card.status}; nothing to replace")
    if session.scalar(
        select(FulfilmentReport.id).where(
            FulfilmentReport.delivery_id == delivery.id, FulfilmentReport.event != ReportEvent.SHIPPED
        )
    ):
        raise OpsRefused(f"card {card_id} was reported lost or damaged before")
    now = utcnow()
    session.add(
        FulfilmentReport(
            delivery_id=delivery.id,
            event=ReportEvent.LOST,
            detail=detail or None,
            source="ops",
            created_at=now,
        )
    )
    what = "lost (ops)" + (f": {detail}" if detail else "")
    new_id = replace_card(session, delivery, order, what=what, now=now)
    if not new_id:
        raise OpsRefused(f"the line of card {card_id} has a newer card already")
    return views(session, [session.get_one(Delivery, new_id)], with_log=False)[0]
