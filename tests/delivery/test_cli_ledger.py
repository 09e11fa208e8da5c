"""``giftq ledger`` through the real CLI: balance now and then, history by cursor,
reconcile's exit status, voiding (with the card's unsent gift) and activating a card."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import ledger
from delivery.cli import app
from delivery.models import Delivery, OrderLine
from ledger.models import Account


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["ledger", *args], env={"COLUMNS": "80"})


def redeem_two(Session: sessionmaker[Session]) -> dt.datetime:
    """Two cards redeemed into customer-42 (US); returns an instant between the two."""
    with Session.begin() as s:
        first, second = ledger.issue_cards(
            s, [ledger.CardSpec("US", 2500), ledger.CardSpec("US", 1000)], idempotency_key="i"
        )
        ledger.redeem(s, first.code.reveal(), account="customer-42", marketplace="US", idempotency_key="r1")
    between = dt.datetime.now(dt.UTC)
    with Session.begin() as s:
        ledger.redeem(s, second.code.reveal(), account="customer-42", marketplace="US", idempotency_key="r2")
    return between


def test_balance_now_and_at_an_instant(Session: sessionmaker[Session]) -> None:
    between = redeem_two(Session)

    now = cli("balance", "customer-42", "--marketplace", "US")
    assert (now.exit_code, now.output) == (0, "account customer-42 in US: 35.00 USD now\n")
    then = json.loads(cli("balance", "customer-42", "-m", "us", "--at", between.isoformat(), "--json").stdout)
    assert (then["amount"], then["currency"], then["marketplace"]) == (2500, "USD", "US")

    naive = cli("balance", "customer-42", "-m", "US", "--at", "2026-05-01T00:00:00")
    assert naive.exit_code == 2
    assert (
        naive.output
        == "error: --at '2026-05-01T00:00:00' has no zone: add Z for UTC, or an offset like +02:00\n"
    )
    unknown = cli("balance", "customer-42", "-m", "XX")
    assert unknown.exit_code == 1
    assert unknown.output.startswith("error: ") and "XX" in unknown.output
    assert len(unknown.output.splitlines()) == 1


def test_history_pages_by_cursor(Session: sessionmaker[Session]) -> None:
    redeem_two(Session)

    first = json.loads(cli("history", "customer-42", "-m", "US", "--limit", "1", "--json").stdout)
    assert [(i["amount"], i["balance_after"]) for i in first["items"]] == [(1000, 3500)]
    shown = cli("history", "customer-42", "-m", "US", "--limit", "1")
    assert f"more: --cursor {first['next_cursor']}" in shown.output
    assert "10.00 USD" in shown.output and "35.00 USD" in shown.output

    rest = json.loads(
        cli("history", "customer-42", "-m", "US", "--cursor", first["next_cursor"], "--json").stdout
    )
    assert [(i["amount"], i["balance_after"]) for i in rest["items"]] == [(2500, 2500)]
    assert rest["next_cursor"] is None

    bad = cli("history", "customer-42", "-m", "US", "--cursor", "nonsense")
    assert (bad.exit_code, bad.output) == (1, "error: cursor is not one this ledger handed out\n")


def test_reconcile_exits_non_zero_when_anything_is_off(Session: sessionmaker[Session]) -> None:
    redeem_two(Session)
    good = cli("reconcile")
    assert good.exit_code == 0, good.output
    assert "reconciled: every currency sums to zero" in good.output
    report = json.loads(cli("reconcile", "--json").stdout)
    assert report["ok"] is True
    assert report["currencies"][0]["wallet"] == 3500

    with Session.begin() as s:
        wallet = s.scalars(select(Account.id).where(Account.owner == "customer-42")).one()
        # A stored balance that its entries do not explain: what a hand edit with the
        # database's guard taken off would leave.
        guard = "ledger_accounts_balance_guard"
        s.execute(
            text(f"DROP TRIGGER {guard}" + ("" if s.bind.dialect.name == "sqlite" else " ON ledger_accounts"))
        )
        s.execute(text("UPDATE ledger_accounts SET balance = balance + 1 WHERE id = :id"), {"id": wallet})

    off = cli("reconcile")
    assert off.exit_code == 3
    assert "NOT reconciled" in off.output and f"account {wallet}: stored balance 3501" in off.output
    assert json.loads(cli("reconcile", "--json").stdout)["ok"] is False


def test_void_stops_the_cards_unsent_gift_and_refuses_a_spent_card(
    Session: sessionmaker[Session], issued_order: Any
) -> None:
    issued_order()
    with Session() as s:
        card_id = s.scalars(select(OrderLine.card_id)).one()
        gift = s.scalars(select(Delivery).where(Delivery.kind == "gift")).one()
    assert gift.status == "queued"

    voided = cli("void", str(card_id), "--yes", "--json")
    assert voided.exit_code == 0, voided.output
    result = json.loads(voided.stdout)["result"]
    assert (result["card"]["status"], result["cancelled_deliveries"]) == ("voided", [gift.id])
    with Session() as s:
        assert ledger.get_card(s, card_id).status == "voided"
        assert s.get_one(Delivery, gift.id).status == "cancelled"
        assert ledger.reconcile(s).ok

    again = cli("void", str(card_id), "--yes", "--actor", "x")
    assert again.exit_code == 0  # the same ops void, asked twice, is answered as the first time
    other = cli("activate", str(card_id))
    assert other.exit_code == 1
    assert other.output == f"error: card {card_id} is voided; it cannot be activated\n"
    assert cli("void", "999999", "--yes").output == "error: no card 999999\n"


def test_activate_a_physical_card_by_hand(Session: sessionmaker[Session]) -> None:
    with Session.begin() as s:
        (card,) = ledger.issue_cards(s, [ledger.CardSpec("UK", 5000, active=False)], idempotency_key="p")

    dry = cli("activate", str(card.card_id), "--dry-run")
    assert (
        dry.output
        == f"dry run, nothing changed: would have activated card {card.card_id} active, 50.00 GBP\n"
    )
    with Session() as s:
        assert ledger.get_card(s, card.card_id).status == "inactive"

    done = cli("activate", str(card.card_id))
    assert (done.exit_code, done.output) == (0, f"activated card {card.card_id} active, 50.00 GBP\n")
    with Session() as s:
        assert ledger.get_card(s, card.card_id).status == "active"
