"""Names and messages that try to break the page: markup, right-to-left scripts, emoji,
control characters, words longer than a line, more lines than the box. Each renders, its
text is drawn literally (or as a visible placeholder), and the layout holds: nothing off
the page, nothing over the code or the QR code, which still decodes."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.channels.printable.render import render_with_boxes
from delivery.channels.printable.text import PLACEHOLDER

HEBREW = "שלום עולם"
ARABIC = "مرحبا بالعالم"
FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # three emoji joined into one


def render_checked(pdf_tools: Any, card: Any) -> tuple[str, Any]:
    rendered = render_with_boxes(card)
    pdf_tools.check_qr(rendered.pdf, card)
    pdf_tools.check_layout(rendered.pdf, rendered.boxes, card)
    return pdf_tools.words(pdf_tools.pdf_text(rendered.pdf)), rendered


@pytest.mark.parametrize("marketplace", ["US", "DE"])
def test_markup_prints_as_typed(pdf_tools: Any, new_card: Any, marketplace: str) -> None:
    card = new_card(
        marketplace=marketplace,
        recipient_name="<b>Robin</b> **Receiver**",
        sender_name="Tom &amp; Jerry",
        message="<script>alert(1)</script> **bold** _it_ &lt;3 [link](http://x)",
    )
    text, _ = render_checked(pdf_tools, card)
    assert "<b>Robin</b> **Receiver**" in text
    assert "Tom &amp; Jerry" in text
    assert "<script>alert(1)</script> **bold** _it_ &lt;3 [link](http://x)" in text


def test_right_to_left_names_and_messages(pdf_tools: Any, new_card: Any) -> None:
    card = new_card(
        recipient_name=HEBREW,
        sender_name=f"{ARABIC} Pat",
        message=f"{HEBREW}! Happy birthday, {ARABIC}.\n{ARABIC} {HEBREW} 2025",
    )
    text, _ = render_checked(pdf_tools, card)
    # Extraction order of right-to-left runs differs between readers; the letters are there.
    for letter in set(HEBREW + ARABIC) - {" "}:
        assert letter in text
    assert "Happy birthday" in text


def test_emoji_become_visible_placeholders(pdf_tools: Any, new_card: Any) -> None:
    card = new_card(
        recipient_name="Robin \U0001f389",
        message="Happy birthday \U0001f382\U0001f973 " + FAMILY + " \U0001f1e9\U0001f1ea!",
    )
    text, _ = render_checked(pdf_tools, card)
    assert f"Robin {PLACEHOLDER}" in text
    assert f"Happy birthday {PLACEHOLDER}{PLACEHOLDER} {PLACEHOLDER} {PLACEHOLDER}!" in text


def test_control_characters_are_not_drawn(pdf_tools: Any, new_card: Any) -> None:
    card = new_card(
        recipient_name="Ro\x00bin\x1b[2J \u202eRecei\u202cver",
        message="line\x07one\x0bline two\x0c\u2028three",
    )
    text, _ = render_checked(pdf_tools, card)
    assert "Ro bin [2J Receiver" in text
    assert "lineoneline two three" in text
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 or c in "\u202e\u202c" for c in text)


@pytest.mark.parametrize("marketplace", ["US", "JP"])
def test_words_longer_than_a_line_wrap_inside_their_box(
    pdf_tools: Any, new_card: Any, marketplace: str
) -> None:
    card = new_card(
        marketplace=marketplace,
        recipient_name="W" * 100,
        sender_name="M" * 60 + " " + "x" * 39,
        message="x" * 500,
    )
    text, rendered = render_checked(pdf_tools, card)
    assert text.replace(" ", "").count("x" * 100) >= 4  # the message, broken over lines
    _, chars = pdf_tools.char_boxes(rendered.pdf)
    message = rendered.boxes.parts["message"]
    # Every "x" from the top of the message box to well below its bottom (there is other
    # text with an "x" further down the page).
    xs = [c for c in chars if c.text == "x" and message.y < c.top < message.bottom + 10]
    assert len(xs) == 500
    assert all(message.x <= c.left and c.right <= message.right and c.bottom <= message.bottom for c in xs)
    # A name of 100 wide letters does not fit two lines of its column: it ends in an ellipsis.
    assert "\u2026" in text


def test_more_lines_than_the_box_holds_are_run_together(pdf_tools: Any, new_card: Any) -> None:
    card = new_card(marketplace="CA", message="line\n" * 98 + "the end")
    text, _ = render_checked(pdf_tools, card)
    assert "line " * 98 + "the end" in text


def test_more_text_than_the_box_holds_is_cut_with_an_ellipsis(pdf_tools: Any, new_card: Any) -> None:
    card = new_card(marketplace="CA", message="W" * 500)
    text, rendered = render_checked(pdf_tools, card)
    assert "W\u2026" in text.replace(" ", "")
    _, chars = pdf_tools.char_boxes(rendered.pdf)
    message = rendered.boxes.parts["message"]
    drawn = [c for c in chars if c.text == "W" and message.y < c.top < message.bottom + 10]
    assert 100 < len(drawn) < 500
    assert all(message.x <= c.left and c.right <= message.right and c.bottom <= message.bottom for c in drawn)


def test_a_long_japanese_message_shrinks_to_fit_whole(pdf_tools: Any, new_card: Any) -> None:
    sentence = "いつも本当にありがとう。これからもよろしくお願いします。"
    message = (sentence * 20)[:500]
    card = new_card(marketplace="JP", amount=3000, message=message)
    text, _ = render_checked(pdf_tools, card)
    assert message in text.replace(" ", "")


def test_everything_hostile_at_once(pdf_tools: Any, new_card: Any) -> None:
    card = new_card(
        marketplace="UK",
        amount=999999,
        design="thank_you",
        recipient_name="<b>Robin</b> **x** &amp; \u202eevil\u202c " + "W" * 60,
        sender_name=f"{HEBREW} {ARABIC} \U0001f600\U0001f468\u200d\U0001f469\u200d\U0001f467",
        message="A" * 300
        + " \x00\x1b[31m red <script>alert(1)</script> \U0001f389\U0001f382 "
        + "\n" * 100
        + "end",
    )
    text, _ = render_checked(pdf_tools, card)
    assert "<script>alert(1)</script>" in text
    assert "end" in text
