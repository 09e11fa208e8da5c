"""People's text made safe to show: the one definition of control characters in giftq.

Three kinds of character never belong in a name, a reference or anything else that may
reach a mail header, a subject or a one-line field:

- **control characters**: C0 (U+0000-001F, with tab and the line breaks), DEL and C1
  (U+007F-009F, with NEL U+0085);
- **line separators**: U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR;
- **bidirectional controls**: the embeddings and overrides U+202A-202E, the isolates
  U+2066-2069, and the marks U+200E LRM, U+200F RLM and U+061C ALM. They are invisible,
  and an override in a purchaser's name turns the rest of a subject line around.

Free text (a personal message) may hold line breaks (``\\n``, ``\\r\\n``, ``\\r``, U+2028,
U+2029), tabs, and the three bidi *marks*, which people writing Arabic or Hebrew next to
Latin text type to place punctuation: they change no order beyond their own neighbours.
Embeddings, overrides and isolates are refused there as well: typed text has no use for
them, and they are how text is made to read differently from what it holds.

At intake :func:`refuse_controls` turns such a character into a clear error naming it.
On the way out (headers, templates, log details) :func:`one_line` and
:func:`clean_paragraphs` strip what may still arrive from older rows or other callers.
"""

from __future__ import annotations

import re
import unicodedata

BIDI_CONTROLS = "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
"""Embeddings, overrides (U+202A-202E) and isolates (U+2066-2069)."""
BIDI_MARKS = "\u200e\u200f\u061c"
"""LEFT-TO-RIGHT MARK, RIGHT-TO-LEFT MARK, ARABIC LETTER MARK."""
LINE_SEPARATORS = "\u2028\u2029"

_CONTROL_RANGES = r"\x00-\x1f\x7f-\x9f"
# Everything a one-line value must not hold.
_NOT_ONE_LINE = re.compile(f"[{_CONTROL_RANGES}{LINE_SEPARATORS}{BIDI_CONTROLS}{BIDI_MARKS}]")
# What free text must not hold: tab, line breaks and bidi marks are fine there.
_NOT_IN_PARAGRAPHS = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f-\\x84\\x86-\\x9f{BIDI_CONTROLS}]")
# For stripping: invisible format characters go, without leaving a space behind.
_INVISIBLE = re.compile(f"[{BIDI_CONTROLS}{BIDI_MARKS}]")
_BREAKS_AND_CONTROLS = re.compile(f"[{_CONTROL_RANGES}{LINE_SEPARATORS}]")
_LINE_BREAK = re.compile("\r\n|[\r\n\x85\u2028]")
_SPACES = re.compile(r" {2,}")


def describe(char: str) -> str:
    """``U+202E RIGHT-TO-LEFT OVERRIDE``: a character as an error message names it."""
    name = unicodedata.name(char, "")
    if not name and char in "\t\n\r":
        name = {"\t": "TAB", "\n": "LINE FEED", "\r": "CARRIAGE RETURN"}[char]
    return f"U+{ord(char):04X} {name}".rstrip()


def find_control(value: str, *, paragraphs: bool = False) -> str | None:
    """The first character ``value`` must not hold, or None (see the module docstring)."""
    found = (_NOT_IN_PARAGRAPHS if paragraphs else _NOT_ONE_LINE).search(value)
    return found.group() if found else None


def refuse_controls(value: str, *, paragraphs: bool = False) -> str:
    """``value`` unchanged, or ``ValueError`` naming the first character it must not hold.

    ``paragraphs=True`` is for free text: line breaks, tabs and bidi marks are allowed.
    """
    char = find_control(value, paragraphs=paragraphs)
    if char is None:
        return value
    if paragraphs:
        what = "control characters or bidirectional embeddings, overrides or isolates"
    else:
        what = "control characters, line breaks or bidirectional formatting characters"
    raise ValueError(f"must not contain {what}: found {describe(char)}")


def one_line(value: str) -> str:
    """``value`` on one line: bidi controls and marks removed, every other control
    character or line break turned into a space, runs of spaces made one, ends trimmed."""
    value = _BREAKS_AND_CONTROLS.sub(" ", _INVISIBLE.sub("", value))
    return _SPACES.sub(" ", value).strip()


def clean_paragraphs(value: str) -> str:
    """Free text with every line break made ``\\n`` (U+2029 ends a paragraph: a blank
    line), tabs made spaces, trailing spaces and outer blank lines gone, and every other
    control character and bidi embedding, override or isolate removed. Marks stay."""
    value = _LINE_BREAK.sub("\n", value.replace("\u2029", "\n\n")).replace("\t", " ")
    value = _NOT_IN_PARAGRAPHS.sub("", value)
    return "\n".join(line.rstrip() for line in value.strip("\n").split("\n")).strip()
