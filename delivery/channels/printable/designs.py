"""Printable designs: ``<templates_dir>/printable/<design>/layout.json``, data only.

Every design of :mod:`delivery.designs` (``templates/designs/<name>/``) has a printable
folder of the same name, and nothing else does (a test holds the two lists equal), so a
line accepted at intake always prints. ``layout.json`` holds colours, type sizes, the
page's proportions and its ornaments: simple shapes drawn as vectors on the card's band,
in millimetres from the band's top right corner. A design may also name ``artwork``, an
image file (PNG, JPEG or SVG) in its folder drawn on the band; images are decoded in every
PDF, so shapes are the cheaper way. Colours absent from ``layout.json`` come from the
design's ``design.json`` (its ``accent``), and its ``title`` names the design on the card.
A new design is a folder of data: no code.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from delivery import designs as shared_designs
from delivery.channels.printable.errors import InvalidCard
from giftq.settings import get_settings

Colour = Annotated[str, StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$")]


class Ornament(BaseModel):
    """A shape on the band: a circle (``size`` is its diameter), a star or a square."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    shape: Literal["circle", "ring", "star", "square"]
    x: float = Field(ge=0, le=120, description="mm left of the band's right edge")
    y: float = Field(ge=0, le=80, description="mm below the band's top edge")
    size: float = Field(gt=0, le=60)
    colour: Colour


class Layout(BaseModel):
    """What a printable design decides; every field has a default but the colours."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    title: str = ""
    """Filled from the shared design's title when empty."""
    titles: dict[str, str] = Field(default_factory=dict)
    """The design's name by language (``{"de": "Geburtstag"}``); ``title`` otherwise."""
    accent: Colour | None = None
    """The band and the headings; the shared design's accent when absent."""
    on_accent: Colour = "#ffffff"
    ink: Colour = "#111827"
    muted: Colour = "#4b5563"
    panel: Colour = "#f3f4f6"
    margin_mm: float = Field(default=14, ge=8, le=25)
    band_mm: float = Field(default=34, ge=20, le=60)
    radius_mm: float = Field(default=4, ge=0, le=12)
    title_pt: float = Field(default=26, ge=12, le=40)
    amount_pt: float = Field(default=40, ge=20, le=60)
    name_pt: float = Field(default=15, ge=10, le=24)
    message_pt: float = Field(default=12, ge=9, le=18)
    code_pt: float = Field(default=26, ge=18, le=36)
    body_pt: float = Field(default=9.5, ge=8, le=12)
    qr_mm: float = Field(default=40, ge=30, le=60)
    ornaments: tuple[Ornament, ...] = ()
    artwork: str | None = None
    """An image file in the design's folder, drawn at the band's right end."""
    artwork_mm: float = Field(default=24, gt=0, le=60)


@cache
def _load(folder: Path) -> Layout:
    name = folder.name
    path = folder / "layout.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        layout = Layout.model_validate(data)
    except (OSError, ValueError, ValidationError) as exc:
        raise InvalidCard(f"printable design {name!r}: {path.name} is unusable ({exc})") from None
    if layout.artwork is not None and not (folder / layout.artwork).is_file():
        raise InvalidCard(f"printable design {name!r}: artwork {layout.artwork!r} is missing")
    shared = shared_designs.design(name, folder.parent.parent)
    return layout.model_copy(
        update={
            "title": layout.title or str(shared.get("title", name)),
            "accent": layout.accent or str(shared.get("accent", "#1d4ed8")),
        }
    )


def title_in(layout: Layout, language: str) -> str:
    return layout.titles.get(language, layout.title)


def root(templates_dir: Path | None = None) -> Path:
    return (templates_dir or get_settings().templates_dir) / "printable"


def known(templates_dir: Path | None = None) -> tuple[str, ...]:
    """The printable design names, sorted."""
    return _scan(root(templates_dir))


@cache
def _scan(folder: Path) -> tuple[str, ...]:
    if not folder.is_dir():
        return ()
    return tuple(sorted(p.name for p in folder.iterdir() if (p / "layout.json").is_file()))


def layout(name: str, templates_dir: Path | None = None) -> Layout:
    """The design's layout; :class:`InvalidCard` names the known designs when ``name`` is not one."""
    templates_dir = templates_dir or get_settings().templates_dir
    if name not in known(templates_dir) or name not in shared_designs.known(templates_dir):
        raise InvalidCard(f"unknown design {name!r} (printable: {', '.join(known(templates_dir))})")
    return _load(root(templates_dir) / name)


def folder(name: str, templates_dir: Path | None = None) -> Path:
    return root(templates_dir) / name
