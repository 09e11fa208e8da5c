"""The pages' language: the marketplace's where a catalog exists (de, fr), English otherwise.

Catalogs are ``api/locale/<lang>/LC_MESSAGES/pages.po``, compiled in memory on first use,
as the email catalogs are. After changing a page's text::

    .venv/bin/pybabel extract -F api/locale/babel.cfg -o /tmp/pages.pot .
    .venv/bin/pybabel update -D pages -i /tmp/pages.pot -d api/locale

and translate the new entries (tests/api/pages/test_i18n.py fails until each is).
Amounts, dates and waiting times are written for the marketplace's locale (Babel).
"""

from __future__ import annotations

import datetime as dt
import gettext
import io
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import jinja2
from babel import Locale
from babel.dates import format_date, format_timedelta
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from delivery.channels.email.i18n import format_money
from giftq.settings import get_settings
from ledger.marketplaces import Marketplace, get_marketplace

LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"
DOMAIN = "pages"
TRANSLATED_LANGUAGES: tuple[str, ...] = ("de", "fr")


@dataclass(frozen=True, slots=True)
class PageText:
    marketplace: Marketplace
    locale: Locale
    language: str
    env: jinja2.Environment
    translations: gettext.NullTranslations

    def money(self, amount: int, marketplace: str | None = None) -> str:
        return format_money(amount, marketplace or self.marketplace.code, self.locale)

    def wait(self, seconds: int) -> str:
        """``in 15 minutes``, ``in 15 Minuten``, ``dans 3 heures``: rounded up, never sooner than true."""
        minutes = max(1, math.ceil(seconds / 60))
        if minutes >= 120:
            minutes = math.ceil(minutes / 60) * 60
        return str(
            format_timedelta(
                dt.timedelta(minutes=minutes), add_direction=True, threshold=2, locale=self.language
            )
        )

    def date(self, day: dt.date) -> str:
        return str(format_date(day, format="long", locale=self.locale))

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)


@cache
def page_text(marketplace: str) -> PageText:
    market = get_marketplace(marketplace)
    locale = Locale.parse(market.locale)
    language = str(locale.language)
    if language not in TRANSLATED_LANGUAGES:
        language = "en"
    translations = catalog_translations(language)
    return PageText(market, locale, language, _environment(translations), translations)


def catalog_translations(language: str) -> gettext.NullTranslations:
    if language not in TRANSLATED_LANGUAGES:
        return gettext.NullTranslations()
    buffer = io.BytesIO()
    write_mo(buffer, load_catalog(language), use_fuzzy=False)
    buffer.seek(0)
    return gettext.GNUTranslations(buffer)


def load_catalog(language: str) -> Catalog:
    with (LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}.po").open("rb") as f:
        return read_po(f, locale=language, domain=DOMAIN)


def _environment(translations: gettext.NullTranslations) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(get_settings().templates_dir / "pages"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.install_gettext_translations(translations, newstyle=True)  # type: ignore[attr-defined]
    return env
