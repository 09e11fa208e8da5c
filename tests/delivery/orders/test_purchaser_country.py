"""``purchaser.country``: optional, ISO 3166-1 alpha-2, kept on the order for the liability
report; an order without it hashes as before it existed (its key still replays)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.errors import InvalidOrder
from delivery.models import Order
from delivery.orders import intake, schemas


def test_the_country_is_kept_on_the_order(Session: sessionmaker[Session], order_payload: Any) -> None:
    payload = order_payload()
    payload["purchaser"]["country"] = "IE"
    placed = place_order(payload, idempotency_key="ie")
    with Session() as s:
        assert s.get_one(Order, placed.order_id).purchaser_country == "IE"


@pytest.mark.parametrize("country", ["ie", "IRL", "EU", "XX", "", 353])
def test_anything_but_a_country_code_is_refused_naming_the_field(
    Session: sessionmaker[Session], order_payload: Any, country: object
) -> None:
    payload = order_payload()
    payload["purchaser"]["country"] = country
    with pytest.raises(InvalidOrder) as refused:
        place_order(payload, idempotency_key="bad-country")
    assert [e.path for e in refused.value.errors] == ["order.purchaser.country"]
    with Session() as s:
        assert s.query(Order).count() == 0


def test_an_order_without_a_country_hashes_as_before(order_payload: Any) -> None:
    order = schemas.Order.model_validate(order_payload())
    assert "country" not in order.model_dump(mode="json")["purchaser"]
    with_country = order_payload()
    with_country["purchaser"]["country"] = "GB"
    assert intake.request_hash(order) != intake.request_hash(schemas.Order.model_validate(with_country))
