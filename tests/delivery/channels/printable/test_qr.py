"""The QR code: the redeem page with the code in the fragment, drawn as vector rectangles."""

from __future__ import annotations

import io
from typing import Any

import pypdf
import segno

from delivery.channels.printable import qr, render_printable


def test_the_address_carries_the_code_in_the_fragment_only() -> None:
    address = qr.redeem_address("https://shop.example.com/", "DE", "ABCD-EFGH-JKMN-PQRST")
    assert address == "https://shop.example.com/de/redeem#code=ABCD-EFGH-JKMN-PQRST"


def test_the_runs_are_the_symbol() -> None:
    address = "https://shop.example.com/us/redeem#code=ABCD-EFGH-JKMN-PQRST"
    width, runs = qr.runs(address)
    matrix = segno.make_qr(address, error="m").matrix
    assert width == len(matrix) + 2 * qr.QUIET_ZONE
    drawn = [[0] * width for _ in range(width)]
    for row, start, length in runs:
        for column in range(start, start + length):
            assert drawn[row][column] == 0  # runs never overlap
            drawn[row][column] = 1
    quiet = qr.QUIET_ZONE
    for row in range(width):
        for column in range(width):
            inside = quiet <= row < width - quiet and quiet <= column < width - quiet
            expected = bool(matrix[row - quiet][column - quiet]) if inside else False
            assert drawn[row][column] == expected, (row, column)


def test_the_page_has_no_bitmap(new_card: Any) -> None:
    page = pypdf.PdfReader(io.BytesIO(render_printable(new_card()))).pages[0]
    assert "/XObject" not in page["/Resources"]
    assert not page.images


def test_the_symbol_is_readable_at_low_resolution(pdf_tools: Any, new_card: Any) -> None:
    # 100 dpi: about 4.5 pixels per module of a 40 mm symbol; a phone camera sees more.
    card = new_card()
    assert pdf_tools.decode_qr(pdf_tools.raster(render_printable(card), dpi=100)) == [
        f"http://localhost:8000/us/redeem#code={card.grouped_code}"
    ]
