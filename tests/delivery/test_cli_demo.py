from __future__ import annotations

import base64
import csv
import email
import email.policy
import io
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pypdf
import pytest
from nacl.public import PrivateKey, SealedBox
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

import ledger
from delivery.cli import app
from delivery.cli.demo import MARKER, prepare_data_dir
from giftq.db import make_engine
from giftq.settings import reset_settings

GIFTQ = str(Path(sys.executable).with_name("giftq"))
CODE = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}\b")


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


def _pdf_code(pdf: Path) -> str:
    page = " ".join(pypdf.PdfReader(pdf).pages[0].extract_text().split())
    (code,) = CODE.findall(page)
    return str(code)


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
    assert sum("grace@example.com" in r for r in recipients) >= 3  # two receipts and the text's notice
    assert not any("yuki@example.com" in r for r in recipients)  # her birthday is next April
    assert any("joan@example.com" in r for r in recipients)  # held, then released by payment
    assert "awaiting_payment: no card is issued" in result.output
    assert "scheduled" in result.output
    # The code from Ada's email redeemed; a typo and a reuse got their own answers.
    assert "mistyped" in result.output
    assert "added 50.00 USD" in result.output
    assert "already_redeemed" in result.output
    assert "ledger balances" in result.output
    # The gift emails' disclosure lines: whether and when each card expires, and its terms.
    flat = " ".join(result.output.split())
    assert "Ada's email discloses: This gift card does not expire. Terms: http://" in flat
    assert "Jürgen's email discloses: Diese Geschenkkarte ist gültig bis zum 31. Dezember" in flat
    # A text gift went to the provider's stand-in, was reported delivered, and the
    # purchaser heard so; the demo shows the text with its code masked.
    (text,) = [json.loads(p.read_text()) for p in (data / "sms").glob("SM*.json")]
    assert text["to"] == "+14155550123"
    (code,) = CODE.findall(text["body"])
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
    card_code = _pdf_code(pdf)
    assert card_code.endswith(pdf.name[-8:-4])
    assert card_code not in result.output
    assert not any("Charles Babbage has been sent" in str(m["Subject"]) for m in _mail(data))

    # A physical card went to the vendor in a batch folder; its code, sealed in the
    # manifest, opens with the private key the demo wrote for the vendor (its reader's only).
    output = result.output
    said = " ".join(output.split())  # what it says, however the console wrapped it
    (batch,) = (data / "fulfilment" / "drop").iterdir()
    assert re.fullmatch(r"GQ-[0-9]{8}-[0-9]{6}", batch.name)
    assert sorted(p.name for p in batch.iterdir()) == ["manifest.csv", "packing-slips.pdf"]
    (row,) = csv.DictReader(io.StringIO((batch / "manifest.csv").read_text("utf-8"), newline=""))
    assert (row["recipient_name"], row["region"], row["postal_code"]) == ("Katherine Johnson", "VA", "23681")
    key_file = data / "fulfilment" / "vendor.key"
    assert key_file.stat().st_mode & 0o077 == 0
    vendor = SealedBox(PrivateKey(base64.b64decode(key_file.read_text())))
    physical_code = vendor.decrypt(base64.b64decode(row["code_sealed"])).decode("ascii")
    assert physical_code not in output and physical_code not in (batch / "manifest.csv").read_text()
    assert f"••••-••••-••••-•{physical_code[-4:]}" in output
    # Refused before it shipped; the vendor's "shipped" report, dropped in the inbox, was
    # applied; the purchaser got the tracking; then the code redeemed.
    refused = said.index("not_active: this card is not active yet")
    applied = said.index(f"shipped-{batch.name}.csv: applied")
    assert refused < applied < said.index("added 25.00 USD, balance 25.00 USD")
    assert [p.name for p in (data / "fulfilment" / "inbox" / "done").iterdir()] == [
        f"shipped-{batch.name}.csv"
    ]
    (tracking,) = [m for m in _mail(data) if "Katherine Johnson is on its way" in str(m["Subject"])]
    assert "grace@example.com" in str(tracking["To"])
    tracking_body = tracking.get_body(preferencelist=("plain",))
    assert tracking_body is not None and "9400111899223197428490" in str(tracking_body.get_content())
    monkeypatch.setenv("GIFTQ_DATA_DIR", str(data))
    reset_settings()
    engine = make_engine(f"sqlite:///{data / 'giftq.sqlite3'}")
    try:
        with sessionmaker(engine)() as session:
            assert ledger.find_card(session, physical_code).status == "redeemed"
    finally:
        engine.dispose()
    # The pages answered over HTTP: the redeem page signed in by the hand-over link, and
    # the balance page; the text's status reports came back to the same API.
    (link,) = [line.strip() for line in output.splitlines() if "/uk/redeem?account=charles&expires=" in line]
    assert re.fullmatch(
        r"http://127\.0\.0\.1:[0-9]+/uk/redeem\?account=charles&expires=[0-9]+&signature=[0-9a-f]{64}", link
    )
    base = link.split("/uk/", 1)[0]
    assert f"Redeem at {base}/us/redeem" in text["body"]
    assert "the redeem page answers HTTP 200: “Redeem a gift card”; “Your balance: £0.00”" in said
    assert (
        "the balance page answers HTTP 200: “Check a gift card\N{RIGHT SINGLE QUOTATION MARK}s balance”"
        in output
    )
    assert f"  {base}/uk/balance" in output.splitlines()

    # The commands it prints to look around work as printed, on the demo's data.
    order, card, shipped, listing, texts, printables, batch_listing = _look_around(output)
    assert listing[0] == "ls" and sorted(Path(listing[1]).iterdir()) == sorted(
        (data / "mail" / "new").iterdir()
    )
    assert texts[0] == "ls" and sorted(Path(texts[1]).iterdir()) == sorted((data / "sms").iterdir())
    assert printables[0] == "ls" and list(Path(printables[1]).iterdir()) == [pdf]
    assert batch_listing[0] == "ls" and Path(batch_listing[1]) == batch
    monkeypatch.setenv("COLUMNS", "200")  # a terminal wide enough for the tables' columns
    for argv, expect, names in (
        (order, "order 1 ", "ada@example.com"),
        (card, "card ", "ada@example.com"),
        (shipped, "", "Katherine Johnson"),
    ):
        assert argv[0] == f"GIFTQ_DATA_DIR={data}"
        assert Path(argv[1]).name == "giftq"
        monkeypatch.setenv("GIFTQ_DATA_DIR", argv[0].split("=", 1)[1])
        reset_settings()
        shown = CliRunner().invoke(app, argv[2:])
        assert shown.exit_code == 0, shown.output
        assert shown.output.startswith(expect)
        assert names in shown.output


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
    # and its batch and report: this run's batch went out afresh, sealed to this run's key
    assert len(list((data / "fulfilment" / "drop").iterdir())) == 1
    assert len(list((data / "fulfilment" / "inbox" / "done").iterdir())) == 1
    assert "added 25.00 USD, balance 25.00 USD" in second.output
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
        "fulfilment/vendor.key",
        "fulfilment/drop/GQ-20260601-000001/manifest.csv",
        "fulfilment/drop/GQ-20260601-000001/packing-slips.pdf",
        "fulfilment/drop/.GQ-20260601-000002.1a2b3c4d.tmp/packing-slips.pdf",  # a try that died
        "fulfilment/inbox/shipped-GQ-20260601-000001.csv",
        "fulfilment/inbox/.shipped-GQ-20260601-000001.csv.tmp",
        "fulfilment/inbox/done/shipped-GQ-20260601-000001.csv",
        "fulfilment/inbox/done/shipped-GQ-20260601-000001.20260601T150000000000.csv",
        "fulfilment/inbox/refused/shipped-GQ-20260601-000001.csv",
        "fulfilment/inbox/refused/shipped-GQ-20260601-000001.csv.errors.txt",
    ]
    kept = [
        "notes.txt",
        "mail/new/letter.txt",
        "printables/my-own.pdf",
        "fulfilment/drop/GQ-20260601-000003/note.txt",
        "fulfilment/inbox/vendor-report.csv",
        "fulfilment/inbox/done/vendor-report.csv",
    ]
    for name in demo_files + kept:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_text(name)

    prepare_data_dir(data)

    left = sorted(str(p.relative_to(data)) for p in data.rglob("*") if p.is_file())
    assert left == sorted([MARKER, *kept])
    # Folders it emptied are gone; those that hold someone else's files stay.
    assert not (data / "printables").exists() or list((data / "printables").iterdir())
    assert not (data / "fulfilment" / "drop" / "GQ-20260601-000001").exists()
    assert not (data / "fulfilment" / "inbox" / "refused").exists()


def test_an_empty_folder_is_taken_and_marked(tmp_path: Path) -> None:
    prepare_data_dir(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [MARKER]


def _until_interrupted() -> None:
    # What a terminal gives the command it starts: Ctrl-C interrupts (a process started
    # in the background by a shell without job control would ignore SIGINT).
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_demo_keeps_its_pages_up_until_ctrl_c(tmp_path: Path, demo_env: None) -> None:
    data = tmp_path / "demo"
    demo = subprocess.Popen(
        [GIFTQ, "demo", "--data-dir", str(data), "--keep-serving"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
        preexec_fn=_until_interrupted,  # noqa: PLW1509 - one call, before exec
    )
    lines: list[str] = []
    serving = threading.Event()  # set once the demo waits for Ctrl-C, or has ended

    def read() -> None:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if "Press Ctrl-C to stop" in line:
                serving.set()
        serving.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        serving.wait(timeout=180)
        assert any("Press Ctrl-C to stop" in line for line in lines), "".join(lines)
        (link,) = [line.strip() for line in lines if "/uk/redeem?account=charles" in line]
        base = link.split("/uk/", 1)[0]
        # A person opens the link, signed in as Charles, and types the code from his card.
        with httpx.Client(follow_redirects=True, timeout=10) as browser:
            form = browser.get(link)
            assert form.status_code == 200 and "Your balance: £0.00" in form.text
            fields = dict(re.findall(r'name="(csrf_token|attempt)" value="([^"]+)"', form.text))
            added = browser.post(
                f"{base}/uk/redeem", data={"code": _pdf_code(next((data / "printables").iterdir())), **fields}
            )
            assert added.status_code == 200, added.text
            assert "We added £20.00 to your balance." in added.text
            assert browser.get(f"{base}/uk/balance").status_code == 200
        demo.send_signal(signal.SIGINT)
        assert demo.wait(timeout=60) == 0
        reader.join(timeout=10)
        assert lines[-1].strip() == "stopped", "".join(lines)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/uk/balance")
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        reader.join(timeout=10)
        assert demo.stdout is not None
        demo.stdout.close()
