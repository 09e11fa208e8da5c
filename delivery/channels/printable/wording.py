"""The page's fixed words, per language: ``text/<language>.json`` beside this module.

The card is written in the recipient's language when we have it (``locale``), else in
the marketplace's: English for US, CA and UK, German for DE, French for FR, Japanese for
JP (a recipient whose locale is English reads a Japanese card in English). The German and
French sentences are the email's (``delivery/channels/email/locale``), so both channels say the
same thing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from babel import Locale

from ledger.marketplaces import get_marketplace

TEXT_DIR = Path(__file__).resolve().parent / "text"
LANGUAGES: tuple[str, ...] = ("en", "de", "fr", "ja")
DEFAULT_LANGUAGE = "en"


@dataclass(frozen=True, slots=True)
class Wording:
    """Every fixed sentence of the page, in one language."""

    language: str
    title: str
    for_label: str
    from_label: str
    code_heading: str
    redeem_heading: str
    steps: tuple[str, ...]
    """The redeem steps; the first holds ``{url}``."""
    scan: str
    private_heading: str
    private: str
    fold: str
    valid_until: str
    """The card's expiry; holds ``{date}``."""
    no_expiry: str
    terms: str
    """Where the terms are; holds ``{url}``."""


def language_for(marketplace: str, locale: str | None) -> str:
    """The language of the card: the recipient's if we have it, else the marketplace's."""
    for candidate in (locale, get_marketplace(marketplace).locale):
        if candidate:
            language = str(Locale.parse(candidate.replace("-", "_")).language)
            if language in LANGUAGES:
                return language
    return DEFAULT_LANGUAGE


@cache
def wording(language: str) -> Wording:
    if language not in LANGUAGES:
        raise KeyError(f"no wording in {language!r} (have: {', '.join(LANGUAGES)})")
    data = json.loads((TEXT_DIR / f"{language}.json").read_text(encoding="utf-8"))
    return Wording(
        language=language,
        title=data["title"],
        for_label=data["for"],
        from_label=data["from"],
        code_heading=data["code_heading"],
        redeem_heading=data["redeem_heading"],
        steps=tuple(data["steps"]),
        scan=data["scan"],
        private_heading=data["private_heading"],
        private=data["private"],
        fold=data["fold"],
        valid_until=data["valid_until"],
        no_expiry=data["no_expiry"],
        terms=data["terms"],
    )
