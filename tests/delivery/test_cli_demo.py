from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from delivery.cli import app


def test_demo_runs_the_product_on_embedded_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo points this process's settings at its own data dir; undo that afterwards.
    monkeypatch.setenv("GIFTQ_DATA_DIR", str(tmp_path / "demo"))
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(tmp_path / "demo")])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "mistyped" in result.output
    assert "already_redeemed" in result.output
    assert "ledger balances" in result.output
    assert (tmp_path / "demo" / "giftq.sqlite3").exists()
