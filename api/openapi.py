"""The committed OpenAPI document, ``api/openapi.json``, and how to regenerate it.

    .venv/bin/python -m api.openapi          # rewrite api/openapi.json from the app

tests/api/test_openapi.py fails when the file and the app disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from api.app import create_app

PATH = Path(__file__).with_name("openapi.json")


def document() -> dict[str, Any]:
    return create_app().openapi()


def text(doc: dict[str, Any] | None = None) -> str:
    return json.dumps(doc or document(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write(path: Path = PATH) -> None:
    path.write_text(text(), encoding="utf-8")


if __name__ == "__main__":
    write()
