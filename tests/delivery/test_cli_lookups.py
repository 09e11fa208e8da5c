"""``giftq ops card`` / ``order`` as ops use them at 3 a.m.: a card found by the code a
customer reads out (never printed back), an order by the storefront's reference, tables
that keep ids whole at 80 columns, and ``--json`` that parses."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

import ledger
from delivery.cli import app
from delivery.models import Delivery, OrderLine


def cli(*args: str, input: str | None = None) -> Any:
    # CliRunner is not a terminal: rich takes the width from COLUMNS, as when piped.
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"}, input=input)


def issue(Session: sessionmaker[Session], *, key: str = "issue-1") -> tuple[int, str]:
    with Session.begin() as s:
        (card,) = ledger.issue_cards(s, [ledger.CardSpec("US", 2500)], idempotency_key=key)
        return card.card_id, card.code.reveal()


def look_alike(code: str) -> str:
    """The code as a customer reads it out: lower case, spaces, O for 0, I or L for 1."""
    typed = code.lower().replace("-", " ").replace("0", "O").replace("1", "l")
    return " " + typed + " "


def test_a_card_is_found_by_its_code_folded_and_the_code_is_never_printed(
    Session: sessionmaker[Session],
) -> None:
    card_id, code = issue(Session)
    plain_code = code.replace("-", "")

    for typed in (code, look_alike(code), plain_code):
        shown = cli("ops", "card", typed)
        assert shown.exit_code == 0, shown.output
        assert f"card {card_id} ••••-••••-••••-•{code[-4:]}: active, 25.00 USD" in shown.output
        assert code not in shown.output and plain_code not in shown.output

    asked = cli("ops", "card", "--code", "--json", input=look_alike(code) + "\n")
    assert asked.exit_code == 0, asked.output
    assert json.loads(asked.stdout)["card"]["card_id"] == card_id
    assert code not in asked.output and plain_code not in asked.output


def test_a_mistyped_code_is_told_apart_from_an_unknown_one_without_echoing_it(
    Session: sessionmaker[Session],
) -> None:
    _, code = issue(Session)
    # One character changed: the check character no longer matches.
    wrong = code[:2] + ("A" if code[2] != "A" else "B") + code[3:]
    mistyped = cli("ops", "card", wrong)
    assert mistyped.exit_code == 1
    assert mistyped.output.startswith("error: ") and "mistyped" in mistyped.output
    assert len(mistyped.output.splitlines()) == 1
    assert wrong not in mistyped.output and wrong.replace("-", "") not in mistyped.output

    never_issued = ledger.ClaimCode.generate().reveal()
    unknown = cli("ops", "card", never_issued)
    assert unknown.exit_code == 1
    assert unknown.output == f"error: no card has the code ending {never_issued[-4:]}\n"


def test_a_redeemed_card_shows_the_account_and_when(Session: sessionmaker[Session]) -> None:
    card_id, code = issue(Session)
    with Session.begin() as s:
        ledger.redeem(s, code, account="customer-42", marketplace="US", idempotency_key="r1")

    data = json.loads(cli("ops", "card", str(card_id), "--json").stdout)
    assert data["card"]["status"] == "redeemed"
    assert data["redeemed_by"] == "customer-42"
    assert data["card"]["redeemed_at"] is not None
    assert code not in json.dumps(data)
    shown = cli("ops", "card", str(card_id))
    assert "into account customer-42" in shown.output


def test_an_order_is_found_by_the_storefronts_reference(issued_order: Any) -> None:
    order_id = issued_order()
    by_reference = cli("ops", "order", "SHOP-1001", "--json")
    assert by_reference.exit_code == 0, by_reference.output
    assert json.loads(by_reference.stdout)["id"] == order_id
    assert f"order {order_id} (SHOP-1001)" in cli("ops", "order", "SHOP-1001").output

    unknown = cli("ops", "order", "SHOP-9999")
    assert (unknown.exit_code, unknown.output) == (1, "error: no order has the reference 'SHOP-9999'\n")

    again = issued_order(key="second")  # the same reference twice: which one is not guessed
    both = cli("ops", "order", "SHOP-1001")
    assert both.exit_code == 1
    assert f"names orders {order_id}, {again}; give an id" in both.output


def test_tables_keep_ids_addresses_and_masked_codes_whole_at_80_columns(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    address = "robin.receiver.with.a.rather.long.name@subdomain.example.com"
    smtp.script[address] = ["550 5.1.1 unknown user: the mailbox does not exist on this server"]
    order_id = issued_order(recipient={"name": "Robin Receiver-Longname", "email": address})
    run_queued(Session)
    with Session() as s:
        card_id = s.scalars(select(OrderLine.card_id)).one()
        card = ledger.get_card(s, card_id)
        delivery_ids = s.scalars(select(Delivery.id)).all()
    masked = f"#{card_id} ••••-••••-••••-•{card.last4}"

    for args in (["ops", "order", str(order_id)], ["ops", "card", str(card_id)], ["ops", "failures"]):
        shown = cli(*args)
        assert shown.exit_code == 0, shown.output
        lines = shown.output.splitlines()
        assert all(len(line) <= 80 for line in lines), shown.output
        # Whole on one line each: never wrapped, never cut.
        assert any(address in line for line in lines), shown.output
        assert any(masked in line for line in lines), shown.output
    # Each delivery is a table row starting with its id, or a block with an "id:" line.
    starts = [line.split()[:2] for line in cli("ops", "order", str(order_id)).output.splitlines()]
    for delivery_id in delivery_ids:
        assert ["id:", str(delivery_id)] in starts or [str(delivery_id)] in [s[:1] for s in starts]


@pytest.mark.parametrize(
    "command",
    [
        ["ops", "order", "{order}"],
        ["ops", "card", "{card}"],
        ["ops", "failures"],
        ["ops", "suppressed"],
        ["ops", "audit"],
        ["ledger", "balance", "customer-42", "--marketplace", "US"],
        ["ledger", "history", "customer-42", "--marketplace", "US"],
        ["ledger", "reconcile"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_every_look_up_prints_json_that_parses(
    Session: sessionmaker[Session], issued_order: Any, command: list[str]
) -> None:
    order_id = issued_order()
    with Session() as s:
        card_id = s.scalars(select(OrderLine.card_id)).one()
    args = [a.format(order=order_id, card=card_id) for a in command]
    result = cli(*args, "--json")
    assert result.exit_code == 0, result.output
    assert isinstance(json.loads(result.stdout), dict | list)
