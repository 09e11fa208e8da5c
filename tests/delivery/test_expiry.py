"""Expiry through the pipeline (both engines): what the gift email discloses, the expiry job
(value to breakage, unsent gifts stopped, reminders once), reinstatement delivered like a
reissue, and the ops commands that do it by hand, audited."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from delivery import ops
from delivery.cli import app
from delivery.errors import OpsRefused
from delivery.expiry import jobs
from delivery.expiry.models import ExpiryReminder
from delivery.models import Delivery, OrderLine
from delivery.ops.models import AuditEntry
from ledger import get_card, last_valid_day, reconcile, redeem
from ledger.errors import CardExpired
from ledger.models import Card


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "80"})


def cards(Session: sessionmaker[Session]) -> list[Any]:
    with Session() as s:
        return [get_card(s, c) for c in s.scalars(select(OrderLine.card_id).order_by(OrderLine.id))]


def kinds(Session: sessionmaker[Session]) -> list[tuple[str, str, str | None]]:
    with Session() as s:
        rows = s.execute(select(Delivery.kind, Delivery.status, Delivery.to_address).order_by(Delivery.id))
        return [(str(k), str(st), a) for k, st, a in rows]


def test_the_gift_email_states_the_expiry_or_that_there_is_none_and_the_terms(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    issued_order(origin="promotional")
    issued_order(marketplace="DE", amount=3000)  # purchased in Germany: to the end of the third year
    run_queued(Session)
    promo, german = cards(Session)
    assert promo.origin == "promotional" and promo.expires_at is not None
    (first, second) = smtp.to("r0@example.com")
    promo_text, german_text = conftest.text_of(first), conftest.text_of(second)
    day = last_valid_day(promo.expires_at)
    assert f"This gift card is valid until {day:%B} {day.day}, {day.year}." in " ".join(promo_text.split())
    assert "Terms: http://localhost:8000/us/terms" in " ".join(promo_text.split())
    german_day = last_valid_day(german.expires_at)
    assert german_day == dt.date(german.issued_at.year + 3, 12, 31)
    assert f"gültig bis zum 31. Dezember {german_day.year}." in " ".join(german_text.split())
    assert "Bedingungen: http://localhost:8000/de/terms" in " ".join(german_text.split())
    html = next(p for p in first.walk() if p.get_content_type() == "text/html").get_content()
    assert 'class="disclosure"' in html and 'href="http://localhost:8000/us/terms"' in html


def test_a_purchased_us_gift_says_it_does_not_expire(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    issued_order()
    run_queued(Session)
    (card,) = cards(Session)
    assert (card.origin, card.expires_at) == ("purchased", None)
    (message,) = smtp.to("r0@example.com")
    assert "This gift card does not expire. Terms: http://localhost:8000/us/terms" in " ".join(
        conftest.text_of(message).split()
    )


def test_reminders_go_once_then_due_cards_expire_and_their_unsent_gifts_stop(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    issued_order(lines=2, origin="promotional")
    run_queued(Session)
    # A third card whose gift waits for its send time (a year ahead): never sent.
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=300)).strftime("%Y-%m-%dT09:00")
    issued_order(origin="promotional", send_at={"local_time": later, "zone": "UTC"})
    first, _second, waiting = cards(Session)
    stops = first.expires_at
    assert stops is not None

    # Long before the expiry: nothing to remind yet.
    with Session.begin() as s:
        assert jobs.run(s, now=stops - dt.timedelta(days=60)).reminders == []
    # Within 30 days: one reminder per sent gift, by email, to where the gift went.
    with Session.begin() as s:
        report = jobs.run(s, now=stops - dt.timedelta(days=10))
    assert len(report.reminders) == 2 and report.expired_cards == []
    with Session.begin() as s:
        assert jobs.run(s, now=stops - dt.timedelta(days=5)).reminders == []  # never twice
        assert s.scalar(select(func.count()).select_from(ExpiryReminder)) == 2
    run_queued(Session)
    (_gift, reminder) = smtp.to("r0@example.com")
    text = " ".join(conftest.text_of(reminder).split())
    day = last_valid_day(stops)
    assert reminder["Subject"] == f"Your $25.00 gift card is valid until {day:%B} {day.day}, {day.year}"
    assert f"(the card ending {first.last4})" in text
    assert conftest.codes_in(reminder) == []  # the code is never sent again
    assert "Terms: http://localhost:8000/us/terms" in text
    with Session() as s:
        notices = s.scalar(
            select(func.count()).select_from(Delivery).where(Delivery.kind == "delivered_notice")
        )
    # Gifts sent at once came with their receipt (GIFTQ_NOTICES=later): no "sent" notice;
    # and a reminder tells the purchaser nothing.
    assert notices == 0

    # The second card is redeemed: its value is the customer's, and expiry never touches it.
    code = conftest.codes_in(smtp.to("r1@example.com")[0])[0]
    with Session.begin() as s:
        redeem(s, code, account="robin", marketplace="US", idempotency_key="r-1")
    with Session.begin() as s:
        report = jobs.run(s, now=stops + dt.timedelta(minutes=1))
    assert sorted(report.expired_cards) == sorted([first.card_id, waiting.card_id])
    assert len(report.cancelled_deliveries) == 1
    first_now, second_now, waiting_now = cards(Session)
    assert (first_now.status, second_now.status, waiting_now.status) == ("expired", "redeemed", "expired")
    assert ("gift", "cancelled", "r0@example.com") in kinds(Session)
    with Session() as s:
        usd = next(t for t in reconcile(s).currencies if t.currency == "USD")
        assert reconcile(s).ok
    assert (usd.breakage, usd.wallet, usd.card) == (5000, 2500, 0)
    with Session.begin() as s:
        assert jobs.run(s, now=stops + dt.timedelta(days=1)).expired_cards == []


def test_reinstating_delivers_a_new_code_of_the_same_value_once(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    issued_order(origin="promotional", amount=1500)
    run_queued(Session)
    (card,) = cards(Session)
    old_code = conftest.codes_in(smtp.to("r0@example.com")[0])[0]
    with pytest.raises(OpsRefused, match="only an expired card is reinstated"), Session.begin() as s:
        ops.reinstate(s, card.card_id)
    with Session.begin() as s:
        jobs.run(s, now=card.expires_at + dt.timedelta(seconds=1))
    with Session.begin() as s:
        view = ops.reinstate(s, card.card_id, email="robin.new@example.com")
    assert (view.kind, view.status, view.to_address) == ("gift", "queued", "robin.new@example.com")
    run_queued(Session)
    (message,) = smtp.to("robin.new@example.com")
    (new_code,) = conftest.codes_in(message)
    assert new_code != old_code
    assert "This gift card is valid until" in " ".join(conftest.text_of(message).split())
    with Session.begin() as s:
        assert redeem(s, new_code, account="robin", marketplace="US", idempotency_key="n").amount == 1500
    with pytest.raises(CardExpired), Session.begin() as s:
        redeem(s, old_code, account="robin", marketplace="US", idempotency_key="o")
    with pytest.raises(OpsRefused, match="reinstated before"), Session.begin() as s:
        ops.reinstate(s, card.card_id)
    with Session() as s:
        assert reconcile(s).ok


def test_ops_commands_expire_and_reinstate_with_dry_run_and_audit(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    issued_order(origin="promotional")
    run_queued(Session)
    (card,) = cards(Session)
    # Make the card due now, as time would.
    with Session.begin() as s:
        s.get_one(Card, card.card_id).expires_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)

    tried = cli("ops", "expire", "--dry-run", "--json")
    assert tried.exit_code == 0, tried.output
    assert json.loads(tried.output)["result"]["expired_cards"] == [card.card_id]
    assert cards(Session)[0].status == "active"
    done = cli("ops", "expire", "--actor", "ops-ann")
    assert done.exit_code == 0, done.output
    assert f"expired cards: {card.card_id}" in done.output
    assert cards(Session)[0].status == "expired"
    shown = cli("ops", "card", str(card.card_id))
    assert "promotional; expires" in shown.output and f"(giftq ops reinstate {card.card_id})" in shown.output
    totals = json.loads(cli("ledger", "reconcile", "--json").output)
    assert totals["ok"] and totals["currencies"][0]["breakage"] == 2500

    again = cli("ops", "reinstate", str(card.card_id), "--yes", "--actor", "ops-ann")
    assert again.exit_code == 0, again.output
    assert f"reinstated card {card.card_id} as new card" in again.output
    refused = cli("ops", "reinstate", str(card.card_id), "--yes", "--actor", "ops-ann")
    assert refused.exit_code == 1 and "error:" in refused.output
    with Session() as s:
        audit = s.execute(select(AuditEntry.action, AuditEntry.outcome).order_by(AuditEntry.id)).all()
    assert [(a, str(o)) for a, o in audit] == [
        ("ops expire", "done"),
        ("ops reinstate", "done"),
        ("ops reinstate", "refused"),
    ]


def test_an_order_line_names_its_origin_or_is_purchased_and_a_bad_one_is_named() -> None:
    from delivery.errors import InvalidOrder
    from delivery.orders.schemas import order_json_schema, parse_order
    from tests.delivery.conftest import make_order

    assert parse_order(make_order()).lines[0].origin == "purchased"
    assert parse_order(make_order(origin="promotional")).lines[0].origin == "promotional"
    with pytest.raises(InvalidOrder) as refused:
        parse_order(make_order(origin="free"))
    assert [e.path for e in refused.value.errors] == ["lines.0.origin"]
    line_schema = order_json_schema()["$defs"]["OrderLine"]["properties"]["origin"]
    assert line_schema["default"] == "purchased"


def test_an_expired_card_is_not_resent_reissued_or_voided_by_a_cancel(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    order_id = issued_order(origin="promotional")
    run_queued(Session)
    (card,) = cards(Session)
    with Session.begin() as s:
        jobs.run(s, now=card.expires_at + dt.timedelta(seconds=1))
    with Session() as s:
        gift = s.scalars(select(Delivery).where(Delivery.kind == "gift")).one()
        line_id = s.scalars(select(OrderLine.id)).one()
    resent = f"expired; nothing to resend .*reinstate {card.card_id}"
    with pytest.raises(OpsRefused, match=resent), Session.begin() as s:
        ops.resend(s, gift.id, email="other@example.com")
    reissued = f"is expired; only an unredeemed.*reinstate {card.card_id}"
    with pytest.raises(OpsRefused, match=reissued), Session.begin() as s:
        ops.reissue(s, line_id)
    with Session.begin() as s:
        report = ops.cancel_order(s, order_id)
    assert (report.expired_cards, report.voided_cards) == ([card.card_id], [])
    assert cards(Session)[0].status == "expired"


def test_migration_0010_goes_down_and_up_and_refuses_to_lose_expiry_data(
    database_url: str, Session: sessionmaker[Session], issued_order: Any
) -> None:
    from giftq import migrate

    head = migrate.current(database_url)
    migrate.downgrade(database_url, "0008")
    assert migrate.current(database_url) == "0008"
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == head
    issued_order(origin="promotional")
    (card,) = cards(Session)
    with Session.begin() as s:
        jobs.run(s, now=card.expires_at + dt.timedelta(seconds=1))
    with pytest.raises(RuntimeError, match="cannot downgrade below 0010: the database holds expired cards"):
        migrate.downgrade(database_url, "0008")
    # Each revision is its own transaction: those above 0010 stepped down, 0010 refused.
    assert migrate.current(database_url) == "0010"
    assert cards(Session)[0].status == "expired"
    migrate.upgrade(database_url)
    assert migrate.current(database_url) == head
