"""``giftq demo``: the product end to end on one laptop, with no services.

Embedded defaults: a SQLite file under ``var/demo``, generated development
secrets, Celery's in-process broker (``memory://``) with a worker in a thread of
this process, giftq's SMTP sink writing every email to ``var/demo/mail/new`` as an
``.eml`` file, and its stand-in for the text-message provider keeping every text in
``var/demo/sms`` (and reporting each one delivered, as the provider would).
Printable cards go by email (``GIFTQ_PRINTABLE_BACKEND=email``); the demo copies the
PDF out of that email into ``var/demo/printables`` for the person running it to open.
Physical cards go to the vendor as batch folders in ``var/demo/fulfilment/drop``
(``GIFTQ_FULFILMENT_BACKEND=file``), their codes sealed to a key pair the demo makes
for the vendor, whose part it plays: it opens the manifest with the private key
(``var/demo/fulfilment/vendor.key``) and drops a "shipped" report in
``var/demo/fulfilment/inbox``. ``giftq api``'s app serves on a free loopback port in
a thread of this process: it is ``GIFTQ_PUBLIC_BASE_URL`` (the links in the gifts),
the text provider's status callbacks come back to its ``/sms/status``, and the demo
ends on its pages, signed in by a hand-over link made with a generated
``GIFTQ_HANDOVER_SECRET``. ``--keep-serving`` keeps them up until Ctrl-C.

The demo writes only into a folder it made: a new (or empty) one, which it marks
with a ``.giftq-demo`` file. Run again on a marked folder, it removes the files it
writes (database, secrets, mail, texts, printable PDFs, the vendor's key, batches and
reports) and nothing else; any other folder is refused.

A storefront places orders (through the Python door and as a Celery message sent
by name); the worker issues the cards, emails the gifts and the receipts, texts a
gift to a phone and emails the purchaser a card to print; a birthday send waits for
its day, and a physical card for the vendor's cut-off. The recipient then types the
code from her email, with a typo first; her balance pays part of a checkout. The
physical card goes out in a batch, is refused until the vendor reports it shipped,
then redeems. Last, the ledger reconciles and the pages answer over HTTP.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import email
import email.policy
import html
import io
import logging
import os
import re
import secrets
import shlex
import shutil
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from celery.contrib.testing.worker import start_worker
from nacl.public import PrivateKey, SealedBox
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import ledger
from delivery import ops, place_order
from delivery.channels import registry
from delivery.channels.email import close_transport
from delivery.channels.email.sink import MESSAGE_SUFFIX, SmtpSink
from delivery.channels.physical import backends, batches, reports
from delivery.channels.physical import ops as fulfilment
from delivery.channels.physical.backends import MANIFEST_FILE, SLIPS_FILE
from delivery.channels.sms.sink import Report, SmsSink
from delivery.channels.sms.transport import close_transport as close_sms_transport
from delivery.models import Channel, Delivery
from delivery.worker.celery_app import get_app, reset_app
from giftq import migrate
from giftq.db import make_engine, reset_engine
from giftq.settings import get_settings, reset_settings
from ledger.codes.redact import redact
from ledger.errors import RedemptionRefused
from ledger.expiry_policy import terms_url

app = typer.Typer(help="Run the whole product locally on embedded defaults.")
console = Console()

DEMO_PHONE = "+14155550123"
DEMO_SENDER = "+15005550006"  # the provider's "valid sender" test number
DEMO_ADDRESS = {
    "line1": "12 Langley Blvd",
    "city": "Hampton",
    "region": "VA",
    "postal_code": "23681",
    "country": "US",
}
"""Where Katherine's physical card goes: a US address that intake accepts."""
TRACKING = ("USPS", "9400111899223197428490", "https://tracking.example/usps/9400111899223197428490")
"""What the vendor reports for the parcel: carrier, tracking number, tracking URL."""

CODE_IN_TEXT = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}\b")


def _money(amount: int, marketplace: str) -> str:
    market = ledger.get_marketplace(marketplace)
    if market.minor_units == 0:
        return f"{amount:,} {market.currency}"
    whole, part = divmod(amount, 10**market.minor_units)
    return f"{whole:,}.{part:0{market.minor_units}d} {market.currency}"


MARKER = ".giftq-demo"
_MARKER_TEXT = (
    "Made by giftq demo. Running it again here removes what it wrote (giftq.sqlite3*,\n"
    "secrets.json, mail/*/*.eml, sms/*.json, printables/gift-card-*.pdf,\n"
    "fulfilment/vendor.key, the manifest.csv and packing-slips.pdf of fulfilment/drop/GQ-*/,\n"
    "fulfilment/inbox/{,done/,refused/}shipped-GQ-*.csv*) and nothing else.\n"
)
PRINTABLE_PATTERN = "gift-card-*.pdf"
"""The name of every PDF the demo copies out of a printable card's email."""
VENDOR_KEY = "vendor.key"
"""The vendor's private key (base64), in ``fulfilment/``: the demo plays the vendor."""
REPORT_PATTERN = "shipped-GQ-*.csv"
"""The name of every report file the demo drops in the inbox, as the vendor."""
_DATABASE_FILES = ("giftq.sqlite3", "giftq.sqlite3-wal", "giftq.sqlite3-shm", "giftq.sqlite3-journal")
_MAILDIR_PARTS = ("tmp", "new", "cur")


class NotADemoFolder(Exception):
    """The data dir exists, holds files, and no earlier demo made it: nothing in it is touched."""


def prepare_data_dir(data_dir: Path) -> None:
    """Make ``data_dir`` ready for a run, touching only what a demo wrote there."""
    if not data_dir.exists():
        data_dir.mkdir(parents=True)
    elif not data_dir.is_dir():
        raise NotADemoFolder(f"{data_dir} is a file, not a folder")
    elif (data_dir / MARKER).is_file():
        _clear_demo_files(data_dir)
    elif any(data_dir.iterdir()):
        raise NotADemoFolder(
            f"{data_dir} holds files that giftq demo did not make, so the demo leaves it alone; "
            f"give it a new folder (--data-dir), or empty this one yourself"
        )
    (data_dir / MARKER).write_text(_MARKER_TEXT)


def _clear_demo_files(data_dir: Path) -> None:
    for name in (*_DATABASE_FILES, "secrets.json"):
        (data_dir / name).unlink(missing_ok=True)
    maildir = data_dir / "mail"
    for part in _MAILDIR_PARTS:
        for message in (maildir / part).glob(f"*{MESSAGE_SUFFIX}*"):  # "*.eml:2,S" once read
            message.unlink()
    texts = data_dir / "sms"
    for text in texts.glob("SM*.json"):
        text.unlink()
    printables = data_dir / "printables"
    for pdf in printables.glob(PRINTABLE_PATTERN):
        pdf.unlink()
    _remove_empty(*(maildir / part for part in _MAILDIR_PARTS), maildir, texts, printables)
    _clear_fulfilment(data_dir / "fulfilment")


def _clear_fulfilment(folder: Path) -> None:
    """The vendor's key, the batches dropped (each written complete, or a hidden try that
    died half-way) and the demo's report files wherever the inbox moved them."""
    (folder / VENDOR_KEY).unlink(missing_ok=True)
    drop, inbox = folder / "drop", folder / "inbox"
    batch_folders = [p for p in (*drop.glob("GQ-*"), *drop.glob(".GQ-*.tmp")) if p.is_dir()]
    for batch in batch_folders:
        for name in (MANIFEST_FILE, SLIPS_FILE):
            (batch / name).unlink(missing_ok=True)
    places = (inbox / "done", inbox / "refused", inbox)
    for place in places:
        # The report, its .errors.txt if it was refused, and its hidden name before the rename.
        for report in (*place.glob(f"{REPORT_PATTERN}*"), *place.glob(f".{REPORT_PATTERN}.tmp")):
            report.unlink()
    _remove_empty(*batch_folders, drop, *places, folder)


def _remove_empty(*folders: Path) -> None:
    for folder in folders:
        # Left in place if someone put something else there.
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _configure(data_dir: Path) -> PrivateKey:
    """Embedded defaults for this process: its settings, engine and Celery app follow.

    Returns the vendor's private key: the demo makes the vendor's key pair, gives giftq
    the public half and keeps the private half where the vendor would, in a file.
    """
    vendor_key = PrivateKey.generate()
    fulfilment_dir = data_dir / "fulfilment"
    fulfilment_dir.mkdir(exist_ok=True)
    key_file = fulfilment_dir / VENDOR_KEY
    key_file.touch(mode=0o600)
    key_file.write_text(base64.b64encode(bytes(vendor_key)).decode() + "\n")
    os.environ.update(
        GIFTQ_DATA_DIR=str(data_dir),
        GIFTQ_BROKER_URL="memory://localhost/",
        GIFTQ_SMTP_HOST="127.0.0.1",
        GIFTQ_SMTP_PORT="0",  # replaced by the sink's port once it listens
        GIFTQ_RETRY_SCHEDULE_SECONDS="[1, 2, 5]",
        GIFTQ_SMS_BACKEND="sink",
        GIFTQ_SMS_RATE_PER_SECOND="10",
        GIFTQ_PRINTABLE_BACKEND="email",
        GIFTQ_FULFILMENT_BACKEND="file",
        GIFTQ_FULFILMENT_DROP_DIR=str(fulfilment_dir / "drop"),
        GIFTQ_FULFILMENT_INBOX_DIR=str(fulfilment_dir / "inbox"),
        GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY=base64.b64encode(bytes(vendor_key.public_key)).decode(),
        GIFTQ_PUBLIC_BASE_URL="http://127.0.0.1",  # replaced by the API's address once it listens
        GIFTQ_HANDOVER_SECRET=secrets.token_urlsafe(32),
    )
    for name in (
        "GIFTQ_DATABASE_URL",
        "GIFTQ_RESULT_BACKEND",
        "GIFTQ_SMTP_SECURITY",
        "GIFTQ_SMS_ACCOUNT_SID",
        "GIFTQ_SMS_AUTH_TOKEN",
        "GIFTQ_SMS_MESSAGING_SERVICE_SID",
        "GIFTQ_SMS_FROM_NUMBER",
        "GIFTQ_SMS_RATE_REDIS_URL",
        "GIFTQ_SMS_STATUS_CALLBACK_URL",  # the API's /sms/status, under the public base URL
        "GIFTQ_FULFILMENT_SHIP_TO",
        "GIFTQ_HANDOVER_MAX_SECONDS",
    ):
        os.environ.pop(name, None)
    reset_settings()
    reset_engine()
    registry.close_all()  # senders built from earlier settings (an earlier demo in this process)
    return vendor_key


@contextmanager
def _api() -> Iterator[str]:
    """``giftq api``'s app, served by uvicorn on a thread of this process; yields its address.

    The listening socket is bound first, so that its free port is known before the app is
    made: it is ``GIFTQ_PUBLIC_BASE_URL``, the address in every gift's redeem link and
    where the text provider reports to (``/sms/status``).
    """
    from api.app import create_app  # noqa: PLC0415 - FastAPI loads for the demo only, not every giftq command

    listener = socket.socket()
    try:
        listener.bind(("127.0.0.1", 0))
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        os.environ["GIFTQ_PUBLIC_BASE_URL"] = base_url
        reset_settings()
        for name in ("uvicorn", "api.access"):
            # A line per request would bury the demo's story (--keep-serving turns the access log on).
            logging.getLogger(name).setLevel(logging.WARNING)
        config = uvicorn.Config(create_app(), log_config=None, access_log=False, server_header=False)
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
        thread.start()
        _wait("the HTTP API to listen", lambda: server.started or not thread.is_alive())
        if not server.started:
            raise typer.Exit("the HTTP API did not start")  # type: ignore[arg-type]
        try:
            yield base_url
        finally:
            server.should_exit = True
            thread.join(timeout=10)
    finally:
        listener.close()


@contextmanager
def _mail_sink(maildir: Path) -> Iterator[SmtpSink]:
    with SmtpSink("127.0.0.1", 0, maildir) as sink:
        os.environ["GIFTQ_SMTP_PORT"] = str(sink.port)
        reset_settings()
        close_transport()
        yield sink


@contextmanager
def _text_sink(directory: Path) -> Iterator[SmsSink]:
    """The provider's stand-in; its delivery reports come back to the API's ``/sms/status``."""
    with SmsSink(directory, report=Report(delay=0.2)) as sink:
        os.environ.update(
            GIFTQ_SMS_API_BASE_URL=sink.base_url,
            GIFTQ_SMS_ACCOUNT_SID=sink.account_sid,
            GIFTQ_SMS_AUTH_TOKEN=sink.auth_token,
            GIFTQ_SMS_FROM_NUMBER=DEMO_SENDER,
        )
        reset_settings()
        close_sms_transport()
        yield sink
        close_sms_transport()


@contextmanager
def _worker() -> Iterator[Any]:
    """A Celery worker in a thread of this process, consuming every queue of the in-process broker."""
    reset_app()  # the next get_app() reads the settings _configure() wrote
    celery_app = get_app()
    # memory:// is polled; poll often so that the demo moves at the speed of its work.
    celery_app.conf.broker_transport_options = {
        **celery_app.conf.broker_transport_options,
        "polling_interval": 0.05,
    }
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING") as worker:
        yield celery_app
        # Left to itself, the worker sees that it should stop only when its wait for a
        # message times out (2 s, then more): a remote-control "shutdown" is a message,
        # and stops it at once (after the task in hand, if any).
        logging.getLogger("celery.worker.control").setLevel(logging.ERROR)  # its "Got shutdown" warning
        celery_app.control.broadcast("shutdown", destination=[worker.hostname])
    close_transport()
    reset_app()


def _wait(what: str, check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise typer.Exit(f"timed out waiting for {what}")  # type: ignore[arg-type]


def _mailbox(maildir: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        for path in sorted((maildir / "new").iterdir(), key=lambda p: p.stat().st_mtime_ns)
    ]


def _line(recipient: dict[str, Any], marketplace: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {"channel": "email", "amount": amount, "marketplace": marketplace, "recipient": recipient, **extra}


def run_pipeline_demo(Session: sessionmaker[Session], sink: SmtpSink, texts: SmsSink) -> tuple[int, str]:
    """Orders in, gifts out; returns the first order's id and the claim code Ada received."""
    console.rule("[bold]Orders")
    purchaser = {"name": "Grace Hopper", "email": "grace@example.com"}
    placed = place_order(
        {
            "purchaser": purchaser,
            "lines": [
                _line(
                    {"name": "Ada Lovelace", "email": "ada@example.com"},
                    "US",
                    5000,
                    message="Happy birthday, Ada!",
                ),
                _line(
                    {"name": "Jürgen Müller", "email": "juergen@example.com"}, "DE", 2500, message="Danke!"
                ),
                {
                    "channel": "sms",
                    "amount": 2000,
                    "marketplace": "US",
                    "recipient": {"name": "Sam Rivera", "phone": DEMO_PHONE},
                },
                {
                    "channel": "printable",
                    "amount": 2000,
                    "marketplace": "UK",
                    "design": "thank_you",
                    "message": "Thank you for the Analytical Engine notes!",
                    "recipient": {"name": "Charles Babbage"},
                },
                {
                    "channel": "physical",
                    "amount": 2500,
                    "marketplace": "US",
                    "design": "birthday",
                    "message": "For the next trajectory.",
                    "recipient": {"name": "Katherine Johnson", "address": DEMO_ADDRESS},
                },
            ],
        },
        idempotency_key="demo-order-1",
    )
    console.print(f"Python door: order {placed.order_id} {placed.status}")

    next_year = dt.date.today().year + 1
    get_app().send_task(
        "giftq.place_order",
        kwargs={
            "idempotency_key": "demo-order-2",
            "order": {
                "purchaser": purchaser,
                "lines": [
                    _line(
                        {"name": "Yuki Tanaka", "email": "yuki@example.com"},
                        "JP",
                        3000,
                        send_at={"local_time": f"{next_year}-04-01T09:00", "zone": "Asia/Tokyo"},
                        message="お誕生日おめでとう",
                    )
                ],
            },
        },
    )
    console.print("Celery door: giftq.place_order sent by name with JSON kwargs (a birthday send)")

    console.rule("[bold]Deliveries")
    maildir = get_settings().data_dir / "mail"
    # Two gifts, the printable card and two receipts; then the notice of the text gift,
    # which its provider reported delivered (the email gifts left with their receipt).
    _wait("the gifts and receipts", lambda: sink.count >= 5)
    _wait("the text gift", lambda: len(texts.messages) >= 1)
    _wait("the text's delivery report", lambda: _text_delivered(Session))
    _wait("the purchaser's notice", lambda: sink.count >= 6)
    time.sleep(0.5)  # let the last notices of the batch land
    table = Table("to", "subject")
    for message in _mailbox(maildir):
        table.add_row(str(message["To"]), str(message["Subject"]))
    console.print(table)
    console.print(f"(each message is an {MESSAGE_SUFFIX} file in {maildir / 'new'})")
    printables = get_settings().data_dir / "printables"
    card = _wait("the printable card", lambda: save_printable(_mailbox(maildir), printables))
    console.print("Grace's card for Charles, to print (the PDF of her email):")
    print(f"  {_shown(card)}")  # plain print: rich would wrap a long path
    sms = Table("text to", "says")
    for text in texts.messages:
        sms.add_row(str(text["to"]), redact(str(text["body"])))
    console.print(sms)
    console.print(f"(each text is a JSON file in {texts.directory}; the code is masked here, not there)")

    with Session.begin() as session:
        orders = [ops.lookup_order(session, order_id) for order_id in (placed.order_id, placed.order_id + 1)]
    deliveries = Table("order", "what", "to", "status", "due (UTC)")
    for order in orders:
        for d in order.deliveries:
            what = f"{d.kind} ({d.channel})" if d.kind == "gift" else d.kind
            deliveries.add_row(
                str(order.id), what, d.to_address or d.to_name, d.status, d.due_at.strftime("%Y-%m-%d %H:%M")
            )
    console.print(deliveries)
    console.print("(the physical card waits for the vendor's cut-off; the birthday gift for its day)")

    gift = next(m for m in _mailbox(maildir) if "ada@example.com" in str(m["To"]))
    body = gift.get_body(preferencelist=("plain",))
    assert body is not None
    (code,) = CODE_IN_TEXT.findall(str(body.get_content()))
    console.print(f"Ada's email says: [bold]{code}[/bold]")
    for who, address, marketplace in (("Ada", "ada@", "US"), ("Jürgen", "juergen@", "DE")):
        message = next(m for m in _mailbox(maildir) if address in str(m["To"]))
        console.print(f"{who}'s email discloses: {disclosure_line(message, marketplace)}")
    return placed.order_id, str(code)


def run_held_demo(Session: sessionmaker[Session]) -> None:
    """An order placed awaiting payment: nothing goes until the storefront confirms it."""
    console.rule("[bold]A held order")
    placed = place_order(
        {
            "purchaser": {"name": "Alan Turing", "email": "alan@example.com"},
            "payment": "pending",
            "lines": [_line({"name": "Joan Clarke", "email": "joan@example.com"}, "UK", 3000)],
        },
        idempotency_key="demo-held-1",
    )
    console.print(f"order {placed.order_id} {placed.status}: no card is issued, nothing is sent")
    get_app().send_task("giftq.confirm_payment", kwargs={"order_id": placed.order_id})
    console.print("the storefront's giftq.confirm_payment (or POST /v1/orders/{id}/payment): payment cleared")
    maildir = get_settings().data_dir / "mail"
    _wait("Joan's gift", lambda: any("joan@example.com" in str(m["To"]) for m in _mailbox(maildir)))
    with Session.begin() as session:
        order = ops.lookup_order(session, placed.order_id)
    console.print(f"order {order.id} {order.status} (payment {order.payment}); Joan's gift is in the sink")


def disclosure_line(message: email.message.EmailMessage, marketplace: str) -> str:
    """The paragraph of a gift email that says until when the card is valid, and its terms."""
    body = message.get_body(preferencelist=("plain",))
    text = str(body.get_content()).replace("\r\n", "\n") if body is not None else ""
    where = terms_url(marketplace)
    found = next((p for p in text.split("\n\n") if where in p), "")
    return " ".join(found.split())


def save_printable(mailbox: list[email.message.EmailMessage], folder: Path) -> Path | None:
    """Copy the PDF of the printable card's email into ``folder``; its path (None: no
    such email yet).

    The PDF holds the claim code (as the sink's mail and texts do): the file is the
    reader's only (0600), in a folder that is for development only.
    """
    for message in mailbox:
        for part in message.iter_attachments():
            name = Path(str(part.get_filename() or "")).name
            if part.get_content_type() == "application/pdf" and Path(name).match(PRINTABLE_PATTERN):
                folder.mkdir(mode=0o700, exist_ok=True)
                path = folder / name
                path.touch(mode=0o600)
                path.write_bytes(part.get_content())
                return path
    return None


def _text_delivered(Session: sessionmaker[Session]) -> bool:
    with Session() as session:
        return bool(
            session.scalar(
                select(Delivery.id).where(Delivery.channel == Channel.SMS, Delivery.status == "delivered")
            )
        )


def _redeem(Session: sessionmaker[Session], label: str, code: str, *, account: str, key: str) -> None:
    """Redeem ``code`` into ``account`` (US) and say what came of it."""
    try:
        result = ledger.redeem_code(Session, code, account=account, marketplace="US", idempotency_key=key)
    except RedemptionRefused as refusal:
        console.print(f"{label}: [yellow]{refusal.reason}[/yellow]: {refusal}")
        return
    console.print(
        f"{label}: [green]added {_money(result.amount, 'US')}[/green], "
        f"balance {_money(result.balance_after, 'US')}"
    )


def run_physical_demo(Session: sessionmaker[Session], vendor_key: PrivateKey) -> Path:
    """Katherine's card: to the vendor at the cut-off, opened, refused, shipped, redeemed.
    Returns the batch's folder."""
    console.rule("[bold]Physical card")
    with Session() as session:
        (waiting,) = fulfilment.awaiting(session)
    console.print(
        f"Katherine's card ({waiting.card}) waits for the vendor's next cut-off, "
        f"{waiting.due_at:%Y-%m-%d %H:%M} UTC; the demo makes that batch now, as beat would then."
    )
    # What `giftq fulfilment run` does, with the clock at the cut-off rather than now.
    made = batches.run(Session, release_due=waiting.due_at)
    with Session() as session:
        batch = fulfilment.list_batches(session, limit=1)[0]
    folder = backends.drop_dir() / batch.ref
    console.print(
        f"Batch {batch.ref} ({made.sent} card): a folder in the vendor's drop, written whole, then renamed:"
    )
    print(f"  {_shown(folder / MANIFEST_FILE)}")
    print(f"  {_shown(folder / SLIPS_FILE)}")

    key_file = get_settings().data_dir / "fulfilment" / VENDOR_KEY
    console.print(
        f"The vendor reads the manifest and opens code_sealed with its private key, {_shown(key_file)}:"
    )
    (row,) = csv.DictReader(io.StringIO((folder / MANIFEST_FILE).read_text("utf-8"), newline=""))
    code = SealedBox(vendor_key).decrypt(base64.b64decode(row["code_sealed"])).decode("ascii")
    address = ", ".join(
        part
        for part in (
            row["recipient_name"],
            row["address_line1"],
            f"{row['city']} {row['region']} {row['postal_code']}",
            row["country"],
        )
        if part.strip()
    )
    for field, value in (
        ("item_ref", row["item_ref"]),
        ("ship to", address),
        ("card", f"{row['amount_text']}, design {row['design']}, from {row['sender_name']}"),
        ("key_id", f"{row['key_id']} (the vendor's public key, first 4 bytes)"),
        ("code_sealed", f"{row['code_sealed'][:16]}… ({len(row['code_sealed'])} characters of base64)"),
        ("opened", f"{redact(code)} (masked here; the vendor prints it on the card)"),
    ):
        print(f"  {field:<12} {value}")

    _redeem(
        Session, "Katherine's code, before the card ships", code, account="katherine", key="demo:kj:early"
    )

    report = io.StringIO(newline="")
    writer = csv.writer(report, lineterminator="\r\n")
    writer.writerow(("item_ref", "event", "carrier", "tracking_number", "tracking_url"))
    writer.writerow((row["item_ref"], "shipped", *TRACKING))
    inbox = reports.inbox_dir()
    inbox.mkdir(parents=True, exist_ok=True)
    name = f"shipped-{batch.ref}.csv"  # a REPORT_PATTERN name: the next run's clean-up removes it
    hidden = inbox / f".{name}.tmp"  # renamed once complete, as the vendor's contract says
    hidden.write_text(report.getvalue(), encoding="utf-8")
    hidden.rename(inbox / name)
    console.print(f"The vendor ships the card and drops its report, {_shown(inbox / name)}:")
    for line in report.getvalue().splitlines():
        print(f"  {line}")
    # What `giftq fulfilment reports` does (beat runs it every minute).
    for result in reports.process_inbox(Session):
        if result.applied is None:
            console.print(f"{result.name}: [red]refused[/red]: {'; '.join(map(str, result.problems))}")
            raise typer.Exit(1)
        console.print(f"{result.name}: applied, moved to done/; {len(result.applied.changed)} card shipped")
    with Session() as session:
        status = ledger.find_card(session, code).status
    console.print(f"Katherine's card {waiting.card} is now [bold]{status}[/bold]")

    maildir = get_settings().data_dir / "mail"
    tracking = _wait(
        "the purchaser's tracking email",
        lambda: next((m for m in _mailbox(maildir) if TRACKING[1] in _plain(m)), None),
    )
    console.print(f"to {tracking['To']}: {tracking['Subject']}")
    for line in _plain(tracking).splitlines():
        if TRACKING[1] in line:
            print(f"  {line.strip()}")

    _redeem(Session, "Katherine's code once it shipped", code, account="katherine", key="demo:kj")
    return folder


def _plain(message: email.message.EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    return str(body.get_content()) if body is not None else ""


def run_checkout_demo(Session: sessionmaker[Session], code: str) -> None:
    """Ada redeems the code from her email and spends the balance at checkout."""
    console.rule("[bold]Redeem")
    typo = code.replace("-", " ").lower()
    typo = typo[:3] + ("2" if typo[3] != "2" else "3") + typo[4:]
    for label, attempt, key in [
        ("a typo", typo, "demo:redeem:typo"),
        ("the real code, lower case with spaces", code.replace("-", " ").lower(), "demo:redeem"),
        ("the same code again", code, "demo:redeem:again"),
    ]:
        _redeem(Session, label, attempt, account="ada", key=key)

    console.rule("[bold]Checkout")
    with Session.begin() as session:
        hold = ledger.apply_balance(
            session,
            account="ada",
            marketplace="US",
            order_ref="shop-1001",
            order_total=7999,
            idempotency_key="demo:hold",
        )
        console.print(
            f"order of {_money(hold.order_total, 'US')}: {_money(hold.held, 'US')} from the balance, "
            f"{_money(hold.remaining_to_pay, 'US')} to pay by card"
        )
        if hold.checkout_id is not None:
            ledger.capture(session, hold.checkout_id, idempotency_key="demo:capture")
            ledger.refund(session, hold.checkout_id, amount=1000, idempotency_key="demo:refund")
            console.print("captured, then refunded 10.00 USD of it into the balance")
        balance = ledger.balance(session, account="ada", marketplace="US")
        console.print(f"ada's balance: [bold]{_money(balance.amount, 'US')}[/bold]")
        page = ledger.history(session, account="ada", marketplace="US")
        history = Table("entry", "what", "amount", "balance after")
        for item in page.items:
            history.add_row(
                str(item.entry_id), item.kind, _money(item.amount, "US"), _money(item.balance_after, "US")
            )
        console.print(history)


def run_reconcile(Session: sessionmaker[Session]) -> ledger.ReconciliationReport:
    console.rule("[bold]Reconcile")
    with Session.begin() as session:
        report = ledger.reconcile(session)
    recon = Table("currency", "cards", "wallets", "holds", "revenue", "funding", "sum")
    for t in report.currencies:
        recon.add_row(
            t.currency, *(str(v) for v in (t.card, t.wallet, t.hold, t.revenue, t.funding, t.total))
        )
    console.print(recon)
    console.print("[green]ledger balances[/green]" if report.ok else f"[red]{report.problems}[/red]")
    return report


def run_pages_demo(base_url: str) -> list[int]:
    """The recipient's pages on the running API: the redeem page, reached by a hand-over
    link as a store makes it for its signed-in customer, and the balance page; each
    fetched once over HTTP. Returns the HTTP status of each."""
    from api.pages import handover  # noqa: PLC0415 - FastAPI loads for the demo only

    console.rule("[bold]Pages")
    key = handover.secret()
    if key is None:  # _configure set GIFTQ_HANDOVER_SECRET
        raise typer.Exit("GIFTQ_HANDOVER_SECRET is not set")  # type: ignore[arg-type]
    ttl = get_settings().handover_max_seconds
    redeem = handover.link(base_url, key, "UK", "charles", int(time.time()) + ttl)
    balance = f"{base_url}/uk/balance"
    console.print(
        "Charles adds the card Grace printed for him (its code is in the PDF) to his balance. "
        f"His store would send him to this link, which signs him in (for {ttl // 60} minutes):"
    )
    print(f"  {redeem}")  # plain print: rich would wrap it, and it is for copying
    console.print("Anyone can check what a card holds, without signing in:")
    print(f"  {balance}")
    statuses = []
    with httpx.Client(timeout=10) as client:
        for name, url in (("the redeem page", redeem), ("the balance page", balance)):
            answer = client.get(url, follow_redirects=True)
            statuses.append(answer.status_code)
            console.print(f"{name} answers HTTP {answer.status_code}: {_page_says(answer.text)}")
    return statuses


def _page_says(page: str) -> str:
    """A page's heading, and the balance it shows, as text."""
    found = [
        html.unescape(m.group(1)).strip()
        for pattern in (r"<h1>(.*?)</h1>", r'<p class="balance">(.*?)</p>')
        if (m := re.search(pattern, page, re.DOTALL))
    ]
    return "; ".join(f"“{text}”" for text in found)


def _shown(path: Path) -> str:
    """A path as the person at this shell types it: relative when under the current folder."""
    try:
        shown = str(path.relative_to(Path.cwd()))
    except ValueError:
        shown = str(path)
    return shlex.quote(shown)


def _giftq_command() -> str:
    """How to call giftq from this shell: by name when that finds this install."""
    here = Path(sys.executable).with_name("giftq")
    on_path = shutil.which("giftq")
    if not here.exists() or (on_path is not None and Path(on_path).resolve() == here.resolve()):
        return "giftq"
    return _shown(here)


def look_around_commands(
    data_dir: Path, order_id: int, card_id: int, batch: Path, *, shell_database_url: str = ""
) -> list[tuple[str, str]]:
    """Commands that show what the demo left behind, each with what it shows."""
    env = f"GIFTQ_DATA_DIR={_shown(data_dir)}"
    if shell_database_url:
        env = f"GIFTQ_DATABASE_URL= {env}"  # the demo's database, not the one this shell names
    giftq = _giftq_command()
    return [
        (f"{env} {giftq} ops order {order_id}", "the first order: lines, cards (masked), deliveries"),
        (f"{env} {giftq} ops card {card_id}", "Ada's card and its deliveries"),
        (f"{env} {giftq} fulfilment shipped", "Katherine's card, shipped, with its tracking number"),
        (f"ls {_shown(data_dir / 'mail' / 'new')}", f"every email as an {MESSAGE_SUFFIX} file"),
        (f"ls {_shown(data_dir / 'sms')}", "every text message as a JSON file"),
        (f"ls {_shown(data_dir / 'printables')}", "the printable card as a PDF, to open and print"),
        (f"ls {_shown(batch)}", "the batch the vendor took: the manifest (codes sealed), packing slips"),
    ]


@app.callback(invoke_without_command=True)
def demo(
    data_dir: Annotated[
        Path,
        typer.Option(help="Where the demo keeps its files: a new or empty folder, or one it made before."),
    ] = Path("var/demo"),
    keep_serving: Annotated[
        bool,
        typer.Option(help="At the end, keep the HTTP API and its pages up until Ctrl-C, to click around."),
    ] = False,
) -> None:
    """Run the demo."""
    data_dir = data_dir.resolve()
    try:
        prepare_data_dir(data_dir)
    except NotADemoFolder as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    database_url_in_shell = os.environ.get("GIFTQ_DATABASE_URL", "")
    vendor_key = _configure(data_dir)
    url = get_settings().sqlalchemy_url
    logging.getLogger("alembic").setLevel(logging.WARNING)
    migrate.upgrade(url)
    engine = make_engine(url)
    Session = sessionmaker(engine, expire_on_commit=False)
    try:
        with _api() as base_url:
            with _mail_sink(data_dir / "mail") as sink, _text_sink(data_dir / "sms") as texts, _worker():
                order_id, code = run_pipeline_demo(Session, sink, texts)
                run_held_demo(Session)
                run_checkout_demo(Session, code)
                batch = run_physical_demo(Session, vendor_key)
            report = run_reconcile(Session)
            if not report.ok:
                raise typer.Exit(1)
            pages = run_pages_demo(base_url)
            with Session() as session:
                card_id = ledger.find_card(session, code).card_id
            console.rule("[bold]Look around")
            commands = look_around_commands(
                data_dir, order_id, card_id, batch, shell_database_url=database_url_in_shell
            )
            width = max(len(command) for command, _ in commands)
            for command, what in commands:
                # Plain print: rich would wrap a long path, and these lines are for copying.
                print(f"  {command:<{width}}  # {what}")
            if any(status != 200 for status in pages):
                raise typer.Exit(1)
            if keep_serving:
                _serve_until_interrupted(base_url)
            else:
                console.print(
                    "\nThe API stops with the demo; giftq demo --keep-serving keeps it and the pages up."
                )
    finally:
        engine.dispose()
        reset_engine()
        registry.close_all()


def _serve_until_interrupted(base_url: str) -> None:
    """Wait for Ctrl-C while the API's thread answers whoever opens the pages."""
    logging.getLogger("api.access").setLevel(logging.INFO)  # each page a person opens, a line
    console.print(f"\nThe HTTP API and the pages above answer at {base_url} (docs at {base_url}/docs).")
    console.print("Press Ctrl-C to stop.")
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        console.print("stopped")
