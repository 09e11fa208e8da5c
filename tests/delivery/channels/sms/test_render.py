"""Gift texts: every marketplace and language in two segments with the card's validity and
terms, names shortened, never the code."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from delivery.channels.sms import GiftText, TooManySegments, count_segments, render_text
from delivery.channels.sms.render import MIN_NAME_CHARS, languages, shorten
from delivery.channels.sms.segments import Encoding, is_gsm7
from giftq.settings import get_settings, reset_settings
from ledger.codes import text as code_text
from ledger.errors import CodeMistyped, UnknownMarketplace
from ledger.marketplaces import MARKETPLACES

CODE = code_text.display(code_text.generate())

# Realistic names of exactly 20 characters, accented ones included.
NAMES_20 = [
    "Christopher Anderson",
    "Zoë Müller-Schneider",
    "François Dumont-Roux",
    "Jérôme Deschênes-Roy",
    "Maximiliane Großmann",
    "Łucja Wiśniewska-Kot",
    "Mary-Ellen O\u2019Connell",
    "Chloé Château-Renard",
    "Yūki Satō-Tanaka-Jun",
]
READERS = [None, "en", "de", "fr", "ja", "fr-CA", "de_AT", "en_GB"]
AMOUNTS = {"JP": [1, 5000, 200000]}  # yen
DEFAULT_AMOUNTS = [1, 2500, 200000]  # 0.01 to 2,000.00
VALIDITIES = [None, dt.date(2029, 12, 31)]  # does not expire; valid until


def test_the_names_are_twenty_characters() -> None:
    assert {len(name) for name in NAMES_20} == {20}


@pytest.mark.parametrize("marketplace", sorted(MARKETPLACES))
def test_every_template_fits_two_segments(marketplace: str) -> None:
    """Every language a reader can have, every name of 20 characters, small and large amounts,
    cards that expire and cards that do not: the code, the link, the validity and the terms."""
    rendered = 0
    for reader, name, amount, valid_until in itertools.product(
        READERS, NAMES_20, AMOUNTS.get(marketplace, DEFAULT_AMOUNTS), VALIDITIES
    ):
        text = render_text(GiftText(name, amount, marketplace, CODE, reader, valid_until=valid_until))
        where = f"{marketplace} {reader} {name!r} {amount} {valid_until}"
        assert (text.encoding, text.segments, text.shortened) == (Encoding.GSM7, 2, False), where
        assert text.units <= 306, where
        assert CODE in text.body, where
        base = get_settings().public_base_url
        assert f"{base}/{marketplace.lower()}/redeem" in text.body, where
        assert f"{base}/{marketplace.lower()}/terms" in text.body, where
        rendered += 1
    assert rendered == len(READERS) * len(NAMES_20) * 3 * 2


def test_every_language_has_a_template() -> None:
    assert languages(get_settings().templates_dir, "gift") == {"en", "de", "fr"}


@pytest.mark.parametrize(
    ("marketplace", "reader", "amount", "language", "says"),
    [
        ("US", None, 2500, "en", "Zoe sent you a $25.00 giftq gift card."),
        ("UK", None, 2500, "en", "£25.00"),
        ("CA", "fr-CA", 2500, "fr", "Zoe vous offre 25,00 $ chez giftq."),
        ("US", "fr-CA", 2500, "fr", "25,00 $ US"),
        ("DE", None, 250000, "de", "Zoe schenkt dir 2.500,00 € Guthaben bei giftq."),
        ("DE", "de_AT", 2500, "de", "€ 25,00"),
        ("FR", None, 250000, "fr", "2 500,00 €"),
        ("JP", None, 5000, "en", "¥5,000"),
        ("JP", "ja", 5000, "en", "¥5,000"),
        ("DE", "en", 2500, "en", "€25.00"),
        ("US", "es", 2500, "en", "25,00 US$"),  # no Spanish text yet: Spanish numbers, English words
    ],
)
def test_language_and_amount_follow_the_reader(
    marketplace: str, reader: str | None, amount: int, language: str, says: str
) -> None:
    text = render_text(GiftText("Zoë", amount, marketplace, CODE, reader))
    assert text.language == language
    assert says in text.body
    assert is_gsm7(text.body)


def test_the_text_says_who_how_much_the_code_and_where() -> None:
    text = render_text(GiftText("Eve Smith", 2500, "US", CODE))
    assert text.body == (
        f"Eve Smith sent you a $25.00 giftq gift card.\nCode: {CODE}\n"
        "Redeem at https://gifts.example.com/us/redeem\n"
        "Does not expire. Terms: https://gifts.example.com/us/terms\nKeep it private."
    )
    assert count_segments(text.body).units == text.units


@pytest.mark.parametrize(
    ("reader", "says"),
    [
        ("en", "Valid until Feb 28, 2027. Terms: https://shop.example/terms"),
        ("de", "Gültig bis 28.02.2027. Bedingungen: https://shop.example/terms"),
        ("fr", "Valable jusqu'au 28 févr. 2027. Conditions : https://shop.example/terms"),
    ],
)
def test_the_text_says_until_when_the_card_is_valid_in_the_readers_terms(reader: str, says: str) -> None:
    text = render_text(
        GiftText(
            "Eve", 2500, "US", CODE, reader, valid_until=dt.date(2027, 2, 28), terms_url="https://shop.example/terms"
        )
    )
    assert says in text.body.split("\n")

def test_the_code_is_never_in_the_link() -> None:
    text = render_text(GiftText("Eve", 2500, "DE", CODE))
    link = next(word for word in text.body.split() if word.startswith("https://"))
    assert link == "https://gifts.example.com/de/redeem"
    assert CODE not in link and code_text.normalize(CODE) not in link


@pytest.mark.parametrize("marketplace", sorted(MARKETPLACES))
def test_a_long_name_is_shortened_not_split(marketplace: str) -> None:
    name = "Alexandra Konstantinopoulou-Papadopoulou von Hohenzollern " * 3
    for reader in ("en", "de", "fr"):
        text = render_text(GiftText(name, 200000, marketplace, CODE, reader))
        assert (text.segments, text.encoding, text.shortened) == (2, Encoding.GSM7, True)
        assert CODE in text.body
        # The longest shortened form that fits: one more character of the name would not.
        keep = max(k for k in range(len(name)) if text.body.startswith(shorten(name, k) + " "))
        assert keep >= MIN_NAME_CHARS
        longer = text.body.replace(shorten(name, keep), shorten(name, keep + 1), 1)
        assert count_segments(longer).segments == 3


def test_long_urls_shorten_the_name_to_keep_two_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_PUBLIC_BASE_URL", "https://gift-cards.shop-example-store.com")
    monkeypatch.setenv(
        "GIFTQ_TERMS_URL", "https://gift-cards.shop-example-store.com/legal/{marketplace}/gift-card-terms"
    )
    reset_settings()
    name = "Zoë Müller-Schneider von Konstantinopoulou-Papadopoulou"
    text = render_text(GiftText(name, 200000, "FR", CODE))
    assert (text.segments, text.shortened) == (2, True)
    assert text.body.startswith("Zoe Müll") and "..." in text.body.split("\n")[0]
    assert CODE in text.body


def test_a_name_in_another_script_makes_three_ucs2_segments() -> None:
    text = render_text(GiftText("山田太郎", 5000, "JP", CODE, "ja"))
    assert (text.encoding, text.segments, text.shortened) == (Encoding.UCS2, 3, False)
    assert text.body.startswith("山田太郎 sent you a ¥5,000 giftq gift card.")
    assert CODE in text.body


def test_a_long_name_in_another_script_keeps_the_fewest_segments() -> None:
    name = "山田太郎" * 10
    text = render_text(GiftText(name, 5000, "JP", CODE))
    assert (text.encoding, text.segments, text.shortened) == (Encoding.UCS2, 3, True)
    assert "…" in text.body and CODE in text.body
    assert len(text.body.split(" sent you")[0]) >= MIN_NAME_CHARS


def test_too_many_segments_is_refused_with_a_clear_error() -> None:
    with pytest.raises(TooManySegments) as refused:
        render_text(GiftText("山田太郎", 5000, "JP", CODE), max_segments=1)
    error = refused.value
    assert (error.segments, error.limit, error.encoding) == (3, 1, "UCS-2")
    assert "GIFTQ_SMS_MAX_SEGMENTS" in str(error)
    assert CODE not in str(error) and code_text.normalize(CODE) not in str(error)


def test_the_segment_cap_comes_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_SMS_MAX_SEGMENTS", "2")
    reset_settings()
    with pytest.raises(TooManySegments):
        render_text(GiftText("山田太郎", 5000, "JP", CODE))
    assert render_text(GiftText("Taro", 5000, "JP", CODE)).segments == 2


def test_control_characters_in_a_name_are_flattened() -> None:
    text = render_text(GiftText("Eve\r\nSmith\x00", 2500, "US", CODE))
    assert text.body.startswith("Eve Smith sent you")
    assert text.body.count("\n") == 4


def test_the_code_is_written_grouped_whatever_form_it_came_in() -> None:
    text = render_text(GiftText("Eve", 2500, "US", code_text.normalize(CODE).lower()))
    assert CODE in text.body


def test_nothing_shows_the_code_in_a_repr() -> None:
    ctx = GiftText("Eve", 2500, "US", CODE)
    text = render_text(ctx)
    for shown in (repr(ctx), repr(text)):
        assert CODE not in shown and code_text.normalize(CODE) not in shown


@pytest.mark.parametrize(
    ("fields", "error", "says"),
    [
        ({"amount": 25.0}, TypeError, "int count of minor units"),
        ({"amount": True}, TypeError, "int count of minor units"),
        ({"amount": 0}, ValueError, "positive"),
        ({"marketplace": "XX"}, UnknownMarketplace, "unknown marketplace"),
        ({"code": "not a code"}, CodeMistyped, None),
        ({"sender_name": " \n "}, ValueError, "sender's name"),
    ],
)
def test_bad_input_is_refused(fields: dict[str, object], error: type[Exception], says: str | None) -> None:
    values: dict[str, object] = {"sender_name": "Eve", "amount": 2500, "marketplace": "US", "code": CODE}
    values.update(fields)
    with pytest.raises(error, match=says):
        GiftText(**values)  # type: ignore[arg-type]


def test_an_unknown_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown locale"):
        render_text(GiftText("Eve", 2500, "US", CODE, "xx-NOPE"))
