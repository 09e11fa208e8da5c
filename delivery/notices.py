"""The purchaser's notices and the suppression list: what follows a send.

The notices are deliveries of their own (``delivered_notice``, ``failed_notice``), by
email to the purchaser, with the same state machine and retries; a notice about a
notice is never sent. :mod:`delivery.lifecycle` decides when one is due.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import insert
from sqlalchemy.orm import Session

from delivery.models import Channel, Delivery, DeliveryKind, Order, SuppressedAddress, new_delivery_row
from delivery.outbox import enqueue_deliveries
from delivery.reasons import FailureReason
from giftq.db import insert_new, utcnow


def suppress(
    session: Session, address: str, *, code: int | None, response: str, delivery_id: int | None
) -> None:
    """Stop sending to ``address`` until ops clears it (idempotent; races are fine)."""
    insert_new(
        session,
        SuppressedAddress,
        {
            "address": address.lower(),
            "code": code,
            "response": response,
            "delivery_id": delivery_id,
            "created_at": utcnow(),
        },
    )


def notice_row(
    gift: Delivery,
    order: Order,
    kind: DeliveryKind,
    reason: FailureReason | None = None,
    *,
    now: dt.datetime,
) -> dict[str, object]:
    """A notice to the purchaser about ``gift``, as values for :func:`add`."""
    return new_delivery_row(
        order_id=order.id,
        line_id=gift.line_id,
        kind=kind,
        channel=Channel.EMAIL,
        to_name=order.purchaser_name,
        to_address=order.purchaser_email,
        due_at=now,
        now=now,
        parent_id=gift.id,
        reason=reason,
    )


def add(session: Session, notices: list[dict[str, object]]) -> None:
    """Insert notices (one statement) and send them after commit."""
    if notices:
        ids = session.scalars(insert(Delivery).returning(Delivery.id, sort_by_parameter_order=True), notices)
        enqueue_deliveries(session, Channel.EMAIL, list(ids))
