"""The due dispatcher: far-future sends and later retries are rows, not Celery ETAs.

Every ``GIFTQ_SCHEDULER_INTERVAL_SECONDS`` beat sends ``giftq.dispatch_due``, which
moves deliveries whose UTC ``due_at`` has come (``scheduled`` sends, ``failed_retryable``
retries) to ``queued`` and enqueues them in batches after commit. On PostgreSQL the rows
are taken with ``FOR UPDATE SKIP LOCKED``, so two dispatchers (two beats by mistake, or
a slow tick overlapping the next) split the work instead of queueing behind each other.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from delivery.channels import registry
from delivery.models import Channel, Delivery
from delivery.outbox import enqueue_deliveries
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow

RELEASED_FROM = (S.SCHEDULED, S.FAILED_RETRYABLE)


def release_due(session: Session, *, limit: int = 1000, now: dt.datetime | None = None) -> list[int]:
    """Queue up to ``limit`` due deliveries, oldest due first; returns their ids."""
    now = now or utcnow()
    ids = list(
        session.scalars(
            select(Delivery.id)
            .where(
                Delivery.status.in_(RELEASED_FROM),
                Delivery.due_at <= now,
                Delivery.channel.in_(sorted(registry.configured())),
            )
            .order_by(Delivery.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    released = session.execute(
        update(Delivery)
        .where(Delivery.id.in_(ids), Delivery.status.in_(RELEASED_FROM))
        .values(status=S.QUEUED, updated_at=now)
        .returning(Delivery.id, Delivery.channel),
        execution_options={"synchronize_session": False},
    ).all()
    by_channel: dict[Channel, list[int]] = {}
    for delivery_id, channel in released:
        by_channel.setdefault(channel, []).append(delivery_id)
    for channel, delivery_ids in sorted(by_channel.items()):
        enqueue_deliveries(session, channel, sorted(delivery_ids))
    return sorted(i for i, _ in released)
