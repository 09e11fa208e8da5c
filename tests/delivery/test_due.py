from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery.due import release_due
from delivery.models import Delivery, DeliveryKind
from giftq.db import utcnow


def _gifts(Session: sessionmaker[Session]) -> list[Delivery]:
    with Session() as s:
        return list(
            s.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.GIFT).order_by(Delivery.id))
        )


def test_releases_what_is_due_and_nothing_else(
    Session: sessionmaker[Session], issued_order: Any, broker_messages: Any
) -> None:
    now = utcnow()
    issued_order(lines=4)
    ids = [d.id for d in _gifts(Session)]
    with Session.begin() as s:
        s.execute(
            update(Delivery)
            .where(Delivery.id == ids[0])
            .values(status="scheduled", due_at=now - dt.timedelta(seconds=1))
        )
        s.execute(
            update(Delivery)
            .where(Delivery.id == ids[1])
            .values(status="scheduled", due_at=now + dt.timedelta(days=300))
        )
        s.execute(
            update(Delivery)
            .where(Delivery.id == ids[2])
            .values(status="failed_retryable", due_at=now - dt.timedelta(minutes=5))
        )
        s.execute(
            update(Delivery)
            .where(Delivery.id == ids[3])
            .values(status="failed_retryable", due_at=now + dt.timedelta(minutes=5))
        )
    broker_messages("email")
    with Session.begin() as s:
        released = release_due(s, now=now)
    assert sorted(released) == [ids[0], ids[2]]
    assert [d.status for d in _gifts(Session)] == ["queued", "scheduled", "queued", "failed_retryable"]
    assert broker_messages("email") == [("giftq.dispatch_email", {"delivery_ids": sorted(released)})]


def test_other_channels_wait_for_their_sender(Session: sessionmaker[Session], issued_order: Any) -> None:
    issued_order(channel="sms", recipient={"name": "S", "phone": "+14155550123"})
    with Session.begin() as s:
        assert release_due(s) == []
    assert [d.status for d in _gifts(Session)] == ["scheduled"]


def test_limit_takes_the_oldest_first(Session: sessionmaker[Session], issued_order: Any) -> None:
    now = utcnow()
    issued_order(lines=3)
    ids = [d.id for d in _gifts(Session)]
    with Session.begin() as s:
        for age, delivery_id in zip((1, 3, 2), ids, strict=True):
            s.execute(
                update(Delivery)
                .where(Delivery.id == delivery_id)
                .values(status="scheduled", due_at=now - dt.timedelta(hours=age))
            )
    with Session.begin() as s:
        assert release_due(s, limit=2, now=now) == [ids[1], ids[2]]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_dispatchers_split_the_rows(Session: sessionmaker[Session], issued_order: Any) -> None:
    """SKIP LOCKED: a second dispatcher neither waits for nor repeats the first one's rows."""
    now = utcnow()
    issued_order(lines=4)
    with Session.begin() as s:
        s.execute(
            update(Delivery).where(Delivery.kind == DeliveryKind.GIFT).values(status="scheduled", due_at=now)
        )
    with Session.begin() as first:
        taken_first = release_due(first, limit=2, now=now)
        taken_second: list[int] = []

        def second() -> None:
            with Session.begin() as s:
                taken_second.extend(release_due(s, now=now))

        thread = threading.Thread(target=second)
        thread.start()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the second dispatcher waited for the first one's locks"
    assert len(taken_first) == len(taken_second) == 2
    assert not set(taken_first) & set(taken_second)
