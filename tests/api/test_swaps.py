"""Swapping a card over HTTP: ops only, once per Idempotency-Key, audited, the new code never in
the answer (it goes by email), refusals as problems."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from delivery.ops import audit
from delivery.orders import processing
from ledger.swaps import set_rate

URN = "urn:giftq:problem:"


def _card_of_issued_order(api: Any, token: str, body: Any) -> int:
    order_id = api.client.post("/v1/orders", json=body, headers=api.headers(token)).json()["order_id"]
    with api.Session.begin() as s:
        while not processing.issue_next_chunk(s, order_id).done:
            pass
    read = api.client.get(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"})
    card = read.json()["lines"][0]["card"]
    return int(card.split()[0].lstrip("#"))


def test_a_swap_answers_once_per_key_with_the_masked_new_card(api: Any, order_body: Any) -> None:
    token = api.key("orders", "ops")
    card_id = _card_of_issued_order(api, token, order_body)
    amount = order_body["lines"][0]["amount"]
    with api.Session.begin() as s:
        set_rate(s, "USD", "GBP", "0.79", dt.datetime.now(dt.UTC).date())
    headers = api.headers(token, "swap-1")

    first = api.client.post(f"/v1/cards/{card_id}/swap", json={"marketplace": "UK"}, headers=headers)
    again = api.client.post(f"/v1/cards/{card_id}/swap", json={"marketplace": "UK"}, headers=headers)

    assert first.status_code == again.status_code == 201, first.text
    assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
    body = first.json()
    assert (body["old_card_id"], body["from_amount"], body["to_amount"]) == (
        card_id,
        amount,
        amount * 79 // 100,
    )
    assert (body["to_marketplace"], body["to_currency"], body["rate"]) == ("UK", "GBP", "0.79")
    assert body["new_card"].startswith(f"#{body['new_card_id']} ••••-")
    assert body["delivery"]["channel"] == "email" and body["delivery"]["card"] == body["new_card"]
    with api.Session() as s:
        from ledger import reveal_code

        code = reveal_code(s, body["new_card_id"]).reveal()
        (entry,) = [e for e in audit.recent(s) if e.action == "swap"]
    assert code not in json.dumps(body) and code[-9:] not in json.dumps(body)
    assert (entry.outcome, entry.arguments) == ("done", {"card_id": card_id, "marketplace": "UK"})

    other = api.client.post(f"/v1/cards/{card_id}/swap", json={"marketplace": "DE"}, headers=headers)
    assert (other.status_code, other.json()["type"]) == (409, URN + "idempotency-key-reused")


def test_refusals_are_problems_and_change_nothing(api: Any, order_body: Any) -> None:
    token = api.key("orders", "ops")
    card_id = _card_of_issued_order(api, token, order_body)
    before = api.counts()

    no_rate = api.client.post(
        f"/v1/cards/{card_id}/swap", json={"marketplace": "JP"}, headers=api.headers(token)
    )
    assert (no_rate.status_code, no_rate.json()["type"]) == (409, URN + "invalid-state")
    assert "no exchange rate from USD to JPY" in no_rate.json()["detail"]
    unknown = api.client.post(
        f"/v1/cards/{card_id}/swap", json={"marketplace": "XX"}, headers=api.headers(token)
    )
    assert (unknown.status_code, unknown.json()["type"]) == (422, URN + "validation")
    missing = api.client.post("/v1/cards/99999/swap", json={"marketplace": "UK"}, headers=api.headers(token))
    assert missing.status_code == 404
    assert api.counts() == before

    storefront = api.key("orders")
    forbidden = api.client.post(
        f"/v1/cards/{card_id}/swap", json={"marketplace": "UK"}, headers=api.headers(storefront)
    )
    assert forbidden.status_code == 403
