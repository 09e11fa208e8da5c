"""The pipeline end to end with real Celery workers on PostgreSQL and Redis, and a real
SMTP server (aiosmtpd) that answers as scripted.

One worker process (``celery -A worker worker -B``: prefork, 2 children, embedded beat)
serves the module; each test uses addresses and idempotency keys of its own.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from kombu import Connection
from sqlalchemy import select

from delivery.models import DeliveryAttempt, Order
from giftq.db import utcnow
from ledger import redeem


@pytest.fixture(scope="module")
def _module_pipeline(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, conftest: Any
) -> Iterator[Any]:
    with conftest.running_pipeline(
        request,
        tmp_path_factory.mktemp("pipeline"),
        15,
        GIFTQ_SCHEDULER_INTERVAL_SECONDS="0.5",
        GIFTQ_SWEEP_INTERVAL_SECONDS="1",
        GIFTQ_SWEEP_STUCK_AFTER_SECONDS="3",
    ) as pipeline:
        yield pipeline


@pytest.fixture
def pipeline(_module_pipeline: Any, conftest: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    conftest.use_pipeline(_module_pipeline, monkeypatch)
    return _module_pipeline


def one_line_order(address: str, **line: Any) -> dict[str, Any]:
    return {
        "purchaser": {"name": "Pat Buyer", "email": f"buyer-of-{address}"},
        "lines": [
            {
                "channel": "email",
                "amount": 5000,
                "marketplace": "DE",
                "message": "Alles Gute!",
                "recipient": {"name": "Robin", "email": address},
                **line,
            }
        ],
    }


def publish_like_node(broker_url: str, task: str, kwargs: Any, *, body: str | None = None) -> str:
    """A Celery message as a client in another language builds it: protocol 2, JSON."""
    task_id = str(uuid.uuid4())
    payload = body if body is not None else json.dumps([[], kwargs, {"callbacks": None, "errbacks": None}])
    with Connection(broker_url) as connection:
        connection.default_channel.basic_publish(
            connection.default_channel.prepare_message(
                payload,
                content_type="application/json",
                content_encoding="utf-8",
                headers={"lang": "js", "task": task, "id": task_id, "root_id": task_id, "retries": 0},
                properties={"correlation_id": task_id, "delivery_info": {"routing_key": "orders"}},
            ),
            exchange="",
            routing_key="orders",
        )
    return task_id


def test_an_order_sent_by_name_arrives_and_its_code_redeems(pipeline: Any, conftest: Any) -> None:
    address = "happy@example.com"
    publish_like_node(
        pipeline.broker_url,
        "giftq.place_order",
        {"order": one_line_order(address), "idempotency_key": "node-1"},
    )
    (gift,) = conftest.wait_until(lambda: pipeline.smtp.to(address), what="the gift")
    (code,) = conftest.codes_in(gift)
    with pipeline.Session.begin() as s:
        result = redeem(s, code, account="robin-1", marketplace="DE", idempotency_key="pipeline-redeem-1")
    assert (result.amount, result.currency) == (5000, "EUR")
    # The purchaser: the receipt (an email gift sent at once needs no later notice).
    purchaser = conftest.wait_until(
        lambda: pipeline.smtp.to(f"buyer-of-{address}"), what="the purchaser's receipt"
    )
    assert all(code not in conftest.text_of(m) for m in purchaser)
    with pipeline.Session() as s:
        order = s.scalars(select(Order).where(Order.idempotency_key == "node-1")).one()
    assert order.status == "issued"
    # The server has the last notice a moment before the worker writes its answer down.
    conftest.wait_until(
        lambda: {d.status for d in pipeline.deliveries(order_id=order.id)} == {"sent"},
        what="every delivery of the order recorded as sent",
    )


def test_a_busy_server_then_accepts_once(pipeline: Any, conftest: Any) -> None:
    address = "flaky@example.com"
    pipeline.smtp.script[address] = ["421 4.7.0 busy, try later"] * 3
    pipeline.send("giftq.place_order", order=one_line_order(address), idempotency_key="flaky-1")
    conftest.wait_until(lambda: pipeline.smtp.to(address), what="the gift after retries")
    (gift,) = conftest.wait_until(
        lambda: [d for d in pipeline.deliveries(kind="gift", to_address=address) if d.status == "sent"],
        what="the gift row to be sent",
    )
    with pipeline.Session() as s:
        log = [
            (a.outcome, a.code)
            for a in s.scalars(
                select(DeliveryAttempt)
                .where(DeliveryAttempt.delivery_id == gift.id)
                .order_by(DeliveryAttempt.id)
            )
        ]
    assert log[-1] == ("accepted", 250)
    assert log[:-1] and set(log[:-1]) == {("retryable", 421)}
    assert len(pipeline.smtp.to(address)) == 1


def test_an_unknown_mailbox_fails_for_good_and_the_purchaser_is_told(pipeline: Any, conftest: Any) -> None:
    address = "gone@example.com"
    pipeline.smtp.script[address] = ["550 5.1.1 no such mailbox"] * 10
    pipeline.send("giftq.place_order", order=one_line_order(address), idempotency_key="gone-1")
    conftest.wait_until(
        lambda: pipeline.deliveries(kind="failed_notice", status="sent"), what="the failure notice to go out"
    )
    notices = [m for m in pipeline.smtp.to(f"buyer-of-{address}") if address in conftest.text_of(m)]
    assert notices
    (gift,) = pipeline.deliveries(kind="gift", to_address=address)
    assert (gift.status, gift.attempts) == ("failed_permanent", 1)
    assert pipeline.smtp.answers_to(address) == ["550 5.1.1 no such mailbox"]  # nothing retried


def test_a_malformed_message_is_refused_once_and_writes_nothing(pipeline: Any, conftest: Any) -> None:
    bad = {"order": {"purchaser": {"name": "X"}, "lines": [{"amount": "lots"}]}, "idempotency_key": "bad-1"}
    task_id = publish_like_node(pipeline.broker_url, "giftq.place_order", bad)
    undecodable = publish_like_node(pipeline.broker_url, "giftq.place_order", None, body="{not json")
    line = conftest.wait_until(
        lambda: next((x for x in pipeline.worker.log().splitlines() if f"{task_id} refused" in x), None),
        what="the refusal in the worker log",
    )
    assert "order.purchaser.email: Field required" in line
    assert "order.lines.0.amount" in line and "order.lines.0.channel: Field required" in line
    conftest.wait_until(
        lambda: any(
            "Can't decode message body" in x and undecodable in x for x in pipeline.worker.log().splitlines()
        ),
        what="the undecodable message to be reported",
    )
    with pipeline.Session() as s:
        assert s.scalars(select(Order).where(Order.idempotency_key == "bad-1")).all() == []
    # Each was taken once and is gone from the broker: no redelivery, no retry storm.
    client = redis.Redis.from_url(pipeline.broker_url)
    try:
        conftest.wait_until(
            lambda: client.llen("orders") == 0 and client.hlen("unacked") == 0, what="an empty orders queue"
        )
    finally:
        client.close()
    log = pipeline.worker.log()
    assert log.count(f"{task_id}] received") == 1
    assert log.count(f"{task_id} refused") == 1


def test_a_scheduled_send_waits_for_its_time(pipeline: Any, conftest: Any) -> None:
    address = "later@example.com"
    at = (utcnow() + dt.timedelta(seconds=4)).replace(tzinfo=None, microsecond=0)
    send_at = {"local_time": at.isoformat(), "zone": "UTC"}
    pipeline.send(
        "giftq.place_order", order=one_line_order(address, send_at=send_at), idempotency_key="later-1"
    )
    (gift,) = conftest.wait_until(
        lambda: pipeline.deliveries(kind="gift", to_address=address), what="issuance"
    )
    assert gift.status == "scheduled"
    assert pipeline.smtp.to(address) == []
    conftest.wait_until(lambda: pipeline.smtp.to(address), what="the scheduled gift")
    assert utcnow() >= at.replace(tzinfo=dt.UTC)


def test_an_order_whose_enqueue_was_lost_is_swept_up(
    pipeline: Any, conftest: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from delivery import place_order
    from delivery.worker.celery_app import reset_app
    from giftq.settings import reset_settings

    address = "swept@example.com"
    monkeypatch.setenv("GIFTQ_BROKER_URL", "redis://127.0.0.1:1/0")  # Redis "down" at commit
    reset_settings()
    reset_app()
    placed = place_order(one_line_order(address), idempotency_key="swept-1")
    assert placed.created
    conftest.wait_until(lambda: pipeline.smtp.to(address), timeout=30, what="the sweeper to rescue the order")
