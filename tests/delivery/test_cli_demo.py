from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest
from typer.testing import CliRunner

from delivery.cli import app


def test_demo_runs_the_whole_pipeline_on_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The demo points this process's settings at its own files; monkeypatch undoes that afterwards.
    for name in ("GIFTQ_DATA_DIR", "GIFTQ_BROKER_URL", "GIFTQ_SMTP_HOST", "GIFTQ_SMTP_PORT"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "[1]")
    data = tmp_path / "demo"

    result = CliRunner().invoke(app, ["demo", "--data-dir", str(data)])

    assert result.exit_code == 0, (result.output, result.exception)
    assert (data / "giftq.sqlite3").exists()
    # Gifts and receipts went out through SMTP into the sink's Maildir.
    mail = [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in (data / "mail" / "new").iterdir()
    ]
    recipients = sorted(str(m["To"]) for m in mail)
    assert any("ada@example.com" in r for r in recipients)
    assert any("juergen@example.com" in r for r in recipients)
    assert sum("grace@example.com" in r for r in recipients) >= 2  # receipts and delivered notices
    assert not any("yuki@example.com" in r for r in recipients)  # her birthday is next April
    assert "scheduled" in result.output
    # The code from Ada's email redeemed; a typo and a reuse got their own answers.
    assert "mistyped" in result.output
    assert "added 50.00 USD" in result.output
    assert "already_redeemed" in result.output
    assert "ledger balances" in result.output
