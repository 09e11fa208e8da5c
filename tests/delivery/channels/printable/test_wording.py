"""The page's words: the same sentences in every language, picked by locale and marketplace."""

from __future__ import annotations

import json
import string

import pytest

from delivery.channels.printable.wording import LANGUAGES, TEXT_DIR, language_for, wording


def _shape(value: object) -> object:
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return sorted({f for _, f, _, _ in string.Formatter().parse(str(value)) if f})


def test_every_language_has_the_same_sentences_and_placeholders() -> None:
    shapes = {lang: _shape(json.loads((TEXT_DIR / f"{lang}.json").read_text())) for lang in LANGUAGES}
    assert sorted(p.stem for p in TEXT_DIR.glob("*.json")) == sorted(LANGUAGES)
    for lang in LANGUAGES:
        assert shapes[lang] == shapes["en"], lang
    assert "url" in shapes["en"]["steps"][0]  # type: ignore[index]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_loads(language: str) -> None:
    words = wording(language)
    assert words.language == language
    assert len(words.steps) == 3 and "{url}" in words.steps[0]


@pytest.mark.parametrize(
    ("marketplace", "locale", "language"),
    [
        ("US", None, "en"),
        ("CA", None, "en"),
        ("UK", None, "en"),
        ("DE", None, "de"),
        ("FR", None, "fr"),
        ("JP", None, "ja"),
        ("JP", "en", "en"),
        ("JP", "en-US", "en"),
        ("CA", "fr_CA", "fr"),
        ("US", "de_AT", "de"),
        ("DE", "pt_BR", "de"),
        ("FR", "zh_Hant_TW", "fr"),
    ],
)
def test_the_card_is_in_the_readers_language_when_we_have_it(
    marketplace: str, locale: str | None, language: str
) -> None:
    assert language_for(marketplace, locale) == language
