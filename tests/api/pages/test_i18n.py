"""Every text of the pages is translated in each catalog, and nothing else is."""

from __future__ import annotations

import pytest
from babel.messages.extract import extract_from_dir

from api.pages.i18n import LOCALE_DIR, TRANSLATED_LANGUAGES, load_catalog
from giftq.settings import PROJECT_ROOT


def _used() -> set[str]:
    used: set[str] = set()
    for root in ("templates/pages", "api/pages"):
        method_map = [("**.html", "jinja2"), ("**.py", "python")]
        options = {"**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
        for _file, _line, message, _comments, _context in extract_from_dir(
            PROJECT_ROOT / root, method_map, options
        ):
            used.add(message if isinstance(message, str) else message[0])
    return used


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_every_page_text_is_translated(language: str) -> None:
    catalog = load_catalog(language)
    translated = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    used = _used()
    assert used, "no messages found"
    assert used - translated == set(), f"untranslated in {LOCALE_DIR / language}"
    assert translated - used == set(), "translated but no longer used"
