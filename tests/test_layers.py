"""The layers stay in their order: api -> delivery -> ledger -> giftq, and the storefront's
Python door loads no Celery, SMTP or templates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from giftq.db import make_engine

ROOT = Path(__file__).resolve().parents[1]


def _modules_after(statement: str) -> set[str]:
    code = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True, text=True)
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_the_storefront_door_loads_no_celery_smtp_or_templates() -> None:
    loaded = _modules_after("from delivery import place_order")
    assert not {"celery", "kombu", "aiosmtplib", "jinja2", "httpx", "fpdf"} & loaded


def test_the_ledger_loads_nothing_of_delivery_or_celery() -> None:
    loaded = _modules_after("import ledger")
    assert not {m for m in loaded if m.split(".")[0] in {"delivery", "celery", "api"}}


def test_the_ground_floor_imports_nothing_above_it() -> None:
    modules = [p.stem for p in (ROOT / "giftq").glob("*.py") if p.stem != "__init__"]
    loaded = _modules_after("; ".join(f"import giftq.{m}" for m in modules))
    assert not {m for m in loaded if m.split(".")[0] in {"ledger", "delivery", "api"}}


def test_migrations_register_every_table(database_url: str) -> None:
    from migrations.metadata import include_object, target_metadata

    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": include_object}
            )
            diff = compare_metadata(context, target_metadata)
    finally:
        engine.dispose()
    assert diff == []
