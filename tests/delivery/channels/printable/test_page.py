"""The page's own line breaker gives the lines fpdf2's would, in a fraction of the time."""

from __future__ import annotations

from typing import Any

from fpdf import FPDF
from hypothesis import given, settings
from hypothesis import strategies as st

from delivery.channels.printable import fonts, page

SENTENCES = [
    "Treat this code like cash: anyone who has it can spend it. We will never ask you for your code.",
    "Lieber Jürgen, alles Gute zum Geburtstag! Ich wünsche dir ein wunderbares Jahr voller Freude.",
    "x" * 300,
    "short",
    "a " * 80,
]


def _pdf(size: float = 11) -> FPDF:
    pdf = FPDF(unit="mm")
    fonts.install(pdf, "")
    pdf.add_page()
    pdf.c_margin = 0  # as page.draw sets it
    pdf.set_font(fonts.SANS, "", size)
    return pdf


def test_the_lines_are_fpdf2s() -> None:
    pdf = _pdf()
    for text in SENTENCES:
        for width in (30.0, 77.7, 170.0):
            ours = page._wrap(pdf, text, width)
            theirs: Any = pdf.multi_cell(width, 5, text, dry_run=True, output="LINES")
            assert ours == [line.rstrip(" ") for line in theirs], (text, width)


@settings(max_examples=200, deadline=None)
@given(
    text=st.text(alphabet="abcdefghij WMi.,山田花子、。", min_size=1, max_size=200),
    width=st.floats(min_value=5, max_value=200),
)
def test_lines_fit_and_lose_nothing_but_spaces(text: str, width: float) -> None:
    pdf = _pdf()
    lines = page._wrap(pdf, text, width)
    assert lines is not None
    for line in lines:
        assert len(line) <= 1 or pdf.get_string_width(line) <= width + 1e-6
    assert "".join(lines).replace(" ", "") == text.replace(" ", "")


def test_a_face_the_page_font_lacks_goes_to_fpdf2() -> None:
    assert page._wrap(_pdf(), "Robin שלום", 50) is None
