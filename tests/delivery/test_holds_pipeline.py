"""Held orders through real Celery workers (PostgreSQL, Redis, beat, a real SMTP server): a
storefront sends ``giftq.place_order`` with a pending payment and ``giftq.confirm_payment`` or
``giftq.decline_payment`` by name; beat cancels an order whose payment is overdue; an order
past a limit is refused by the task and writes nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from delivery.models import Order
from giftq.db import utcnow


@pytest.fixture(scope="module")
def _module_pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, conftest: Any
) -> Iterator[Any]:
    with conftest.running_pipeline(
        request, tmp_path_factory.mktemp("holds"), 14, GIFTQ_SWEEP_INTERVAL_SECONDS="1"
    ) as pipeline:
        yield pipeline


@pytest.fixture
def pipeline(_module_pipeline: Any, conftest: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    conftest.use_pipeline(_module_pipeline, monkeypatch)
    return _module_pipeline


def unpaid_order(name: str, **fields: Any) -> dict[str, Any]:
    return {
        "purchaser": {"name": "Pat Buyer", "email": f"buyer-of-{name}@example.com"},
        "payment": "pending",
        "lines": [
            {
                "channel": "email",
                "amount": 2500,
                "marketplace": "US",
                "recipient": {"name": "Robin", "email": f"{name}@example.com"},
            }
        ],
        **fields,
    }


def placed(pipeline: Any, conftest: Any, key: str) -> Order:
    def find() -> Order | None:
        with pipeline.Session() as s:
            return s.scalars(select(Order).where(Order.idempotency_key == key)).one_or_none()

    found: Order = conftest.wait_until(find, what=f"order {key} to be placed")
    return found


def status_of(pipeline: Any, order_id: int) -> str:
    with pipeline.Session() as s:
        return str(s.get_one(Order, order_id).status)


def test_a_held_order_is_sent_once_its_payment_is_confirmed_by_name(pipeline: Any, conftest: Any) -> None:
    pipeline.send("giftq.place_order", order=unpaid_order("paid"), idempotency_key="hold-paid")
    order = placed(pipeline, conftest, "hold-paid")
    assert order.status == "awaiting_payment"
    # The sweeper runs every second here: a held order is not pushed along.
    conftest.wait_until(lambda: "giftq.sweep" in pipeline.worker.log(), what="a sweep")
    assert pipeline.smtp.to("paid@example.com") == []
    assert pipeline.deliveries(order_id=order.id) == []
    pipeline.send("giftq.confirm_payment", order_id=order.id)
    conftest.wait_until(lambda: pipeline.smtp.to("paid@example.com"), what="the gift after payment")
    conftest.wait_until(lambda: status_of(pipeline, order.id) == "issued", what="the order to be issued")


def test_a_declined_payment_by_name_cancels_and_tells_the_purchaser(pipeline: Any, conftest: Any) -> None:
    pipeline.send("giftq.place_order", order=unpaid_order("declined"), idempotency_key="hold-declined")
    order = placed(pipeline, conftest, "hold-declined")
    pipeline.send("giftq.decline_payment", order_id=order.id)
    (notice,) = conftest.wait_until(
        lambda: pipeline.smtp.to("buyer-of-declined@example.com"), what="the purchaser's notice"
    )
    assert notice["Subject"] == f"Your order GQ-{order.id} was cancelled"
    assert status_of(pipeline, order.id) == "cancelled"
    assert pipeline.smtp.to("declined@example.com") == []


def test_beat_cancels_an_order_whose_payment_is_overdue(pipeline: Any, conftest: Any) -> None:
    pipeline.send("giftq.place_order", order=unpaid_order("late"), idempotency_key="hold-late")
    order = placed(pipeline, conftest, "hold-late")
    # As if it had been placed a day ago: its 24 hours are up.
    now = utcnow()
    with pipeline.Session.begin() as s:
        s.execute(
            update(Order)
            .where(Order.id == order.id)
            .values(created_at=now - dt.timedelta(hours=24), payment_due_at=now)
        )
    (notice,) = conftest.wait_until(
        lambda: pipeline.smtp.to("buyer-of-late@example.com"), what="the overdue notice"
    )
    assert "within 24 hours" in " ".join(conftest.text_of(notice).split())
    with pipeline.Session() as s:
        row = s.get_one(Order, order.id)
    assert (row.status, row.payment) == ("cancelled", "overdue")


def test_refusals_by_name_change_nothing(pipeline: Any, conftest: Any) -> None:
    over = unpaid_order("big")
    over["lines"][0]["amount"] = 250_000
    task_id = pipeline.send("giftq.place_order", order=over, idempotency_key="hold-big")
    line = conftest.wait_until(
        lambda: next((x for x in pipeline.worker.log().splitlines() if f"{task_id} refused" in x), None),
        what="the refusal in the worker log",
    )
    assert "card amount 2,500.00 USD is above the US maximum of 2,000.00 USD" in line
    with pipeline.Session() as s:
        assert s.scalars(select(Order).where(Order.idempotency_key == "hold-big")).all() == []
    unknown = pipeline.send("giftq.confirm_payment", order_id=987654)
    refusal = conftest.wait_until(
        lambda: next((x for x in pipeline.worker.log().splitlines() if f"{unknown} refused" in x), None),
        what="the confirm refusal in the worker log",
    )
    assert "no order 987654" in refusal
