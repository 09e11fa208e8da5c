"""Card designs: one folder each under ``<templates_dir>/designs/``, nothing else to register.

``designs/<name>/design.json`` holds what the renderers need as data (a title, the
accent colour); a channel may add its own files for the same name elsewhere under
templates (``printable/<name>/``). Intake checks a line's design against this list, and
the published JSON Schema lists the same names, so a design that cannot render is refused
when the order is placed, never at send time.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from giftq.settings import PROJECT_ROOT, get_settings

DEFAULT = "classic"


def _root(templates_dir: Path | None) -> Path:
    return (templates_dir or get_settings().templates_dir) / "designs"


@lru_cache(maxsize=8)
def _scan(root: Path) -> tuple[str, ...]:
    if not root.is_dir():
        return ()
    return tuple(sorted(p.name for p in root.iterdir() if (p / "design.json").is_file()))


def known(templates_dir: Path | None = None) -> tuple[str, ...]:
    """The design names, sorted."""
    return _scan(_root(templates_dir))


def shipped() -> tuple[str, ...]:
    """The designs in this source tree (for the published JSON Schema, which is settings-free)."""
    return _scan(PROJECT_ROOT / "templates" / "designs")


@lru_cache(maxsize=32)
def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return data


def design(name: str, templates_dir: Path | None = None) -> dict[str, Any]:
    """The design's data; KeyError names the known designs when ``name`` is not one."""
    root = _root(templates_dir)
    if name not in _scan(root):
        raise KeyError(f"unknown design {name!r} (known: {', '.join(_scan(root))})")
    return _load(root / name / "design.json")
