"""Language and formatting per reader: message catalogs, money and dates.

Every message is written for its reader. The reader's locale (``de_DE``, ``fr``; from
the order: ``purchaser.locale`` for the purchaser's messages, ``recipient.locale`` for a
gift) picks the language of the text and the format of numbers, money and dates; when a
reader has none, the card's marketplace's locale stands in. The currency is always the
card's marketplace's: a German reader of a US card reads "25,00 $".

English is the source language; German and French come from
``locale/<lang>/LC_MESSAGES/messages.po`` next to this module. A reader whose language
has no catalog (Japanese, for now) reads English, with English formats for their region
(``en_JP``) where CLDR has them: one language per message, never English sentences
around a Japanese date.

The ``.po`` files are compiled in memory the first time a language is needed
(Babel ``read_po`` then ``write_mo``), so a checkout runs without a build step. To
refresh the catalogs after changing a template::

    .venv/bin/pybabel extract -F delivery/channels/email/locale/babel.cfg -o /tmp/messages.pot .
    .venv/bin/pybabel update -i /tmp/messages.pot -d delivery/channels/email/locale

then translate the new entries (``tests/delivery/channels/email/test_i18n.py`` fails until
every message used by a template is translated).
"""

from __future__ import annotations

import gettext
import io
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache, lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time, get_datetime_format
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency

from ledger.marketplaces import Marketplace, get_marketplace

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
SOURCE_LANGUAGE = "en"
TRANSLATED_LANGUAGES: tuple[str, ...] = ("de", "fr")


@dataclass(frozen=True, slots=True)
class Localization:
    """How to write for one reader of one marketplace's card: locale, language, catalog."""

    marketplace: Marketplace
    """The card's marketplace: its currency is the one amounts are in."""
    locale: Locale
    """Numbers, currencies and dates are written for this locale (the reader's)."""
    language: str
    """The language the text is in: the reader's when we have its catalog, else English."""
    translations: gettext.NullTranslations

    def money(self, amount: int, marketplace: str | None = None) -> str:
        """Format ``amount`` minor units of ``marketplace``'s currency (default: our own)."""
        return format_money(amount, marketplace or self.marketplace.code, self.locale)

    def date(self, value: datetime) -> str:
        return _long_date(value.date(), self.locale)

    def date_time(self, value: datetime) -> str:
        """A wall-clock date and time as written here ("14. Februar 2027, 09:00")."""
        pattern = str(get_datetime_format("long", locale=self.locale)).replace("'", "")
        time = format_time(value, format="short", locale=self.locale)
        return str(pattern.replace("{0}", time).replace("{1}", format_date(value, "long", self.locale)))


def reader_locale(marketplace: str, locale: str | None = None) -> str:
    """The reader's locale: ``locale`` if they gave one, else the marketplace's."""
    return locale or get_marketplace(marketplace).locale


@cache
def localization(marketplace: str, locale: str | None = None) -> Localization:
    """How to write about a card of ``marketplace`` (``"DE"``) for a reader of ``locale``.

    ``locale`` (``"de_DE"``, ``"en"``) is the reader's; None means the marketplace's.
    """
    market = get_marketplace(marketplace)
    wanted = Locale.parse(reader_locale(market.code, locale))
    language = str(wanted.language)
    formats = wanted
    if language not in TRANSLATED_LANGUAGES:
        language = SOURCE_LANGUAGE
        formats = _english_for(wanted)
    return Localization(market, formats, language, translations(language))


def _english_for(wanted: Locale) -> Locale:
    """English formats for the reader's region (``en_JP``), or plain English."""
    if wanted.language == SOURCE_LANGUAGE:
        return wanted
    if wanted.territory:
        try:
            return Locale.parse(f"{SOURCE_LANGUAGE}_{wanted.territory}")
        except (ValueError, UnknownLocaleError):
            pass
    return Locale.parse(SOURCE_LANGUAGE)


@cache
def translations(language: str) -> gettext.NullTranslations:
    """The compiled catalog of ``language``; English (and any other) falls back to the msgids."""
    if language not in TRANSLATED_LANGUAGES:
        return gettext.NullTranslations()
    catalog = load_catalog(language)
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def load_catalog(language: str) -> Catalog:
    """The Babel ``Catalog`` parsed from the ``.po`` file of ``language``."""
    path = LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po"
    with path.open("rb") as f:
        return read_po(f, locale=language, domain=DOMAIN)


def format_money(amount: int, marketplace: str, locale: Locale | str) -> str:
    """``amount`` minor units of the marketplace currency, written for ``locale``.

    Decimal keeps the conversion exact: 2500 with exponent 2 is 25.00, 5000 JPY is 5000.
    """
    if type(amount) is not int:
        raise TypeError(f"amount must be an int count of minor units, not {type(amount).__name__}")
    return _format_money(amount, marketplace, str(locale))


# A batch of gifts repeats a handful of amounts: Babel takes about 0.5 ms to write one,
# a cache hit a microsecond. Bounded, so a stream of odd amounts cannot grow it.
@lru_cache(maxsize=4096)
def _format_money(amount: int, marketplace: str, locale: str) -> str:
    market = get_marketplace(marketplace)
    value = Decimal(amount).scaleb(-market.minor_units)
    return str(format_currency(value, market.currency, locale=locale))


@lru_cache(maxsize=1024)
def _long_date(day: date, locale: Locale) -> str:
    # Orders of one day share it: written once per day and reader's locale.
    return str(format_date(day, format="long", locale=locale))
