"""Printable designs are data: one folder per design of ``delivery/designs.py``, no more."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from delivery import designs as shared
from delivery.channels.printable import InvalidCard, designs
from giftq.settings import PROJECT_ROOT


def test_the_printable_designs_are_exactly_the_designs() -> None:
    assert designs.known() == shared.known()
    assert designs.known() == shared.shipped()
    assert set(designs.known()) == {"classic", "birthday", "thank_you", "holiday"}


@pytest.mark.parametrize("name", shared.shipped())
def test_every_design_loads_with_its_colours_and_titles(name: str) -> None:
    layout = designs.layout(name)
    assert layout.title == shared.design(name)["title"]
    assert layout.accent is not None
    assert set(layout.titles) == {"de", "fr", "ja"}


def _copy_templates(tmp_path: Path) -> Path:
    target = tmp_path / "templates"
    shutil.copytree(PROJECT_ROOT / "templates", target)
    return target


def test_a_new_design_is_a_folder_of_data(tmp_path: Path) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "designs" / "wedding").mkdir()
    (templates / "designs" / "wedding" / "design.json").write_text(
        '{"title": "Wedding", "accent": "#7c3aed"}'
    )
    (templates / "printable" / "wedding").mkdir()
    (templates / "printable" / "wedding" / "layout.json").write_text(
        json.dumps({"ornaments": [{"shape": "ring", "x": 20, "y": 10, "size": 12, "colour": "#ffffff"}]})
    )
    layout = designs.layout("wedding", templates)
    assert (layout.title, layout.accent) == ("Wedding", "#7c3aed")


def test_an_unknown_design_names_the_known_ones() -> None:
    with pytest.raises(InvalidCard, match=r"unknown design 'wedding' \(printable: birthday, classic"):
        designs.layout("wedding")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "layout.json is unusable"),
        ('{"accent": "blue"}', "accent"),
        ('{"margin_mm": 2}', "margin_mm"),
        ('{"colour_of_the_day": "#ffffff"}', "colour_of_the_day"),
        ('{"artwork": "missing.png"}', "artwork 'missing.png' is missing"),
    ],
)
def test_a_broken_layout_is_refused_with_the_reason(tmp_path: Path, content: str, problem: str) -> None:
    templates = _copy_templates(tmp_path)
    (templates / "printable" / "classic" / "layout.json").write_text(content)
    with pytest.raises(InvalidCard, match="printable design 'classic'") as caught:
        designs.layout("classic", templates)
    assert problem in str(caught.value)
