"""GET /metrics: the exposition format, no API key, gauges read from the database."""

from __future__ import annotations

import datetime as dt
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select, update

from api.app import create_app
from delivery import place_order
from delivery.metrics.database import DatabaseCollector
from delivery.models import Delivery
from delivery.orders import processing
from delivery.states import DeliveryStatus
from giftq.db import utcnow
from ledger.models import RedemptionFailure


def scrape(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition text, by name and labels (parsed as Prometheus does)."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_need_no_key_and_are_left_out_of_the_api_document(api: Any) -> None:
    answer = api.client.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    samples = scrape(answer.text)
    assert samples[("giftq_database_up", ())] == 1
    assert "/metrics" not in create_app().openapi()["paths"]


def test_gauges_count_deliveries_lag_liability_and_lockouts(api: Any, order_body: dict[str, Any]) -> None:
    api.issue(5000, marketplace="JP")
    placed = place_order(order_body, idempotency_key="metrics-1")
    with api.Session.begin() as s:
        assert processing.issue_next_chunk(s, placed.order_id).done
    now = utcnow()
    with api.Session.begin() as s:
        gift = s.scalars(select(Delivery).where(Delivery.kind == "gift")).one()
        # A scheduled send that the due dispatcher should have released two minutes ago.
        s.execute(
            update(Delivery)
            .where(Delivery.id == gift.id)
            .values(status=DeliveryStatus.SCHEDULED, due_at=now - dt.timedelta(seconds=120))
        )
        # An account at the lockout limit (10), and a client below its own (50).
        s.add_all(
            RedemptionFailure(scope="account:mallory", reason="not_valid", failed_at=now) for _ in range(10)
        )
        s.add_all(
            RedemptionFailure(scope="client:203.0.113.9", reason="not_valid", failed_at=now) for _ in range(3)
        )

    samples = scrape(api.client.get("/metrics").text)

    def gauge(name: str, **labels: str) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    assert gauge("giftq_deliveries", channel="email", status="scheduled") == 1
    assert gauge("giftq_deliveries", channel="email", status="queued") == 1  # the receipt
    assert gauge("giftq_deliveries", channel="sms", status="sent") == 0  # every pair, zeros too
    assert gauge("giftq_scheduler_lag_seconds", channel="email") >= 120
    assert gauge("giftq_scheduler_lag_seconds", channel="sms") == 0
    assert gauge("giftq_oldest_queued_seconds", channel="email") >= 0
    assert gauge("giftq_card_liability_minor_units", currency="USD") == 2500
    assert gauge("giftq_card_liability_minor_units", currency="JPY") == 5000
    assert gauge("giftq_lockouts", scope="account") == 1
    assert gauge("giftq_lockouts", scope="client") == 0


def test_a_scrape_without_a_database_still_answers() -> None:
    def broken() -> Any:
        raise ConnectionError("database is away")

    families = list(DatabaseCollector(broken).collect())
    assert [(f.name, f.samples[0].value) for f in families] == [("giftq_database_up", 0)]


def test_requests_are_counted_by_route_template_never_by_path(api: Any) -> None:
    orders = (("method", "GET"), ("route", "/v1/orders/{order_id}"), ("status", "401"))

    def counted() -> dict[tuple[tuple[str, str], ...], float]:
        samples = scrape(api.client.get("/metrics").text)
        return {
            labels: value for (name, labels), value in samples.items() if name == "giftq_http_requests_total"
        }

    before = counted().get(orders, 0)
    for order_id in (101, 102):
        assert api.client.get(f"/v1/orders/{order_id}").status_code == 401  # no key
    api.client.get("/printables/a-secret-download-token")
    after = counted()
    assert after[orders] - before == 2
    assert not any("101" in str(labels) or "secret" in str(labels) for labels in after)
