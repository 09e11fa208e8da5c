"""``giftq demo``: the product end to end on one laptop, with no services.

Embedded defaults: a SQLite file under ``var/demo``, generated development
secrets, Celery's in-process broker (``memory://``) with a worker in a thread of
this process, and giftq's SMTP sink writing every email to ``var/demo/mail/new``.

A storefront places orders (through the Python door and as a Celery message sent
by name); the worker issues the cards and emails the gifts and the receipts; a
birthday send waits for its day. The recipient then types the code from her
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
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from celery.contrib.testing.worker import start_worker
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

import ledger
from delivery import ops, place_order
from delivery.channels.email import close_transport
from delivery.channels.email.sink import SmtpSink
from delivery.worker.celery_app import get_app, reset_app
from giftq import migrate
from giftq.db import make_engine, reset_engine
from giftq.settings import get_settings, reset_settings
from ledger.errors import RedemptionRefused

app = typer.Typer(help="Run the whole product locally on embedded defaults.")
console = Console()

CODE_IN_TEXT = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}\b")


def _money(amount: int, marketplace: str) -> str:
    market = ledger.get_marketplace(marketplace)
    if market.minor_units == 0:
        return f"{amount:,} {market.currency}"
    whole, part = divmod(amount, 10**market.minor_units)
    return f"{whole:,}.{part:0{market.minor_units}d} {market.currency}"


def _configure(data_dir: Path) -> None:
    """Embedded defaults for this process: its settings, engine and Celery app follow."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    os.environ.update(
        GIFTQ_DATA_DIR=str(data_dir),
        GIFTQ_BROKER_URL="memory://localhost/",
        GIFTQ_SMTP_HOST="127.0.0.1",
        GIFTQ_SMTP_PORT="0",  # replaced by the sink's port once it listens
        GIFTQ_RETRY_SCHEDULE_SECONDS="[1, 2, 5]",
    )
    for name in ("GIFTQ_DATABASE_URL", "GIFTQ_RESULT_BACKEND", "GIFTQ_SMTP_SECURITY"):
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


def run_pipeline_demo(Session: sessionmaker[Session], sink: SmtpSink) -> str:
    """Orders in, gifts out; returns the claim code Ada received."""
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
    _wait("the gifts and receipts", lambda: sink.count >= 4)
    time.sleep(0.5)  # let the last notices of the batch land
    maildir = get_settings().data_dir / "mail"
    table = Table("to", "subject")
    for message in _mailbox(maildir):
        table.add_row(str(message["To"]), str(message["Subject"]))
    console.print(table)
    console.print(f"(each message is a file in {maildir / 'new'})")

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
    return str(code)


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


@app.callback(invoke_without_command=True)
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its files (wiped first).")] = Path(
        "var/demo"
    ),
) -> None:
    """Run the demo."""
    data_dir = data_dir.resolve()
    _configure(data_dir)
    url = get_settings().sqlalchemy_url
    logging.getLogger("alembic").setLevel(logging.WARNING)
    migrate.upgrade(url)
    engine = make_engine(url)
    Session = sessionmaker(engine, expire_on_commit=False)
    try:
        with _mail_sink(data_dir / "mail") as sink, _worker():
            code = run_pipeline_demo(Session, sink)
        report = run_ledger_demo(Session, code)
    finally:
        engine.dispose()
        reset_engine()
    if not report.ok:
        raise typer.Exit(1)
