"""Postal addresses are checked per country when the order is placed: required fields,
the postal code's shape (kept in its canonical form), and where the marketplace ships."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.errors import InvalidOrder
from delivery.orders import schemas
from giftq.settings import reset_settings

MARKETPLACE_OF = {"US": "US", "CA": "CA", "GB": "UK", "DE": "DE", "FR": "FR", "JP": "JP"}


def order(address: dict[str, Any], marketplace: str | None = None) -> dict[str, Any]:
    return {
        "purchaser": {"name": "Pat", "email": "pat@example.com"},
        "lines": [
            {
                "channel": "physical",
                "amount": 5000,
                "marketplace": marketplace or MARKETPLACE_OF[address["country"]],
                "recipient": {"name": "Robin", "address": {"line1": "1 Main St", "city": "Town", **address}},
            }
        ],
    }


def address_of(payload: dict[str, Any]) -> schemas.PostalAddress:
    found = schemas.parse_order(payload).lines[0].recipient.address
    assert found is not None
    return found


def errors(payload: dict[str, Any]) -> dict[str, str]:
    with pytest.raises(InvalidOrder) as caught:
        schemas.parse_order(payload)
    return {e.path: e.message for e in caught.value.errors}


@pytest.mark.parametrize(
    ("country", "typed", "region", "stored"),
    [
        ("US", "20500", "DC", "20500"),
        ("US", "20500-0003", "dc", "20500-0003"),
        ("US", "205000003", "NY", "20500-0003"),
        ("CA", "K1A 0B1", "ON", "K1A 0B1"),
        ("CA", "k1a0b1", "qc", "K1A 0B1"),
        ("GB", "SW1A 1AA", None, "SW1A 1AA"),
        ("GB", "ec1a1bb", None, "EC1A 1BB"),
        ("GB", "M1 1AE", None, "M1 1AE"),
        ("GB", "B33 8TH", None, "B33 8TH"),
        ("GB", "CR2 6XH", None, "CR2 6XH"),
        ("GB", "DN55 1PT", None, "DN55 1PT"),
        ("DE", "10115", None, "10115"),
        ("FR", "75001", None, "75001"),
        ("JP", "150-0002", "Tokyo", "150-0002"),
        ("JP", "1500002", None, "150-0002"),
    ],
)
def test_postal_codes_of_each_country_are_read_and_kept_canonical(
    country: str, typed: str, region: str | None, stored: str
) -> None:
    address = {"postal_code": typed, "country": country} | ({"region": region} if region else {})
    parsed = address_of(order(address))
    assert parsed.postal_code == stored
    if country in ("US", "CA"):
        assert parsed.region == region.upper() if region else False


@pytest.mark.parametrize(
    ("country", "typed", "example"),
    [
        ("US", "2050", "12345 or 12345-6789"),
        ("US", "20500-03", "12345 or 12345-6789"),
        ("US", "ABCDE", "12345 or 12345-6789"),
        ("CA", "K1A 0B", "A1A 1A1"),
        ("CA", "D1A 0B1", "A1A 1A1"),  # D is never a first letter
        ("GB", "SW1A 1A", "SW1A 1AA"),
        ("GB", "QW1 1AA", "SW1A 1AA"),  # Q is never a first letter
        ("DE", "1011", "10115"),
        ("DE", "101155", "10115"),
        ("FR", "7500A", "75001"),
        ("JP", "150-002", "123-4567"),
        ("JP", "150-00021", "123-4567"),
    ],
)
def test_a_postal_code_of_the_wrong_shape_is_refused_with_an_example(
    country: str, typed: str, example: str
) -> None:
    region = {"US": "DC", "CA": "ON"}.get(country)
    address = {"postal_code": typed, "country": country} | ({"region": region} if region else {})
    assert errors(order(address)) == {
        "lines.0.recipient.address.postal_code": f"is not a postal code of {country} (like {example})"
    }


def test_us_and_canada_need_a_state_or_province_code() -> None:
    assert errors(order({"postal_code": "20500", "country": "US"})) == {
        "lines.0.recipient.address.region": "required in US: the state code"
    }
    assert errors(order({"postal_code": "20500", "country": "US", "region": "Washington"})) == {
        "lines.0.recipient.address.region": "is not a state code of US"
    }
    assert errors(order({"postal_code": "K1A 0B1", "country": "CA", "region": "XX"})) == {
        "lines.0.recipient.address.region": "is not a province code of CA"
    }


def test_every_bad_field_of_an_address_is_named_at_once() -> None:
    payload = order({"postal_code": "2050", "country": "US"})
    del payload["lines"][0]["recipient"]["address"]["city"]
    assert set(errors(payload)) == {
        "lines.0.recipient.address.city",
        "lines.0.recipient.address.region",
        "lines.0.recipient.address.postal_code",
    }


@pytest.mark.parametrize(
    ("marketplace", "country"), [("US", "CA"), ("UK", "DE"), ("DE", "FR"), ("JP", "US"), ("CA", "US")]
)
def test_a_marketplace_ships_to_its_own_country_only(marketplace: str, country: str) -> None:
    address = {"postal_code": {"CA": "K1A 0B1", "DE": "10115", "FR": "75001", "US": "20500"}[country]}
    address |= {"country": country} | ({"region": "ON"} if country == "CA" else {"region": "DC"})
    home = {"US": "US", "UK": "GB", "DE": "DE", "JP": "JP", "CA": "CA"}[marketplace]
    said = f"the {marketplace} marketplace ships physical cards to {home} only"
    assert errors(order(address, marketplace)) == {"lines.0.recipient.address.country": said}


def test_settings_may_let_a_marketplace_ship_abroad(monkeypatch: pytest.MonkeyPatch) -> None:
    abroad = order({"postal_code": "K1A 0B1", "country": "CA", "region": "ON"}, "US")
    monkeypatch.setenv("GIFTQ_FULFILMENT_SHIP_TO", '{"US": ["US", "CA"]}')
    reset_settings()
    assert address_of(abroad).country == "CA"
    elsewhere = order({"postal_code": "1010", "country": "AT", "city": "Wien"}, "DE")
    assert "ships physical cards to DE only" in str(errors(elsewhere))
    monkeypatch.setenv("GIFTQ_FULFILMENT_SHIP_TO", '{"DE": ["DE", "AT"]}')
    reset_settings()
    assert address_of(elsewhere).postal_code == "1010"  # no rule of its own for AT: the generic shape


def test_only_physical_lines_are_held_to_the_shipping_countries(order_payload: Any) -> None:
    payload = order_payload(
        recipient={
            "name": "R",
            "email": "r@example.com",
            "address": {"line1": "1 Main", "city": "Paris", "postal_code": "75001", "country": "FR"},
        }
    )
    assert schemas.parse_order(payload).lines[0].marketplace == "US"
