"""The outbox's publisher: Celery's producer pool, one connection for a whole commit."""

from __future__ import annotations

from collections.abc import Sequence

from delivery.outbox import Message
from delivery.worker.celery_app import get_app


def publish(messages: Sequence[Message]) -> int:
    """Send every message on one pooled producer; returns how many went out, raises on failure."""
    app = get_app()
    sent = 0
    with app.producer_or_acquire() as producer:
        for message in messages:
            app.send_task(
                message.task,
                kwargs=message.kwargs,
                queue=message.queue,
                routing_key=message.queue,
                countdown=message.countdown,
                producer=producer,
            )
            sent += 1
    return sent
