"""Held orders: nothing is issued or sent until the payment clears and the review passes;
a hold that ends otherwise cancels the order and tells the purchaser why."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order, sweeper
from delivery.errors import HoldRefused, NotFound, OpsRefused
from delivery.models import Delivery, DeliveryKind, Order, OrderLine
from delivery.ops import cancel_order, hold_for_review, list_held, reject_review, release_review
from delivery.orders import holds, processing
from giftq.db import utcnow
from ledger.models import Account, AccountKind

PAST = {"local_time": "2020-06-01T09:00", "zone": "UTC"}


def held(order_payload: Any, lines: int = 1, send_at: Any = None, **fields: Any) -> dict[str, Any]:
    payload: dict[str, Any] = order_payload(lines, **({"send_at": send_at} if send_at else {}))
    payload.update(fields)
    return payload


def said(conftest: Any, message: Any) -> str:
    """The plain text of an email with its lines joined (the text part is wrapped)."""
    return " ".join(conftest.text_of(message).split())


def order_row(Session: sessionmaker[Session], order_id: int) -> Order:
    with Session() as s:
        return s.get_one(Order, order_id)


def issue(Session: sessionmaker[Session], order_id: int) -> processing.Progress:
    with Session.begin() as s:
        return processing.issue_next_chunk(s, order_id)


def card_accounts(Session: sessionmaker[Session]) -> int:
    with Session() as s:
        return (
            s.scalar(select(func.count()).select_from(Account).where(Account.kind == AccountKind.CARD)) or 0
        )


def deliveries(Session: sessionmaker[Session], order_id: int) -> list[Delivery]:
    with Session() as s:
        return list(s.scalars(select(Delivery).where(Delivery.order_id == order_id).order_by(Delivery.id)))


def test_an_order_awaiting_payment_issues_and_sends_nothing(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    placed = place_order(held(order_payload, 2, payment="pending"), idempotency_key="p1")
    assert placed.status == "awaiting_payment"
    assert broker_messages("orders") == []
    # A process message that arrives anyway (a redelivery) and the sweeper, long after, pass it by.
    assert issue(Session, placed.order_id).issued == 0
    with Session.begin() as s:
        assert sweeper.sweep(s, now=utcnow() + dt.timedelta(hours=2)).orders == 0
    assert broker_messages("orders") == []
    order = order_row(Session, placed.order_id)
    assert (order.status, order.payment, order.review) == ("awaiting_payment", "pending", None)
    assert order.payment_due_at is not None
    assert order.payment_due_at - order.created_at == dt.timedelta(hours=24)
    assert deliveries(Session, placed.order_id) == []
    assert card_accounts(Session) == 0


def test_confirming_the_payment_releases_the_order_once(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    placed = place_order(held(order_payload, payment="pending"), idempotency_key="p1")
    answer = holds.confirm_payment(placed.order_id)
    assert (answer.status, answer.payment, answer.changed) == ("received", "confirmed", True)
    assert broker_messages("orders") == [("giftq.process_order", {"order_id": placed.order_id})]
    again = holds.confirm_payment(placed.order_id)
    assert (again.status, again.changed) == ("received", False)
    assert broker_messages("orders") == []
    assert issue(Session, placed.order_id).status == "issued"
    assert card_accounts(Session) == 1
    assert {d.kind for d in deliveries(Session, placed.order_id)} == {"gift", "confirmation"}


def test_a_paid_order_held_for_review_waits_for_ops(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    placed = place_order(held(order_payload, payment="pending", review=True), idempotency_key="p1")
    assert placed.status == "awaiting_payment"
    assert holds.confirm_payment(placed.order_id).status == "in_review"
    assert broker_messages("orders") == []
    with Session.begin() as s:
        answer = release_review(s, placed.order_id)
    assert (answer.status, answer.review) == ("received", "released")
    assert broker_messages("orders") == [("giftq.process_order", {"order_id": placed.order_id})]


def test_a_declined_payment_cancels_the_order_and_tells_the_purchaser(
    Session: sessionmaker[Session], order_payload: Any, smtp: Any, run_queued: Any, conftest: Any
) -> None:
    placed = place_order(held(order_payload, 2, payment="pending"), idempotency_key="p1")
    answer = holds.decline_payment(placed.order_id)
    assert (answer.status, answer.payment, answer.changed) == ("cancelled", "declined", True)
    assert holds.decline_payment(placed.order_id).changed is False
    with pytest.raises(HoldRefused, match="cancelled: its payment was declined"):
        holds.confirm_payment(placed.order_id)
    run_queued(Session)
    (notice,) = smtp.to("pat@example.com")
    text = said(conftest, notice)
    assert notice["Subject"] == "Your order SHOP-1001 was cancelled"
    assert "Your payment for it did not go through." in text
    assert "$25.00 gift card for Recipient 0" in text and "Recipient 1" in text
    assert smtp.to("r0@example.com") == []
    assert card_accounts(Session) == 0
    assert [(d.kind, d.status) for d in deliveries(Session, placed.order_id)] == [
        ("cancelled_notice", "sent")
    ]


def test_an_unconfirmed_payment_is_cancelled_at_its_deadline(
    Session: sessionmaker[Session], order_payload: Any, smtp: Any, run_queued: Any, conftest: Any
) -> None:
    placed = place_order(held(order_payload, payment="pending"), idempotency_key="p1")
    other = place_order(held(order_payload, payment="pending"), idempotency_key="p2")
    created = order_row(Session, placed.order_id).created_at
    with Session.begin() as s:
        assert holds.expire_overdue(s, now=created + dt.timedelta(hours=23)) == []
    holds.confirm_payment(other.order_id)
    with Session.begin() as s:
        assert holds.expire_overdue(s, now=created + dt.timedelta(hours=24, seconds=1)) == [placed.order_id]
    order = order_row(Session, placed.order_id)
    assert (order.status, order.payment) == ("cancelled", "overdue")
    assert order.error == "payment not confirmed within 24 hours (GIFTQ_PAYMENT_DEADLINE_SECONDS); cancelled"
    assert order_row(Session, other.order_id).status == "received"
    run_queued(Session)
    (notice,) = smtp.to("pat@example.com")
    assert "We did not receive your payment for it within 24 hours of the order." in said(conftest, notice)


def test_the_deadline_is_a_setting(
    Session: sessionmaker[Session], order_payload: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from giftq.settings import reset_settings

    monkeypatch.setenv("GIFTQ_PAYMENT_DEADLINE_SECONDS", "5400")
    reset_settings()
    placed = place_order(held(order_payload, payment="pending"), idempotency_key="p1")
    order = order_row(Session, placed.order_id)
    assert order.payment_due_at is not None
    assert order.payment_due_at - order.created_at == dt.timedelta(minutes=90)
    with Session.begin() as s:
        assert holds.expire_overdue(s, now=order.created_at + dt.timedelta(minutes=91)) == [placed.order_id]
    assert "within 90 minutes" in (order_row(Session, placed.order_id).error or "")


def test_ops_review_release_and_reject(
    Session: sessionmaker[Session], order_payload: Any, smtp: Any, run_queued: Any, conftest: Any
) -> None:
    flagged = place_order(held(order_payload, review=True), idempotency_key="r1")
    assert flagged.status == "in_review"
    assert issue(Session, flagged.order_id).issued == 0
    with Session.begin() as s:
        answer = reject_review(s, flagged.order_id)
    assert (answer.status, answer.review) == ("cancelled", "rejected")
    with Session.begin() as s, pytest.raises(OpsRefused, match="not held for review"):
        release_review(s, flagged.order_id)
    run_queued(Session)
    (notice,) = smtp.to("pat@example.com")
    assert "We could not approve it in our security check." in said(conftest, notice)

    # Ops put an order on review before its cards are issued; once issued, it is too late.
    placed = place_order(order_payload(), idempotency_key="r2")
    with Session.begin() as s:
        assert hold_for_review(s, placed.order_id).status == "in_review"
        assert hold_for_review(s, placed.order_id).changed is False
    assert issue(Session, placed.order_id).issued == 0
    with Session.begin() as s:
        release_review(s, placed.order_id)
    assert issue(Session, placed.order_id).status == "issued"
    with Session.begin() as s, pytest.raises(OpsRefused, match="is issued: only an order with no card"):
        hold_for_review(s, placed.order_id)


def test_ops_cancel_of_a_held_order_tells_the_purchaser(
    Session: sessionmaker[Session], order_payload: Any, smtp: Any, run_queued: Any, conftest: Any
) -> None:
    placed = place_order(held(order_payload, payment="pending"), idempotency_key="c1")
    with Session.begin() as s:
        report = cancel_order(s, placed.order_id)
    assert report.voided_cards == [] and report.cancelled_deliveries == []
    assert order_row(Session, placed.order_id).status == "cancelled"
    run_queued(Session)
    (notice,) = smtp.to("pat@example.com")
    assert "Our support team cancelled it." in said(conftest, notice)
    assert holds.decline_payment(placed.order_id).changed is False
    with pytest.raises(HoldRefused, match="is cancelled: cancelled by ops while held"):
        holds.confirm_payment(placed.order_id)
    assert order_row(Session, placed.order_id).status == "cancelled"


def test_answers_for_orders_not_held_are_refused(Session: sessionmaker[Session], order_payload: Any) -> None:
    placed = place_order(order_payload(), idempotency_key="n1")
    with pytest.raises(HoldRefused, match=f"order {placed.order_id} was not placed awaiting payment"):
        holds.confirm_payment(placed.order_id)
    with pytest.raises(HoldRefused, match="not placed awaiting payment"):
        holds.decline_payment(placed.order_id)
    with pytest.raises(NotFound, match="no order 999"):
        holds.confirm_payment(999)
    assert order_row(Session, placed.order_id).status == "received"


def test_a_gift_due_while_its_payment_is_pending_is_not_sent_and_ops_see_it(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    send_at = {"local_time": tomorrow.strftime("%Y-%m-%dT%H:%M"), "zone": "UTC"}
    placed = place_order(held(order_payload, 2, payment="pending", send_at=send_at), idempotency_key="s1")
    with Session() as s:
        (view,) = list_held(s, now=utcnow())
        assert (view.id, view.payment, view.lines, view.overdue_gifts, view.due_soon) == (
            placed.order_id,
            "pending",
            2,
            0,
            True,
        )
        (late,) = list_held(s, now=utcnow() + dt.timedelta(days=2))
        assert late.overdue_gifts == 2
    # Paid after the gift's day: the cards are issued and the gifts go at once.
    with Session.begin() as s:
        s.execute(
            OrderLine.__table__.update()
            .where(OrderLine.order_id == placed.order_id)
            .values(due_at=utcnow() - dt.timedelta(hours=1))
        )
    holds.confirm_payment(placed.order_id)
    issue(Session, placed.order_id)
    gifts = [d for d in deliveries(Session, placed.order_id) if d.kind == DeliveryKind.GIFT]
    assert [g.status for g in gifts] == ["queued", "queued"]
    with Session() as s:
        assert list_held(s, now=utcnow()) == []


def test_a_scheduled_gift_of_a_paid_order_keeps_its_day(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    send_at = {"local_time": "2031-12-24T18:00", "zone": "Europe/Paris"}
    placed = place_order(held(order_payload, payment="pending", send_at=send_at), idempotency_key="s2")
    holds.confirm_payment(placed.order_id)
    issue(Session, placed.order_id)
    (gift,) = [d for d in deliveries(Session, placed.order_id) if d.kind == DeliveryKind.GIFT]
    assert (gift.status, gift.due_at.isoformat()) == ("scheduled", "2031-12-24T17:00:00+00:00")


def test_held_orders_and_their_overdue_gifts_are_gauges(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    from delivery.metrics.database import read

    place_order(held(order_payload, 2, payment="pending", send_at=PAST), idempotency_key="g1")
    place_order(held(order_payload, review=True), idempotency_key="g2")
    place_order(held(order_payload, send_at=PAST), idempotency_key="g3")  # paid: not held
    with Session() as s:
        samples = {
            (sample.name, tuple(sample.labels.values())): sample.value
            for family in read(s, utcnow())
            for sample in family.samples
        }
    assert samples[("giftq_held_orders", ("awaiting_payment",))] == 1
    assert samples[("giftq_held_orders", ("in_review",))] == 1
    assert samples[("giftq_held_gifts_overdue", ())] == 2
