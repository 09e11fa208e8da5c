"""Ops actions through the real CLI: they ask first (or take --yes, and are refused when
nobody can be asked), --dry-run changes and queues nothing, every action and refusal
is in the audit log, and an unexpected error is one line unless --debug."""

from __future__ import annotations

import getpass
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import ledger
from delivery import ops
from delivery.cli import app, runner
from delivery.models import Delivery, Order, OrderLine
from delivery.ops.models import AuditEntry


def cli(*args: str, input: str | None = None) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"}, input=input)


def audit_rows(Session: sessionmaker[Session]) -> list[AuditEntry]:
    with Session() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def snapshot(Session: sessionmaker[Session]) -> tuple[Any, ...]:
    with Session() as s:
        return (
            s.scalars(select(Order.status)).all(),
            s.execute(select(Delivery.id, Delivery.status, Delivery.to_address).order_by(Delivery.id)).all(),
            s.execute(select(OrderLine.id, OrderLine.card_id)).all(),
            [(c, ledger.get_card(s, c).status) for c in s.scalars(select(OrderLine.card_id))],
            s.scalar(select(func.count()).select_from(AuditEntry)),
        )


def test_dry_run_shows_what_would_happen_and_changes_and_queues_nothing(
    Session: sessionmaker[Session], issued_order: Any, broker_messages: Any
) -> None:
    order_id = issued_order()
    broker_messages("email")
    with Session() as s:
        line_id, card_id = s.execute(select(OrderLine.id, OrderLine.card_id)).one()
        gift_id = s.scalars(select(Delivery.id).where(Delivery.kind == "gift")).one()
    before = snapshot(Session)

    for args in (
        ["ops", "reissue", str(line_id), "--email", "right@example.com"],
        ["ops", "resend", str(gift_id), "--email", "right@example.com"],
        ["ops", "cancel", str(order_id)],
        ["ledger", "void", str(card_id)],
    ):
        tried = cli(*args, "--dry-run")
        assert tried.exit_code == 0, tried.output
        assert tried.output.startswith("dry run, nothing changed: would have ")
        assert snapshot(Session) == before
        assert broker_messages("email") == []

    cancelled = json.loads(cli("ops", "cancel", str(order_id), "--dry-run", "--json").stdout)
    assert cancelled == {
        "dry_run": True,
        "result": {
            "order_id": order_id,
            "cancelled_deliveries": [gift_id],
            "voided_cards": [card_id],
            "kept_cards": [],
            "redeemed_cards": [],
            "already_voided_cards": [],
            "expired_cards": [],
        },
    }
    assert snapshot(Session) == before

    # The same action for real does what the dry run said.
    reissued = cli("ops", "reissue", str(line_id), "--email", "right@example.com", "--yes")
    assert reissued.exit_code == 0, reissued.output
    assert snapshot(Session) != before
    assert [kwargs for _task, kwargs in broker_messages("email")]


DESTRUCTIVE = [
    ["ops", "cancel", "{order}"],
    ["ops", "reissue", "{line}"],
    ["ops", "resend", "{gift}", "--email", "right@example.com"],
    ["ops", "replay", "--all"],
    ["ledger", "void", "{card}"],
]


@pytest.mark.parametrize("command", DESTRUCTIVE, ids=lambda c: " ".join(c[:2]))
def test_destructive_commands_are_refused_without_yes_when_nobody_can_be_asked(
    Session: sessionmaker[Session], issued_order: Any, command: list[str]
) -> None:
    order_id = issued_order()
    with Session() as s:
        line_id, card_id = s.execute(select(OrderLine.id, OrderLine.card_id)).one()
        gift_id = s.scalars(select(Delivery.id).where(Delivery.kind == "gift")).one()
    args = [a.format(order=order_id, line=line_id, card=card_id, gift=gift_id) for a in command]
    before = snapshot(Session)

    refused = cli(*args)

    assert refused.exit_code == 1
    assert refused.output.startswith("error: ") and "--yes" in refused.output
    assert len(refused.output.splitlines()) == 1
    after = snapshot(Session)
    assert after[:4] == before[:4]
    (entry,) = audit_rows(Session)
    assert (entry.action, entry.outcome) == (" ".join(command[:2]), "refused")
    assert entry.detail == "not confirmed: no terminal to ask, and no --yes"


def test_at_a_terminal_the_action_asks_first(
    Session: sessionmaker[Session], issued_order: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner, "interactive", lambda: True)
    order_id = issued_order()

    declined = cli("ops", "cancel", str(order_id), input="n\n")
    assert declined.exit_code == 1
    assert f"Cancel order {order_id}" in declined.output
    assert "error: not confirmed; nothing changed" in declined.output
    with Session() as s:
        assert s.scalars(select(Order.status)).one() != "cancelled"

    confirmed = cli("ops", "cancel", str(order_id), input="y\n")
    assert confirmed.exit_code == 0, confirmed.output
    with Session() as s:
        assert s.scalars(select(Order.status)).one() == "cancelled"
    assert [(e.outcome, e.detail.split(":")[0]) for e in audit_rows(Session)] == [
        ("refused", "not confirmed"),
        ("done", f"cancelled order {order_id}"),
    ]


def test_every_action_and_refusal_is_audited_with_who_what_and_the_result(
    Session: sessionmaker[Session], issued_order: Any
) -> None:
    order_id = issued_order()
    with Session() as s:
        card_id = s.scalars(select(OrderLine.card_id)).one()

    assert cli("ops", "cancel", str(order_id), "--yes", "--actor", "alice").exit_code == 0
    again = cli("ops", "cancel", str(order_id), "--yes")
    assert again.exit_code == 1
    assert again.output == f"error: order {order_id} is already cancelled\n"
    voided = cli("ledger", "void", str(card_id), "--yes", "--actor", "bob")
    assert voided.exit_code == 1 and "voided" in voided.output
    assert cli("ops", "unsuppress", "someone@example.com").exit_code == 0

    done, refused, void_refused, cleared = audit_rows(Session)
    assert (done.actor, done.action, done.arguments, done.outcome) == (
        "alice",
        "ops cancel",
        {"order": order_id},
        "done",
    )
    assert done.detail.startswith(
        f"cancelled order {order_id}: 1 deliveries stopped, cards voided: {card_id}"
    )
    assert (refused.actor, refused.outcome, refused.detail) == (
        getpass.getuser(),
        "refused",
        f"order {order_id} is already cancelled",
    )
    assert (void_refused.actor, void_refused.action, void_refused.outcome) == (
        "bob",
        "ledger void",
        "refused",
    )
    assert (cleared.action, cleared.detail) == ("ops unsuppress", "someone@example.com was not suppressed")

    listed = cli("ops", "audit", "--json", "--limit", "3")
    assert listed.exit_code == 0, listed.output
    assert [e["id"] for e in json.loads(listed.stdout)] == [cleared.id, void_refused.id, refused.id]
    table = cli("ops", "audit")
    assert "alice" in table.output and "already cancelled" in table.output


def test_an_unexpected_error_is_one_line_unless_debug(
    Session: sessionmaker[Session], issued_order: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = issued_order()

    def broken(session: Session, order_id: int) -> ops.CancelReport:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(ops, "cancel_order", broken)

    quiet = cli("ops", "cancel", str(order_id), "--yes")
    assert quiet.exit_code == 1
    assert quiet.output == (
        "error: unexpected RuntimeError: the disk is on fire (run with --debug for the traceback)\n"
    )
    loud = cli("ops", "cancel", str(order_id), "--yes", "--debug")
    assert isinstance(loud.exception, RuntimeError)
    assert [(e.outcome, e.detail) for e in audit_rows(Session)] == [
        ("failed", "RuntimeError: the disk is on fire")
    ] * 2
