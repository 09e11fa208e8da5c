"""The pages say since when a card is expired, in words, and show neither value nor code."""

from __future__ import annotations

import datetime as dt
from typing import Any

from ledger import CardSpec, expire_due, issue_cards
from ledger.models import Card
from tests.api.pages.conftest import field


def test_the_pages_say_since_when_a_card_is_expired(api: Any, signed_in: Any) -> None:
    with api.Session.begin() as s:
        (card,) = issue_cards(s, [CardSpec("US", 1500, origin="promotional")], idempotency_key="promo-1")
    with api.Session.begin() as s:
        s.get_one(Card, card.card_id).expires_at = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
    with api.Session.begin() as s:
        expire_due(s)
    page = signed_in("customer-1")
    data = {"code": card.code.reveal(), "csrf_token": field(page.text, "csrf_token")}
    answer = api.client.post("/us/redeem", data=data)
    assert answer.status_code == 422
    assert "This gift card expired on March 1, 2026 and can no longer be used." in answer.text
    balance = api.client.get("/us/balance")
    shown = api.client.post(
        "/us/balance", data={"code": card.code.reveal(), "csrf_token": field(balance.text, "csrf_token")}
    )
    assert "This gift card expired on March 1, 2026 and can no longer be used." in shown.text
    assert "$15.00" not in shown.text and card.code.reveal() not in shown.text


def test_the_terms_page_says_each_marketplaces_rules_in_its_language(api: Any) -> None:
    us = api.client.get("/us/terms")
    assert us.status_code == 200
    assert "Gift cards bought in this store do not expire." in us.text
    assert "Promotional gift cards from this store are valid for 6 months after they are issued." in us.text
    de = api.client.get("/de/terms")
    assert "Bedingungen für Geschenkkarten" in de.text
    assert "sind nach der Ausgabe 36 Monate gültig, bis zum Ende des betreffenden Jahres." in de.text
    fr = api.client.get("/fr/terms")
    assert "sont valables 24 mois après leur émission." in fr.text
    assert api.client.get("/xx/terms").status_code == 404
