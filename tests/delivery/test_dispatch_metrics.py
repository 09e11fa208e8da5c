"""The dispatcher's counters and latency histogram, moved by a real batch over SMTP."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery import dispatch
from delivery.models import Delivery
from giftq.settings import reset_settings


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "[0, 0]")
    monkeypatch.setenv("GIFTQ_RETRY_JITTER", "0")
    reset_settings()


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_sends_are_counted_by_outcome_and_timed(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    smtp.script["r1@example.com"] = ["451 4.3.0 later"]
    issued_order(lines=2)
    with Session() as s:
        ids = list(s.scalars(select(Delivery.id)))
    before = {
        outcome: _value("giftq_sends_total", channel="email", outcome=outcome)
        for outcome in ("accepted", "retrying")
    }
    retries = _value("giftq_send_retries_total", channel="email")
    timed = _value("giftq_send_seconds_count", channel="email")

    report = dispatch.run_batch(Session, "email", ids)

    assert (report.sent, report.retrying) == (2, 1)  # one gift and the receipt; one gift busy
    assert _value("giftq_sends_total", channel="email", outcome="accepted") - before["accepted"] == 2
    assert _value("giftq_sends_total", channel="email", outcome="retrying") - before["retrying"] == 1
    assert _value("giftq_send_retries_total", channel="email") - retries == 1
    assert _value("giftq_send_seconds_count", channel="email") - timed == 3


def test_issued_cards_and_orders_are_counted_once_committed(issued_order: Any) -> None:
    cards = _value("giftq_cards_issued_total", currency="USD")
    orders = _value("giftq_orders_total", outcome="issued")
    issued_order(lines=3)
    assert _value("giftq_cards_issued_total", currency="USD") - cards == 3
    assert _value("giftq_orders_total", outcome="issued") - orders == 1
