"""The emails say what is true: a reply is invited only when it reaches someone, and a
gift our relay accepted is "sent", not "delivered"."""

from __future__ import annotations

import dataclasses
import email
import re
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import dispatch
from delivery.channels.email import GiftDeliveredEmail, build_message, compose, render_email
from delivery.models import Delivery, Order
from giftq.settings import reset_settings

REPLY_INVITATIONS = {
    "en": ["Reply to this email"],
    "de": ["Antworten Sie auf diese E-Mail"],
    "fr": ["Répondez à cet e-mail"],
}
MARKETPLACES = {"en": "US", "de": "DE", "fr": "FR"}
# How each language says that the gift reached the recipient.
DELIVERED_WORDS = {"en": "delivered", "de": "zugestellt", "fr": "a été remis"}


def everything(samples: SimpleNamespace, language: str) -> list[Any]:
    return samples.every_kind(MARKETPLACES[language])  # type: ignore[no-any-return]


def text_of(rendered: Any) -> str:
    return " ".join((rendered.subject + " " + rendered.text + " " + rendered.html).split())


@pytest.mark.parametrize("language", sorted(MARKETPLACES))
def test_without_a_reply_address_no_email_invites_a_reply(samples: SimpleNamespace, language: str) -> None:
    for ctx in everything(samples, language):
        rendered = render_email(ctx)
        seen = text_of(rendered)
        for invitation in REPLY_INVITATIONS[language]:
            assert invitation not in seen, (ctx.kind, invitation)
        message = email.message_from_bytes(build_message(rendered, to_name=ctx.to_name, to_addr=ctx.to_addr))
        assert message["Reply-To"] is None
        if ctx.kind != "gift":
            # The purchaser is told where to turn instead: the store.
            assert "https://giftq.example" in rendered.text
            assert '<a href="https://giftq.example"' in rendered.html


@pytest.mark.parametrize("language", sorted(MARKETPLACES))
def test_with_a_reply_address_the_notices_invite_replies_and_carry_it(
    samples: SimpleNamespace, language: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_EMAIL_REPLY_TO", "Giftq Support <support@giftq.example>")
    reset_settings()
    for ctx in everything(samples, language):
        if ctx.kind == "gift":
            continue
        rendered = render_email(ctx)
        assert any(i in text_of(rendered) for i in REPLY_INVITATIONS[language]), ctx.kind
        message = email.message_from_bytes(build_message(rendered, to_name=ctx.to_name, to_addr=ctx.to_addr))
        assert message["Reply-To"] == "Giftq Support <support@giftq.example>"


@pytest.mark.parametrize("language", sorted(MARKETPLACES))
def test_an_accepted_email_is_sent_not_delivered(samples: SimpleNamespace, language: str) -> None:
    sent = render_email(samples.delivered(MARKETPLACES[language]))
    assert DELIVERED_WORDS[language] not in text_of(sent)
    assert "robin@example.com" in sent.text
    really = render_email(dataclasses.replace(samples.delivered(MARKETPLACES[language]), delivered=True))
    assert DELIVERED_WORDS[language] in really.subject


def test_sent_and_delivered_subjects(samples: SimpleNamespace) -> None:
    assert render_email(samples.delivered()).subject == "Your gift for Robin Receiver has been sent"
    delivered = dataclasses.replace(samples.delivered(), delivered=True)
    assert render_email(delivered).subject == "Your gift for Robin Receiver has been delivered"
    # Another channel that only knows it sent the gift says so, without an email address.
    text = render_email(samples.delivered(channel="sms", address="+14155550123")).text
    assert "we have sent the $25.00 gift card you bought for Robin Receiver (Text message)" in " ".join(
        text.split()
    )


def test_the_receipt_promises_only_the_notices_that_come(
    samples: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    two_lines = samples.confirmation()
    assert "We will email you when a gift has been sent" in " ".join(render_email(two_lines).text.split())
    monkeypatch.setenv("GIFTQ_DELIVERED_NOTICE_MAX_LINES", "1")
    reset_settings()
    text = " ".join(render_email(two_lines).text.split())
    assert "has been sent" not in text
    assert "We will email you if we cannot deliver a gift." in text


def test_the_notice_says_delivered_only_when_the_gift_row_is(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_NOTICES", "all")  # an email gift sent at once gets one too
    reset_settings()
    issued_order(lines=1)
    with Session() as s:
        ids = list(s.scalars(select(Delivery.id)))
    dispatch.run_batch(Session, "email", ids)

    def notice() -> GiftDeliveredEmail:
        with Session() as s:
            query = select(Delivery, Order).join(Order).where(Delivery.kind == "delivered_notice")
            rows = s.execute(query).all()
            loaded = compose.load(s, [d for d, _ in rows])
            (ctx,) = [compose.context(d, o, loaded) for d, o in rows]
        assert isinstance(ctx, GiftDeliveredEmail)
        return ctx

    assert (notice().delivered, notice().address) == (False, "r0@example.com")
    # A channel that hears back from the recipient's side moves the gift on: then it is.
    with Session.begin() as s:
        s.execute(update(Delivery).where(Delivery.kind == "gift").values(status="delivered"))
    assert notice().delivered is True
    assert re.search(r"has been delivered", render_email(notice()).subject)
