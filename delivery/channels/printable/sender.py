"""The printable channel behind the seam: the card as a PDF, emailed to the purchaser.

A print-at-home card goes to the person who prints it: the purchaser. With
``GIFTQ_PRINTABLE_BACKEND=email`` each printable gift is one email to the purchaser's
address (the delivery's ``to_address``), in the purchaser's language, saying that the
card for the recipient is attached and ready to print, with a signed download link
(:func:`~delivery.channels.printable.links.make_link`: it expires and allows a limited
number of downloads) and the advice to keep it private. The PDF, in the recipient's
language, is attached as ``gift-card-<recipient>-<last 4>.pdf``: the name says whose
card it is and shows no more of the code than ops and the receipt do.

:class:`PrintableSender` is the email channel's sender with its own ``compose`` and
``build``: the same SMTP transport (one kept-open connection per process), the same
mapping of answers (a 5xx refuses the address for good and suppresses it; 4xx and lost
connections are retried on the schedule; an address no relay can carry is undeliverable)
and the same Message-ID per delivery across attempts.

- ``compose`` (in the claim transaction): the card's content from the line, the order and
  the code revealed into memory, and a new download link (its row commits with the claim;
  each attempt's email carries a link of its own).
- ``build`` (no transaction open): the PDF is rendered here, at send time, and never
  stored; a card that cannot be rendered fails that delivery for good as
  ``unrenderable`` and the rest of the batch goes on.

``sent`` means the relay took the email. The purchaser gets no separate "sent" notice:
the email with the card is that news (:mod:`delivery.lifecycle` sends none for a gift
that went to the purchaser's own address); a failure notice is sent as for every gift.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.channels.base import Composed, Outcome
from delivery.channels.email import compose
from delivery.channels.email.contexts import PrintableGiftEmail
from delivery.channels.email.message import Attachment, build_message, message_id_for
from delivery.channels.email.render import render_email
from delivery.channels.email.sender import EmailSender
from delivery.channels.printable.context import PrintableCard
from delivery.channels.printable.links import make_link
from delivery.channels.printable.models import PrintableLink
from delivery.channels.printable.render import render_printable
from delivery.dispatch import describe
from delivery.expiry import disclosure
from delivery.models import Channel, Delivery, DeliveryKind, Order, OrderLine
from delivery.reasons import FailureReason
from delivery.retry import FailureKind
from giftq.db import utcnow
from ledger.errors import LedgerError, NotFound

PDF = "application/pdf"
_SLUG_CHARS = 40


@dataclass(frozen=True, slots=True)
class PrintableMessage:
    """What one printable email is made of: the card to render and the email around it."""

    card: PrintableCard = field(repr=False)
    email: PrintableGiftEmail = field(repr=False)
    filename: str


def pdf_filename(recipient_name: str, last4: str) -> str:
    """``gift-card-<recipient>-<last4>.pdf`` in plain ASCII (``gift-card-<last4>.pdf`` when
    nothing of the name is ASCII): whose card it is, and no more of the code than ops see."""
    folded = unicodedata.normalize("NFKD", recipient_name).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "-", folded.lower()).strip("-")[:_SLUG_CHARS].rstrip("-")
    tail = re.sub(r"[^A-Za-z0-9]", "", last4)
    return "-".join(part for part in ("gift-card", slug, tail) if part) + ".pdf"


class PrintableSender(EmailSender):
    channel: ClassVar[Channel] = Channel.PRINTABLE
    reports_delivery: ClassVar[bool] = False
    """``sent`` means the relay took the email; nothing reports that it was printed."""

    def compose(self, session: Session, rows: Sequence[tuple[Delivery, Order]]) -> list[Composed | Outcome]:
        loaded = compose.load(session, [d for d, _ in rows])
        first_lines = _first_lines(session, {o.id for _, o in rows if not o.purchaser_locale})
        now = utcnow()
        # First every card and its link; then the links' rows, in one query, for the email.
        prepared: dict[int, _Card | Outcome] = {}
        for delivery, order in rows:
            try:
                prepared[delivery.id] = _card(delivery, order, loaded)
            except (LedgerError, LookupError, TypeError, ValueError) as exc:
                prepared[delivery.id] = _unrenderable(delivery.id, exc)
        for delivery_id, made in prepared.items():
            if isinstance(made, _Card):
                made.url = make_link(session, delivery_id, now)
        links = _newest_links(session, [i for i, made in prepared.items() if isinstance(made, _Card)])
        items: list[Composed | Outcome] = []
        for delivery, order in rows:
            made = prepared[delivery.id]
            if isinstance(made, Outcome):
                items.append(made)
                continue
            line, link = made.line, links[delivery.id]
            address = delivery.to_address or order.purchaser_email
            try:
                email = PrintableGiftEmail(
                    purchaser_name=order.purchaser_name,
                    purchaser_email=address,
                    recipient_name=delivery.to_name,
                    amount=line.amount,
                    marketplace=line.marketplace,
                    download_url=made.url,
                    link_expires_at=link.expires_at,
                    link_max_uses=link.max_uses,
                    order_ref=compose.order_ref(order),
                    locale=compose.purchaser_locale(order, first_lines.get(order.id, [line])),
                    message_id=message_id_for(delivery.id, delivery.created_at),
                )
            except (LookupError, TypeError, ValueError) as exc:
                items.append(_unrenderable(delivery.id, exc))
                continue
            filename = pdf_filename(delivery.to_name, line.card_last4 or made.card.code[-4:])
            message = PrintableMessage(made.card, email, filename)
            items.append(Composed(delivery.id, address, order.purchaser_name, message))
        return items

    def build(self, item: Composed) -> bytes:
        printable: PrintableMessage = item.message
        # Rendered now and handed on as bytes: the PDF holds the code and is never stored.
        pdf = render_printable(printable.card)
        return build_message(
            render_email(printable.email),
            to_name=item.to_name,
            to_addr=item.address,
            attachments=[Attachment(printable.filename, PDF, pdf)],
        )


@dataclass(slots=True)
class _Card:
    card: PrintableCard = field(repr=False)
    line: OrderLine
    url: str = field(default="", repr=False)


def _card(delivery: Delivery, order: Order, loaded: compose.Loaded) -> _Card:
    """The card a gift delivery prints (raises on a row that cannot make one)."""
    if delivery.kind != DeliveryKind.GIFT or delivery.card_id is None:
        raise ValueError(f"delivery {delivery.id} is not a gift with a card")
    line = loaded.lines_by_id[delivery.line_id or 0]
    code, ledger_card = loaded.codes.get(delivery.card_id), loaded.cards.get(delivery.card_id)
    if code is None or ledger_card is None:
        raise NotFound(f"no card {delivery.card_id}")
    told = disclosure.of_card(ledger_card)
    card = PrintableCard(
        recipient_name=delivery.to_name,
        sender_name=order.purchaser_name,
        amount=line.amount,
        marketplace=line.marketplace,
        message=line.message,
        code=code.reveal(),
        design=line.design,
        locale=line.recipient_locale,
        valid_until=told.valid_until,
        terms_url=told.terms_url,
    )
    return _Card(card, line)


def _unrenderable(delivery_id: int, exc: BaseException) -> Outcome:
    return Outcome.failed(
        delivery_id, FailureKind.PERMANENT, describe(exc), reason=FailureReason.UNRENDERABLE
    )


def _first_lines(session: Session, order_ids: set[int]) -> dict[int, list[OrderLine]]:
    """Each order's first line: its marketplace speaks for a purchaser who gave no locale."""
    if not order_ids:
        return {}
    query = select(OrderLine).where(OrderLine.order_id.in_(order_ids), OrderLine.position == 0)
    return {line.order_id: [line] for line in session.scalars(query)}


def _newest_links(session: Session, delivery_ids: list[int]) -> dict[int, PrintableLink]:
    """The link just made for each delivery (the newest of its links)."""
    if not delivery_ids:
        return {}
    query = (
        select(PrintableLink).where(PrintableLink.delivery_id.in_(delivery_ids)).order_by(PrintableLink.id)
    )
    return {link.delivery_id: link for link in session.scalars(query)}


@dataclass(frozen=True, slots=True)
class Download:
    """A printable card to hand to a browser. ``pdf`` holds the code: never stored or logged."""

    pdf: bytes = field(repr=False)
    filename: str


def download(session: Session, delivery_id: int) -> Download:
    """The PDF of a printable gift, rendered now (for a download link that was just counted).

    Raises ``LookupError`` when the delivery is not a printable gift whose card can print.
    """
    row = session.execute(
        select(Delivery, Order)
        .join(Order, Delivery.order_id == Order.id)
        .where(Delivery.id == delivery_id, Delivery.channel == Channel.PRINTABLE)
    ).one_or_none()
    if row is None:
        raise NotFound(f"no printable gift {delivery_id}")
    delivery, order = row
    made = _card(delivery, order, compose.load(session, [delivery]))
    filename = pdf_filename(delivery.to_name, made.line.card_last4 or made.card.code[-4:])
    return Download(render_printable(made.card), filename)


def from_settings() -> PrintableSender:
    return PrintableSender()
