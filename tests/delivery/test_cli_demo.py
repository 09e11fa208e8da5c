from __future__ import annotations

import email
import email.policy
import json
import re
import shlex
from pathlib import Path

import pypdf
import pytest
from typer.testing import CliRunner

from delivery.cli import app
from delivery.cli.demo import MARKER, prepare_data_dir
from giftq.settings import reset_settings


@pytest.fixture
def demo_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # The demo points this process's settings at its own files; monkeypatch undoes that afterwards.
    for name in ("GIFTQ_DATA_DIR", "GIFTQ_BROKER_URL", "GIFTQ_SMTP_HOST", "GIFTQ_SMTP_PORT"):
        monkeypatch.setenv(name, "")
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "1")


def _mail(folder: Path) -> list[email.message.EmailMessage]:
    files = sorted((folder / "mail" / "new").iterdir())
    assert files and all(p.suffix == ".eml" for p in files), files
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def _look_around(output: str) -> list[list[str]]:
    """The commands printed after the demo, as argv lists (environment assignments first)."""
    tail = output.split("Look around", 1)[1]
    return [shlex.split(line, comments=True) for line in tail.splitlines() if line.startswith("  ")]


def test_demo_runs_the_whole_pipeline_on_embedded_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_env: None
) -> None:
    data = tmp_path / "demo"

    result = CliRunner().invoke(app, ["demo", "--data-dir", str(data)])

    assert result.exit_code == 0, (result.output, result.exception)
    assert (data / "giftq.sqlite3").exists()
    # Gifts and receipts went out through SMTP into the sink's Maildir, one .eml file each.
    recipients = sorted(str(m["To"]) for m in _mail(data))
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
    # A text gift went to the provider's stand-in, was reported delivered, and the
    # purchaser heard so; the demo shows the text with its code masked.
    (text,) = [json.loads(p.read_text()) for p in (data / "sms").glob("SM*.json")]
    assert text["to"] == "+14155550123"
    (code,) = re.findall(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}\b", text["body"])
    assert code not in result.output
    assert code[-4:] in result.output
    assert any("Sam Rivera has been delivered" in str(m["Subject"]) for m in _mail(data))
    # A printable card went to Grace, who prints it, with its PDF attached; the demo copied
    # the PDF out (for its reader only), says where, and shows none of its code.
    (card_email,) = [m for m in _mail(data) if list(m.iter_attachments())]
    assert "grace@example.com" in str(card_email["To"])
    assert str(card_email["Subject"]) == "Your printable gift card for Charles Babbage"
    (pdf,) = (data / "printables").iterdir()
    assert re.fullmatch(r"gift-card-charles-babbage-[0-9A-Z]{4}\.pdf", pdf.name)
    assert pdf.stat().st_mode & 0o077 == 0 and (data / "printables").stat().st_mode & 0o077 == 0
    (attached,) = list(card_email.iter_attachments())
    assert pdf.read_bytes() == attached.get_content()
    assert f"  {pdf}" in result.output.splitlines()
    page = " ".join(pypdf.PdfReader(pdf).pages[0].extract_text().split())
    assert "£20.00" in page and "Charles Babbage" in page and "Grace Hopper" in page
    (card_code,) = re.findall(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}\b", page)
    assert card_code.endswith(pdf.name[-8:-4])
    assert card_code not in result.output
    assert not any("Charles Babbage has been sent" in str(m["Subject"]) for m in _mail(data))

    # The commands it prints to look around work as printed, on the demo's data.
    order, card, listing, texts, printables = _look_around(result.output)
    assert listing[0] == "ls" and sorted(Path(listing[1]).iterdir()) == sorted(
        (data / "mail" / "new").iterdir()
    )
    assert texts[0] == "ls" and sorted(Path(texts[1]).iterdir()) == sorted((data / "sms").iterdir())
    assert printables[0] == "ls" and list(Path(printables[1]).iterdir()) == [pdf]
    for argv, expect in ((order, "order 1 "), (card, "card ")):
        assert argv[0] == f"GIFTQ_DATA_DIR={data}"
        assert Path(argv[1]).name == "giftq"
        monkeypatch.setenv("GIFTQ_DATA_DIR", argv[0].split("=", 1)[1])
        reset_settings()
        shown = CliRunner().invoke(app, argv[2:])
        assert shown.exit_code == 0, shown.output
        assert shown.output.startswith(expect)
        assert "ada@example.com" in shown.output


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path, demo_env: None) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("do not lose me\n")

    result = CliRunner().invoke(app, ["demo", "--data-dir", str(folder)])

    assert result.exit_code == 2
    assert result.output.startswith(f"error: {folder} holds files that giftq demo did not make")
    assert [p.name for p in folder.iterdir()] == ["notes.txt"]
    assert (folder / "notes.txt").read_text() == "do not lose me\n"


def test_demo_runs_again_in_its_folder_and_keeps_what_others_put_there(
    tmp_path: Path, demo_env: None
) -> None:
    data = tmp_path / "demo"
    first = CliRunner().invoke(app, ["demo", "--data-dir", str(data)])
    assert first.exit_code == 0, first.output
    sent_first = len(_mail(data))
    (data / "notes.txt").write_text("mine\n")

    second = CliRunner().invoke(app, ["demo", "--data-dir", str(data)])

    assert second.exit_code == 0, second.output
    assert "added 50.00 USD" in second.output  # a fresh ledger, not the first run's
    assert len(_mail(data)) == sent_first  # the first run's mail was cleared
    assert len(list((data / "printables").iterdir())) == 1  # and its printable card
    assert (data / "notes.txt").read_text() == "mine\n"


def test_a_demo_folder_is_cleared_of_the_demo_files_only(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    prepare_data_dir(data)  # new: made and marked
    assert [p.name for p in data.iterdir()] == [MARKER]
    demo_files = [
        "giftq.sqlite3",
        "giftq.sqlite3-wal",
        "secrets.json",
        "mail/new/1.x.eml",
        "mail/cur/2.x.eml:2,S",
        "printables/gift-card-charles-babbage-W6RR.pdf",
    ]
    kept = ["notes.txt", "mail/new/letter.txt", "printables/my-own.pdf"]
    for name in demo_files + kept:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(name)

    prepare_data_dir(data)

    left = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    assert left == sorted([MARKER, *kept])


def test_an_empty_folder_is_taken_and_marked(tmp_path: Path) -> None:
    prepare_data_dir(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [MARKER]
