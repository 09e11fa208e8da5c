"""How many SMS segments a text costs: GSM-7 septets or UCS-2 code units, packed.

A text travels in GSM-7 when every character is in the GSM 03.38 default alphabet
(3GPP TS 23.038) or its extension table, otherwise in UCS-2 (UTF-16 on today's phones):

==========  =======================================  ==============  ====================
encoding    what one character costs                 one segment     each of several
==========  =======================================  ==============  ====================
GSM-7       1 septet; 2 for the extension table      160 septets     153 septets
            (``^ { } \\ [ ~ ] | €`` and form feed:
            an escape septet then the character)
UCS-2       1 UTF-16 code unit; 2 for a character    70 units        67 units
            outside the BMP (most emoji)
==========  =======================================  ==============  ====================

A multi-part text loses 7 septets (6 bytes) of each segment to the concatenation header,
hence 153 and 67. Phones and providers never cut a character in two: an escape pair or
a surrogate pair that would straddle a boundary starts the next segment, so a text of
153 * 2 septets can need three segments when an extension character sits on the
boundary. :func:`count_segments` packs characters that way.

One non-GSM character (an emoji, a ``ç`` (GSM has only ``Ç``), a curly quote, a
no-break space) switches the whole text to UCS-2 and cuts the room from 160 to 70:
:func:`to_gsm7` folds such characters to plain ones where that keeps the meaning.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from enum import StrEnum

GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)
"""The GSM 03.38 default alphabet, in code order (0x1B is the escape, not a character)."""
GSM7_EXTENSION = "\f^{}\\[~]|€"
"""The extension table: each is sent as the escape septet and one more."""

_SEPTETS: dict[str, int] = {c: 1 for c in GSM7_BASIC if c != "\x1b"} | {c: 2 for c in GSM7_EXTENSION}

GSM7_SINGLE, GSM7_MULTI = 160, 153
UCS2_SINGLE, UCS2_MULTI = 70, 67


class Encoding(StrEnum):
    GSM7 = "GSM-7"
    UCS2 = "UCS-2"


@dataclass(frozen=True, slots=True)
class SegmentCount:
    """What a text costs: its encoding, its size in that encoding's units, its segments."""

    encoding: Encoding
    units: int
    """Septets for GSM-7, UTF-16 code units for UCS-2."""
    segments: int
    """SMS parts the text travels as; an empty text still travels as one."""


def is_gsm7(text: str) -> bool:
    """True when every character of ``text`` is in the GSM-7 alphabet or its extension."""
    return all(c in _SEPTETS for c in text)


def count_segments(text: str) -> SegmentCount:
    """Encoding, units and segments of ``text`` (pure; no provider needed)."""
    if is_gsm7(text):
        sizes = [_SEPTETS[c] for c in text]
        return SegmentCount(Encoding.GSM7, sum(sizes), _pack(sizes, GSM7_SINGLE, GSM7_MULTI))
    sizes = [2 if ord(c) > 0xFFFF else 1 for c in text]
    return SegmentCount(Encoding.UCS2, sum(sizes), _pack(sizes, UCS2_SINGLE, UCS2_MULTI))


def _pack(sizes: list[int], single: int, multi: int) -> int:
    """Segments needed for characters of ``sizes`` units, none cut across two segments."""
    if sum(sizes) <= single:
        return 1
    segments, used = 1, 0
    for size in sizes:
        if used + size > multi:
            segments, used = segments + 1, 0
        used += size
    return segments


# Characters that have a plain GSM-7 form with the same meaning. Everything else outside
# GSM-7 is tried without its accents (NFD minus combining marks): ë -> e, ç -> c, ô -> o.
_FOLD: dict[str, str] = {
    "\u00a0": " ",  # no-break space (Babel puts it between amount and currency)
    "\u202f": " ",  # narrow no-break space (French thousands separator)
    "\u2009": " ",  # thin space
    "\u2007": " ",  # figure space
    "\t": " ",
    "\u2018": "'",
    "\u2019": "'",
    "\u201a": "'",
    "\u2032": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u201e": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u2010": "-",
    "\u2011": "-",
    "\u2012": "-",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2026": "...",
    "\uffe5": "¥",  # fullwidth yen (Babel's ja_JP) is the same currency sign
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u0131": "i",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u00f0": "d",
    "\u00de": "Th",
    "\u00fe": "th",
}


def to_gsm7(text: str) -> str:
    """``text`` with each character outside GSM-7 folded to a GSM-7 form, where one exists.

    A character with no such form (a kanji, an emoji) is kept: the caller decides what
    a text that stays UCS-2 is worth (see :func:`fold_if_gsm7`).
    """
    return "".join(c if c in _SEPTETS else _fold_char(c) for c in text)


def fold_if_gsm7(text: str) -> str:
    """``text`` folded to GSM-7 when all of it can be; otherwise unchanged.

    "Zoë" becomes "Zoe" (one GSM-7 segment holds 160 characters, not 70), while
    "山田 Zoë" stays as written: it is UCS-2 either way, so nothing is gained by changing it.
    """
    folded = to_gsm7(text)
    return folded if is_gsm7(folded) else text


def _fold_char(c: str) -> str:
    if c in _FOLD:
        return _FOLD[c]
    stripped = "".join(d for d in unicodedata.normalize("NFD", c) if not unicodedata.combining(d))
    return stripped if stripped and is_gsm7(stripped) else c
