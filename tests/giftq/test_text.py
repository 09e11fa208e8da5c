"""giftq.text: the one definition of what people's text must not hold, and how it is cleaned."""

from __future__ import annotations

import pytest

from giftq.text import (
    BIDI_CONTROLS,
    BIDI_MARKS,
    clean_paragraphs,
    describe,
    find_control,
    one_line,
    refuse_controls,
)

# Every bidirectional formatting character the Unicode standard defines (UAX #9, 2.1-2.6).
EVERY_BIDI = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)]
C0_C1 = [chr(c) for c in (*range(0x00, 0x20), *range(0x7F, 0xA0))]


def test_the_bidi_sets_are_complete() -> None:
    assert sorted(BIDI_CONTROLS + BIDI_MARKS) == sorted(EVERY_BIDI)


@pytest.mark.parametrize("char", [*C0_C1, "\u2028", "\u2029", *EVERY_BIDI])
def test_one_line_fields_refuse_every_control(char: str) -> None:
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
        refuse_controls(f"Eve{char}Smith")
    assert find_control(f"Eve{char}Smith") == char


@pytest.mark.parametrize(
    "name", ["Zoë Müller", "山田太郎", "محمد علي", "שרה כהן", "O'Brien-Smith", "Anne\u00a0Marie"]
)
def test_real_names_pass(name: str) -> None:
    assert refuse_controls(name) == name
    assert one_line(name) == name


def test_the_error_names_the_character() -> None:
    with pytest.raises(ValueError) as refused:
        refuse_controls("Eve\u202egnp.exe")
    assert str(refused.value) == (
        "must not contain control characters, line breaks or bidirectional formatting "
        "characters: found U+202E RIGHT-TO-LEFT OVERRIDE"
    )
    assert describe("\n") == "U+000A LINE FEED"
    assert describe("\x85") == "U+0085"


@pytest.mark.parametrize("text", ["Line one\nLine two", "a\r\nb", "a\rb", "a\u2028b\u2029c", "tab\there"])
def test_paragraphs_may_hold_line_breaks_and_tabs(text: str) -> None:
    assert refuse_controls(text, paragraphs=True) == text


def test_paragraphs_may_hold_bidi_marks_but_not_overrides() -> None:
    # RLM after an exclamation mark in Hebrew places it where its writer meant it.
    hebrew = "יום הולדת שמח!\u200f\nשרה"
    assert refuse_controls(hebrew, paragraphs=True) == hebrew
    for char in BIDI_CONTROLS:
        with pytest.raises(ValueError, match="bidirectional embeddings, overrides or isolates"):
            refuse_controls(f"Happy {char}yadhtrib", paragraphs=True)
    for char in ["\x00", "\x07", "\x1b", "\x0b", "\x0c", "\x7f", "\x9b"]:
        with pytest.raises(ValueError):
            refuse_controls(f"a{char}b", paragraphs=True)


def test_one_line_strips_what_arrives_anyway() -> None:
    assert one_line("Eve\r\nBcc: victim@example.com\u2028\x00\tX") == "Eve Bcc: victim@example.com X"
    # Invisible bidi characters go without leaving a gap; the text reads as it is stored.
    assert one_line("Eve \u202egnp.exe\u202c") == "Eve gnp.exe"
    assert one_line("\u2067Ali\u2069\u200f") == "Ali"
    assert one_line("  a   b  ") == "a b"
    assert one_line("\u202e") == ""
    for char in [*C0_C1, "\u2028", "\u2029", *EVERY_BIDI]:
        assert find_control(one_line(f"x{char}y")) is None


def test_clean_paragraphs_keeps_the_lines() -> None:
    assert clean_paragraphs("Line one\r\nLine two\rLine three\x07") == "Line one\nLine two\nLine three"
    assert clean_paragraphs("a\u2028b\u2029c") == "a\nb\n\nc"
    assert clean_paragraphs("\n\n  Hi  \t there  \n\n") == "Hi    there"
    assert clean_paragraphs("Hi \u202eereht\u202c!\u200f") == "Hi ereht!\u200f"
    for char in [*C0_C1, *BIDI_CONTROLS]:
        assert find_control(clean_paragraphs(f"x{char}y"), paragraphs=True) is None
