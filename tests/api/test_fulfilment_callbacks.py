"""``POST /v1/callbacks/fulfilment/reports``: the vendor's signed reports, through the app."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.channels.physical.manifest import item_ref
from delivery.channels.physical.reports import SIGNATURE_HEADER
from delivery.models import Delivery
from delivery.orders import processing
from giftq.settings import reset_settings
from ledger import get_card

SECRET = "vendor-callback-secret-0123456789abcdef"


@pytest.fixture
def shipped_card(
    Session: sessionmaker[Session], order_body: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> int:
    monkeypatch.setenv("GIFTQ_FULFILMENT_CALLBACK_SECRET", SECRET)
    reset_settings()
    address = {
        "line1": "1 Main St",
        "city": "Springfield",
        "region": "IL",
        "postal_code": "62701",
        "country": "US",
    }
    order_body["lines"] = [
        {**order_body["lines"][0], "channel": "physical", "recipient": {"name": "Sam", "address": address}}
    ]
    placed = place_order(order_body, idempotency_key="card-1")
    with Session.begin() as s:
        assert processing.issue_next_chunk(s, placed.order_id).done
        delivery_id = s.scalars(select(Delivery.id).where(Delivery.kind == "gift")).one()
        # As a batch leaves it once the vendor took it.
        s.execute(update(Delivery).where(Delivery.id == delivery_id).values(status="sent"))
    return int(delivery_id)


def post(api: Any, body: bytes, secret: str = SECRET) -> Any:
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return api.client.post(
        "/v1/callbacks/fulfilment/reports",
        content=body,
        headers={SIGNATURE_HEADER: signature, "Content-Type": "application/json"},
    )


def report(delivery_id: int, event: str = "shipped") -> bytes:
    row = {"item_ref": item_ref(delivery_id), "event": event, "carrier": "UPS", "tracking_number": "1Z999"}
    return json.dumps({"reports": [row]}).encode()


def test_a_shipped_report_activates_the_card_once(
    api: Any, Session: sessionmaker[Session], shipped_card: int
) -> None:
    body = report(shipped_card)
    first = post(api, body)
    assert first.status_code == 200, first.json()
    assert first.json()["changed"] == [item_ref(shipped_card)]
    with Session() as s:
        delivery = s.get_one(Delivery, shipped_card)
        assert delivery.status == "delivered"
        assert get_card(s, delivery.card_id or 0).status == "active"
    again = post(api, body)
    assert (again.status_code, again.json()["changed"]) == (200, [])


def test_bad_signatures_and_unknown_cards_are_refused_and_change_nothing(
    api: Any, Session: sessionmaker[Session], shipped_card: int
) -> None:
    forged = post(api, report(shipped_card), secret="not-the-secret")
    assert (forged.status_code, forged.json()["type"]) == (401, "urn:giftq:problem:unauthorized")
    unknown = post(api, report(shipped_card + 1000))
    assert (unknown.status_code, unknown.json()["type"]) == (422, "urn:giftq:problem:validation")
    assert unknown.json()["rows"][0]["item_ref"] == item_ref(shipped_card + 1000)
    with Session() as s:
        assert s.get_one(Delivery, shipped_card).status == "sent"
