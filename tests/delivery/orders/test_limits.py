"""Limits per marketplace: intake refuses an order past one, naming the limit and the amount."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.errors import InvalidOrder, OrderOverLimit
from delivery.models import Order
from delivery.ops import cancel_order
from giftq.settings import SettingsError, reset_settings
from ledger.limits import LIMITS, limits_for


def orders(Session: sessionmaker[Session]) -> int:
    with Session() as s:
        return s.scalar(select(func.count()).select_from(Order)) or 0


def test_every_marketplace_has_limits_in_its_own_minor_units() -> None:
    from ledger.marketplaces import MARKETPLACES

    assert set(LIMITS) == set(MARKETPLACES)
    assert (LIMITS["US"].min_card, LIMITS["US"].max_card) == (100, 200_000)
    assert LIMITS["JP"].max_card == 300_000  # yen have no minor unit


def test_a_card_above_the_maximum_is_refused_with_the_limit_in_the_currency(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    with pytest.raises(OrderOverLimit) as caught:
        place_order(order_payload(amount=250_000), idempotency_key="l1")
    assert str(caught.value) == (
        "invalid order: order.lines.0.amount: "
        "card amount 2,500.00 USD is above the US maximum of 2,000.00 USD"
    )
    (breach,) = caught.value.breaches
    assert (breach.limit, breach.marketplace, breach.currency, breach.value, breach.amount) == (
        "max_card",
        "US",
        "USD",
        200_000,
        250_000,
    )
    assert isinstance(caught.value, InvalidOrder)
    assert orders(Session) == 0


def test_a_card_below_the_minimum_and_a_yen_card_above_its_maximum(
    Session: sessionmaker[Session], order_payload: Any
) -> None:
    payload = order_payload(2, amount=50)
    payload["lines"][1].update(marketplace="JP", amount=400_000)
    with pytest.raises(OrderOverLimit) as caught:
        place_order(payload, idempotency_key="l1")
    assert [e.message for e in caught.value.errors] == [
        "card amount 0.50 USD is below the US minimum of 1.00 USD",
        "card amount 400,000 JPY is above the JP maximum of 300,000 JPY",
    ]
    assert [e.path for e in caught.value.errors] == ["order.lines.0.amount", "order.lines.1.amount"]


def test_the_order_total_is_capped_per_marketplace(
    Session: sessionmaker[Session], order_payload: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_MARKETPLACE_LIMITS", '{"US": {"max_order_total": 500000}}')
    reset_settings()
    place_order(order_payload(2, amount=200_000), idempotency_key="ok")
    with pytest.raises(
        OrderOverLimit,
        match=r"order total of the US cards 6,000.00 USD is above the US maximum of 5,000.00 USD",
    ):
        place_order(order_payload(3, amount=200_000), idempotency_key="l1")
    assert orders(Session) == 1


def test_cards_per_purchaser_per_day_count_earlier_orders_but_not_cancelled_ones(
    Session: sessionmaker[Session], order_payload: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_MARKETPLACE_LIMITS", '{"US": {"max_cards_per_day": 3}}')
    reset_settings()
    first = place_order(order_payload(2), idempotency_key="d1")
    shouting = order_payload(2)
    shouting["purchaser"]["email"] = "PAT@Example.com"
    with pytest.raises(OrderOverLimit) as caught:
        place_order(shouting, idempotency_key="d2")
    assert caught.value.errors[0].message == (
        "4 US cards for this purchaser in 24 hours (2 ordered before) is above the US maximum of 3 a day"
    )
    assert caught.value.errors[0].path == "order.purchaser.email"
    # Another purchaser, and another marketplace, have days of their own.
    other = order_payload(3)
    other["purchaser"]["email"] = "sam@example.com"
    place_order(other, idempotency_key="d3")
    place_order(order_payload(2, marketplace="DE", amount=2500), idempotency_key="d4")
    # The replay of a placed order is its first answer, not a new count.
    assert place_order(order_payload(2), idempotency_key="d1").created is False
    with Session.begin() as s:
        cancel_order(s, first.order_id)
    assert place_order(shouting, idempotency_key="d2").created is True


def test_two_orders_of_one_purchaser_at_once_cannot_both_slip_under_the_limit(
    Session: sessionmaker[Session], order_payload: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_MARKETPLACE_LIMITS", '{"US": {"max_cards_per_day": 3}}')
    reset_settings()
    start = threading.Barrier(4)
    outcomes: list[str] = []

    def place(n: int) -> None:
        start.wait()
        try:
            place_order(order_payload(2), idempotency_key=f"race-{n}")
            outcomes.append("placed")
        except OrderOverLimit:
            outcomes.append("refused")

    threads = [threading.Thread(target=place, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["placed", "refused", "refused", "refused"]
    assert orders(Session) == 1


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        ('{"XX": {"max_card": 1}}', "unknown marketplace 'XX'"),
        ('{"US": {"max_cards": 1}}', "unknown limit 'max_cards'"),
        ('{"US": {"max_card": 0}}', "US.max_card must be positive or null"),
    ],
)
def test_a_bad_override_names_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str, complaint: str
) -> None:
    monkeypatch.setenv("GIFTQ_MARKETPLACE_LIMITS", value)
    reset_settings()
    with pytest.raises(SettingsError, match=f"GIFTQ_MARKETPLACE_LIMITS: .*{complaint}"):
        limits_for("US")


def test_null_lifts_a_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_MARKETPLACE_LIMITS", '{"US": {"max_card": null}}')
    reset_settings()
    assert limits_for("US").max_card is None
    assert limits_for("US").min_card == 100
