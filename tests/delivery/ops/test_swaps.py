"""Ops swap a card into another marketplace: the ledger swaps it, the new code goes by email."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.errors import OpsRefused
from delivery.models import Delivery, OrderLine
from delivery.ops import reissue, swaps
from giftq.db import utcnow
from ledger import CardSpec, get_card, issue_cards, redeem
from ledger.errors import CardVoided
from ledger.swaps import set_rate
from ledger.swaps.models import Swap

YESTERDAY = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=1)


def _gift(Session: sessionmaker[Session], address: str) -> Delivery:
    with Session() as s:
        return s.scalars(
            select(Delivery)
            .where(Delivery.kind == "gift", Delivery.to_address == address)
            .order_by(Delivery.id)
        ).all()[-1]


def test_a_swapped_card_reaches_its_holder_by_email_in_the_new_marketplace(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    with Session.begin() as s:
        set_rate(s, "USD", "GBP", "0.79", YESTERDAY)
    issued_order()
    run_queued(Session)
    (old_code,) = conftest.codes_in(smtp.to("r0@example.com")[0])
    sent = _gift(Session, "r0@example.com")

    with Session.begin() as s:
        report = swaps.swap(s, sent.card_id or 0, marketplace="UK")
    assert (report.from_amount, report.from_currency, report.to_amount, report.to_currency) == (
        2500,
        "USD",
        1975,
        "GBP",
    )
    assert (report.rate, report.rate_date) == ("0.79", YESTERDAY.isoformat())
    assert report.delivery.to_address == "r0@example.com" and report.delivery.parent_id == sent.id
    run_queued(Session)

    second = smtp.to("r0@example.com")[1]
    (new_code,) = conftest.codes_in(second)
    assert new_code != old_code
    assert "19.75" in conftest.text_of(second) and "£" in conftest.text_of(second)
    with pytest.raises(CardVoided), Session.begin() as s:
        redeem(s, old_code, account="robin", marketplace="US", idempotency_key="old")
    with Session.begin() as s:
        assert redeem(s, new_code, account="robin", marketplace="UK", idempotency_key="new").amount == 1975
        line = s.get_one(OrderLine, sent.line_id)
        assert (line.card_id, line.card_last4) == (report.new_card_id, new_code[-4:])


def test_a_reissue_after_a_swap_keeps_the_new_marketplace_and_value(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    with Session.begin() as s:
        set_rate(s, "USD", "GBP", "0.79", YESTERDAY)
    issued_order()
    run_queued(Session)
    sent = _gift(Session, "r0@example.com")
    with Session.begin() as s:
        swaps.swap(s, sent.card_id or 0, marketplace="UK", email="holder@example.com")
    with Session.begin() as s:
        view = reissue(s, sent.line_id or 0)
    with Session() as s:
        card = get_card(s, int((view.card or "#0").split()[0][1:]))
    assert (card.marketplace, card.amount, view.to_address) == ("UK", 1975, "holder@example.com")


def test_unsent_gifts_of_the_old_card_stop(
    Session: sessionmaker[Session], order_payload: Any, issued_order: Any
) -> None:
    later = (utcnow() + dt.timedelta(days=10)).replace(tzinfo=None, microsecond=0).isoformat()
    with Session.begin() as s:
        set_rate(s, "USD", "CAD", "1.3712", YESTERDAY)
    issued_order(send_at={"local_time": later, "zone": "Europe/Paris"})
    scheduled = _gift(Session, "r0@example.com")
    assert scheduled.status == "scheduled"
    with Session.begin() as s:
        report = swaps.swap(s, scheduled.card_id or 0, marketplace="CA", email="holder@example.com")
    assert (report.cancelled_deliveries, report.to_amount) == ([scheduled.id], 3428)
    assert _gift(Session, "r0@example.com").status == "cancelled"


def test_refusals_leave_nothing_behind(
    Session: sessionmaker[Session], issued_order: Any, run_queued: Any, smtp: Any
) -> None:
    issued_order()
    sent = _gift(Session, "r0@example.com")
    with Session.begin() as s:
        (loose,) = issue_cards(s, [CardSpec("US", 1000)], idempotency_key="loose")

    def refused(card_id: int, match: str, **kwargs: Any) -> None:
        with pytest.raises(OpsRefused, match=match), Session.begin() as s:
            swaps.swap(s, card_id, **kwargs)

    refused(sent.card_id or 0, "no exchange rate from USD to GBP", marketplace="UK")
    refused(loose.card_id, "not the current card of any order line", marketplace="CA")
    refused(sent.card_id or 0, "email: ", marketplace="CA", email="not an address")
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Swap)) == 0
        assert get_card(s, sent.card_id or 0).status == "active"
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.kind == "gift")) == 1


def test_a_text_gift_is_swapped_to_an_email_address_ops_give(
    Session: sessionmaker[Session], issued_order: Any, run_queued: Any, smtp: Any, conftest: Any
) -> None:
    issued_order(channel="sms", recipient={"name": "Robin", "phone": "+14155550123"})
    with Session() as s:
        text_gift = s.scalars(select(Delivery).where(Delivery.kind == "gift")).one()
    with pytest.raises(OpsRefused, match="never went by email"), Session.begin() as s:
        swaps.swap(s, text_gift.card_id or 0, marketplace="CA")
    with Session.begin() as s:
        set_rate(s, "USD", "CAD", "1.37", YESTERDAY)
        report = swaps.swap(s, text_gift.card_id or 0, marketplace="CA", email="robin@example.com")
    assert (report.delivery.channel, report.to_amount) == ("email", 3425)
    run_queued(Session)
    (message,) = smtp.to("robin@example.com")
    (code,) = conftest.codes_in(message)
    with Session.begin() as s:
        assert redeem(s, code, account="robin", marketplace="CA", idempotency_key="ca").amount == 3425
