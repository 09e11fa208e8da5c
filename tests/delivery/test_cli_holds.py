"""``giftq ops held``, ``review``, ``release`` and ``reject`` through the real CLI: held orders
listed with their gifts' days, review decisions asked for, audited and idempotent."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from delivery import place_order
from delivery.cli import app
from delivery.models import Order
from delivery.ops.models import AuditEntry


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "120"})


def test_held_orders_are_listed_with_what_they_wait_for(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    unpaid = order_payload(2, send_at={"local_time": "2020-06-01T09:00", "zone": "UTC"})
    unpaid["payment"] = "pending"
    first = place_order(unpaid, idempotency_key="h1")
    flagged = {**order_payload(), "review": True}
    second = place_order(flagged, idempotency_key="h2")
    place_order(order_payload(), idempotency_key="h3")
    shown = cli("ops", "held")
    assert shown.exit_code == 0, shown.output
    assert "2 held orders" in shown.output
    assert "awaiting_payment" in shown.output and "in_review" in shown.output
    assert "2 overdue" in shown.output
    listed = json.loads(cli("ops", "held", "--json").output)
    assert [(r["id"], r["status"], r["overdue_gifts"]) for r in listed] == [
        (first.order_id, "awaiting_payment", 2),
        (second.order_id, "in_review", 0),
    ]
    assert listed[0]["payment_due_at"] and listed[1]["payment_due_at"] is None


def test_review_decisions_ask_first_and_are_audited(
    Session: sessionmaker[Session], order_payload: Any, broker_messages: Any
) -> None:
    placed = place_order(order_payload(), idempotency_key="r1")
    broker_messages("orders")
    held = cli("ops", "review", str(placed.order_id))
    assert held.exit_code == 0, held.output
    assert f"order {placed.order_id}: in_review" in held.output
    unasked = cli("ops", "release", str(placed.order_id))
    assert unasked.exit_code != 0 and "--yes" in unasked.output
    released = cli("ops", "release", str(placed.order_id), "--yes")
    assert f"order {placed.order_id}: received" in released.output
    assert broker_messages("orders") == [("giftq.process_order", {"order_id": placed.order_id})]
    again = cli("ops", "release", str(placed.order_id), "--yes")
    assert "unchanged" in again.output
    refused = cli("ops", "reject", str(placed.order_id), "--yes")
    assert refused.exit_code != 0 and "not held for review" in refused.output
    with Session() as s:
        assert s.get_one(Order, placed.order_id).status == "received"
        rows = [(a.action, a.outcome) for a in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert rows == [
        ("ops review", "done"),
        ("ops release", "refused"),
        ("ops release", "done"),
        ("ops release", "done"),
        ("ops reject", "refused"),
    ]
