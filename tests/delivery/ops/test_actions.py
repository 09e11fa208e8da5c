from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import ops, place_order
from delivery.errors import NotFound, OpsRefused
from delivery.models import Delivery, Order, OrderLine
from delivery.ops import lookups
from giftq.db import utcnow
from ledger import get_card, redeem
from ledger.errors import CardVoided


def gift(Session: sessionmaker[Session], address: str) -> Delivery:
    with Session() as s:
        return s.scalars(
            select(Delivery)
            .where(Delivery.kind == "gift", Delivery.to_address == address)
            .order_by(Delivery.id)
        ).all()[-1]


def test_failures_are_listed_and_replayed_once_the_address_is_cleared(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    smtp.script["r0@example.com"] = ["550 5.1.1 mailbox full for good"]
    issued_order()
    run_queued(Session)
    with Session() as s:
        (failure,) = lookups.list_failures(s)
    assert (failure.kind, failure.status, failure.to_address) == (
        "gift",
        "failed_permanent",
        "r0@example.com",
    )
    assert "mailbox full" in (failure.last_error or "")

    with (
        pytest.raises(OpsRefused, match=r"suppressed.*giftq ops unsuppress r0@example\.com"),
        Session.begin() as s,
    ):
        ops.replay(s, failure.id)
    with Session.begin() as s:
        assert ops.unsuppress(s, "R0@example.com")
        assert not ops.unsuppress(s, "R0@example.com")
    with Session.begin() as s:
        assert ops.replay(s, failure.id).status == "queued"
    run_queued(Session)
    assert len(smtp.to("r0@example.com")) == 1
    with Session() as s:
        assert lookups.list_failures(s) == []
        with pytest.raises(OpsRefused, match="only final failures"):
            ops.replay(s, failure.id)


def test_resend_to_a_corrected_address(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    smtp.script["r0@example.com"] = ["550 5.1.1 no such user"]
    issued_order()
    run_queued(Session)
    failed = gift(Session, "r0@example.com")
    with pytest.raises(OpsRefused, match="email: "), Session.begin() as s:
        ops.resend(s, failed.id, email="not an address")
    with Session.begin() as s:
        view = ops.resend(s, failed.id, email="robin.r@example.com")
    assert (view.status, view.parent_id, view.to_address) == ("queued", failed.id, "robin.r@example.com")
    run_queued(Session)
    (message,) = smtp.to("robin.r@example.com")
    (code,) = conftest.codes_in(message)
    with Session.begin() as s:
        assert (
            redeem(s, code, account="robin", marketplace="US", idempotency_key="r1").card_id == failed.card_id
        )


def test_resend_cancels_a_pending_original(Session: sessionmaker[Session], issued_order: Any) -> None:
    issued_order()
    original = gift(Session, "r0@example.com")
    assert original.status == "queued"
    with Session.begin() as s:
        ops.resend(s, original.id, email="fixed@example.com")
    assert gift(Session, "r0@example.com").status == "cancelled"


def test_reissue_voids_the_old_code_and_delivers_a_new_one(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    issued_order()
    run_queued(Session)
    (old_code,) = conftest.codes_in(smtp.to("r0@example.com")[0])
    sent = gift(Session, "r0@example.com")
    with Session.begin() as s:
        view = ops.reissue(s, sent.line_id or 0, email="right@example.com")
    assert view.card != f"#{sent.card_id}"
    run_queued(Session)
    (new_code,) = conftest.codes_in(smtp.to("right@example.com")[0])
    assert new_code != old_code
    with pytest.raises(CardVoided), Session.begin() as s:
        redeem(s, old_code, account="eve", marketplace="US", idempotency_key="r-old")
    with Session.begin() as s:
        assert redeem(s, new_code, account="robin", marketplace="US", idempotency_key="r-new").amount == 2500
        line = s.get_one(OrderLine, sent.line_id)
        assert line.card_id != sent.card_id
        assert (view.card or "").startswith(f"#{line.card_id} ")
        # Once redeemed, a card cannot be reissued.
        with pytest.raises(OpsRefused, match="redeemed"):
            ops.reissue(s, line.id)


def test_cancel_stops_what_is_not_sent_and_voids_those_cards(
    run_queued: Any, Session: sessionmaker[Session], order_payload: Any, smtp: Any
) -> None:
    later = (utcnow() + dt.timedelta(days=10)).replace(tzinfo=None, microsecond=0).isoformat()
    payload = order_payload(lines=2)
    payload["lines"][1]["send_at"] = {"local_time": later, "zone": "Europe/Paris"}
    placed = place_order(payload, idempotency_key="c1")
    from delivery.orders import processing

    with Session.begin() as s:
        processing.issue_next_chunk(s, placed.order_id)
    run_queued(Session)
    with Session.begin() as s:
        report = ops.cancel_order(s, placed.order_id)
    sent, scheduled = gift(Session, "r0@example.com"), gift(Session, "r1@example.com")
    assert report.kept_cards == [sent.card_id]
    assert report.voided_cards == [scheduled.card_id]
    assert report.cancelled_deliveries == [scheduled.id]
    with Session() as s:
        assert get_card(s, scheduled.card_id or 0).status == "voided"
        assert get_card(s, sent.card_id or 0).status == "active"
        assert s.get_one(Order, placed.order_id).status == "cancelled"
        with pytest.raises(OpsRefused, match="already cancelled"):
            ops.cancel_order(s, placed.order_id)


def test_cancel_before_issuance_means_no_card_at_all(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    from delivery.orders import processing

    placed = place_order(order_payload(), idempotency_key="c2")
    with Session.begin() as s:
        assert ops.cancel_order(s, placed.order_id).voided_cards == []
    with Session.begin() as s:
        assert processing.issue_next_chunk(s, placed.order_id).issued == 0


def test_lookups_are_masked(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    order_id = issued_order(lines=2)
    run_queued(Session)
    (code,) = conftest.codes_in(smtp.to("r0@example.com")[0])
    with Session() as s:
        view = lookups.lookup_order(s, order_id)
        assert (view.lines[0].card or "").endswith(code[-4:])
        assert "••••" in (view.lines[0].card or "")
        card_id = s.scalars(select(OrderLine.card_id).where(OrderLine.position == 0)).one() or 0
        card = lookups.lookup_card(s, card_id)
    assert code not in repr(view) and code not in repr(card)
    assert card.masked_code.endswith(code[-4:])
    assert [d.kind for d in card.deliveries] == ["gift"]
    assert card.deliveries[0].log[0].outcome == "accepted"
    assert {d.kind for d in view.deliveries} == {"gift", "confirmation"}
    with Session() as s, pytest.raises(NotFound):
        lookups.lookup_order(s, 424242)


def test_nothing_is_done_to_a_send_in_flight(Session: sessionmaker[Session], issued_order: Any) -> None:
    issued_order()
    in_flight = gift(Session, "r0@example.com")
    with Session.begin() as s:
        s.execute(update(Delivery).where(Delivery.id == in_flight.id).values(status="sending"))
    with pytest.raises(OpsRefused, match="being sent"), Session.begin() as s:
        ops.resend(s, in_flight.id, email="x@example.com")
    with pytest.raises(OpsRefused, match="being sent"), Session.begin() as s:
        ops.reissue(s, in_flight.line_id or 0)


def test_cancel_stops_a_queued_resend_of_a_sent_card(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    order_id = issued_order()
    run_queued(Session)
    sent = gift(Session, "r0@example.com")
    with Session.begin() as s:
        resent = ops.resend(s, sent.id, email="again@example.com")
    with Session.begin() as s:
        report = ops.cancel_order(s, order_id)
    run_queued(Session)
    assert smtp.to("again@example.com") == []
    assert resent.id in report.cancelled_deliveries
    assert report.kept_cards == [sent.card_id]
    assert report.voided_cards == []
    with Session() as s:
        assert s.get_one(Delivery, resent.id).status == "cancelled"
        assert get_card(s, sent.card_id or 0).status == "active"


def test_cancel_reports_a_reissued_card_as_voided_not_as_sent(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    order_id = issued_order()
    run_queued(Session)
    sent = gift(Session, "r0@example.com")
    with Session.begin() as s:
        ops.reissue(s, sent.line_id or 0, email="right@example.com")
    with Session() as s:
        new_card = s.get_one(OrderLine, sent.line_id).card_id
    with Session.begin() as s:
        report = ops.cancel_order(s, order_id)
    run_queued(Session)
    assert smtp.to("right@example.com") == []
    assert report.kept_cards == []
    assert report.voided_cards == [new_card]
    assert report.already_voided_cards == [sent.card_id]


def test_cancel_reports_a_redeemed_card_as_redeemed(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    order_id = issued_order()
    run_queued(Session)
    (code,) = conftest.codes_in(smtp.to("r0@example.com")[0])
    sent = gift(Session, "r0@example.com")
    with Session.begin() as s:
        redeem(s, code, account="robin", marketplace="US", idempotency_key="red-1")
    with Session.begin() as s:
        report = ops.cancel_order(s, order_id)
    assert (report.redeemed_cards, report.kept_cards, report.voided_cards) == ([sent.card_id], [], [])


def test_resend_refuses_a_redeemed_or_voided_card(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    smtp.script["r1@example.com"] = ["550 5.1.1 no such user"]
    issued_order(lines=2)
    run_queued(Session)
    (code,) = conftest.codes_in(smtp.to("r0@example.com")[0])
    redeemed, failed = gift(Session, "r0@example.com"), gift(Session, "r1@example.com")
    assert failed.status == "failed_permanent"
    with Session.begin() as s:
        redeem(s, code, account="robin", marketplace="US", idempotency_key="red-2")
    with pytest.raises(OpsRefused, match=r"redeemed.*nothing to resend"), Session.begin() as s:
        ops.resend(s, redeemed.id, email="again@example.com")
    with Session.begin() as s:
        ops.cancel_order(s, failed.order_id)
    with pytest.raises(OpsRefused, match=r"voided"), Session.begin() as s:
        ops.resend(s, failed.id, email="again@example.com")
    with pytest.raises(OpsRefused, match=r"voided"), Session.begin() as s:
        ops.replay(s, failed.id)
    with Session() as s:
        assert s.scalars(select(Delivery).where(Delivery.to_address == "again@example.com")).all() == []


def test_replay_refuses_an_address_that_can_never_be_sent_to(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    issued_order()
    stuck = gift(Session, "r0@example.com")
    # A row written before intake refused non-ASCII mailbox names.
    with Session.begin() as s:
        s.execute(
            update(Delivery)
            .where(Delivery.id == stuck.id)
            .values(to_address="jörg@example.com", status="failed_permanent")
        )
    refusal = r"can never be sent.*must be ASCII.*ops resend"
    with pytest.raises(OpsRefused, match=refusal), Session.begin() as s:
        ops.replay(s, stuck.id)
    with Session() as s:
        assert s.get_one(Delivery, stuck.id).status == "failed_permanent"
    with pytest.raises(OpsRefused, match=r"email: .*must be ASCII"), Session.begin() as s:
        ops.resend(s, stuck.id, email="jörg@example.com")
    with Session.begin() as s:
        assert ops.resend(s, stuck.id, email="jorg@bücher.de").to_address == "jorg@xn--bcher-kva.de"


def test_a_failure_settled_by_a_reissue_is_no_longer_listed(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    smtp.script["r0@example.com"] = ["550 5.1.1 no such user"]
    issued_order()
    run_queued(Session)
    failed = gift(Session, "r0@example.com")
    with Session() as s:
        assert [v.id for v in lookups.list_failures(s)] == [failed.id]
    with Session.begin() as s:
        ops.reissue(s, failed.line_id or 0, email="right@example.com")
    with Session() as s:
        assert lookups.list_failures(s) == []
