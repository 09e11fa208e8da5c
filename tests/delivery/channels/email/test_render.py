"""Rendering: amounts per marketplace, languages, escaping, one-line subjects."""

from __future__ import annotations

import re
from datetime import datetime
from html import unescape
from types import SimpleNamespace

import pytest

from delivery.channels.email import ConfirmationLine, OrderConfirmationEmail, RenderedEmail, render_email
from delivery.channels.email.render import _environment
from giftq.settings import get_settings


def flat(text: str) -> str:
    """Text with its wrapping undone, to look for whole sentences."""
    return " ".join(text.split(" ")).replace("\n", " ")


def html_text(html: str) -> str:
    """What a reader of the HTML sees as text: tags gone, entities decoded."""
    return unescape(re.sub(r"<[^>]+>", "", html))


@pytest.mark.parametrize(
    ("marketplace", "amount", "expected"),
    [
        ("US", 2500, "$25.00"),
        ("CA", 2500, "$25.00"),
        ("UK", 2500, "£25.00"),
        ("DE", 2500, "25,00\xa0€"),
        ("FR", 2500, "25,00\xa0€"),
        # Japan reads English until there is a ja catalog, so English formats for Japan
        # (en_JP), not ja_JP's full-width yen sign in an English sentence. No minor unit.
        ("JP", 5000, "¥5,000"),
        ("US", 123456789, "$1,234,567.89"),
        ("DE", 123456789, "1.234.567,89\xa0€"),
    ],
)
def test_amount_is_formatted_for_the_marketplace(
    samples: SimpleNamespace, marketplace: str, amount: int, expected: str
) -> None:
    rendered = render_email(samples.gift(marketplace, amount))
    assert expected in rendered.subject
    assert expected in rendered.text
    assert expected in rendered.html


@pytest.mark.parametrize(
    ("marketplace", "hello", "redeem"),
    [
        ("US", "Hello Zoë Müller,", "How to redeem your gift card:"),
        ("JP", "Hello Zoë Müller,", "How to redeem your gift card:"),
        ("DE", "Hallo Zoë Müller,", "So lösen Sie Ihre Geschenkkarte ein:"),
        ("FR", "Bonjour Zoë Müller,", "Comment utiliser votre carte cadeau\xa0:"),
    ],
)
def test_language_follows_the_marketplace(
    samples: SimpleNamespace, marketplace: str, hello: str, redeem: str
) -> None:
    rendered = render_email(samples.gift(marketplace))
    assert rendered.text.startswith(hello)
    assert redeem in rendered.text
    assert redeem in rendered.html
    # The text's language, which is English for Japan until there is a ja catalog.
    assert rendered.language == {"US": "en", "JP": "en", "DE": "de", "FR": "fr"}[marketplace]
    assert f'<html lang="{rendered.language}">' in rendered.html


def test_gift_email_says_everything_the_recipient_needs(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.gift("UK"))
    for part in (flat(rendered.text), html_text(rendered.html)):
        assert "Eve Smith" in part
        assert "£25.00" in part
        assert samples.CODE in part
        assert "See you on Saturday." in part
        assert "https://giftq.example/uk/redeem" in part
        assert "like cash" in part
        assert "never ask you for your code by phone" in part
        assert "You are receiving this email because Eve Smith bought" in part
    assert '<a href="https://giftq.example/uk/redeem"' in rendered.html
    assert samples.CODE in rendered.text
    assert rendered.subject == "Eve Smith sent you a £25.00 gift card"
    assert not rendered.auto_submitted


def test_code_is_never_wrapped_or_put_in_a_url(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.gift())
    assert f"    {samples.CODE}\n" in rendered.text
    assert f"/{samples.CODE}" not in rendered.html
    assert "?code=" not in rendered.html


def test_html_escapes_what_people_typed(samples: SimpleNamespace) -> None:
    ctx = samples.gift(
        sender_name='Mallory <img src=x onerror="alert(1)">',
        message="<script>alert('gift')</script>\nR&D",
    )
    rendered = render_email(ctx)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(&#39;gift&#39;)&lt;/script&gt;" in rendered.html
    assert "<img" not in rendered.html
    assert "Mallory &lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in rendered.html
    assert "R&amp;D" in rendered.html
    # Plain text is not HTML: no entities there, and the subject is left as typed.
    assert "<script>alert('gift')</script>" in rendered.text
    assert rendered.subject.startswith('Mallory <img src=x onerror="alert(1)"> sent you')


def test_subject_is_one_line_whatever_the_names(samples: SimpleNamespace) -> None:
    ctx = samples.gift(sender_name="Eve\r\nBcc: victim@example.com\u2028\x00\tX")
    rendered = render_email(ctx)
    assert rendered.subject == "Eve Bcc: victim@example.com X sent you a $25.00 gift card"
    assert "\n" not in rendered.subject and "\r" not in rendered.subject


def test_personal_message_keeps_its_lines_and_loses_control_characters(
    samples: SimpleNamespace,
) -> None:
    rendered = render_email(samples.gift(message="Line one\r\nLine two\rLine three\x07"))
    assert "    Line one\n    Line two\n    Line three\n" in rendered.text
    assert "\x07" not in rendered.text + rendered.html
    assert "\r" not in rendered.text + rendered.html


def test_without_personal_message_there_is_no_empty_quote(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.gift(message=None))
    assert "Their message to you" not in rendered.text
    assert "<blockquote" not in rendered.html


def test_text_lines_are_wrapped(samples: SimpleNamespace) -> None:
    for ctx in samples.every_kind("DE"):
        for line in render_email(ctx).text.splitlines():
            assert len(line) <= 72 or " " not in line.strip(), line


def test_receipt_lists_every_card_and_totals_per_currency() -> None:
    ctx = OrderConfirmationEmail(
        "Pat Buyer",
        "pat@example.com",
        "SHOP-7",
        "DE",
        (
            ConfirmationLine("Anna", "email", 2500, "DE", "••••-H2PW"),
            ConfirmationLine("Bruno", "printable", 1000, "FR"),
            ConfirmationLine(
                "Chika", "physical", 5000, "JP", None, datetime(2027, 2, 14, 9, 0), "Asia/Tokyo"
            ),
        ),
    )
    rendered = render_email(ctx)
    assert rendered.subject == "Ihr Giftq-Kaufbeleg für die Bestellung SHOP-7"
    text = rendered.text
    assert "Sie haben 3 Geschenkkarten gekauft:" in text
    assert "- Geschenkkarte über 25,00\xa0€ für Anna" in text
    assert "Einlösecode: ••••-H2PW" in text
    assert "Zustellung: Karte zum Ausdrucken, so bald wie möglich" in text
    assert "Zustellung: Karte per Post, 14. Februar 2027" in text
    assert "09:00 (Asia/Tokyo)" in text
    # EUR lines of two marketplaces add up; yen are their own total.
    assert "Gesamtbetrag in EUR: 35,00\xa0€" in text
    assert "Gesamtbetrag in JPY: 5.000\xa0¥" in text
    assert "Gesamtbetrag in JPY: 5.000\xa0¥" in rendered.html
    assert "Bestellnummer: SHOP-7" in text
    assert rendered.auto_submitted


def test_receipt_with_one_currency_has_one_plain_total(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.confirmation("US"))
    assert "Total: $75.00" in rendered.text
    assert "Total in" not in rendered.text
    assert "You bought 2 gift cards:" in rendered.text
    assert "Order date: February 1, 2027" in rendered.text
    # The scheduled time, written in the reader's terms, with the zone it is local to.
    assert "Delivery: Text message, February 14, 2027" in rendered.text
    assert re.search(r"9:00\W+AM \(Europe/Berlin\)", rendered.text)


def test_receipt_singular(samples: SimpleNamespace) -> None:
    one = samples.confirmation("FR")
    ctx = OrderConfirmationEmail(one.purchaser_name, one.purchaser_email, one.order_ref, "FR", one.lines[:1])
    assert "Vous avez acheté 1 carte cadeau\xa0:" in render_email(ctx).text


def test_delivery_failed_says_what_happened_and_what_to_do(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.failed("US"))
    assert rendered.subject == "We could not deliver your gift for Robin Receiver"
    text = flat(rendered.text)
    assert "What happened: The receiving server refused robin@example.com for good" in text
    assert "order reference (SHOP-1001)" in text
    assert "send the gift again" in text
    assert "refused robin@example.com for good" in rendered.html
    assert rendered.auto_submitted


def test_gift_delivered(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.delivered("FR"))
    assert rendered.subject == "Votre cadeau pour Robin Receiver a été envoyé"
    assert "par e-mail à robin@example.com" in flat(rendered.text)


def test_html_is_a_complete_document_in_the_right_language(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.gift("DE"))
    assert rendered.html.startswith('<!DOCTYPE html>\n<html lang="de">')
    assert f"<title>{rendered.subject}</title>" in rendered.html
    assert rendered.html.rstrip().endswith("</html>")


def test_rendered_email_repr_hides_bodies(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.gift())
    assert isinstance(rendered, RenderedEmail)
    assert samples.CODE not in repr(rendered)


def test_environment_is_built_once_per_process_and_language(samples: SimpleNamespace) -> None:
    render_email(samples.gift())
    english = _environment(get_settings().templates_dir, "en")
    render_email(samples.gift("DE"))
    german = _environment(get_settings().templates_dir, "de")
    render_email(samples.gift("US"))
    render_email(samples.gift("DE"))
    assert _environment(get_settings().templates_dir, "en") is english
    assert _environment(get_settings().templates_dir, "de") is german is not english
    assert english.auto_reload is False


def test_a_long_word_in_a_message_wraps_in_the_text_part(samples: SimpleNamespace) -> None:
    word = "Herzlichen" * 50
    link = "https://example.com/" + "a" * 80
    rendered = render_email(samples.gift("DE", message=f"Alles Gute!\n{word}\nSee {link} there"))
    lines = rendered.text.splitlines()
    assert all(len(line) <= 72 for line in lines if link not in line), max(lines, key=len)
    # The word's pieces, put back together, are the word: nothing lost, nothing added.
    pieces = [line.strip() for line in lines if line.strip() and set(line.strip()) <= set(word)]
    assert len(pieces) > 1
    assert "".join(pieces) == word
    # A link stays whole on its line (a broken one stops working), and so does the code.
    assert any(link in line for line in lines)
    assert f"    {samples.CODE}\n" in rendered.text
