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

from delivery.models import Delivery
from delivery.orders.processing import SENDERS
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
                Delivery.channel.in_(sorted(SENDERS)),
            )
            .order_by(Delivery.due_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    released = list(
        session.scalars(
            update(Delivery)
            .where(Delivery.id.in_(ids), Delivery.status.in_(RELEASED_FROM))
            .values(status=S.QUEUED, updated_at=now)
            .returning(Delivery.id),
            execution_options={"synchronize_session": False},
        )
    )
    enqueue_deliveries(session, sorted(released))
    return released
