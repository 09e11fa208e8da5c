"""Printable gifts through the channel seam: intake, the dispatcher, the real SMTP client
against an in-process SMTP server, and the PDF read back from the email that arrived.

Each test runs on SQLite and PostgreSQL (``Session``). The card goes to the purchaser,
who prints it: its PDF is opened with pypdf, rasterised by PDFium and its QR code decoded
by zxing-cpp; the download link in the email is redeemed, and so is the code on the card.
"""

from __future__ import annotations

import datetime as dt
import email.message
import logging
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from babel.dates import format_date
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

import ledger
from delivery import dispatch, place_order
from delivery.channels import registry
from delivery.channels.email.message import message_id_for
from delivery.channels.printable import LinkUsedUp, redeem_link
from delivery.channels.printable.models import PrintableLink
from delivery.channels.printable.sender import pdf_filename
from delivery.models import Delivery, DeliveryAttempt, OrderLine, SuppressedAddress
from delivery.ops import lookups
from delivery.orders import processing
from giftq.settings import reset_settings
from ledger.codes.text import display, normalize

PUBLIC_BASE_URL = "https://gifts.example.com"
PURCHASER = "pat@example.com"
LINK = re.compile(re.escape(PUBLIC_BASE_URL) + r"/printables/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@pytest.fixture
def printing(monkeypatch: pytest.MonkeyPatch, smtp: Any) -> Iterator[Any]:
    """Printable gifts by email (``GIFTQ_PRINTABLE_BACKEND=email``) through the scripted server."""
    monkeypatch.setenv("GIFTQ_PRINTABLE_BACKEND", "email")
    monkeypatch.setenv("GIFTQ_PUBLIC_BASE_URL", PUBLIC_BASE_URL)
    monkeypatch.setenv("GIFTQ_EMAIL_FROM", "Giftq <gifts@giftq.example>")
    reset_settings()
    registry.close_all()
    yield smtp
    registry.close_all()


def printable_order(issued_order: Any, lines: int = 1, **overrides: Any) -> int:
    fields: dict[str, Any] = {"channel": "printable", "recipient": {"name": "Robin Receiver"}}
    fields.update(overrides)
    order_id: int = issued_order(lines, **fields)
    return order_id


def gifts(Session: sessionmaker[Session]) -> list[Delivery]:
    with Session() as s:
        return list(s.scalars(select(Delivery).where(Delivery.kind == "gift").order_by(Delivery.id)))


def attempts(Session: sessionmaker[Session], delivery_id: int) -> list[tuple[str, int | None]]:
    with Session() as s:
        rows = s.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
        return [(a.outcome, a.code) for a in rows]


def code_of(Session: sessionmaker[Session], card_id: int | None) -> str:
    with Session() as s:
        return ledger.reveal_code(s, card_id or 0).reveal()


def with_card(smtp: Any) -> list[email.message.EmailMessage]:
    """The messages to the purchaser that carry an attachment: the printable cards."""
    return [m for m in smtp.to(PURCHASER) if list(m.iter_attachments())]  # type: ignore[attr-defined]


def the_pdf(message: email.message.EmailMessage) -> tuple[str, bytes]:
    (part,) = list(message.iter_attachments())
    assert part.get_content_type() == "application/pdf"
    assert part.get_content_disposition() == "attachment"
    data = part.get_content()
    assert isinstance(data, bytes)
    return str(part.get_filename()), data


def texts(message: email.message.EmailMessage) -> str:
    """The subject, the plain text and the HTML of a message, as its reader gets them."""
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    return "\n".join([str(message["Subject"]), str(plain.get_content()), str(html.get_content())])


def code_forms(code: str) -> list[str]:
    normalized = normalize(code)
    return [display(normalized), normalized, normalized.lower(), display(normalized).replace("-", " ")]


def test_a_printable_gift_goes_to_the_purchaser_with_its_card_attached(
    Session: sessionmaker[Session],
    issued_order: Any,
    printing: Any,
    run_queued: Any,
    pdf_tools: Any,
    conftest: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    printable_order(issued_order, amount=2500, marketplace="US", message="Happy birthday!\nLove, Pat")
    (gift,) = gifts(Session)
    # Processing addressed the card to the person who prints it.
    assert (gift.channel, gift.status, gift.to_address) == ("printable", "queued", PURCHASER)

    run_queued(Session)

    (sent,) = gifts(Session)
    assert sent.status == "sent"
    assert attempts(Session, sent.id) == [("accepted", 250)]
    # The receipt and the card, and no notice that the card was sent: the card is the news.
    assert len(printing.to(PURCHASER)) == 2
    with Session() as s:
        kinds = sorted(s.scalars(select(Delivery.kind).where(Delivery.kind != "gift")))
    assert kinds == ["confirmation"]

    (message,) = with_card(printing)
    assert message["To"] == "Pat Buyer <pat@example.com>"
    assert message["Subject"] == "Your printable gift card for Robin Receiver"
    assert message["Message-ID"] == f"<{message_id_for(sent.id, sent.created_at)}>"
    assert message.get_content_type() == "multipart/mixed"
    code = code_of(Session, sent.card_id)
    filename, pdf = the_pdf(message)
    assert filename == f"gift-card-robin-receiver-{code[-4:]}.pdf"

    # The card, as a PDF reader reads it: amount, names, message and the code in full.
    text = pdf_tools.words(pdf_tools.pdf_text(pdf))
    assert "$25.00" in text
    assert "Robin Receiver" in text and "Pat Buyer" in text
    assert "Happy birthday!" in text
    assert display(normalize(code)) in text
    # Its QR code, as a phone reads it off the page: the code travels in the fragment only.
    card = pdf_tools.make_card(code=code, marketplace="US", amount=2500)
    (address,) = pdf_tools.decode_qr(pdf_tools.raster(pdf))
    pdf_tools.check_address(address, card)
    assert urlsplit(address).query == ""

    # The email: the download link, when it expires, and never the code.
    said = texts(message)
    for form in code_forms(code):
        assert form not in said
    assert conftest.CODE_PATTERN.findall(said) == []
    links = set(LINK.findall(said))
    assert len(links) == 1
    (link,) = links
    with Session() as s:
        row = s.scalars(select(PrintableLink).where(PrintableLink.delivery_id == sent.id)).one()
    assert format_date(row.expires_at, "long", locale="en_US") in said
    assert "(UTC)" in said and "up to 5 downloads" in said

    # The link fetches this delivery's card, as many times as it allows.
    now = dt.datetime.now(dt.UTC)
    token = link.rsplit("/", 1)[1]
    for _ in range(5):
        with Session.begin() as s:
            assert redeem_link(s, token, now) == sent.id
    with pytest.raises(LinkUsedUp), Session.begin() as s:
        redeem_link(s, token, now)

    # The code printed on the card is a real one.
    redeemed = ledger.redeem_code(
        Session, code, account="robin", marketplace="US", idempotency_key="printable-redeem"
    )
    assert redeemed.amount == 2500

    # Nothing logged the code, in any form.
    for record in caplog.records:
        logged = record.getMessage() + (record.exc_text or "")
        for form in code_forms(code):
            assert form not in logged, record


def test_the_email_speaks_the_purchasers_language_and_the_card_the_recipients(
    Session: sessionmaker[Session], printing: Any, run_queued: Any, pdf_tools: Any, order_payload: Any
) -> None:
    # No purchaser locale: the order's first line (a German card) speaks for the purchaser,
    # as it does for the receipt and the notices; the card is for a French reader.
    order = order_payload(1, marketplace="DE", recipient={"name": "Jonas", "email": "jonas@example.com"})
    order["lines"].append(
        {
            "channel": "printable",
            "amount": 5000,
            "marketplace": "FR",
            "recipient": {"name": "Élise Martin", "locale": "fr-FR"},
        }
    )
    placed = place_order(order, idempotency_key="languages")
    while True:
        with Session.begin() as s:
            if processing.issue_next_chunk(s, placed.order_id).done:
                break

    run_queued(Session)

    (message,) = with_card(printing)
    assert message["Content-Language"] == "de"
    said = texts(message)
    assert "Ihre Geschenkkarte zum Ausdrucken für Élise Martin" in said
    assert "50,00\xa0€" in said
    filename, pdf = the_pdf(message)
    assert re.fullmatch(r"gift-card-elise-martin-[0-9A-Z]{4}\.pdf", filename)
    text = pdf_tools.words(pdf_tools.pdf_text(pdf))
    assert "Comment utiliser votre carte cadeau" in text
    assert "Élise Martin" in text


def test_a_550_for_the_purchaser_fails_it_for_good_and_tells(
    Session: sessionmaker[Session], issued_order: Any, printing: Any, run_queued: Any
) -> None:
    order_id = printable_order(issued_order)
    (gift,) = gifts(Session)
    printing.script[PURCHASER] = ["550 5.1.1 <pat@example.com>: Recipient address rejected"]

    dispatch.run_batch(Session, "printable", [gift.id])
    run_queued(Session)

    (failed,) = gifts(Session)
    assert failed.status == "failed_permanent"
    assert attempts(Session, failed.id) == [("permanent", 550)]
    assert "Recipient address rejected" in (failed.last_error or "")
    with Session() as s:
        # As for any email refused for good: the address is suppressed...
        assert s.get(SuppressedAddress, PURCHASER) is not None
        # ...the purchaser's failure notice is written (it meets the same refusal and is
        # held back as suppressed: a notice about a notice is never sent)...
        (notice,) = s.scalars(select(Delivery).where(Delivery.kind == "failed_notice")).all()
        assert (notice.parent_id, notice.reason, notice.status) == (failed.id, "refused", "failed_permanent")
        # ...and ops see the failure, with why.
        listed = lookups.list_failures(s, order_id=order_id)
    assert failed.id in {view.id for view in listed}
    assert with_card(printing) == []


def test_a_busy_server_is_retried_with_the_same_message_id(
    Session: sessionmaker[Session], issued_order: Any, printing: Any, run_queued: Any
) -> None:
    printable_order(issued_order)
    (gift,) = gifts(Session)
    printing.script[PURCHASER] = ["451 4.7.1 Try again later"]

    dispatch.run_batch(Session, "printable", [gift.id])

    (waiting,) = gifts(Session)
    assert waiting.status == "failed_retryable"
    assert attempts(Session, waiting.id) == [("retryable", 451)]
    with Session.begin() as s:  # the retry is due now
        s.execute(update(Delivery).where(Delivery.id == gift.id).values(due_at=dt.datetime.now(dt.UTC)))
    run_queued(Session)
    (sent,) = gifts(Session)
    assert sent.status == "sent"
    with Session() as s:
        assert s.get(SuppressedAddress, PURCHASER) is None
    (message,) = with_card(printing)
    assert message["Message-ID"] == f"<{message_id_for(sent.id, sent.created_at)}>"


def test_a_card_that_cannot_be_rendered_fails_alone(
    Session: sessionmaker[Session],
    issued_order: Any,
    printing: Any,
    run_queued: Any,
    pdf_tools: Any,
    conftest: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    printable_order(issued_order, lines=2)
    bad, good = gifts(Session)
    # A design that went away after the order was placed: the card cannot be drawn.
    with Session.begin() as s:
        s.execute(update(OrderLine).where(OrderLine.id == bad.line_id).values(design="confetti"))

    run_queued(Session)

    bad, good = gifts(Session)
    assert (bad.status, good.status) == ("failed_permanent", "sent")
    assert attempts(Session, bad.id) == [("permanent", None)]
    assert "unknown design 'confetti'" in (bad.last_error or "")
    (message,) = with_card(printing)
    _, pdf = the_pdf(message)
    assert display(normalize(code_of(Session, good.card_id))) in pdf_tools.pdf_text(pdf)
    # The purchaser hears that this card could not be prepared, in words, not a code.
    with Session() as s:
        (notice,) = s.scalars(select(Delivery).where(Delivery.kind == "failed_notice")).all()
    assert (notice.parent_id, notice.reason, notice.status) == (bad.id, "unrenderable", "sent")
    told = [m for m in printing.to(PURCHASER) if "could not prepare the gift" in conftest.text_of(m)]
    assert len(told) == 1
    for record in caplog.records:
        logged = record.getMessage() + (record.exc_text or "")
        for card_id in (bad.card_id, good.card_id):
            for form in code_forms(code_of(Session, card_id)):
                assert form not in logged, record


@pytest.mark.parametrize(
    ("name", "last4", "expected"),
    [
        ("Robin Receiver", "H2PW", "gift-card-robin-receiver-H2PW.pdf"),
        ("Zoë O'Brien-Müller", "0A9Z", "gift-card-zoe-o-brien-muller-0A9Z.pdf"),
        ("山田 太郎", "H2PW", "gift-card-H2PW.pdf"),
        ("../../etc/passwd\r\n", "H2PW", "gift-card-etc-passwd-H2PW.pdf"),
        ("A" * 100, "H2PW", "gift-card-" + "a" * 40 + "-H2PW.pdf"),
    ],
)
def test_the_pdf_file_name_says_whose_card_and_no_more_of_the_code(
    name: str, last4: str, expected: str
) -> None:
    assert pdf_filename(name, last4) == expected
