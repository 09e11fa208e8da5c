"""Enqueue Celery tasks only after the database transaction that needs them committed.

The rows are the outbox: an order or a delivery is committed first, and its task is
sent from SQLAlchemy's ``after_commit`` session event. A rollback drops the messages.
A failure to publish (Redis away at that moment) is logged and swallowed: the commit
stands, and the sweeper re-enqueues whatever is left waiting.

Messages carry ids only, never a claim code.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from delivery.worker.celery_app import ROUTES, get_app
from giftq.settings import get_settings

log = logging.getLogger(__name__)

_PENDING = "giftq.outbox"


@dataclass(frozen=True, slots=True)
class Message:
    task: str
    kwargs: dict[str, Any]
    countdown: float | None = None


def enqueue_after_commit(
    session: Session, task: str, kwargs: dict[str, Any], *, countdown: float | None = None
) -> None:
    if task not in ROUTES:
        raise ValueError(f"unknown task {task!r}")
    session.info.setdefault(_PENDING, []).append(Message(task, kwargs, countdown))


def enqueue_deliveries(session: Session, delivery_ids: Iterable[int]) -> None:
    """Send queued email deliveries to the email workers, in batches, after commit."""
    ids = list(delivery_ids)
    size = get_settings().dispatch_batch_size
    for start in range(0, len(ids), size):
        enqueue_after_commit(session, "giftq.dispatch_email", {"delivery_ids": ids[start : start + size]})


def pending(session: Session) -> list[Message]:
    return list(session.info.get(_PENDING, ()))


def publish(messages: Sequence[Message]) -> int:
    """Send now; returns how many went out. Never raises: the sweeper covers failures."""
    if not messages:
        return 0
    app = get_app()
    sent = 0
    try:
        with app.producer_or_acquire() as producer:
            for message in messages:
                queue = ROUTES[message.task]
                app.send_task(
                    message.task,
                    kwargs=message.kwargs,
                    queue=queue,
                    routing_key=queue,
                    countdown=message.countdown,
                    producer=producer,
                )
                sent += 1
    except Exception as exc:  # any broker failure: the sweeper re-enqueues
        log.warning(
            "could not enqueue %d of %d tasks after commit (%s: %s); the sweeper will retry",
            len(messages) - sent,
            len(messages),
            type(exc).__name__,
            exc,
        )
    return sent


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    messages = session.info.pop(_PENDING, None)
    if messages:
        publish(messages)


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
