"""The same pipeline as the demo runs it: SQLite, the in-process broker (``memory://``)
and a worker in a thread of this process (Celery's ``start_worker``), against a real
SMTP server (aiosmtpd)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery.models import DeliveryAttempt, Order
from delivery.worker.celery_app import create_app
from giftq.db import utcnow
from giftq.settings import get_settings, reset_settings
from ledger import redeem

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def pipeline(
    database_url: str,
    Session: sessionmaker[Session],
    smtp: Any,
    conftest: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "[0, 0, 0]")
    monkeypatch.setenv("GIFTQ_RETRY_JITTER", "0")
    reset_settings()
    for queue in ("orders", "email", "scheduler"):
        conftest.drain(queue)  # leftovers of earlier tests in this process's broker
    app = create_app(get_settings())
    # The in-process broker is polled; poll often so that a test's worker stops quickly.
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "polling_interval": 0.05}
    with start_worker(app, pool="solo", perform_ping_check=False, loglevel="INFO", shutdown_timeout=30):
        yield conftest.Pipeline(database_url, "memory://", smtp, {}, Session)
    app.close()


def order_to(*addresses: str, **line: Any) -> dict[str, Any]:
    return {
        "purchaser": {"name": "Pat Buyer", "email": "pat@example.com"},
        "lines": [
            {
                "channel": "email",
                "amount": 1500,
                "marketplace": "FR",
                "recipient": {"name": "Camille", "email": address},
                **line,
            }
            for address in addresses
        ],
    }


def test_gifts_arrive_retry_and_fail_as_they_should(pipeline: Any, conftest: Any) -> None:
    smtp = pipeline.smtp
    smtp.script["busy@example.com"] = ["421 4.7.0 busy"] * 3
    smtp.script["nobody@example.com"] = ["550 5.1.1 unknown"] * 5
    order = order_to("camille@example.com", "busy@example.com", "nobody@example.com")
    pipeline.send("giftq.place_order", order=order, idempotency_key="ip-1")

    # Accepted at once: the code redeems.
    (gift,) = conftest.wait_until(lambda: smtp.to("camille@example.com"), what="the gift")
    (code,) = conftest.codes_in(gift)
    with pipeline.Session.begin() as s:
        result = redeem(s, code, account="camille", marketplace="FR", idempotency_key="ip-redeem")
    assert (result.amount, result.currency) == (1500, "EUR")

    # Busy, then accepted: delivered once, every attempt logged.
    conftest.wait_until(lambda: smtp.to("busy@example.com"), what="the gift after retries")
    (busy,) = conftest.wait_until(
        lambda: pipeline.deliveries(kind="gift", status="sent", to_address="busy@example.com"),
        what="the busy gift to be sent",
    )
    with pipeline.Session() as s:
        log = [
            a.outcome
            for a in s.scalars(select(DeliveryAttempt).where(DeliveryAttempt.delivery_id == busy.id))
        ]
    assert log[-1] == "accepted" and set(log[:-1]) == {"retryable"}
    assert len(smtp.to("busy@example.com")) == 1

    # Unknown mailbox: failed for good, the purchaser told, nothing retried.
    conftest.wait_until(lambda: pipeline.deliveries(kind="failed_notice", status="sent"), what="the notice")
    assert smtp.answers_to("nobody@example.com") == ["550 5.1.1 unknown"]
    (failed,) = pipeline.deliveries(kind="gift", to_address="nobody@example.com")
    assert failed.status == "failed_permanent"
    # The purchaser: the receipt, a "sent" notice for the gift that went out only after
    # retries (the one sent at once left with the receipt), and one failure.
    purchaser = conftest.wait_until(
        lambda: len(smtp.to("pat@example.com")) == 3 and smtp.to("pat@example.com"),
        what="the purchaser's mail",
    )
    assert all(code not in conftest.text_of(m) for m in purchaser)
    assert sorted(d.kind for d in pipeline.deliveries(to_address="pat@example.com")) == [
        "confirmation",
        "delivered_notice",
        "failed_notice",
    ]
    (notice,) = pipeline.deliveries(kind="delivered_notice")
    assert notice.parent_id == busy.id


def test_malformed_message(pipeline: Any, conftest: Any, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO"):
        task_id = pipeline.send(
            "giftq.place_order", order={"lines": "x"}, idempotency_key="ip-4", colour="red"
        )
        conftest.wait_until(lambda: f"{task_id} refused" in caplog.text, what="the refusal")
    assert "colour: unexpected argument" in caplog.text
    assert "order.purchaser: Field required" in caplog.text
    with pipeline.Session() as s:
        assert s.scalars(select(Order)).all() == []
    assert caplog.text.count(f"{task_id} refused") == 1


def test_scheduled_send_released_by_the_due_dispatcher(pipeline: Any, conftest: Any) -> None:
    at = (utcnow() + dt.timedelta(seconds=2)).replace(tzinfo=None, microsecond=0)
    order = order_to("later@example.com", send_at={"local_time": at.isoformat(), "zone": "UTC"})
    pipeline.send("giftq.place_order", order=order, idempotency_key="ip-5")
    conftest.wait_until(
        lambda: pipeline.deliveries(kind="gift", status="scheduled"), what="the scheduled gift"
    )
    conftest.wait_until(lambda: utcnow() >= at.replace(tzinfo=dt.UTC), what="the send time")
    pipeline.send("giftq.dispatch_due")  # what beat sends every few seconds
    conftest.wait_until(lambda: pipeline.smtp.to("later@example.com"), what="the gift")
