"""Expiry over HTTP and on the pages: an expired card is its own problem (with the day it
expired, never the code), ops reinstate it once per key, and the pages say it in words."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from delivery.ops.models import AuditEntry
from delivery.orders import processing
from ledger import CardSpec, expire_due, issue_cards
from ledger.models import Card

URN = "urn:giftq:problem:"
STOPPED = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)


def _expired(api: Any, amount: int = 1500) -> Any:
    with api.Session.begin() as s:
        (card,) = issue_cards(s, [CardSpec("US", amount, origin="promotional")], idempotency_key="promo-1")
    with api.Session.begin() as s:
        s.get_one(Card, card.card_id).expires_at = STOPPED
    with api.Session.begin() as s:
        expire_due(s)
    return card


def test_redeeming_an_expired_card_is_a_card_expired_problem(api: Any) -> None:
    token = api.key("redeem")
    card = _expired(api)
    answer = api.client.post(
        "/v1/redemptions",
        json={
            "code": card.code.reveal(),
            "account": "alice",
            "marketplace": "US",
            "client_address": "203.0.113.9",
        },
        headers=api.headers(token),
    )
    body = answer.json()
    assert (answer.status_code, body["type"], body["reason"]) == (409, URN + "card-expired", "expired")
    assert (body["expired_on"], body["detail"]) == ("2026-03-01", "this card expired on 2026-03-01")
    assert card.code.reveal() not in answer.text and card.code.normalized not in answer.text


def test_ops_reinstate_over_http_once_per_key_and_audited(api: Any) -> None:
    token = api.key("ops")
    card = _expired(api)
    # A card issued outside any order has no line to deliver to: refused, and audited.
    refused = api.client.post(f"/v1/cards/{card.card_id}/reinstate", json={}, headers=api.headers(token))
    assert (refused.status_code, refused.json()["type"]) == (409, URN + "invalid-state")
    assert "not the card of an order line" in refused.json()["detail"]
    missing = api.client.post("/v1/cards/99999/reinstate", json={}, headers=api.headers(token))
    assert missing.status_code == 404
    no_scope = api.client.post(
        f"/v1/cards/{card.card_id}/reinstate", json={}, headers=api.headers(api.key("redeem"))
    )
    assert no_scope.status_code == 403


def test_an_expired_order_card_is_reinstated_once_and_delivered(api: Any, order_body: Any) -> None:
    token = api.key("orders", "ops")
    body = {**order_body, "lines": [{**order_body["lines"][0], "origin": "promotional"}]}
    order_id = api.client.post("/v1/orders", json=body, headers=api.headers(token)).json()["order_id"]
    with api.Session.begin() as s:
        while not processing.issue_next_chunk(s, order_id).done:
            pass
    order = api.client.get(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}).json()
    card_id = int(order["lines"][0]["card"].split()[0].lstrip("#"))
    with api.Session.begin() as s:
        s.get_one(Card, card_id).expires_at = STOPPED
    with api.Session.begin() as s:
        expire_due(s)
    headers = api.headers(token, "reinstate-1")
    first = api.client.post(f"/v1/cards/{card_id}/reinstate", json={}, headers=headers)
    again = api.client.post(f"/v1/cards/{card_id}/reinstate", json={}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert first.json()["kind"] == "gift" and first.json()["card"] != order["lines"][0]["card"]
    other_key = api.client.post(f"/v1/cards/{card_id}/reinstate", json={}, headers=api.headers(token))
    assert (other_key.status_code, other_key.json()["type"]) == (409, URN + "invalid-state")
    with api.Session() as s:
        audit = s.execute(select(AuditEntry.action, AuditEntry.outcome).order_by(AuditEntry.id)).all()
    assert [(a, str(o)) for a, o in audit] == [("reinstate", "done"), ("reinstate", "refused")]
