"""Names and messages are drawn as literal, cleaned text: nothing in them is interpreted,
nothing invisible survives, nothing undrawable is silently lost."""

from __future__ import annotations

import pytest

from delivery.channels.printable.text import (
    PLACEHOLDER,
    clean_message,
    clean_name,
    is_right_to_left,
)


@pytest.mark.parametrize("markup", ["<b>Robin</b>", "**Robin**", "Tom &amp; Jerry", "<script>x</script>"])
def test_markup_is_kept_literally(markup: str) -> None:
    assert clean_name(markup) == markup
    assert clean_message(markup) == markup


def test_control_characters_go() -> None:
    # giftq.text's rules: in a name a control character becomes a space, in a message it goes.
    assert clean_name("Ro\x00bin\x1b[31m\x7f\x9b") == "Ro bin [31m"
    assert clean_message("a\x07b\x08c") == "abc"


def test_bidi_overrides_and_invisible_characters_go() -> None:
    # U+202E would draw "nibor" for "robin"; isolates, zero-width space, BOM and marks go.
    assert clean_name("\u202erobin\u202c \u2066x\u2069\u200b\ufeff") == "robin x"
    assert clean_message("\u202ered\u202c \u200fok\u200e") == "red ok"


def test_joiners_needed_by_scripts_stay() -> None:
    persian = "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"  # ZWNJ inside a word
    assert clean_name(persian) == persian


def test_line_breaks_are_spaces_in_names_and_newlines_in_messages() -> None:
    assert clean_name("Robin\r\nRe\u2028ceiver\tX") == "Robin Re ceiver X"
    assert clean_message("one\r\ntwo\rthree\u2028four\u2029five") == "one\ntwo\nthree\nfour\n\nfive"


def test_blank_lines_and_spaces_collapse() -> None:
    assert clean_message("a" + "\n" * 100 + "b   c \n\n\n d") == "a\n\nb c\n\nd"
    assert clean_name("  Robin \u3000 Receiver\u00a0") == "Robin Receiver"


def test_emoji_become_one_visible_placeholder_each() -> None:
    assert clean_message("Party \U0001f389") == f"Party {PLACEHOLDER}"
    # A family (three emoji joined), a skin tone, a variation selector, a flag: one each.
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert clean_message(f"{family} \U0001f44d\U0001f3fd \u2665\ufe0f \U0001f1e9\U0001f1ea") == (
        f"{PLACEHOLDER} {PLACEHOLDER} \u2665 {PLACEHOLDER}"
    )


def test_unassigned_and_private_use_characters_become_placeholders() -> None:
    assert clean_name("a\ue000b\U0010fffd") == f"a{PLACEHOLDER}b{PLACEHOLDER}"


def test_scripts_the_fonts_draw_are_kept() -> None:
    text = "Jürgen Œuvre Ελενα Наталья Nguyễn 山田 髙橋 﨑 ♪ שלום مرحبا"
    assert clean_name(text) == text


def test_a_letter_without_its_own_glyph_is_drawn_as_letter_and_accent() -> None:
    # Greek with tonos has no precomposed glyph in the fonts, its parts have.
    assert clean_name("Ελένη") == "Ελε\u0301νη"  # noqa: RUF001


def test_a_name_of_nothing_drawable_is_not_empty() -> None:
    assert clean_name("\u200b\x00") == PLACEHOLDER
    assert clean_message(None) == ""


def test_long_words_are_left_whole_for_the_layout_to_wrap() -> None:
    assert clean_message("x" * 500) == "x" * 500


def test_right_to_left_detection() -> None:
    assert is_right_to_left("Robin שלום")
    assert is_right_to_left("مرحبا")
    assert not is_right_to_left("Robin 山田 123")


def test_spaces_the_fonts_lack_become_no_break_spaces() -> None:
    from delivery.channels.printable.text import formatted

    assert formatted("1\u202f000,00\u00a0€") == "1\u00a0000,00\u00a0€"
