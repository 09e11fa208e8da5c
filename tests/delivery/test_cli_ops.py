from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from delivery import dispatch
from delivery.cli import app
from delivery.models import Delivery, OrderLine


def giftq(*args: str) -> Any:
    return CliRunner().invoke(app, ["ops", *args])


def send_queued(Session: sessionmaker[Session]) -> None:
    with Session() as s:
        ids = list(s.scalars(select(Delivery.id).where(Delivery.status == "queued")))
    dispatch.run_batch(Session, "email", ids)


def test_order_and_card_are_shown_masked(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    order_id = issued_order()
    send_queued(Session)
    (code,) = conftest.codes_in(smtp.to("r0@example.com")[0])
    shown = giftq("order", str(order_id))
    assert shown.exit_code == 0, shown.output
    assert "SHOP-1001" in shown.output and "25.00 USD" in shown.output
    assert code[-4:] in shown.output and code not in shown.output
    assert "accepted" in shown.output
    with Session() as s:
        card_id = s.scalars(select(OrderLine.card_id)).one()
    card = giftq("card", str(card_id))
    assert card.exit_code == 0, card.output
    assert f"card {card_id} ••••-••••-••••-•{code[-4:]}: active" in card.output
    assert code not in card.output


def test_failures_replay_resend(Session: sessionmaker[Session], issued_order: Any, smtp: Any) -> None:
    smtp.script["r0@example.com"] = ["550 5.1.1 unknown user"]
    issued_order()
    send_queued(Session)
    with Session() as s:
        failed = s.scalars(select(Delivery).where(Delivery.status == "failed_permanent")).one()
    listed = giftq("failures")
    assert "1 failed deliveries" in listed.output and "r0@example.com" in listed.output
    assert "r0@example.com" in giftq("suppressed").output

    refused = giftq("replay", str(failed.id))
    assert refused.exit_code == 1
    assert "suppressed" in refused.output
    assert giftq("unsuppress", "r0@example.com").output.strip() == "r0@example.com cleared"
    assert giftq("replay", "--all").output.strip() == f"replayed 1: {failed.id}"
    assert giftq("replay").exit_code == 2

    # Queued again by the replay, it can still be redirected: the queued one is cancelled.
    resent = giftq("resend", str(failed.id), "--email", "fixed@example.com")
    assert resent.exit_code == 0, resent.output
    assert "queued to fixed@example.com" in resent.output
    bad = giftq("resend", str(failed.id), "--email", "nope")
    assert bad.exit_code == 1
    assert "email: " in bad.output


def test_reissue_cancel_and_sweep(Session: sessionmaker[Session], issued_order: Any, smtp: Any) -> None:
    order_id = issued_order()
    send_queued(Session)
    with Session() as s:
        line_id = s.scalars(select(OrderLine.id)).one()
    reissued = giftq("reissue", str(line_id), "--email", "right@example.com")
    assert reissued.exit_code == 0, reissued.output
    assert "queued to right@example.com" in reissued.output
    cancelled = giftq("cancel", str(order_id))
    assert cancelled.exit_code == 0, cancelled.output
    assert f"order {order_id} cancelled: 1 deliveries stopped" in cancelled.output
    swept = giftq("sweep")
    assert swept.exit_code == 0 and "released 0 due deliveries" in swept.output


def test_unknown_ids_say_so(database_url: str) -> None:
    result = giftq("order", "999999")
    assert result.exit_code == 1
    assert "no order 999999" in result.output
