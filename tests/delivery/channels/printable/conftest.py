"""Helpers of the printable tests: real PDFs, read back with real readers.

- ``pdf_text(pdf)``: the page's text, extracted by pypdf;
- ``raster(pdf)``: the page rasterised by PDFium (pypdfium2), as a Pillow image;
- ``decode_qr(image)``: the QR codes on an image, read by zxing-cpp;
- ``char_boxes(pdf)``: each character PDFium finds on the page with its box, in mm from
  the top left corner (the same frame as ``page.Boxes``);
- ``new_card(**changes)``: a valid card with a fresh claim code;
- ``check_qr``, ``check_layout``: what every rendered card must satisfy;
- and any warning fpdf2 logs (a glyph it could not draw) fails the test.
"""

from __future__ import annotations

import io
import itertools
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pypdf
import pypdfium2 as pdfium
import pytest
import zxingcpp
from PIL import Image

from delivery.channels.printable import PrintableCard
from delivery.channels.printable.page import Box, Boxes
from giftq.settings import get_settings
from ledger.codes import ClaimCode

MM_PER_PT = 25.4 / 72


def pdf_text(pdf: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == 1
    return reader.pages[0].extract_text()


def raster(pdf: bytes, dpi: int = 150) -> Image.Image:
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        image = page.render(scale=dpi / 72).to_pil()
        page.close()
        return image
    finally:
        document.close()


def decode_qr(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image) if r.format == zxingcpp.BarcodeFormat.QRCode]


@dataclass(frozen=True)
class Char:
    text: str
    left: float
    top: float
    right: float
    bottom: float


def char_boxes(pdf: bytes) -> tuple[tuple[float, float], list[Char]]:
    """The page size in mm and the characters PDFium sees, with boxes in mm from the top left."""
    document = pdfium.PdfDocument(pdf)
    try:
        page = document[0]
        width, height = page.get_size()
        textpage = page.get_textpage()
        chars = []
        for index in range(textpage.count_chars()):
            text = textpage.get_text_range(index, 1)
            if not text.strip():
                continue
            left, bottom, right, top = textpage.get_charbox(index)
            chars.append(
                Char(
                    text,
                    left * MM_PER_PT,
                    (height - top) * MM_PER_PT,
                    right * MM_PER_PT,
                    (height - bottom) * MM_PER_PT,
                )
            )
        textpage.close()
        page.close()
        return (width * MM_PER_PT, height * MM_PER_PT), chars
    finally:
        document.close()


def new_code() -> str:
    return ClaimCode.generate().reveal()


def make_card(**changes: Any) -> PrintableCard:
    fields: dict[str, Any] = {
        "recipient_name": "Robin Receiver",
        "sender_name": "Pat Buyer",
        "amount": 2500,
        "marketplace": "US",
        "message": "Happy birthday!\nLove, Pat",
        "code": new_code(),
        "design": "classic",
    }
    fields.update(changes)
    return PrintableCard(**fields)


def words(text: str) -> str:
    """Whitespace of any kind (no-break, narrow no-break) as single spaces."""
    return " ".join(text.split())


def check_address(address: str, card: PrintableCard) -> None:
    parts = urlsplit(address)
    assert address.startswith(get_settings().public_base_url.rstrip("/") + "/")
    assert parts.path == f"/{card.marketplace.lower()}/redeem"
    assert parts.query == ""
    assert parts.fragment == f"code={card.grouped_code}"
    for form in (card.code, card.grouped_code):
        assert form not in parts.path
        assert form not in parts.netloc


def check_layout(pdf: bytes, boxes: Boxes, card: PrintableCard) -> None:
    """The boxes lie on the page and apart; every character lies on the page, none over the
    QR code, and the characters inside the code's box are exactly the code."""
    page = boxes.page
    parts = boxes.parts
    for name, box in parts.items():
        assert box.x >= 5 and box.y >= 5, name
        assert box.right <= page.w - 5 and box.bottom <= page.h - 5, name
    for (a, box_a), (b, box_b) in itertools.combinations(parts.items(), 2):
        assert not box_a.overlaps(box_b), (a, b)

    (width, height), chars = char_boxes(pdf)
    assert (round(width, 1), round(height, 1)) == (round(page.w, 1), round(page.h, 1))
    qr, code = parts["qr"], parts["code"]
    in_code = []
    for char in chars:
        where = Box(char.left, char.top, char.right - char.left, char.bottom - char.top)
        assert char.left >= 5 and char.right <= width - 5, char
        assert char.top >= 5 and char.bottom <= height - 5, char
        assert not where.overlaps(qr), char
        centre_x, centre_y = (char.left + char.right) / 2, (char.top + char.bottom) / 2
        if code.x <= centre_x <= code.right and code.y <= centre_y <= code.bottom:
            in_code.append(char.text)
    assert "".join(in_code) == card.grouped_code


def check_qr(pdf: bytes, card: PrintableCard) -> None:
    decoded = decode_qr(raster(pdf))
    assert len(decoded) == 1
    check_address(decoded[0], card)


@pytest.fixture
def new_card() -> Any:
    return make_card


@pytest.fixture(scope="session")
def pdf_tools() -> Any:
    """This module, for its helpers (``pdf_tools.pdf_text(pdf)``): tests import nothing here."""
    import sys

    return sys.modules[__name__]


@pytest.fixture(autouse=True)
def _no_missing_glyphs(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """fpdf2 only logs a glyph it could not draw: here that fails the test."""
    with caplog.at_level(logging.WARNING, logger="fpdf"):
        yield
    missing = [r.getMessage() for r in caplog.records if r.name.startswith("fpdf")]
    assert missing == []
