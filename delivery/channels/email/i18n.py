"""Language and formatting per marketplace: message catalogs, money and dates.

The marketplace fixes everything: its locale (``de_DE``) gives the number and date
format, its currency and exponent give the amount, and the locale's language picks
the message catalog. English is the source language; German and French come from
``locale/<lang>/LC_MESSAGES/messages.po`` next to this module.

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
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path

from babel import Locale
from babel.dates import format_date
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
    """How to write for one marketplace: its locale, language and catalog."""

    marketplace: Marketplace
    locale: Locale
    """Numbers, currencies and dates are written for this locale."""
    language: str
    """The language the text is in: the locale's when we have its catalog, else English."""
    translations: gettext.NullTranslations

    def money(self, amount: int, marketplace: str | None = None) -> str:
        """Format ``amount`` minor units of ``marketplace``'s currency (default: our own)."""
        return format_money(amount, marketplace or self.marketplace.code, self.locale)

    def date(self, value: datetime) -> str:
        return str(format_date(value, format="long", locale=self.locale))


@cache
def localization(marketplace: str) -> Localization:
    """The cached localization of a marketplace code (``"DE"``)."""
    market = get_marketplace(marketplace)
    locale = Locale.parse(market.locale)
    language = str(locale.language)
    if language not in TRANSLATED_LANGUAGES:
        # Japan reads English text (with Japanese number formats) until ja is translated.
        language = SOURCE_LANGUAGE
    return Localization(market, locale, language, translations(language))


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
    market = get_marketplace(marketplace)
    value = Decimal(amount).scaleb(-market.minor_units)
    return str(format_currency(value, market.currency, locale=locale))
