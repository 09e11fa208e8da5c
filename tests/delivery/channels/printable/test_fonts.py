"""Fonts are parsed once per process and lent to each PDF without being changed by it."""

from __future__ import annotations

import json
from typing import Any

from fpdf import FPDF

from delivery.channels.printable import fonts, render_printable
from delivery.channels.printable.wording import LANGUAGES, TEXT_DIR


def test_the_fonts_are_parsed_once_and_left_as_they_were(pdf_tools: Any, new_card: Any) -> None:
    prototypes = fonts._prototypes()
    glyphs = {key: len(font.ttfont.getGlyphOrder()) for key, font in prototypes.items()}
    for message in ("ABC", "山田 שלום مرحبا", "xyz"):
        pdf = render_printable(new_card(message=message))
        assert message.split()[0] in pdf_tools.pdf_text(pdf)
    assert fonts._prototypes() is prototypes
    assert {key: len(font.ttfont.getGlyphOrder()) for key, font in prototypes.items()} == glyphs
    assert glyphs["sans"] > 8000  # the whole Japanese face, not one page's subset


def test_fallback_faces_join_a_pdf_only_when_its_text_needs_them() -> None:
    plain, hebrew = FPDF(), FPDF()
    fonts.install(plain, "Robin 山田")
    fonts.install(hebrew, "Robin שלום")
    assert set(plain.fonts) == {"sans", "sansB"}
    assert set(hebrew.fonts) == {"sans", "sansB", "hebrew"}


def test_the_bold_face_draws_every_character_of_the_wording() -> None:
    bold = fonts._prototypes()["sansB"].cmap
    for language in LANGUAGES:
        data = json.loads((TEXT_DIR / f"{language}.json").read_text())
        for key in ("title", "code_heading", "redeem_heading", "private_heading"):
            missing = {c for c in data[key] if ord(c) not in bold}
            assert not missing, (language, key, missing)


def test_the_faces_cover_the_scripts_of_the_marketplaces() -> None:
    covered = fonts.covered()
    sample = (
        "Jürgen Größe Œuvre çà é ÀÉÎÕÜ ß £€$¥￥ 山田太郎 髙橋 﨑 ひらがな カタカナ 、。「」"
        " שלום مرحبا Ελλάδα Москва"
    )
    # Greek with tonos is drawn as its letter and a combining accent (text.clean_name).
    assert {c for c in sample if ord(c) not in covered} == {"\u03ac"}
