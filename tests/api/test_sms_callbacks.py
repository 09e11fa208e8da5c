"""``POST /sms/status``: the provider's signed reports move a text gift forward, through
the app, checked against the configured public URL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.channels.sms.signature import SIGNATURE_HEADER, compute_signature
from delivery.models import Delivery
from delivery.orders import processing
from giftq.settings import reset_settings

TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT = "AC" + "0123456789abcdef" * 2
SID = "SM" + "a" * 32
PUBLIC = "https://gifts.example.com"


@pytest.fixture
def sent_text(
    Session: sessionmaker[Session], order_body: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> int:
    monkeypatch.setenv("GIFTQ_SMS_AUTH_TOKEN", TOKEN)
    monkeypatch.setenv("GIFTQ_SMS_ACCOUNT_SID", ACCOUNT)
    monkeypatch.setenv("GIFTQ_PUBLIC_BASE_URL", PUBLIC)
    reset_settings()
    order_body["lines"] = [
        {**order_body["lines"][0], "channel": "sms", "recipient": {"name": "Sam", "phone": "+447911123456"}}
    ]
    placed = place_order(order_body, idempotency_key="text-1")
    with Session.begin() as s:
        assert processing.issue_next_chunk(s, placed.order_id).done
    with Session.begin() as s:
        delivery_id = s.scalars(select(Delivery.id).where(Delivery.kind == "gift")).one()
        # As the dispatcher leaves it once the provider accepted the text.
        s.execute(update(Delivery).where(Delivery.id == delivery_id).values(status="sent", provider_ref=SID))
    return int(delivery_id)


def post(api: Any, delivery_id: int, status: str, *, token: str = TOKEN, sid: str = SID) -> Any:
    form = {"MessageSid": sid, "MessageStatus": status, "AccountSid": ACCOUNT}
    # Twilio signs the URL it was given, the public one, whatever host serves the request.
    signature = compute_signature(f"{PUBLIC}/sms/status?ref={delivery_id}", list(form.items()), token)
    return api.client.post(f"/sms/status?ref={delivery_id}", data=form, headers={SIGNATURE_HEADER: signature})


def status_of(Session: sessionmaker[Session], delivery_id: int) -> str:
    with Session() as s:
        return str(s.get_one(Delivery, delivery_id).status)


def test_a_signed_report_moves_the_gift_forward_once(
    api: Any, Session: sessionmaker[Session], sent_text: int
) -> None:
    assert post(api, sent_text, "delivered").status_code == 204
    assert status_of(Session, sent_text) == "delivered"
    assert post(api, sent_text, "sent").status_code == 204  # late: changes nothing
    assert status_of(Session, sent_text) == "delivered"


def test_a_bad_signature_or_a_stranger_is_refused_and_changes_nothing(
    api: Any, Session: sessionmaker[Session], sent_text: int
) -> None:
    forged = post(api, sent_text, "delivered", token="not-the-token")
    assert (forged.status_code, forged.json()["type"]) == (403, "urn:giftq:problem:forbidden")
    stranger = post(api, sent_text, "delivered", sid="SM" + "b" * 32)
    assert (stranger.status_code, stranger.json()["type"]) == (404, "urn:giftq:problem:not-found")
    assert status_of(Session, sent_text) == "sent"
