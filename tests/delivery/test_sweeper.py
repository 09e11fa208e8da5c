from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.models import Delivery, DeliveryAttempt, DeliveryKind, Order
from delivery.sweeper import sweep
from giftq.db import utcnow
from giftq.settings import reset_settings

LONG_AGO = dt.timedelta(hours=2)


@pytest.fixture(autouse=True)
def _thresholds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_SWEEP_STUCK_AFTER_SECONDS", "600")
    monkeypatch.setenv("GIFTQ_SWEEP_SENDING_AFTER_SECONDS", "900")
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "[10, 20]")
    reset_settings()


def test_an_order_whose_message_was_lost_is_enqueued_again(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    fresh = place_order(order_payload(), idempotency_key="fresh")
    lost = place_order(order_payload(), idempotency_key="lost")
    broker_messages("orders")
    with Session.begin() as s:
        s.execute(update(Order).where(Order.id == lost.order_id).values(updated_at=utcnow() - LONG_AGO))
    with Session.begin() as s:
        report = sweep(s)
    assert report.orders == 1
    assert broker_messages("orders") == [("giftq.process_order", {"order_id": lost.order_id})]
    # Touched: the next sweep leaves it be for another period.
    with Session.begin() as s:
        assert sweep(s).orders == 0
    assert fresh.order_id != lost.order_id


def test_queued_deliveries_nobody_took_are_enqueued_again(
    Session: sessionmaker[Session], issued_order: Any, broker_messages: Any
) -> None:
    issued_order(lines=2)
    broker_messages("email")
    with Session.begin() as s:
        s.execute(update(Delivery).values(updated_at=utcnow() - LONG_AGO))
        ids = sorted(s.scalars(select(Delivery.id)))
    with Session.begin() as s:
        assert sweep(s).queued == 3
    assert broker_messages("email") == [("giftq.dispatch_email", {"delivery_ids": ids})]


def test_sends_whose_worker_died_go_back_to_the_queue(
    Session: sessionmaker[Session], issued_order: Any, broker_messages: Any
) -> None:
    issued_order()
    with Session.begin() as s:
        gift = s.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.GIFT)).one()
        gift.status, gift.claimed_by, gift.updated_at = "sending", "dead-task", utcnow() - LONG_AGO
    broker_messages("email")
    with Session.begin() as s:
        report = sweep(s)
    assert (report.recovered, report.abandoned) == (1, 0)
    with Session() as s:
        gift = s.get_one(Delivery, gift.id)
        assert (gift.status, gift.attempts, gift.claimed_by) == ("queued", 1, None)
        (attempt,) = s.scalars(select(DeliveryAttempt)).all()
        assert (attempt.outcome, attempt.number) == ("interrupted", 1)
    assert ("giftq.dispatch_email", {"delivery_ids": [gift.id]}) in broker_messages("email")


def test_a_send_that_keeps_killing_its_worker_fails_for_good(
    Session: sessionmaker[Session], issued_order: Any
) -> None:
    issued_order()
    with Session.begin() as s:
        gift = s.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.GIFT)).one()
        gift.status, gift.attempts, gift.updated_at = "sending", 2, utcnow() - LONG_AGO
    with Session.begin() as s:
        assert sweep(s).abandoned == 1
    with Session() as s:
        assert s.get_one(Delivery, gift.id).status == "failed_permanent"
        notice = s.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.FAILED_NOTICE)).one()
        assert (notice.status, notice.to_address, notice.parent_id) == ("queued", "pat@example.com", gift.id)


def test_live_sends_are_left_alone(Session: sessionmaker[Session], issued_order: Any) -> None:
    issued_order()
    with Session.begin() as s:
        s.execute(update(Delivery).values(status="sending", updated_at=utcnow() - dt.timedelta(minutes=5)))
    with Session.begin() as s:
        assert sweep(s).as_dict() == {"orders": 0, "queued": 0, "recovered": 0, "abandoned": 0}
