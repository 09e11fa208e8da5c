"""The sweeper: whatever waits longer than it should is pushed along again.

- orders still ``received``/``issuing`` with no progress for ``sweep_stuck_after``
  (their message was lost: Redis away at commit, a worker gone): issuance re-enqueued;
- deliveries ``queued`` that long: dispatch re-enqueued (claiming is atomic, so a
  duplicate message costs a no-op);
- deliveries ``sending`` for ``sweep_sending_after`` (longer than any task may run, so
  their worker is gone): they go back to ``queued``; the one that was in flight gets an
  ``interrupted`` attempt and a possible duplicate counted, and fails for good once it
  used up the retry schedule (a message that kills its worker every time must not do so
  forever).

Each re-enqueue touches ``updated_at``, so a row is pushed once per period, not per sweep.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.orm import Session

from delivery import lifecycle
from delivery.channels import registry
from delivery.models import Channel, Delivery, Order
from delivery.orders.processing import PROCESSABLE
from delivery.outbox import enqueue_after_commit, enqueue_deliveries
from delivery.retry import RetrySchedule
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from giftq.settings import get_settings

LIMIT = 1000


@dataclass(frozen=True, slots=True)
class SweepReport:
    orders: int
    queued: int
    recovered: int
    abandoned: int

    def as_dict(self) -> dict[str, int]:
        return {
            "orders": self.orders,
            "queued": self.queued,
            "recovered": self.recovered,
            "abandoned": self.abandoned,
        }


def sweep(session: Session, *, now: dt.datetime | None = None) -> SweepReport:
    now = now or utcnow()
    settings = get_settings()
    stuck = now - dt.timedelta(seconds=settings.sweep_stuck_after_seconds)
    orders = _touch(
        session,
        select(Order.id).where(Order.status.in_(PROCESSABLE), Order.updated_at < stuck).order_by(Order.id),
        Order,
        now,
    )
    for order_id in orders:
        enqueue_after_commit(session, "giftq.process_order", {"order_id": order_id})
    queued = _touch(
        session,
        select(Delivery.id)
        .where(
            Delivery.status == S.QUEUED,
            Delivery.updated_at < stuck,
            Delivery.channel.in_(sorted(registry.configured())),
        )
        .order_by(Delivery.id),
        Delivery,
        now,
    )
    _enqueue(session, queued)
    recovered, abandoned = _recover_sending(
        session, now - dt.timedelta(seconds=settings.sweep_sending_after_seconds), now
    )
    return SweepReport(len(orders), len(queued), len(recovered), abandoned)


def _touch(
    session: Session, query: Select[Any], table: type[Order] | type[Delivery], now: dt.datetime
) -> list[int]:
    ids = list(session.scalars(query.limit(LIMIT).with_for_update(skip_locked=True)))
    if ids:
        session.execute(
            update(table).where(table.id.in_(ids)).values(updated_at=now),
            execution_options={"synchronize_session": False},
        )
    return ids


def _recover_sending(session: Session, before: dt.datetime, now: dt.datetime) -> tuple[list[int], int]:
    rows = list(
        session.execute(
            select(Delivery, Order)
            .join(Order, Delivery.order_id == Order.id)
            .where(Delivery.status == S.SENDING, Delivery.updated_at < before)
            .order_by(Delivery.id)
            .limit(LIMIT)
            .with_for_update(of=Delivery, skip_locked=True)
        ).all()
    )
    schedule = RetrySchedule.from_settings()
    # Answers are recorded as they come, so of a dead task's rows only its first in send
    # order was in flight; the others never started and go back without an attempt.
    in_flight: dict[str | None, int] = {}
    for delivery, _ in rows:
        in_flight[delivery.claimed_by] = min(delivery.id, in_flight.get(delivery.claimed_by, delivery.id))
    lifecycle.interrupted(session, sorted(in_flight.values()), now)
    recovered: list[int] = []
    abandoned = 0
    for delivery, order in rows:
        session.refresh(delivery, ["attempts"])
        if delivery.attempts >= schedule.max_attempts:
            lifecycle.abandon(session, delivery, order, now)
            abandoned += 1
        else:
            lifecycle.requeue(delivery, now)
            recovered.append(delivery.id)
    session.flush()
    _enqueue(session, recovered)
    return recovered, abandoned


def _enqueue(session: Session, delivery_ids: list[int]) -> None:
    """Enqueue deliveries to their channels' workers (after commit)."""
    if not delivery_ids:
        return
    by_channel: dict[Channel, list[int]] = {}
    for delivery_id, channel in session.execute(
        select(Delivery.id, Delivery.channel).where(Delivery.id.in_(delivery_ids)).order_by(Delivery.id)
    ):
        by_channel.setdefault(channel, []).append(delivery_id)
    for channel, ids in by_channel.items():
        enqueue_deliveries(session, channel, ids)
