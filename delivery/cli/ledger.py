"""``giftq ledger``: balances, history, reconciliation; voiding and activating a card.

Look-ups print a table or ``--json``; amounts in JSON are integer minor units with their
currency. ``void`` and ``activate`` are ops actions: audited, ``--dry-run``, and ``void``
asks first (or takes ``--yes``). ``reconcile`` exits 3 when anything is off.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from sqlalchemy.orm import Session

import ledger
from delivery.cli import rates
from delivery.cli.output import Column, emit_json, money, report_action, say, show, table, when
from delivery.cli.runner import (
    ActorOption,
    DebugOption,
    DryRunOption,
    JsonOption,
    YesOption,
    act,
    fail,
    reading,
)
from delivery.ops import cards

app = typer.Typer(help="The ledger: balances, history, reconciliation, voiding a card.", no_args_is_help=True)

app.add_typer(rates.app, name="rates")

NOT_RECONCILED = 3
"""The exit status of ``reconcile`` when the books do not balance (1 is an error)."""

Account = Annotated[str, typer.Argument(help="The recipient account (the storefront's customer reference).")]
Marketplace = Annotated[str, typer.Option("--marketplace", "-m", help="The marketplace (US, CA, UK, ...).")]


def _instant(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    try:
        at = dt.datetime.fromisoformat(text)
    except ValueError:
        fail(f"--at {text!r} is not an ISO 8601 time (like 2026-05-01T00:00:00Z)", 2)
    if at.tzinfo is None:
        fail(f"--at {text!r} has no zone: add Z for UTC, or an offset like +02:00", 2)
    return at.astimezone(dt.UTC)


@app.command()
def balance(
    account: Account,
    marketplace: Marketplace,
    *,
    at: Annotated[str | None, typer.Option("--at", help="As it stood then (ISO 8601 with a zone).")] = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """A recipient account's balance, now or at a past instant."""
    instant = _instant(at)
    with reading(debug=debug) as session:
        found = ledger.balance(session, account=account, marketplace=marketplace.upper(), at=instant)
    if json:
        emit_json(found)
        return
    moment = f"at {when(found.at)} UTC" if found.at else "now"
    say(f"account {found.account} in {found.marketplace}: {money(found.amount, found.marketplace)} {moment}")


@app.command()
def history(
    account: Account,
    marketplace: Marketplace,
    *,
    limit: Annotated[int, typer.Option(help="At most this many entries (1-500), newest first.")] = 50,
    cursor: Annotated[str | None, typer.Option(help="The next page: the cursor a page printed.")] = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """A recipient account's entries, newest first, each with the balance after it."""
    market = marketplace.upper()
    with reading(debug=debug) as session:
        page = ledger.history(session, account=account, marketplace=market, cursor=cursor, limit=limit)
    if json:
        emit_json(page)
        return
    columns = [
        Column("entry", whole=True),
        Column("transaction", whole=True),
        Column("kind"),
        Column("amount", whole=True),
        Column("balance after", whole=True),
        Column("posted", whole=True),
    ]
    rows = [
        [
            str(i.entry_id),
            str(i.transaction_id),
            i.kind,
            money(i.amount, market),
            money(i.balance_after, market),
            when(i.posted_at),
        ]
        for i in page.items
    ]
    show(table(f"{len(rows)} entries of {account} in {market}", columns, rows))
    if page.next_cursor:
        say(f"more: --cursor {page.next_cursor}")


def _units(amount: int, currency: str) -> str:
    # Reconciliation is per currency (EUR is shared by DE and FR): any marketplace of it
    # gives the minor units; the currency has its own column.
    market = next(m for m in ledger.MARKETPLACES.values() if m.currency == currency)
    return money(amount, market.code).removesuffix(f" {currency}")


@app.command()
def reconcile(json: JsonOption = False, debug: DebugOption = False) -> None:
    """Where every unit of money is, per currency; exit 3 if anything does not add up."""
    with reading(debug=debug) as session:
        report = ledger.reconcile(session)
    if json:
        emit_json(
            {
                "ok": report.ok,
                "currencies": [
                    {
                        "currency": t.currency,
                        "card": t.card,
                        "wallet": t.wallet,
                        "hold": t.hold,
                        "revenue": t.revenue,
                        "funding": t.funding,
                        "breakage": t.breakage,
                        "outstanding_liability": t.outstanding_liability,
                        "total": t.total,
                    }
                    for t in report.currencies
                ],
                "problems": report.problems,
            }
        )
    else:
        columns = [Column("currency", whole=True)] + [
            Column(name, whole=True)
            for name in ("cards", "wallets", "holds", "revenue", "funding", "breakage", "sum")
        ]
        rows = [
            [t.currency]
            + [
                _units(v, t.currency)
                for v in (t.card, t.wallet, t.hold, t.revenue, t.funding, t.breakage, t.total)
            ]
            for t in report.currencies
        ]
        show(table("reconciliation", columns, rows))
        for problem in report.problems:
            say(f"problem: {problem}")
        say("reconciled: every currency sums to zero" if report.ok else "NOT reconciled")
    if not report.ok:
        raise typer.Exit(NOT_RECONCILED)


def _card_line(view: ledger.CardView) -> str:
    return f"card {view.card_id} {view.status}, {money(view.amount, view.marketplace)}"


@app.command()
def void(
    card_id: Annotated[int, typer.Argument(metavar="CARD", help="The card's id.")],
    *,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Void an unredeemed card: its value goes back to funding, its unsent gifts stop."""

    def describe(r: cards.VoidReport) -> str:
        stopped = " ".join(map(str, r.cancelled_deliveries)) or "none"
        return f"voided {_card_line(r.card)}; deliveries stopped: {stopped}"

    def do(session: Session) -> cards.VoidReport:
        return cards.void(session, card_id)

    report = act(
        "ledger void",
        {"card": card_id},
        do,
        describe,
        actor=actor,
        dry_run=dry_run,
        confirm=f"Void card {card_id}? Its code stops working for good.",
        yes=yes,
        debug=debug,
    )
    report_action(json, dry_run, describe(report), report)


@app.command()
def activate(
    card_id: Annotated[int, typer.Argument(metavar="CARD", help="The card's id.")],
    *,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Activate a physical card that arrived without the vendor's report."""

    def do(session: Session) -> ledger.CardView:
        return cards.activate(session, card_id)

    def describe(view: ledger.CardView) -> str:
        return f"activated {_card_line(view)}"

    view = act("ledger activate", {"card": card_id}, do, describe, actor=actor, dry_run=dry_run, debug=debug)
    report_action(json, dry_run, describe(view), view)
