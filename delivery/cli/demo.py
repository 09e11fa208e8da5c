"""``giftq demo``: the product end to end on one laptop, with no services.

Embedded defaults: a SQLite file under ``var/demo``, generated development
secrets. It issues cards, redeems a code into a recipient's balance, shows the
answers a customer gets for a typo and a reused code, spends the balance at
checkout, and prints balances and a reconciliation.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session, sessionmaker

import ledger
from giftq import migrate
from giftq.db import make_engine
from giftq.settings import get_settings, reset_settings
from ledger.errors import RedemptionRefused

app = typer.Typer(help="Run the whole product locally on embedded defaults.")
console = Console()


def _money(amount: int, marketplace: str) -> str:
    market = ledger.get_marketplace(marketplace)
    if market.minor_units == 0:
        return f"{amount:,} {market.currency}"
    whole, part = divmod(amount, 10**market.minor_units)
    return f"{whole:,}.{part:0{market.minor_units}d} {market.currency}"


def _prepare(data_dir: Path) -> sessionmaker[Session]:
    if data_dir.exists():
        shutil.rmtree(data_dir)
    os.environ["GIFTQ_DATA_DIR"] = str(data_dir)
    os.environ.pop("GIFTQ_DATABASE_URL", None)
    reset_settings()
    url = get_settings().sqlalchemy_url
    migrate.upgrade(url)
    return sessionmaker(make_engine(url), expire_on_commit=False)


def run_ledger_demo(Session: sessionmaker[Session]) -> ledger.ReconciliationReport:
    console.rule("[bold]Issue")
    with Session.begin() as session:
        cards = ledger.issue_cards(
            session,
            [
                ledger.CardSpec("US", 5000, reference="demo:birthday"),
                ledger.CardSpec("DE", 2500, reference="demo:thanks"),
                ledger.CardSpec("JP", 3000, active=False, reference="demo:physical"),
            ],
            idempotency_key="demo:issue",
        )
    table = Table("card", "marketplace", "amount", "status", "as ops see it")
    for card in cards:
        table.add_row(
            str(card.card_id),
            card.marketplace,
            _money(card.amount, card.marketplace),
            card.status,
            str(card.code),
        )
    console.print(table)
    gift = cards[0]
    console.print(f"The recipient's email shows the code [bold]{gift.code.reveal()}[/bold].")

    console.rule("[bold]Redeem")
    typo = gift.code.reveal().replace("-", " ").lower()
    typo = typo[:3] + ("2" if typo[3] != "2" else "3") + typo[4:]
    for label, attempt, key in [
        ("a typo", typo, "demo:redeem:typo"),
        (
            "the real code, lower case with spaces",
            gift.code.reveal().replace("-", " ").lower(),
            "demo:redeem",
        ),
        ("the same code again", gift.code.reveal(), "demo:redeem:again"),
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
        assert hold.checkout_id is not None
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
    Session = _prepare(data_dir.resolve())
    report = run_ledger_demo(Session)
    if not report.ok:
        raise typer.Exit(1)
