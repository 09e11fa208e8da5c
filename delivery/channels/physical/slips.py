"""Packing slips: one A5 page per card, in manifest order, in one PDF (fpdf2).

A slip says where the parcel goes, who the gift is from, the personal message, which
design goes in, until when the card is valid (or that it does not expire) and where its
terms are, and the ``item_ref`` in large type so that the packer matches slip and
card. It never shows the claim code, nor its last characters, nor the card's value (a
gift slip does not show the price).

Text is set in the PDF core font Helvetica, which covers Latin-1; a character outside it
(a Japanese or Greek address) is printed as ``?`` on the slip. The manifest carries every
address exactly, in UTF-8, and is what shipping labels are printed from.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from fpdf import FPDF

from delivery import designs
from delivery.channels.physical.manifest import Batch, ManifestRow

_MARGIN = 12.0
A5 = (148.0, 210.0)
"""Millimetres (fpdf2 2.8 warns on every document that names the format "A5")."""


def _latin1(value: str) -> str:
    return value.encode("latin-1", "replace").decode("latin-1")


def _country(code: str) -> str:
    from babel import Locale  # noqa: PLC0415 - only slips need country names

    return str(Locale.parse("en").territories.get(code, code))


def _design_title(name: str) -> str:
    try:
        return str(designs.design(name).get("title", name))
    except KeyError:
        return name


def address_lines(row: ManifestRow) -> list[str]:
    """The ship-to block, one line each, in the order the country's post reads it."""
    if row.country in ("US", "CA"):
        place = [
            " ".join(
                p for p in (f"{row.city}," if row.region else row.city, row.region, row.postal_code) if p
            )
        ]
    elif row.country == "GB":
        place = [row.city, row.postal_code]
    elif row.country == "JP":
        place = [" ".join(p for p in (row.postal_code, row.region, row.city) if p)]
    else:
        place = [f"{row.postal_code} {row.city}", row.region]
    lines = [row.recipient_name, row.address_line1, row.address_line2, *place, _country(row.country)]
    return [line for line in lines if line]


def render(batch: Batch, brand: str = "giftq") -> bytes:
    """The batch's packing slips as one PDF."""
    pdf = FPDF(orientation="portrait", unit="mm", format=A5)
    pdf.set_auto_page_break(auto=True, margin=_MARGIN)
    pdf.set_margins(_MARGIN, _MARGIN, _MARGIN)
    pdf.set_title(_latin1(f"{brand} packing slips {batch.ref}"))
    pdf.set_creator(_latin1(brand))
    for row in batch.rows:
        _page(pdf, batch, row, brand)
    return bytes(pdf.output())


def _page(pdf: FPDF, batch: Batch, row: ManifestRow, brand: str) -> None:
    pdf.add_page()
    width = pdf.w - 2 * _MARGIN
    pdf.set_font("Helvetica", "B", 10)
    pdf.cell(width / 2, 6, _latin1(f"{brand} - packing slip"))
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(width / 2, 6, _latin1(f"batch {batch.ref}"), align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "B", 22)
    pdf.cell(width, 14, _latin1(row.item_ref), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 8)
    pdf.cell(
        width,
        5,
        _latin1(f"Order {row.order_ref}, line {row.order_line}"),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    pdf.ln(4)
    _heading(pdf, width, "Ship to")
    _lines(pdf, width, address_lines(row), size=12, height=6)
    pdf.ln(4)
    _heading(pdf, width, "Contents")
    _lines(pdf, width, [f"1 gift card, design: {_design_title(row.design)}"], size=11, height=6)
    pdf.ln(4)
    _heading(pdf, width, "A gift from")
    _lines(pdf, width, [row.sender_name], size=11, height=6)
    if row.message:
        pdf.ln(2)
        pdf.set_font("Helvetica", "I", 11)
        pdf.multi_cell(width, 5.5, _latin1(row.message), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    _heading(pdf, width, "Validity")
    _lines(pdf, width, [disclosure_line(row)], size=9, height=4.5)


def disclosure_line(row: ManifestRow) -> str:
    """Until when the card is valid (or that it does not expire), and where its terms are."""
    validity = (
        f"This gift card is valid until {_long_date(row.valid_until)}."
        if row.valid_until
        else "This gift card does not expire."
    )
    return f"{validity} Terms: {row.terms_url}" if row.terms_url else validity


def _long_date(iso: str) -> str:
    from babel.dates import format_date  # noqa: PLC0415 - only slips need it

    return str(format_date(dt.date.fromisoformat(iso), "long", locale="en"))


def _heading(pdf: FPDF, width: float, text: str) -> None:
    pdf.set_font("Helvetica", "B", 8)
    pdf.set_text_color(90, 90, 90)
    pdf.cell(width, 5, text.upper(), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)


def _lines(pdf: FPDF, width: float, lines: Iterable[str], *, size: float, height: float) -> None:
    pdf.set_font("Helvetica", "", size)
    for line in lines:
        pdf.multi_cell(width, height, _latin1(line), new_x="LMARGIN", new_y="NEXT")
