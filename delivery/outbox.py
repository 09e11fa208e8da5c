"""Enqueue tasks only after the database transaction that needs them committed.

The rows are the outbox: an order or a delivery is committed first, and its task is
sent from SQLAlchemy's ``after_commit`` session event. A rollback drops the messages.
A failure to publish (the broker away at that moment) is logged and swallowed: the
commit stands, and the sweeper re-enqueues whatever is left waiting.

Messages carry ids only, never a claim code. This module imports no Celery: the
publisher lives in :mod:`delivery.worker.publisher` and is imported the first time a
process publishes (a storefront that only places orders loads Celery then, not at
import), or installed with :func:`set_publisher` (tests, the demo).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from delivery.channels.registry import info
from delivery.models import Channel
from delivery.routes import ROUTES
from giftq.settings import get_settings

log = logging.getLogger(__name__)

_PENDING = "giftq.outbox"


@dataclass(frozen=True, slots=True)
class Message:
    task: str
    kwargs: dict[str, Any]
    countdown: float | None = None

    @property
    def queue(self) -> str:
        return ROUTES[self.task]


Publisher = Callable[[Sequence[Message]], int]
"""Sends messages now and returns how many went out; raises if the broker is away."""

_publisher: Publisher | None = None


def set_publisher(publisher: Publisher | None) -> None:
    """Use ``publisher`` for every later publish (None: the Celery publisher, lazily)."""
    global _publisher  # noqa: PLW0603 - one per process, like the engine
    _publisher = publisher


def _current() -> Publisher:
    if _publisher is None:
        module = importlib.import_module("delivery.worker.publisher")
        set_publisher(module.publish)
    assert _publisher is not None
    return _publisher


def enqueue_after_commit(
    session: Session, task: str, kwargs: dict[str, Any], *, countdown: float | None = None
) -> None:
    if task not in ROUTES:
        raise ValueError(f"unknown task {task!r}")
    session.info.setdefault(_PENDING, []).append(Message(task, kwargs, countdown))


def enqueue_deliveries(
    session: Session, channel: Channel | str, delivery_ids: Iterable[int], *, countdown: float | None = None
) -> None:
    """Send queued deliveries of one channel to its workers, in batches, after commit."""
    ids = list(delivery_ids)
    task = info(channel).task
    size = get_settings().dispatch_batch_size
    for start in range(0, len(ids), size):
        enqueue_after_commit(session, task, {"delivery_ids": ids[start : start + size]}, countdown=countdown)


def pending(session: Session) -> list[Message]:
    return list(session.info.get(_PENDING, ()))


def publish(messages: Sequence[Message]) -> int:
    """Send now; returns how many went out. Never raises: the sweeper covers failures."""
    if not messages:
        return 0
    try:
        return _current()(messages)
    except Exception as exc:  # any broker failure: the sweeper re-enqueues
        log.warning(
            "could not enqueue %d tasks after commit (%s: %s); the sweeper will retry",
            len(messages),
            type(exc).__name__,
            exc,
        )
        return 0


@event.listens_for(Session, "after_commit")
def _publish_after_commit(session: Session) -> None:
    messages = session.info.pop(_PENDING, None)
    if messages:
        publish(messages)


@event.listens_for(Session, "after_rollback")
def _drop_after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)
