"""The page: one sheet, folded in half, drawn with fpdf2.

::

    +------------------------------------------+   the front (top half)
    | band: brand, "Gift card", design, shapes  |
    | $25.00                                    |
    | For  Robin             From  Pat          |
    | +--------------------------------------+  |
    | | the personal message                 |  |
    | +--------------------------------------+  |
    - - - - - - - - - fold here - - - - - - - - -
    | Your claim code                 +------+  |   the inside (bottom half):
    | XXXX-XXXX-XXXX-XXXXX            |  QR  |  |   the code is hidden when the
    | scan hint                       +------+  |   sheet is folded
    | How to redeem: 1. 2. 3.                   |
    | Valid until ... / does not expire; terms  |
    | Keep your code private: ...               |
    +------------------------------------------+

Every piece of text is fitted to a box of its own that no other box overlaps: names and
the message wrap (a word longer than the line is broken inside it) and shrink to a
minimum size; a message of more lines than fit has its lines run together; only then is
text cut, with an ellipsis. Nothing is ever drawn past its box. Japanese punctuation
never starts a line (it hangs at the end of the line before, in room kept for it). The
boxes are returned (:class:`Boxes`) so that tests can check them against each other and
the page.
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

from fpdf import FPDF
from fpdf.fonts import TTFFont

from delivery.channels.printable import fonts, qr
from delivery.channels.printable.designs import Layout, Ornament
from delivery.channels.printable.text import is_right_to_left
from delivery.channels.printable.wording import Wording

PT = 25.4 / 72
"""Millimetres per point."""
ELLIPSIS = "\u2026"
MIN_NAME_PT = 9.0
MIN_MESSAGE_PT = 8.0
MIN_CODE_PT = 16.0
LINE = 1.3
"""Line height as a multiple of the type size."""

PAPER: dict[str, tuple[float, float]] = {"A4": (210.0, 297.0), "Letter": (215.9, 279.4)}
LETTER_MARKETPLACES = frozenset({"US", "CA"})


def paper_for(marketplace: str) -> str:
    """US and Canada print on Letter; everywhere else on A4."""
    return "Letter" if marketplace in LETTER_MARKETPLACES else "A4"


@dataclass(frozen=True, slots=True)
class Content:
    """Everything the page shows, already cleaned, formatted and in the card's language.

    The code and the address that carries it are left out of ``repr``."""

    brand: str
    amount: str
    recipient_name: str
    sender_name: str
    message: str
    grouped_code: str = field(repr=False)
    address: str = field(repr=False)
    """The redeem address (code in the fragment) that the QR code carries."""
    redeem_page: str
    """The redeem page without the code, as the steps print it."""
    wording: Wording
    layout: Layout
    paper: str
    disclosure: str = ""
    """Until when the card is valid (or that it does not expire) and where its terms are."""
    design_title: str = ""
    """The design's name in the card's language."""
    artwork: str | None = None
    """Path of the design's artwork image, if it has one."""


@dataclass(frozen=True, slots=True)
class Box:
    x: float
    y: float
    w: float
    h: float

    @property
    def bottom(self) -> float:
        return self.y + self.h

    @property
    def right(self) -> float:
        return self.x + self.w

    def overlaps(self, other: Box) -> bool:
        return (
            self.x < other.right and other.x < self.right and self.y < other.bottom and other.y < self.bottom
        )


@dataclass(slots=True)
class Boxes:
    """Where each part of the page was allowed to draw, in mm from the top left corner."""

    page: Box
    parts: dict[str, Box] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Type:
    """How a piece of text is set: its size, how far it may shrink, weight, line limit."""

    size: float
    min_size: float
    bold: bool = False
    max_lines: int | None = None

    @property
    def style(self) -> str:
        return "B" if self.bold else ""


@dataclass(frozen=True, slots=True)
class Fitted:
    size: float
    lines: tuple[str, ...]
    line_height: float
    right_to_left: bool

    @property
    def height(self) -> float:
        return len(self.lines) * self.line_height


def draw(pdf: FPDF, content: Content) -> Boxes:
    """Add the card's page to ``pdf`` (fonts installed, unit mm) and say where things went."""
    width, height = PAPER[content.paper]
    pdf.add_page(format=(width, height))
    pdf.set_auto_page_break(False)
    # No inner cell margin: a box's text starts at its edge whichever way it is drawn
    # (cell() for shaped text, text() otherwise) and wraps at its full width.
    pdf.c_margin = 0
    layout, words = content.layout, content.wording
    m = layout.margin_mm
    inner = width - 2 * m
    fold = height / 2
    boxes = Boxes(Box(0, 0, width, height))

    band = Box(m, m, inner, layout.band_mm)
    _band(pdf, content, band)
    boxes.parts["band"] = band

    amount = Box(m, band.bottom + 5, inner, layout.amount_pt * PT * 1.25)
    _fill_text(
        pdf, content.amount, amount, Type(layout.amount_pt, layout.amount_pt * 0.6, True, 1), layout.ink
    )
    boxes.parts["amount"] = amount

    column = (inner - 8) / 2
    label_type = Type(layout.body_pt, layout.body_pt, max_lines=1)
    name_type = Type(layout.name_pt, MIN_NAME_PT, max_lines=2)
    label_height = layout.body_pt * PT * LINE
    name_height = 2 * layout.name_pt * PT * LINE
    people = (
        ("recipient_name", words.for_label, content.recipient_name),
        ("sender_name", words.from_label, content.sender_name),
    )
    for index, (part, label, name) in enumerate(people):
        x = m + index * (column + 8)
        label_box = Box(x, amount.bottom + 4, column, label_height)
        _fill_text(pdf, label, label_box, label_type, layout.muted, fixed=True)
        name_box = Box(x, label_box.bottom, column, name_height)
        _fill_text(pdf, name, name_box, name_type, layout.ink)
        boxes.parts[part] = name_box

    top = amount.bottom + 4 + label_height + name_height + 5
    message = Box(m, top, inner, fold - 7 - top)
    if content.message:
        _panel(pdf, message, layout)
        padded = Box(message.x + 6, message.y + 5, message.w - 12, message.h - 10)
        _fill_text(pdf, content.message, padded, Type(layout.message_pt, MIN_MESSAGE_PT), layout.ink)
        boxes.parts["message"] = message

    _fold_line(pdf, content, width, fold)
    _inside(pdf, content, boxes, Box(m, fold + 9, inner, height - m - (fold + 9)))
    return boxes


def _inside(pdf: FPDF, content: Content, boxes: Boxes, area: Box) -> None:
    """The half that folds inwards: the code and its QR code, the steps, the advice."""
    layout, words = content.layout, content.wording
    accent = layout.accent or layout.ink
    m, inner = area.x, area.w
    heading_type = Type(11, 8, True, 1)
    body_type = Type(layout.body_pt, 7)

    size = layout.qr_mm
    qr_box = Box(m + inner - size, area.y, size, size)
    qr.draw(pdf, content.address, qr_box.x, qr_box.y, qr_box.w)
    boxes.parts["qr"] = qr_box

    left = inner - size - 8
    heading = Box(m, area.y + 1, left, 11 * PT * LINE)
    _fill_text(pdf, words.code_heading, heading, heading_type, accent, fixed=True)
    code = _code(pdf, content.grouped_code, Box(m, heading.bottom + 1, left, 0), layout)
    boxes.parts["code"] = code
    scan = Box(m, code.bottom + 3, left, qr_box.bottom - code.bottom - 3)
    _fill_text(pdf, words.scan, scan, body_type, layout.muted, fixed=True)
    boxes.parts["scan"] = scan

    y = max(qr_box.bottom, scan.bottom) + 7
    heading = Box(m, y, inner, 11 * PT * LINE)
    _fill_text(pdf, words.redeem_heading, heading, heading_type, accent, fixed=True)
    y = heading.bottom + 1.5
    step_type = Type(layout.body_pt, 7, max_lines=3)
    for number, step in enumerate(words.steps, start=1):
        text = step.replace("{url}", content.redeem_page)
        fitted = _fit(
            pdf, text, Box(m + 7, y, inner - 7, 3 * layout.body_pt * PT * LINE), step_type, fixed=True
        )
        pdf.set_font(fonts.SANS, "B", fitted.size)
        _colour(pdf, accent)
        _line(pdf, Box(m, y, 7, fitted.line_height), f"{number}.", right=False)
        box = Box(m + 7, y, inner - 7, fitted.height)
        _draw_fitted(pdf, fitted, box, step_type, layout.ink)
        boxes.parts[f"step{number}"] = box
        y = box.bottom + 1.5

    if content.disclosure:
        terms_type = Type(layout.body_pt, 7, max_lines=2)
        fitted = _fit(
            pdf, content.disclosure, Box(m, y, inner, 2 * layout.body_pt * PT * LINE), terms_type, fixed=True
        )
        box = Box(m, y + 1, inner, fitted.height)
        _draw_fitted(pdf, fitted, box, terms_type, layout.muted)
        boxes.parts["terms"] = box
        y = box.bottom + 1.5

    # The advice in a panel as tall as its text, which may use what is left of the page.
    width = inner - 10
    title_type = Type(10.5, 8, True, 1)
    title = _fit(pdf, words.private_heading, Box(m + 5, 0, width, 10.5 * PT * LINE), title_type, fixed=True)
    room = area.bottom - (y + 4) - 4 - title.height - 1 - 4
    body = _fit(pdf, words.private, Box(m + 5, 0, width, room), body_type, fixed=True)
    private = Box(m, y + 4, inner, 4 + title.height + 1 + body.height + 4)
    _panel(pdf, private, layout)
    _draw_fitted(pdf, title, Box(m + 5, private.y + 4, width, title.height), title_type, layout.ink)
    body_box = Box(m + 5, private.y + 4 + title.height + 1, width, body.height)
    _draw_fitted(pdf, body, body_box, body_type, layout.ink)
    boxes.parts["private"] = private


def _code(pdf: FPDF, grouped: str, at: Box, layout: Layout) -> Box:
    """The claim code as large as fits: on one line, or two lines split between groups."""
    spacing = 1.2  # pt between characters: easier to copy by eye
    pdf.set_font(fonts.SANS, "B", layout.code_pt)
    pdf.set_char_spacing(spacing)
    lines = [grouped]
    size = layout.code_pt
    while size > MIN_CODE_PT and pdf.get_string_width(grouped) > at.w:
        size -= 1
        pdf.set_font_size(size)
    if pdf.get_string_width(grouped) > at.w:
        groups = grouped.split("-")
        half = (len(groups) + 1) // 2
        lines = ["-".join(groups[:half]) + "-", "-".join(groups[half:])]
    line_height = size * PT * 1.2
    _colour(pdf, layout.ink)
    for index, line in enumerate(lines):
        _line(pdf, Box(at.x, at.y + index * line_height, at.w, line_height), line, right=False)
    pdf.set_char_spacing(0)
    return Box(at.x, at.y, at.w, len(lines) * line_height)


def _band(pdf: FPDF, content: Content, band: Box) -> None:
    layout = content.layout
    _fill(pdf, layout.accent or layout.ink)
    pdf.rect(band.x, band.y, band.w, band.h, style="F", round_corners=True, corner_radius=layout.radius_mm)
    # local_context: the clip's Q restores the PDF's colours, and fpdf2 must know it does.
    with pdf.rect_clip(band.x, band.y, band.w, band.h), pdf.local_context():
        for ornament in layout.ornaments:
            _ornament(pdf, ornament, band)
        if content.artwork is not None:
            size = min(layout.artwork_mm, band.h - 4)
            pdf.image(
                content.artwork, x=band.right - size - 4, y=band.y + (band.h - size) / 2, w=size, h=size
            )
    text_width = band.w * 0.62
    brand = Box(band.x + 8, band.y + 5, text_width, 9 * PT * LINE)
    _fill_text(pdf, content.brand.upper(), brand, Type(9, 7, True, 1), layout.on_accent, fixed=True)
    title = Box(band.x + 8, brand.bottom, text_width, layout.title_pt * PT * 1.2)
    title_type = Type(layout.title_pt, 14, True, 1)
    _fill_text(pdf, content.wording.title, title, title_type, layout.on_accent, fixed=True)
    design = Box(band.x + 8, title.bottom, text_width, 10 * PT * LINE)
    _fill_text(pdf, content.design_title, design, Type(10, 8, max_lines=1), layout.on_accent, fixed=True)


def _ornament(pdf: FPDF, ornament: Ornament, band: Box) -> None:
    x = band.right - ornament.x
    y = band.y + ornament.y
    r = ornament.size / 2
    if ornament.shape == "ring":
        _draw(pdf, ornament.colour)
        pdf.set_line_width(max(0.6, ornament.size / 12))
        pdf.circle(x, y, r, style="D")
    elif ornament.shape == "circle":
        _fill(pdf, ornament.colour)
        pdf.circle(x, y, r, style="F")
    elif ornament.shape == "star":
        _fill(pdf, ornament.colour)
        pdf.star(x, y, r * 0.45, r, 5, rotate_degrees=-90, style="F")
    else:
        _fill(pdf, ornament.colour)
        pdf.rect(x - r, y - r, ornament.size, ornament.size, style="F")


def _panel(pdf: FPDF, box: Box, layout: Layout) -> None:
    _fill(pdf, layout.panel)
    pdf.rect(box.x, box.y, box.w, box.h, style="F", round_corners=True, corner_radius=layout.radius_mm)


def _fold_line(pdf: FPDF, content: Content, width: float, fold: float) -> None:
    layout = content.layout
    label = content.wording.fold
    pdf.set_font(fonts.SANS, "", 7.5)
    label_width = pdf.get_string_width(label) + 6
    _draw(pdf, layout.muted)
    pdf.set_line_width(0.2)
    pdf.set_dash_pattern(dash=2, gap=1.5)
    left_end = (width - label_width) / 2
    pdf.line(6, fold, left_end, fold)
    pdf.line(left_end + label_width, fold, width - 6, fold)
    pdf.set_dash_pattern()
    _colour(pdf, layout.muted)
    _line(pdf, Box(left_end + 3, fold - 2, label_width, 4), label, right=False)


# --- text in boxes ------------------------------------------------------------------------


def _fill_text(pdf: FPDF, text: str, box: Box, kind: Type, colour: str, *, fixed: bool = False) -> Fitted:
    fitted = _fit(pdf, text, box, kind, fixed=fixed)
    _draw_fitted(pdf, fitted, box, kind, colour)
    return fitted


_FITTED: dict[tuple[object, ...], Fitted] = {}
_FITTED_MAX = 1024


def _fit(pdf: FPDF, text: str, box: Box, kind: Type, *, fixed: bool = False) -> Fitted:
    """The largest size from ``kind.size`` down to ``kind.min_size`` at which ``text`` fits
    the box; at the smallest, the lines that fit, the last one ended with an ellipsis.

    ``fixed``: the text is the page's own wording, the same on every card of a language
    and design, so its lines are kept for the next page (measuring is most of the time
    spent setting text). A purchaser's words are measured each time and not kept.
    """
    if not fixed:
        return _measure(pdf, text, box.w, box.h, kind)
    key = (text, round(box.w, 3), round(box.h, 3), kind)
    fitted = _FITTED.get(key)
    if fitted is None:
        if len(_FITTED) >= _FITTED_MAX:
            _FITTED.clear()
        fitted = _FITTED[key] = _measure(pdf, text, box.w, box.h, kind)
    return fitted


def _measure(pdf: FPDF, text: str, width: float, height: float, kind: Type) -> Fitted:
    right_to_left = is_right_to_left(text)
    ideographic = _has_ideographs(text)
    size = kind.size
    with _shaping(pdf, right_to_left):
        while True:
            pdf.set_font(fonts.SANS, kind.style, size)
            line_height = size * PT * LINE
            allowed = max(1, int(height / line_height + 1e-6))
            if kind.max_lines is not None:
                allowed = min(allowed, kind.max_lines)
            # Japanese punctuation may not start a line: it hangs at the end of the line
            # before, into one em kept free for it.
            wrap = width - size * PT if ideographic else width
            needed = _fewest_lines(pdf, text, wrap)
            if needed > allowed and size > kind.min_size:
                size = max(kind.min_size, size - 1)
                continue
            if needed == 1 and "\n" not in text:
                return Fitted(size, (text,), line_height, right_to_left)  # one line: nothing to wrap
            lines = _wrap(pdf, text, wrap) if not right_to_left else None
            if lines is None:
                lines = cast(list[str], pdf.multi_cell(wrap, line_height, text, dry_run=True, output="LINES"))
            if ideographic:
                lines = _hang_punctuation(lines)
            if len(lines) <= allowed:
                return Fitted(size, tuple(lines), line_height, right_to_left)
            if size <= kind.min_size:
                break
            size = max(kind.min_size, size - 1)
        if "\n" in text:
            # Many short lines: run them together rather than lose the end of the message.
            return _measure(pdf, " ".join(text.split("\n")), width, height, kind)
        kept = lines[:allowed]
        last = kept[-1].rstrip()
        while last and pdf.get_string_width(last + ELLIPSIS) > wrap:
            last = last[:-1].rstrip()
        kept[-1] = last + ELLIPSIS
        return Fitted(size, tuple(kept), line_height, right_to_left)


def _wrap(pdf: FPDF, text: str, width: float) -> list[str] | None:
    """Lines of at most ``width`` mm in the current font and size, or None when the text
    needs what only fpdf2's line breaker knows (a character from a fallback face).

    fpdf2 re-measures a line each time a character is added to it (about 10 ms for a
    500-character message); this sums each character's advance width once, from the same
    width table fpdf2 draws with, so the lines are the ones it would draw. Lines break
    after a space (which is dropped), between two characters of which one is Japanese,
    and inside a word longer than the line.
    """
    font = pdf.current_font
    if not isinstance(font, TTFFont) or any(ord(c) not in font.cmap and c != "\n" for c in text):
        return None
    scale = pdf.font_size / 1000  # widths are in thousandths of an em; font_size is in mm
    lines: list[str] = []
    for paragraph in text.split("\n"):
        lines.extend(_wrap_paragraph(paragraph, [font.cw[ord(c)] * scale for c in paragraph], width))
    return lines


def _wrap_paragraph(text: str, widths: list[float], width: float) -> list[str]:
    if not text:
        return [""]
    lines: list[str] = []
    start, end = 0, len(text)
    while start < end:
        used, index = 0.0, start
        last_break: tuple[int, int] | None = None  # (end of this line, start of the next)
        # Take characters while they fit (always at least one, however narrow the line).
        while index < end and (used + widths[index] <= width + 1e-9 or index == start):
            used += widths[index]
            if text[index] == " ":
                last_break = (index, index + 1)
            elif index + 1 < end and text[index + 1] != " " and _breaks_between(text[index], text[index + 1]):
                last_break = (index + 1, index + 1)
            index += 1
        if index >= end:
            lines.append(text[start:].rstrip(" "))
            break
        if text[index] == " ":
            line_end, next_start = index, index + 1
        elif last_break is not None:
            line_end, next_start = last_break
        else:
            line_end, next_start = index, index  # a word longer than the line is cut
        lines.append(text[start:line_end].rstrip(" "))
        start = next_start
        while start < end and text[start] == " ":
            start += 1
    return lines


def _breaks_between(before: str, after: str) -> bool:
    """Japanese text has no spaces: a line may break next to any kana or kanji."""
    return _is_ideographic(before) or _is_ideographic(after)


def _is_ideographic(char: str) -> bool:
    return "\u3000" <= char <= "\u9fff" or "\uff00" <= char <= "\uffef"


def _fewest_lines(pdf: FPDF, text: str, width: float) -> int:
    """A lower bound of the lines ``text`` needs, from its width alone: each paragraph takes
    at least its width over the line's. Sizes that cannot fit are skipped without the
    line breaker, which costs far more than a width (fpdf2 re-measures each line as it grows)."""
    return sum(max(1, math.ceil(pdf.get_string_width(p) / width - 1e-9)) for p in text.split("\n"))


# What may not begin a line in Japanese (the punctuation of the kinsoku rules).
_NO_LINE_START = frozenset(
    "\u3001\u3002\uff0c\uff0e,.\u30fb\uff1a\uff1b\uff1f\uff01\u300d\u300f\uff09\uff3d\uff5d"
    "\u3015\u3009\u300b\u3011\u3019\u3017\u301f\u2019\u201d\u30fd\u30fe\u309d\u309e\u3005\u30fc\u2026"
)


def _has_ideographs(text: str) -> bool:
    return any(_is_ideographic(c) for c in text)


def _hang_punctuation(lines: list[str]) -> list[str]:
    for index in range(1, len(lines)):
        while lines[index] and lines[index][0] in _NO_LINE_START and len(lines[index - 1]) > 1:
            lines[index - 1] += lines[index][0]
            lines[index] = lines[index][1:]
    return [line for index, line in enumerate(lines) if line or index == 0]


def _draw_fitted(pdf: FPDF, fitted: Fitted, box: Box, kind: Type, colour: str) -> None:
    _colour(pdf, colour)
    with _shaping(pdf, fitted.right_to_left):
        pdf.set_font(fonts.SANS, kind.style, fitted.size)
        for index, line in enumerate(fitted.lines):
            right = fitted.right_to_left and _starts_right_to_left(line)
            at = Box(box.x, box.y + index * fitted.line_height, box.w, fitted.line_height)
            _line(pdf, at, line, right=right)


def _line(pdf: FPDF, at: Box, line: str, *, right: bool) -> None:
    """One line of text in the current font, left or right aligned in the box ``at``.

    ``text()`` is ten times cheaper than ``cell()`` but knows neither fallback fonts nor
    shaping: it is used for lines the current face draws on its own, left to right.
    """
    font = pdf.current_font
    simple = isinstance(font, TTFFont) and all(ord(c) in font.cmap for c in line)
    if right or not simple or pdf.text_shaping:
        pdf.set_xy(at.x, at.y)
        pdf.cell(at.w, at.h, line, align="R" if right else "L")
        return
    # The same baseline as cell(): half the box's height plus 0.3 of the type size.
    pdf.text(at.x, at.y + at.h / 2 + 0.3 * pdf.font_size, line)


def _starts_right_to_left(line: str) -> bool:
    """Whether the first letter with a direction is right-to-left (the paragraph's direction)."""
    for char in line:
        direction = unicodedata.bidirectional(char)
        if direction in ("R", "AL"):
            return True
        if direction == "L":
            return False
    return False


@contextmanager
def _shaping(pdf: FPDF, on: bool) -> Iterator[None]:
    """HarfBuzz shaping and the bidi algorithm, only for text that needs them (it is slower)."""
    if not on:
        yield
        return
    pdf.set_text_shaping(True)
    try:
        yield
    finally:
        pdf.set_text_shaping(False)


# --- colours ------------------------------------------------------------------------------


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def _colour(pdf: FPDF, colour: str) -> None:
    pdf.set_text_color(*_rgb(colour))


def _fill(pdf: FPDF, colour: str) -> None:
    pdf.set_fill_color(*_rgb(colour))


def _draw(pdf: FPDF, colour: str) -> None:
    pdf.set_draw_color(*_rgb(colour))
