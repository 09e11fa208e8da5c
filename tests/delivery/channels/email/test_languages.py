"""Each reader in their own language: every kind of email, for readers of en, de and fr.

The card is always of another country than the reader's language (an English reader of a
German card, a German reader of a US card, a French reader of a Japanese card): the text
is in the reader's language, money and dates are written their way, and the currency stays
the card's. No sentence of another language may show, failure reasons included.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import datetime
from html import unescape
from types import SimpleNamespace

import pytest

from delivery.channels.email import RenderedEmail, render_email
from delivery.channels.email.i18n import TRANSLATED_LANGUAGES, load_catalog
from delivery.reasons import CancelReason, FailureReason

# reader locale -> (the card's marketplace, 25.00 of its currency as this reader writes it,
# 1 February 2027 as this reader writes it)
READERS = {
    "en": ("DE", "€25.00", "February 1, 2027"),
    "de": ("US", "25,00\xa0$", "1. Februar 2027"),
    "fr": ("JP", "2\u202f500\xa0JPY", "1 février 2027"),
}
# Phrases each kind must show in each language (from the catalogs, checked by hand).
KNOWN = {
    "gift": {"en": "Your claim code:", "de": "Ihr Einlösecode:", "fr": "Votre code cadeau\xa0:"},
    "order_confirmation": {
        "en": "This email is your receipt: please keep it.",
        "de": "Diese E-Mail ist Ihr Kaufbeleg: Bitte bewahren Sie sie auf.",
        "fr": "Cet e-mail est votre reçu\xa0: veuillez le conserver.",
    },
    "gift_delivered": {
        "en": "Good news: we have sent the",
        "de": "Gute Nachricht: Wir haben die Geschenkkarte",
        "fr": "Bonne nouvelle\xa0: nous avons envoyé la carte cadeau",
    },
    "delivery_failed": {
        "en": "What you can do:",
        "de": "Was Sie tun können:",
        "fr": "Ce que vous pouvez faire\xa0:",
    },
    "order_cancelled": {
        "en": "These gift cards will not be sent:",
        "de": "Diese Geschenkkarten werden nicht versendet:",
        "fr": "Ces cartes cadeaux ne seront pas envoyées\xa0:",
    },
}
# Why a held order was cancelled, in each language: a phrase of its sentence.
CANCEL_PHRASES = {
    CancelReason.PAYMENT_DECLINED: {
        "en": "Your payment for it did not go through.",
        "de": "Ihre Zahlung dafür ist nicht durchgegangen.",
        "fr": "Votre paiement n\u2019a pas abouti.",
    },
    CancelReason.PAYMENT_OVERDUE: {
        "en": "within 24 hours of the order",
        "de": "innerhalb von 24 Stunden nach der Bestellung",
        "fr": "dans les 24 heures suivant la commande",
    },
    CancelReason.REVIEW_REJECTED: {
        "en": "We could not approve it in our security check.",
        "de": "Wir konnten sie in unserer Sicherheitsprüfung nicht freigeben.",
        "fr": "lors de notre contrôle de sécurité",
    },
    CancelReason.CANCELLED: {
        "en": "Our support team cancelled it.",
        "de": "Unser Kundenservice hat sie storniert.",
        "fr": "Notre service client l\u2019a annulée.",
    },
}
# Every failure reason, in each language: a phrase of its sentence.
REASON_PHRASES = {
    FailureReason.UNREACHABLE: {
        "en": "We tried to send the gift to robin@example.com 4 times",
        "de": "Wir haben 4 Mal versucht, das Geschenk an robin@example.com zu senden",
        "fr": "Nous avons essayé 4 fois d\u2019envoyer le cadeau à robin@example.com",
    },
    FailureReason.REFUSED: {
        "en": "The receiving server refused robin@example.com for good",
        "de": "Der empfangende Server hat robin@example.com endgültig abgelehnt",
        "fr": "Le serveur destinataire a définitivement refusé robin@example.com",
    },
    FailureReason.SUPPRESSED: {
        "en": "Messages to robin@example.com were refused for good before",
        "de": "Nachrichten an robin@example.com wurden schon früher endgültig abgelehnt",
        "fr": "Des messages à robin@example.com ont déjà été définitivement refusés",
    },
    FailureReason.UNDELIVERABLE: {
        "en": "We cannot send anything to robin@example.com",
        "de": "Wir können nichts an robin@example.com senden",
        "fr": "Nous ne pouvons rien envoyer à robin@example.com",
    },
    FailureReason.UNRENDERABLE: {
        "en": "because of a problem on our side",
        "de": "wegen eines Problems auf unserer Seite",
        "fr": "à cause d\u2019un problème de notre côté",
    },
    FailureReason.INTERRUPTED: {
        "en": "Sending the gift to robin@example.com was interrupted too many times",
        "de": "Der Versand des Geschenks an robin@example.com wurde zu oft unterbrochen",
        "fr": "L\u2019envoi du cadeau à robin@example.com a été interrompu trop de fois",
    },
    FailureReason.OPTED_OUT: {
        "en": "asked not to receive our messages at robin@example.com",
        "de": "unter robin@example.com keine Nachrichten von uns zu erhalten",
        "fr": "à ne plus recevoir nos messages à robin@example.com",
    },
    None: {
        "en": "We could not deliver the gift to robin@example.com.",
        "de": "Wir konnten das Geschenk nicht an robin@example.com zustellen.",
        "fr": "Nous n\u2019avons pas pu remettre le cadeau à robin@example.com.",
    },
}
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]")


def normalized(text: str) -> str:
    """Wrapping, indentation and kinds of space undone: sentences compare as written."""
    return re.sub(r"\s+", " ", text)


def seen(rendered: RenderedEmail) -> str:
    """All a reader sees: the subject, the plain text, and the HTML's text."""
    html_text = unescape(re.sub(r"<[^>]+>", " ", rendered.html))
    return normalized(" ".join([rendered.subject, rendered.text, html_text]))


def fragments(language: str) -> set[str]:
    """The literal pieces of every sentence in ``language`` (between placeholders) that are
    long enough to belong to that language alone."""
    found: set[str] = set()
    for message in load_catalog(TRANSLATED_LANGUAGES[0]):
        if not message.id:
            continue
        if language == "en":
            texts = [message.id] if isinstance(message.id, str) else list(message.id)
        else:
            entry = load_catalog(language)[message.id if isinstance(message.id, str) else message.id[0]]
            texts = [entry.string] if isinstance(entry.string, str) else list(entry.string)
        for text in texts:
            for between in _PLACEHOLDER.split(normalized(text)):
                piece = between.strip(" .,:;()")
                if len(piece) >= 12 and " " in piece:
                    found.add(piece)
    return found


FRAGMENTS = {language: fragments(language) for language in ("en", "de", "fr")}


def test_the_fragments_are_many_and_their_own() -> None:
    for language, pieces in FRAGMENTS.items():
        assert len(pieces) > 40, language
        others = set().union(*(FRAGMENTS[o] for o in FRAGMENTS if o != language))
        assert not pieces & others


def every_kind(samples: SimpleNamespace, marketplace: str, locale: str) -> list[object]:
    return [
        samples.gift(marketplace, locale=locale),
        samples.confirmation(marketplace, locale),
        samples.delivered(marketplace, locale),
        samples.failed(marketplace, locale, "unreachable", attempts=4),
        samples.cancelled(marketplace, locale),
    ]


@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_kind_is_written_in_its_readers_language(samples: SimpleNamespace, reader: str) -> None:
    marketplace, _amount, _date = READERS[reader]
    for ctx in every_kind(samples, marketplace, reader):
        rendered = render_email(ctx)  # type: ignore[arg-type]
        assert rendered.language == reader
        assert f'<html lang="{reader}">' in rendered.html
        text = seen(rendered)
        assert normalized(KNOWN[rendered.kind][reader]) in text, (rendered.kind, reader)
        for other, pieces in FRAGMENTS.items():
            if other == reader:
                continue
            leaked = sorted(p for p in pieces if p in text)
            assert not leaked, f"{rendered.kind} for a {reader} reader shows {other}: {leaked}"


@pytest.mark.parametrize("reader", sorted(READERS))
def test_money_and_dates_follow_the_reader_and_the_currency_the_card(
    samples: SimpleNamespace, reader: str
) -> None:
    marketplace, amount, date = READERS[reader]
    for ctx in every_kind(samples, marketplace, reader):
        rendered = render_email(ctx)  # type: ignore[arg-type]
        assert amount in rendered.text and amount in rendered.html, (rendered.kind, amount)
    receipt = render_email(samples.confirmation(marketplace, reader))
    assert date in receipt.text
    assert date in receipt.html


def test_a_german_reader_of_a_us_card_sees_dollars_written_the_german_way(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.gift("US", locale="de_DE"))
    assert rendered.subject == "Eve Smith hat Ihnen eine Geschenkkarte über 25,00\xa0$ geschickt"
    # The redeem link is the card's marketplace's, whatever the reader's language.
    assert "https://giftq.example/us/redeem" in rendered.text


def test_an_english_receipt_of_a_japanese_card_has_an_english_date(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.confirmation("JP", "en"))
    assert "Order date: February 1, 2027" in rendered.text
    assert "年" not in rendered.text + rendered.html
    assert "Delivery: Text message, February 14, 2027" in rendered.text
    assert "Total: ¥7,500" in rendered.text


def test_without_a_locale_the_marketplace_decides(samples: SimpleNamespace) -> None:
    assert render_email(samples.delivered("DE")).language == "de"
    assert render_email(samples.delivered("FR")).language == "fr"
    assert render_email(samples.delivered("US")).language == "en"


def test_a_reader_of_an_untranslated_language_reads_english_with_english_formats(
    samples: SimpleNamespace,
) -> None:
    rendered = render_email(samples.confirmation("JP", "ja_JP"))
    assert rendered.language == "en"
    assert "Order date: February 1, 2027" in rendered.text
    assert "Total: ¥7,500" in rendered.text  # not the full-width ￥ of Japanese text


@pytest.mark.parametrize("reason", list(REASON_PHRASES), ids=str)
@pytest.mark.parametrize("reader", sorted(READERS))
def test_every_failure_reason_is_a_sentence_in_the_readers_language(
    samples: SimpleNamespace, reason: FailureReason | None, reader: str
) -> None:
    ctx = samples.failed(READERS[reader][0], reader, reason, attempts=4)
    rendered = render_email(ctx)
    phrase = normalized(REASON_PHRASES[reason][reader])
    assert phrase in normalized(rendered.text)
    assert phrase in normalized(unescape(re.sub(r"<[^>]+>", "", rendered.html)))
    text = seen(rendered)
    for other, pieces in FRAGMENTS.items():
        if other != reader:
            assert not [p for p in pieces if p in text]


def test_one_attempt_is_singular(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.failed("US", "en", "unreachable", attempts=1))
    assert "to robin@example.com 1 time, but" in normalized(rendered.text)


def test_a_stored_key_is_read_as_a_reason_and_prose_is_not(samples: SimpleNamespace) -> None:
    # A row stores the key as a plain string.
    assert samples.failed(reason=None, attempts=0).reason is None
    ctx = dataclasses.replace(samples.failed("US", "de", reason=None), reason="suppressed")
    assert ctx.reason is FailureReason.SUPPRESSED
    with pytest.raises(ValueError):
        samples.failed("US", reason="The server said no.")


def test_scheduled_time_is_written_for_the_reader(samples: SimpleNamespace) -> None:
    german = render_email(samples.confirmation("US", "de")).text
    french = render_email(samples.confirmation("US", "fr")).text
    english = render_email(samples.confirmation("US", "en")).text
    assert "14. Februar 2027" in german and "09:00 (Europe/Berlin)" in german
    assert "14 février 2027" in french and "09:00 (Europe/Berlin)" in french
    assert "February 14, 2027" in english and "(Europe/Berlin)" in english
    assert datetime(2027, 2, 14, 9).isoformat() not in german + french + english


@pytest.mark.parametrize("reader", sorted(READERS))
@pytest.mark.parametrize("reason", list(CancelReason))
def test_every_cancel_reason_is_a_sentence_in_the_readers_language(
    samples: SimpleNamespace, reader: str, reason: CancelReason
) -> None:
    marketplace, amount, _date = READERS[reader]
    text = seen(render_email(samples.cancelled(marketplace, reader, reason.value)))
    assert normalized(CANCEL_PHRASES[reason][reader]) in text
    assert normalized(amount) in text
