from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.errors import NotFound
from delivery.models import Delivery, DeliveryKind, Order, OrderLine, OrderStatus
from delivery.orders import processing
from giftq.db import utcnow
from ledger import get_card
from ledger.models import Card, LedgerTransaction


def process(Session: sessionmaker[Session], order_id: int, chunk_size: int = 500) -> list[int]:
    """Run issuance to the end, one transaction per chunk; returns cards issued per chunk."""
    issued = []
    while True:
        with Session.begin() as s:
            progress = processing.issue_next_chunk(s, order_id, chunk_size=chunk_size)
        issued.append(progress.issued)
        if progress.done:
            return issued


def test_issues_every_card_in_chunks_and_queues_the_sends(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    placed = place_order(order_payload(lines=7), idempotency_key="bulk")
    broker_messages("orders")
    assert process(Session, placed.order_id, chunk_size=3) == [3, 3, 1]

    with Session() as s:
        order = s.get_one(Order, placed.order_id)
        assert order.status == OrderStatus.ISSUED
        lines = s.scalars(select(OrderLine).order_by(OrderLine.position)).all()
        card_ids = [line.card_id for line in lines]
        assert None not in card_ids and len(set(card_ids)) == 7
        card = get_card(s, lines[0].card_id or 0)
        assert (card.amount, card.currency, card.status, card.last4) == (
            2500,
            "USD",
            "active",
            lines[0].card_last4,
        )
        assert card.reference == f"giftq:order:{order.id}:line:0"
        deliveries = s.scalars(select(Delivery).order_by(Delivery.id)).all()
        gifts = [d for d in deliveries if d.kind == DeliveryKind.GIFT]
        assert [(d.status, d.to_address, d.card_id) for d in gifts] == [
            ("queued", f"r{i}@example.com", card_ids[i]) for i in range(7)
        ]
        (confirmation,) = [d for d in deliveries if d.kind == DeliveryKind.CONFIRMATION]
        assert (confirmation.status, confirmation.to_address) == ("queued", "pat@example.com")

    messages = broker_messages("email")
    sent_ids = sorted(i for _, kwargs in messages for i in kwargs["delivery_ids"])
    assert sent_ids == sorted(d.id for d in deliveries)
    assert {task for task, _ in messages} == {"giftq.dispatch_email"}


def test_rerun_issues_nothing_twice(Session: sessionmaker[Session], order_payload: Any) -> None:
    placed = place_order(order_payload(lines=4), idempotency_key="k")
    with Session.begin() as s:
        processing.issue_next_chunk(s, placed.order_id, chunk_size=2)
    # A second worker picks the same order up (duplicate message): it carries on.
    assert process(Session, placed.order_id, chunk_size=2) == [2]
    assert process(Session, placed.order_id, chunk_size=2) == [0]
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 4
        assert s.scalar(select(func.count()).select_from(Delivery)) == 5


def test_a_crashed_chunk_leaves_nothing_behind(Session: sessionmaker[Session], order_payload: Any) -> None:
    placed = place_order(order_payload(lines=3), idempotency_key="k")
    with pytest.raises(RuntimeError), Session.begin() as s:
        processing.issue_next_chunk(s, placed.order_id)
        raise RuntimeError("worker died before commit")
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 0
    assert process(Session, placed.order_id) == [3]
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 3


def test_channels_and_schedules(Session: sessionmaker[Session], order_payload: Any) -> None:
    payload = order_payload(lines=1)
    later = (utcnow() + dt.timedelta(days=30)).replace(tzinfo=None, microsecond=0)
    payload["lines"] += [
        {**payload["lines"][0], "send_at": {"local_time": later.isoformat(), "zone": "UTC"}},
        {
            "channel": "physical",
            "amount": 5000,
            "marketplace": "DE",
            "recipient": {
                "name": "Kim",
                "address": {
                    "line1": "Hauptstr. 1",
                    "city": "Berlin",
                    "postal_code": "10115",
                    "country": "DE",
                },
            },
        },
        {
            "channel": "sms",
            "amount": 1000,
            "marketplace": "CA",
            "recipient": {"name": "Sam", "phone": "+14155550123"},
        },
        {"channel": "printable", "amount": 1000, "marketplace": "UK", "recipient": {"name": "Ada"}},
    ]
    placed = place_order(payload, idempotency_key="mixed")
    process(Session, placed.order_id)
    with Session() as s:
        gifts = s.scalars(
            select(Delivery).where(Delivery.kind == DeliveryKind.GIFT).order_by(Delivery.id)
        ).all()
        assert [(d.channel, d.status) for d in gifts] == [
            ("email", "queued"),
            ("email", "scheduled"),
            ("physical", "scheduled"),
            ("sms", "scheduled"),
            ("printable", "scheduled"),
        ]
        assert gifts[1].due_at == later.replace(tzinfo=dt.UTC)
        assert gifts[2].to_address is None
        assert gifts[3].to_address == "+14155550123"
        statuses = [get_card(s, d.card_id or 0).status for d in gifts]
        assert statuses == ["active", "active", "inactive", "active", "active"]


def test_a_finished_or_cancelled_order_is_left_alone(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    placed = place_order(order_payload(), idempotency_key="k")
    with Session.begin() as s:
        s.get_one(Order, placed.order_id).status = OrderStatus.CANCELLED
    assert process(Session, placed.order_id) == [0]
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 0


def test_unknown_order(Session: sessionmaker[Session]) -> None:
    with pytest.raises(NotFound, match="no order 999"), Session.begin() as s:
        processing.issue_next_chunk(s, 999)


def test_mark_failed(Session: sessionmaker[Session], order_payload: Any) -> None:
    placed = place_order(order_payload(), idempotency_key="k")
    with Session.begin() as s:
        processing.mark_failed(s, placed.order_id, "ledger said no")
    with Session() as s:
        order = s.get_one(Order, placed.order_id)
        assert (order.status, order.error) == ("failed", "ledger said no")


# --- many orders at once ------------------------------------------------------------------


def _place(order_payload: Any, *sizes: int) -> list[int]:
    return [
        place_order(order_payload(lines=n), idempotency_key=f"batch-{i}").order_id
        for i, n in enumerate(sizes)
    ]


def _statuses(Session: sessionmaker[Session], order_ids: list[int]) -> list[str]:
    with Session() as s:
        return [s.get_one(Order, i).status for i in order_ids]


def test_ready_orders_are_issued_together(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    order_ids = _place(order_payload, 1, 1, 3, 1)
    broker_messages("orders")
    with Session.begin() as s:
        progress = processing.issue_ready_orders(s)
    assert progress == processing.BatchProgress(orders=4, finished=4, issued=6, more=False)
    assert _statuses(Session, order_ids) == ["issued"] * 4
    with Session() as s:
        # One ledger transaction for the six cards of the four orders.
        assert s.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
        deliveries = s.scalars(select(Delivery).order_by(Delivery.id)).all()
        gifts = [d for d in deliveries if d.kind == DeliveryKind.GIFT]
        receipts = [d for d in deliveries if d.kind == DeliveryKind.CONFIRMATION]
        assert sorted(d.order_id for d in receipts) == order_ids
        assert [d.order_id for d in gifts] == [order_ids[0], order_ids[1], *[order_ids[2]] * 3, order_ids[3]]
        for gift in gifts:
            line = s.get_one(OrderLine, gift.line_id)
            assert (line.order_id, line.card_id) == (gift.order_id, gift.card_id)
            card = get_card(s, gift.card_id or 0)
            assert card.reference == f"giftq:order:{line.order_id}:line:{line.position}"
    # The receipts ride in the same send batch as the gifts.
    (message,) = broker_messages("email")
    assert message == ("giftq.dispatch_email", {"delivery_ids": [d.id for d in deliveries]})


def test_a_chunk_ends_inside_an_order_and_the_next_goes_on_from_there(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    first, big, last = _place(order_payload, 1, 3, 1)
    with Session.begin() as s:
        assert processing.issue_ready_orders(s, chunk_size=2) == processing.BatchProgress(2, 1, 2, more=True)
    assert _statuses(Session, [first, big, last]) == ["issued", "issuing", "received"]
    with Session.begin() as s:
        assert processing.issue_ready_orders(s, chunk_size=2) == processing.BatchProgress(2, 1, 2, more=True)
    assert _statuses(Session, [first, big, last]) == ["issued", "issued", "received"]
    with Session.begin() as s:
        assert processing.issue_ready_orders(s, chunk_size=2) == processing.BatchProgress(1, 1, 1, more=False)
    with Session.begin() as s:
        assert processing.issue_ready_orders(s, chunk_size=2) == processing.BatchProgress(0, 0, 0, more=False)
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 5
        card_ids = s.scalars(select(OrderLine.card_id)).all()
        assert None not in card_ids and len(set(card_ids)) == 5
        receipts = s.scalars(select(Delivery.order_id).where(Delivery.kind == DeliveryKind.CONFIRMATION))
        assert sorted(receipts) == [first, big, last]
        # A message for an order a batch took finds nothing left to do.
        assert processing.issue_next_chunk(s, big).issued == 0


def test_only_processable_orders_are_claimed(Session: sessionmaker[Session], order_payload: Any) -> None:
    waiting, cancelled = _place(order_payload, 1, 1)
    with Session.begin() as s:
        s.get_one(Order, cancelled).status = OrderStatus.CANCELLED
    with Session.begin() as s:
        assert processing.issue_ready_orders(s).orders == 1
    assert _statuses(Session, [waiting, cancelled]) == ["issued", "cancelled"]
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Card)) == 1


# SQLite runs one writer at a time (BEGIN IMMEDIATE): there is nothing to share there.
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_workers_share_the_backlog_without_waiting(
    Session: sessionmaker[Session], order_payload: Any, engine: Any
) -> None:
    earliest, *order_ids = _place(order_payload, 1, 1, 1, 1, 1)
    with Session.begin() as s:
        # The marketplace's funding account exists from the first card on.
        processing.issue_next_chunk(s, earliest)
    with Session.begin() as first:
        assert processing.issue_ready_orders(first, chunk_size=2).orders == 2
        # A second worker meanwhile skips the two held orders and takes the others.
        with Session.begin() as second:
            second.execute(text("SET LOCAL lock_timeout = '10s'"))  # waiting would fail, not hang
            assert processing.issue_ready_orders(second, chunk_size=2) == processing.BatchProgress(
                2, 2, 2, more=True
            )
    assert _statuses(Session, order_ids) == ["issued"] * 4


def test_the_task_fails_only_the_order_the_ledger_refuses(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    from delivery.worker import tasks

    good, bad, other = _place(order_payload, 1, 2, 1)
    with Session.begin() as s:
        # Past what the ledger issues on one card (intake refuses it; here it slipped in).
        s.execute(
            update(OrderLine).where(OrderLine.order_id == bad, OrderLine.position == 1).values(amount=10**10)
        )
    result = tasks.process_order(order_id=good)
    assert result == {"order_id": good, "orders": 2, "issued": 2}
    assert _statuses(Session, [good, bad, other]) == ["issued", "failed", "issued"]
    with Session() as s:
        assert "above the ceiling" in (s.get_one(Order, bad).error or "")
        issued = s.scalars(select(OrderLine.order_id).where(OrderLine.card_id.is_not(None)))
        assert sorted(issued) == [good, other]
