"""Orders over HTTP: placed (201, Location), read back with lines and deliveries, codes masked;
a bad order is a 422 naming every bad field, and nothing is written."""

from __future__ import annotations

import re
from typing import Any

from delivery.orders import processing
from ledger import reveal_code


def test_an_order_is_placed_and_read_back_with_masked_cards(api: Any, order_body: Any) -> None:
    token = api.key("orders")
    placed = api.client.post("/v1/orders", json=order_body, headers=api.headers(token))
    assert placed.status_code == 201
    order_id = placed.json()["order_id"]
    with api.Session.begin() as s:
        while not processing.issue_next_chunk(s, order_id).done:
            pass
    read = api.client.get(placed.headers["location"], headers={"Authorization": f"Bearer {token}"})
    assert read.status_code == 200
    order = read.json()
    assert order["purchaser"] == {"name": "Pat Buyer", "email": "pat@example.com"}
    (line,) = order["lines"]
    assert re.fullmatch(r"#\d+ ••••-••••-••••-•[0-9A-Z]{4}", line["card"])
    assert {d["kind"] for d in order["deliveries"]} >= {"gift"}
    with api.Session() as s:
        code = reveal_code(s, int(line["card"].split()[0][1:])).reveal()
    assert code not in read.text and code.replace("-", "") not in read.text


def test_a_bad_order_names_every_bad_field(api: Any, order_body: Any) -> None:
    token = api.key("orders")
    order_body["purchaser"]["email"] = "not an address"
    order_body["lines"][0]["amount"] = 0
    order_body["lines"][0]["marketplace"] = "XX"
    answer = api.client.post("/v1/orders", json=order_body, headers=api.headers(token))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    pointers = sorted(e["pointer"] for e in answer.json()["errors"])
    assert pointers == [
        "#/lines/0/amount",
        "#/lines/0/marketplace",
        "#/purchaser/email",
    ]
    assert api.counts()["orders"] == 0


def test_a_line_without_the_address_its_channel_needs_names_that_field(api: Any, order_body: Any) -> None:
    token = api.key("orders")
    order_body["lines"][0]["recipient"].pop("email")
    answer = api.client.post("/v1/orders", json=order_body, headers=api.headers(token))
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error == {"pointer": "#/lines/0/recipient/email", "detail": "required for channel email"}


def test_an_unknown_order_is_404(api: Any) -> None:
    token = api.key("orders")
    answer = api.client.get("/v1/orders/424242", headers={"Authorization": f"Bearer {token}"})
    assert (answer.status_code, answer.json()["type"]) == (404, "urn:giftq:problem:not-found")
