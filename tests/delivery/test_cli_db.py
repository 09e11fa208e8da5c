from __future__ import annotations

from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from delivery.cli import app
from giftq import migrate
from giftq.settings import reset_settings


def test_current_at_head_exits_zero(database_url: str) -> None:
    result = CliRunner().invoke(app, ["db", "current"])
    assert result.exit_code == 0, result.output
    assert result.output == f"{migrate.head()} (head)\n"


def test_current_behind_head_exits_non_zero_and_names_both_revisions(database_url: str) -> None:
    head = migrate.head()
    previous = ScriptDirectory.from_config(migrate.alembic_config()).get_revision(head).down_revision
    assert isinstance(previous, str)
    migrate.downgrade(database_url, previous)

    result = CliRunner().invoke(app, ["db", "current"])

    assert result.exit_code == 1
    assert f"is at revision {previous}; the code's head is {head} (run: giftq db upgrade)" in result.output
    assert len(result.output.splitlines()) == 1


def test_current_without_a_database_creates_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "nothing-here"
    monkeypatch.setenv("GIFTQ_DATA_DIR", str(data))
    reset_settings()

    result = CliRunner().invoke(app, ["db", "current"])

    assert result.exit_code == 1
    assert result.output == f"error: no giftq database at {data / 'giftq.sqlite3'} (run: giftq db upgrade)\n"
    assert not data.exists()


def test_upgrade_creates_the_data_dir_and_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "fresh" / "var"
    monkeypatch.setenv("GIFTQ_DATA_DIR", str(data))
    reset_settings()

    upgraded = CliRunner().invoke(app, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    assert (data / "giftq.sqlite3").is_file()
    assert CliRunner().invoke(app, ["db", "current"]).exit_code == 0
