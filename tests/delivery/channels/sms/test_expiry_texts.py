"""Text gifts and their expiry: the gift text says until when the card is valid and where
its terms are; a text recipient's reminder goes by text, once, without the code (both engines,
through the sink standing in for Twilio)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery.channels.sms import ExpiryReminderText, render_text
from delivery.channels.sms.sink import SmsSink
from delivery.expiry import jobs
from delivery.models import Delivery, OrderLine
from ledger import get_card, last_valid_day
from tests.delivery.channels.sms.test_channel import PHONE, endpoint, texting  # noqa: F401 - fixtures


def test_a_text_recipient_is_told_the_expiry_and_reminded_once_by_text(
    Session: sessionmaker[Session],
    issued_order: Any,
    texting: SmsSink,  # noqa: F811 - the fixture imported above
    run_queued: Any,
    conftest: Any,
) -> None:
    issued_order(channel="sms", recipient={"name": "Sam", "phone": PHONE}, origin="promotional")
    run_queued(Session)
    (gift,) = texting.messages
    with Session() as s:
        card = get_card(s, s.scalars(select(OrderLine.card_id)).one())
    assert card.expires_at is not None
    day = last_valid_day(card.expires_at)
    assert card.terms_url == "https://gifts.example.com/us/terms"
    assert f"Valid until {day:%b} {day.day}, {day.year}. Terms: {card.terms_url}" in gift["body"]

    with Session.begin() as s:
        assert len(jobs.run(s, now=card.expires_at - dt.timedelta(days=3)).reminders) == 1
    with Session.begin() as s:
        assert jobs.run(s, now=card.expires_at - dt.timedelta(days=2)).reminders == []
    run_queued(Session)
    (_, reminder) = texting.messages
    assert reminder["to"] == PHONE
    assert f"(code ending {card.last4}) is valid until {day:%b} {day.day}, {day.year}." in reminder["body"]
    assert conftest.CODE_PATTERN.findall(reminder["body"]) == []
    with Session() as s:
        sent = s.scalars(select(Delivery).where(Delivery.kind == "expiry_reminder")).one()
    assert (sent.channel, sent.status) == ("sms", "sent")


def test_every_reminder_text_fits_two_segments() -> None:
    for marketplace in ("US", "CA", "UK", "DE", "FR", "JP"):
        for reader in (None, "en", "de", "fr", "ja"):
            text = render_text(
                ExpiryReminderText(
                    "Christopher Anderson", 200000, marketplace, "PW4N", dt.date(2029, 12, 31), locale=reader
                )
            )
            assert (text.segments, text.shortened) == (2, False), (marketplace, reader)
            assert "PW4N" in text.body and "/terms" in text.body
