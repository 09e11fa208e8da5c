"""``giftq demo``: the product end to end on one laptop, with no services.

Embedded defaults: a SQLite file under ``var/demo``, generated development
secrets, Celery's in-process broker (``memory://``) with a worker in a thread of
this process, giftq's SMTP sink writing every email to ``var/demo/mail/new`` as an
``.eml`` file, and its stand-in for the text-message provider keeping every text in
``var/demo/sms`` (and reporting each one delivered, as the provider would).
Printable cards go by email (``GIFTQ_PRINTABLE_BACKEND=email``); the demo copies the
PDF out of that email into ``var/demo/printables`` for the person running it to open.

The demo writes only into a folder it made: a new (or empty) one, which it marks
with a ``.giftq-demo`` file. Run again on a marked folder, it removes the files it
writes (database, secrets, mail, texts, printable PDFs) and nothing else; any other
folder is refused.

A storefront places orders (through the Python door and as a Celery message sent
by name); the worker issues the cards, emails the gifts and the receipts, texts a
gift to a phone and emails the purchaser a card to print; a birthday send waits for
its day. The recipient then types the code from her
email, with a typo first; her balance pays part of a checkout. Last, the ledger
reconciles.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import logging
import os
import re
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from celery.contrib.testing.worker import start_worker
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

import ledger
from delivery import ops, place_order
from delivery.channels.email import close_transport
from delivery.channels.email.sink import MESSAGE_SUFFIX, SmtpSink
from delivery.channels.sms.endpoint import StatusEndpoint
from delivery.channels.sms.sink import Report, SmsSink
from delivery.channels.sms.transport import close_transport as close_sms_transport
from delivery.models import Channel, Delivery
from delivery.worker.celery_app import get_app, reset_app
from giftq import migrate
from giftq.db import make_engine, reset_engine
from giftq.settings import get_settings, reset_settings
from ledger.codes.redact import redact
from ledger.errors import RedemptionRefused

app = typer.Typer(help="Run the whole product locally on embedded defaults.")
console = Console()

DEMO_PHONE = "+14155550123"
DEMO_SENDER = "+15005550006"  # the provider's "valid sender" test number

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
    "secrets.json, mail/*/*.eml, sms/*.json, printables/gift-card-*.pdf) and nothing else.\n"
)
PRINTABLE_PATTERN = "gift-card-*.pdf"
"""The name of every PDF the demo copies out of a printable card's email."""
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
    for folder in (*(maildir / part for part in _MAILDIR_PARTS), maildir, texts, printables):
        # Left in place if someone put something else there.
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def _configure(data_dir: Path) -> None:
    """Embedded defaults for this process: its settings, engine and Celery app follow."""
    os.environ.update(
        GIFTQ_DATA_DIR=str(data_dir),
        GIFTQ_BROKER_URL="memory://localhost/",
        GIFTQ_SMTP_HOST="127.0.0.1",
        GIFTQ_SMTP_PORT="0",  # replaced by the sink's port once it listens
        GIFTQ_RETRY_SCHEDULE_SECONDS="[1, 2, 5]",
        GIFTQ_SMS_BACKEND="sink",
        GIFTQ_SMS_RATE_PER_SECOND="10",
        GIFTQ_PRINTABLE_BACKEND="email",
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
    ):
        os.environ.pop(name, None)
    reset_settings()
    reset_engine()


@contextmanager
def _mail_sink(maildir: Path) -> Iterator[SmtpSink]:
    with SmtpSink("127.0.0.1", 0, maildir) as sink:
        os.environ["GIFTQ_SMTP_PORT"] = str(sink.port)
        reset_settings()
        close_transport()
        yield sink


@contextmanager
def _text_sink(directory: Path, Session: sessionmaker[Session]) -> Iterator[SmsSink]:
    """The provider's stand-in, and the endpoint its delivery reports come back to."""
    with StatusEndpoint(Session) as endpoint, SmsSink(directory, report=Report(delay=0.2)) as sink:
        os.environ.update(
            GIFTQ_SMS_API_BASE_URL=sink.base_url,
            GIFTQ_SMS_ACCOUNT_SID=sink.account_sid,
            GIFTQ_SMS_AUTH_TOKEN=sink.auth_token,
            GIFTQ_SMS_FROM_NUMBER=DEMO_SENDER,
            GIFTQ_SMS_STATUS_CALLBACK_URL=endpoint.url,
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
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING"):
        yield celery_app
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
    # Two gifts, the printable card and two receipts; then the notices of the sent gifts.
    _wait("the gifts and receipts", lambda: sink.count >= 5)
    _wait("the text gift", lambda: len(texts.messages) >= 1)
    _wait("the text's delivery report", lambda: _text_delivered(Session))
    _wait("the purchaser's notices", lambda: sink.count >= 7)
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
            deliveries.add_row(
                str(order.id), d.kind, d.to_address or "", d.status, d.due_at.strftime("%Y-%m-%d %H:%M")
            )
    console.print(deliveries)

    gift = next(m for m in _mailbox(maildir) if "ada@example.com" in str(m["To"]))
    body = gift.get_body(preferencelist=("plain",))
    assert body is not None
    (code,) = CODE_IN_TEXT.findall(str(body.get_content()))
    console.print(f"Ada's email says: [bold]{code}[/bold]")
    return placed.order_id, str(code)


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


def run_ledger_demo(Session: sessionmaker[Session], code: str) -> ledger.ReconciliationReport:
    console.rule("[bold]Redeem")
    typo = code.replace("-", " ").lower()
    typo = typo[:3] + ("2" if typo[3] != "2" else "3") + typo[4:]
    for label, attempt, key in [
        ("a typo", typo, "demo:redeem:typo"),
        ("the real code, lower case with spaces", code.replace("-", " ").lower(), "demo:redeem"),
        ("the same code again", code, "demo:redeem:again"),
    ]:
        try:
            result = ledger.redeem_code(
                Session, attempt, account="ada", marketplace="US", idempotency_key=key
            )
            console.print(
                f"{label}: [green]added {_money(result.amount, 'US')}[/green], "
                f"balance {_money(result.balance_after, 'US')}"
            )
        except RedemptionRefused as refusal:
            console.print(f"{label}: [yellow]{refusal.reason}[/yellow]: {refusal}")

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
    data_dir: Path, order_id: int, card_id: int, *, shell_database_url: str = ""
) -> list[tuple[str, str]]:
    """Commands that show what the demo left behind, each with what it shows."""
    env = f"GIFTQ_DATA_DIR={_shown(data_dir)}"
    if shell_database_url:
        env = f"GIFTQ_DATABASE_URL= {env}"  # the demo's database, not the one this shell names
    giftq = _giftq_command()
    return [
        (f"{env} {giftq} ops order {order_id}", "the first order: lines, cards (masked), deliveries"),
        (f"{env} {giftq} ops card {card_id}", "Ada's card and its deliveries"),
        (f"ls {_shown(data_dir / 'mail' / 'new')}", f"every email as an {MESSAGE_SUFFIX} file"),
        (f"ls {_shown(data_dir / 'sms')}", "every text message as a JSON file"),
        (f"ls {_shown(data_dir / 'printables')}", "the printable card as a PDF, to open and print"),
    ]


@app.callback(invoke_without_command=True)
def demo(
    data_dir: Annotated[
        Path,
        typer.Option(help="Where the demo keeps its files: a new or empty folder, or one it made before."),
    ] = Path("var/demo"),
) -> None:
    """Run the demo."""
    data_dir = data_dir.resolve()
    try:
        prepare_data_dir(data_dir)
    except NotADemoFolder as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    database_url_in_shell = os.environ.get("GIFTQ_DATABASE_URL", "")
    _configure(data_dir)
    url = get_settings().sqlalchemy_url
    logging.getLogger("alembic").setLevel(logging.WARNING)
    migrate.upgrade(url)
    engine = make_engine(url)
    Session = sessionmaker(engine, expire_on_commit=False)
    try:
        with _mail_sink(data_dir / "mail") as sink, _text_sink(data_dir / "sms", Session) as texts, _worker():
            order_id, code = run_pipeline_demo(Session, sink, texts)
        report = run_ledger_demo(Session, code)
        with Session() as session:
            card_id = ledger.find_card(session, code).card_id
    finally:
        engine.dispose()
        reset_engine()
    if not report.ok:
        raise typer.Exit(1)
    console.rule("[bold]Look around")
    commands = look_around_commands(data_dir, order_id, card_id, shell_database_url=database_url_in_shell)
    width = max(len(command) for command, _ in commands)
    for command, what in commands:
        # Plain print: rich would wrap a long path, and these lines are for copying.
        print(f"  {command:<{width}}  # {what}")
