"""Whose language each email of an order is in, from the rows (delivery.channels.email.compose) to the wire.

Purchaser and recipients may live in different countries: the receipt and the notices go
in ``purchaser.locale`` (default: the first line's marketplace), each gift in its
``recipient.locale`` (default: its line's marketplace). Real database, real SMTP server.
"""

from __future__ import annotations

import copy
import email.message
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.channels.email import DeliveryFailedEmail, GiftDeliveredEmail, compose, render_email
from delivery.models import Delivery, Order
from delivery.orders import processing
from giftq.settings import reset_settings

LINE: dict[str, Any] = {"channel": "email", "amount": 2500, "design": "classic", "message": "Für dich!"}


@pytest.fixture(autouse=True)
def _every_notice(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests read the purchaser's notices: one for each gift, sent at once too."""
    monkeypatch.setenv("GIFTQ_NOTICES", "all")
    reset_settings()


def place(Session: sessionmaker[Session], purchaser_locale: str | None, *lines: dict[str, Any]) -> int:
    purchaser: dict[str, Any] = {"name": "Pat Buyer", "email": "pat@example.com"}
    if purchaser_locale:
        purchaser["locale"] = purchaser_locale
    order = {
        "purchaser": purchaser,
        "reference": "SHOP-7",
        "lines": [{**copy.deepcopy(LINE), **line} for line in lines],
    }
    placed = place_order(order, idempotency_key=f"readers-{purchaser_locale}-{len(lines)}")
    while True:
        with Session.begin() as s:
            if processing.issue_next_chunk(s, placed.order_id).done:
                return placed.order_id


def recipient(name: str, address: str, locale: str | None = None) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "email": address}
    if locale:
        found["locale"] = locale
    return found


def language(message: email.message.Message) -> str:
    return str(message["Content-Language"])


def test_an_english_purchaser_of_japanese_and_german_gifts(
    run_queued: Any, Session: sessionmaker[Session], smtp: Any, conftest: Any
) -> None:
    place(
        Session,
        "en_US",
        {"marketplace": "JP", "amount": 5000, "recipient": recipient("Aiko", "r0@example.com")},
        {"marketplace": "DE", "recipient": recipient("Bruno", "r1@example.com")},
        {"marketplace": "US", "recipient": recipient("Chloé", "r2@example.com", "fr_FR")},
    )
    run_queued(Session)

    receipt, *notices = smtp.to("pat@example.com")
    text = conftest.text_of(receipt)
    assert language(receipt) == "en"
    assert receipt["Subject"] == "Your Giftq receipt for order SHOP-7"
    # The date of an English receipt is English, even when the first card is Japanese.
    assert "Order date: " in text and "年" not in text
    assert "¥5,000 gift card for Aiko" in text
    assert "€25.00 gift card for Bruno" in text

    # Every "sent" notice is the purchaser's: English, the German gift's too.
    assert sorted(language(n) for n in notices) == ["en", "en", "en"]
    bruno = next(n for n in notices if "Bruno" in n["Subject"])
    assert bruno["Subject"] == "Your gift for Bruno has been sent"
    assert "€25.00 gift card you bought for Bruno by email to r1@example.com" in " ".join(
        conftest.text_of(bruno).split()
    )

    # Each gift in its recipient's language: the marketplace's, or the one they gave.
    (aiko,) = smtp.to("r0@example.com")
    (bruno_gift,) = smtp.to("r1@example.com")
    (chloe,) = smtp.to("r2@example.com")
    assert (language(aiko), language(bruno_gift), language(chloe)) == ("en", "de", "fr")
    assert "Ihr Einlösecode:" in conftest.text_of(bruno_gift)
    assert "25,00\xa0$US" in conftest.text_of(chloe)  # a French reader of a US card


def test_a_german_purchaser_reads_why_a_gift_failed_in_german(
    run_queued: Any, Session: sessionmaker[Session], smtp: Any, conftest: Any
) -> None:
    smtp.script["r0@example.com"] = ["550 5.1.1 no such mailbox"]
    order_id = place(
        Session, "de_DE", {"marketplace": "US", "recipient": recipient("Robin", "r0@example.com")}
    )
    run_queued(Session)
    receipt, failed = smtp.to("pat@example.com")
    assert (language(receipt), language(failed)) == ("de", "de")
    assert failed["Subject"] == "Ihr Geschenk für Robin konnte nicht zugestellt werden"
    body = " ".join(conftest.text_of(failed).split())
    assert "Geschenkkarte über 25,00 $" in body.replace("\xa0", " ")
    # Whatever the row holds (a key, or an old row's English sentence), the reader's words.
    assert "r0@example.com" in body
    assert "mail server" not in body and "refused" not in body

    # The row's key becomes the sentence, with the address and the attempts of the gift.
    with Session.begin() as s:
        s.execute(update(Delivery).where(Delivery.kind == "failed_notice").values(reason="refused"))
    with Session() as s:
        rows = s.execute(
            select(Delivery, Order).join(Order).where(Order.id == order_id).order_by(Delivery.id)
        ).all()
        loaded = compose.load(s, [d for d, _ in rows])
        contexts = [compose.context(d, o, loaded) for d, o in rows]
    (notice,) = [c for c in contexts if isinstance(c, DeliveryFailedEmail)]
    assert (notice.reason, notice.address, notice.attempts, notice.locale) == (
        "refused",
        "r0@example.com",
        1,
        "de_DE",
    )
    text = " ".join(render_email(notice).text.split())
    assert "Der empfangende Server hat r0@example.com endgültig abgelehnt" in text


def test_without_locales_the_marketplaces_decide(
    run_queued: Any, Session: sessionmaker[Session], smtp: Any, conftest: Any
) -> None:
    order_id = place(
        Session,
        None,
        {"marketplace": "FR", "recipient": recipient("Amélie", "r0@example.com")},
        {"marketplace": "DE", "recipient": recipient("Bruno", "r1@example.com")},
    )
    run_queued(Session)
    # The purchaser gave none: the first line's marketplace (France) speaks for them.
    assert {language(m) for m in smtp.to("pat@example.com")} == {"fr"}
    assert language(smtp.to("r0@example.com")[0]) == "fr"
    assert language(smtp.to("r1@example.com")[0]) == "de"
    with Session() as s:
        rows = s.execute(select(Delivery, Order).join(Order).where(Order.id == order_id)).all()
        loaded = compose.load(s, [d for d, _ in rows])
        notices = [
            c for c in (compose.context(d, o, loaded) for d, o in rows) if isinstance(c, GiftDeliveredEmail)
        ]
    assert {(n.marketplace, n.locale, n.delivered) for n in notices} == {
        ("FR", "fr_FR", False),
        ("DE", "fr_FR", False),
    }
