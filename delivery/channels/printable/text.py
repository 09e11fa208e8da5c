"""What a purchaser typed, made safe to draw: names and the personal message.

Everything is drawn as literal text: fpdf2 is never asked to read markup, so ``<b>``,
``**x**`` and ``&amp;`` print as typed. First the house rules of :mod:`giftq.text`
apply (:func:`~giftq.text.one_line` for a name, :func:`~giftq.text.clean_paragraphs`
for a message: control characters, line separators and bidirectional embeddings,
overrides and isolates go). Then, for the page:

- other invisible format characters go too (zero-width space, BOM, the bidi marks: the
  page's fonts have no glyph for them and the bidi algorithm orders the text without
  them), except the two joiners (U+200C, U+200D) that Arabic and Indic words need;
- a precomposed letter the fonts lack is drawn as its letter and combining accent (Greek
  with tonos); emoji and any other character that none of the page's fonts can draw
  become one visible placeholder, :data:`PLACEHOLDER`, per symbol (an emoji's skin tone,
  variation selector and joined parts are folded into it), so nothing is silently lost
  or drawn as nothing;
- runs of spaces become one space, blank lines at most one, and text is NFC-normalised.

Length limits are the order's (:data:`MAX_NAME`, :data:`MAX_MESSAGE`); layout decides
what fits (:mod:`.page` wraps long words and shrinks or shortens text to its box).
"""

from __future__ import annotations

import re
import unicodedata

from delivery.channels.printable import fonts
from giftq.text import clean_paragraphs, one_line

PLACEHOLDER = "\u25a1"
"""WHITE SQUARE, drawn in place of a symbol the fonts cannot draw (an emoji)."""

MAX_NAME = 100
MAX_MESSAGE = 500
"""The order schema's limits (``delivery/orders/schemas.py``)."""

_KEEP_FORMAT = frozenset("\u200c\u200d")
# Modifiers that belong to the emoji before them: variation selectors, skin tones, tags,
# the keycap mark. They are dropped, so that the emoji itself is one placeholder.
_EMOJI_MODIFIERS = re.compile("[\ufe00-\ufe0f\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f\u20e3]")
_JOINED_PLACEHOLDERS = re.compile(f"{PLACEHOLDER}(?:\u200d{PLACEHOLDER})+")
_FLAG_PAIRS = re.compile("(?<=[\U0001f1e6-\U0001f1ff])[\U0001f1e6-\U0001f1ff]")
_SPACES = re.compile(r"[^\S\n]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_RTL = frozenset(("R", "AL"))


def clean_name(value: str) -> str:
    """A name on one line; never empty (an empty result is the placeholder)."""
    return _drawable(one_line(value)) or PLACEHOLDER


def clean_message(value: str | None) -> str:
    """The personal message with its line breaks; "" when there is none."""
    if value is None:
        return ""
    return _BLANK_LINES.sub("\n\n", _drawable(clean_paragraphs(value)))


def _drawable(value: str) -> str:
    value = unicodedata.normalize("NFC", value)
    value = _FLAG_PAIRS.sub("", _EMOJI_MODIFIERS.sub("", value))
    drawable = fonts.covered()
    kept: list[str] = []
    for char in value:
        category = unicodedata.category(char)
        if char in {"\n", " "}:
            kept.append(char)
        elif category in ("Cc", "Cf") and char not in _KEEP_FORMAT:
            continue
        elif category.startswith("Z"):
            kept.append(" ")  # no-break, ideographic and other spaces
        elif ord(char) in drawable or char in _KEEP_FORMAT:
            kept.append(char)
        else:
            parts = unicodedata.normalize("NFD", char)
            # A letter the fonts lack may be drawable as its letter and accent.
            kept.append(parts if all(ord(p) in drawable for p in parts) else PLACEHOLDER)
    text = _JOINED_PLACEHOLDERS.sub(PLACEHOLDER, "".join(kept))
    lines = (_SPACES.sub(" ", line).strip() for line in text.split("\n"))
    return "\n".join(lines).strip()


def formatted(value: str) -> str:
    """Text we formatted ourselves (an amount from Babel): a space the fonts lack, such as
    the narrow no-break space that French puts between thousands, becomes a no-break space."""
    drawable = fonts.covered()
    return "".join(
        "\u00a0" if unicodedata.category(c) == "Zs" and ord(c) not in drawable else c for c in value
    )


def is_right_to_left(value: str) -> bool:
    """Whether ``value`` has Hebrew, Arabic or other right-to-left letters (it needs shaping)."""
    return any(unicodedata.bidirectional(c) in _RTL for c in value)
