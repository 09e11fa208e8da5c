"""``render_printable(card) -> bytes``: the gift card as a one-page PDF.

The PDF holds the claim code in clear, so it is made when it is sent or downloaded and
handed on as bytes: it is never written to disk or to a database column. A worker that
needs the PDF again renders it again (15-20 ms of CPU; the fonts stay parsed in the process).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from babel.dates import format_date
from fpdf import FPDF

from delivery.channels.email.i18n import format_money
from delivery.channels.email.render import brand_name, redeem_url
from delivery.channels.printable import designs, fonts, page, qr, wording
from delivery.channels.printable.context import PrintableCard
from delivery.channels.printable.text import clean_message, clean_name, formatted
from giftq.settings import get_settings
from ledger.expiry_policy import terms_url
from ledger.marketplaces import get_marketplace


@dataclass(frozen=True, slots=True)
class Rendered:
    pdf: bytes = field(repr=False)
    """Holds the claim code: hand it on, never store it."""
    boxes: page.Boxes
    """Where each part of the page went (for checks of the layout)."""


def render_printable(card: PrintableCard) -> bytes:
    """The card's one-page PDF (Letter in the US and Canada, A4 elsewhere)."""
    return render_with_boxes(card).pdf


def render_with_boxes(card: PrintableCard) -> Rendered:
    """The PDF and the boxes its parts were drawn in."""
    content = page_content(card)
    pdf = FPDF(unit="mm")
    pdf.set_title(content.wording.title)
    pdf.set_creator(content.brand)
    fonts.install(pdf, _all_text(content))
    boxes = page.draw(pdf, content)
    fonts.trim(pdf)
    return Rendered(bytes(pdf.output()), boxes)


def page_content(card: PrintableCard) -> page.Content:
    """What the page shows: cleaned names and message, the amount in the marketplace's
    format, the wording in the card's language, the design's layout, the redeem address."""
    settings = get_settings()
    layout = designs.layout(card.design)
    folder = designs.folder(card.design)
    market = get_marketplace(card.marketplace)
    grouped = card.grouped_code
    language = wording.language_for(card.marketplace, card.locale)
    words = wording.wording(language)
    return page.Content(
        brand=brand_name(settings.email_from),
        amount=formatted(format_money(card.amount, card.marketplace, market.locale)),
        recipient_name=clean_name(card.recipient_name),
        sender_name=clean_name(card.sender_name),
        message=clean_message(card.message),
        grouped_code=grouped,
        address=qr.redeem_address(settings.public_base_url, card.marketplace, grouped),
        redeem_page=redeem_url(settings.public_base_url, card.marketplace),
        wording=words,
        layout=layout,
        design_title=designs.title_in(layout, language),
        paper=page.paper_for(card.marketplace),
        artwork=str(folder / layout.artwork) if layout.artwork else None,
        disclosure=disclosure_line(card, words, market.locale if language == "en" else language),
    )


def disclosure_line(card: PrintableCard, words: wording.Wording, locale: str) -> str:
    """The card's validity (a date in the card's language) and where its terms are."""
    validity = (
        words.valid_until.replace("{date}", format_date(card.valid_until, "long", locale=locale))
        if card.valid_until
        else words.no_expiry
    )
    url = card.terms_url or terms_url(card.marketplace)
    return f"{validity} {words.terms.replace('{url}', url)}"


def _all_text(content: page.Content) -> str:
    """What the page may need a fallback face for (the fixed wording is in the main face)."""
    return "".join(
        (
            content.brand,
            content.design_title,
            content.recipient_name,
            content.sender_name,
            content.message,
            content.disclosure,
        )
    )
