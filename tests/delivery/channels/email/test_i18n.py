"""Message catalogs: every template message translated in German and French, and valid."""

from __future__ import annotations

import pytest
from babel.messages.checkers import python_format
from babel.messages.extract import extract_from_dir

from delivery.channels.email.i18n import (
    LOCALE_DIR,
    TRANSLATED_LANGUAGES,
    format_money,
    load_catalog,
    translations,
)
from giftq.settings import PROJECT_ROOT

TEMPLATES = PROJECT_ROOT / "templates"
EXTRACT_OPTIONS = {
    "extensions": "jinja2.ext.i18n",
    "trim_blocks": "true",
    "lstrip_blocks": "true",
    "newstyle_gettext": "true",
}


def template_messages() -> set[str | tuple[str, ...]]:
    """Every msgid (and msgid/plural pair) the email templates use."""
    found: set[str | tuple[str, ...]] = set()
    for _filename, _lineno, message, _comments, _context in extract_from_dir(
        str(TEMPLATES),
        method_map=[("email/**.txt", "jinja2"), ("email/**.html", "jinja2")],
        options_map={"email/**": EXTRACT_OPTIONS},
    ):
        found.add(message if isinstance(message, str) else tuple(message))
    return found


def test_templates_use_messages() -> None:
    messages = template_messages()
    assert "Your claim code:" in messages
    assert ("You bought %(num)d gift card:", "You bought %(num)d gift cards:") in messages
    assert len(messages) > 30


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_every_template_message_is_translated(language: str) -> None:
    catalog = load_catalog(language)
    missing, untranslated = [], []
    for message_id in template_messages():
        key = message_id if isinstance(message_id, str) else message_id[0]
        entry = catalog.get(key)
        if entry is None:
            missing.append(message_id)
        elif entry.fuzzy or not all(entry.string if isinstance(entry.string, tuple) else [entry.string]):
            untranslated.append(message_id)
    assert not missing, f"{language}: not in the catalog: {missing}"
    assert not untranslated, f"{language}: empty or fuzzy: {untranslated}"


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_catalog_has_no_stale_entries(language: str) -> None:
    used = {m if isinstance(m, str) else m[0] for m in template_messages()}
    stale = [
        m.id
        for m in load_catalog(language)
        if m.id and (m.id if isinstance(m.id, str) else m.id[0]) not in used
    ]
    assert not stale, f"{language}: entries no template uses any more: {stale}"


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_translations_keep_the_placeholders(language: str) -> None:
    catalog = load_catalog(language)
    problems = []
    for message in catalog:
        if not message.id:
            continue
        try:
            python_format(catalog, message)
        except Exception as exc:  # TranslationError
            problems.append((message.id, str(exc)))
    assert not problems
    assert list(catalog.check()) == []


@pytest.mark.parametrize("language", TRANSLATED_LANGUAGES)
def test_plural_forms(language: str) -> None:
    catalog = load_catalog(language)
    assert catalog.num_plurals == 2
    t = translations(language)
    one = t.ngettext("You bought %(num)d gift card:", "You bought %(num)d gift cards:", 1)
    many = t.ngettext("You bought %(num)d gift card:", "You bought %(num)d gift cards:", 5)
    assert one != many
    if language == "fr":
        # French uses the singular for 0 as well.
        assert t.ngettext("You bought %(num)d gift card:", "You bought %(num)d gift cards:", 0) == one


def test_catalogs_are_compiled_in_memory() -> None:
    # No build step: there are no compiled .mo files, only the .po sources.
    assert not list(LOCALE_DIR.rglob("*.mo"))
    assert {p.parent.parent.name for p in LOCALE_DIR.rglob("messages.po")} == set(TRANSLATED_LANGUAGES)
    assert translations("de").gettext("Your claim code:") == "Ihr Einlösecode:"
    assert translations("en").gettext("Your claim code:") == "Your claim code:"
    assert translations("de") is translations("de")


def test_format_money_is_exact() -> None:
    assert format_money(1, "US", "en_US") == "$0.01"
    assert format_money(10**15 + 1, "US", "en_US") == "$10,000,000,000,000.01"
    assert format_money(0, "JP", "en_US") == "¥0"
    with pytest.raises(TypeError):
        format_money(1.5, "US", "en_US")  # type: ignore[arg-type]
