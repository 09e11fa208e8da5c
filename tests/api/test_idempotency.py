"""Idempotency-Key, as the IETF draft describes: required on writes (400 without), the same key
and body get the first answer, another body gets 409; answers are kept per API key, only
for successes, and in the same transaction as the work."""

from __future__ import annotations

import threading
from typing import Any

import pytest


def test_the_same_key_and_body_get_the_first_answer(api: Any, order_body: Any) -> None:
    token = api.key()
    first = api.client.post("/v1/orders", json=order_body, headers=api.headers(token, "order-1001"))
    again = api.client.post("/v1/orders", json=order_body, headers=api.headers(token, '"order-1001"'))
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() == {"order_id": 1, "status": "received", "created": True}
    assert again.headers["location"] == first.headers["location"] == "/v1/orders/1"
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert api.counts()["orders"] == 1


def test_another_body_under_the_same_key_is_a_409_that_changes_nothing(api: Any, order_body: Any) -> None:
    token = api.key()
    api.client.post("/v1/orders", json=order_body, headers=api.headers(token, "order-1002"))
    before = api.counts()
    order_body["lines"][0]["amount"] = 9900
    answer = api.client.post("/v1/orders", json=order_body, headers=api.headers(token, "order-1002"))
    assert answer.status_code == 409
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["type"] == "urn:giftq:problem:idempotency-key-reused"
    assert api.counts() == before


def test_a_write_without_the_header_is_a_400(api: Any, order_body: Any) -> None:
    token = api.key()
    answer = api.client.post("/v1/orders", json=order_body, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 400
    assert answer.json()["type"] == "urn:giftq:problem:idempotency-key-missing"
    assert api.counts()["orders"] == 0


def test_keys_belong_to_the_api_key_that_sent_them(api: Any, order_body: Any) -> None:
    shop_a, shop_b = api.key("orders", name="a"), api.key("orders", name="b")
    one = api.client.post("/v1/orders", json=order_body, headers=api.headers(shop_a, "same"))
    order_body["reference"] = "OTHER"
    two = api.client.post("/v1/orders", json=order_body, headers=api.headers(shop_b, "same"))
    assert (one.status_code, two.status_code) == (201, 201)
    assert one.json()["order_id"] != two.json()["order_id"]


def test_a_refused_request_keeps_no_answer_and_can_be_sent_again(api: Any) -> None:
    token = api.key()
    card = api.issue(1500, active=False)[0]
    body = {"code": card.code.reveal(), "account": "c1", "marketplace": "US", "client_address": "192.0.2.1"}
    refused = api.client.post("/v1/redemptions", json=body, headers=api.headers(token, "r-1"))
    assert refused.status_code == 409
    assert refused.json()["type"] == "urn:giftq:problem:card-not-active"
    assert api.counts()["api_answers"] == 0

    from ledger import activate_card

    with api.Session.begin() as s:
        activate_card(s, card.card_id, idempotency_key="ship-1")
    redeemed = api.client.post("/v1/redemptions", json=body, headers=api.headers(token, "r-1"))
    assert redeemed.status_code == 200
    assert redeemed.json()["amount"] == 1500


@pytest.mark.parametrize("value", ["", "with space", "x" * 181, "na\xefve".encode("latin-1")])
def test_a_malformed_key_is_refused_naming_the_header(api: Any, order_body: Any, value: str | bytes) -> None:
    token = api.key()
    answer = api.client.post(
        "/v1/orders", json=order_body, headers={"Authorization": f"Bearer {token}", "Idempotency-Key": value}
    )
    assert answer.status_code in (400, 422)
    problem = answer.json()
    if answer.status_code == 422:
        assert {"header": "Idempotency-Key"}.items() <= problem["errors"][0].items()
    assert api.counts()["orders"] == 0


def test_twin_requests_at_once_make_one_order_and_both_get_its_answer(
    pg_url: str, monkeypatch: pytest.MonkeyPatch, order_body: Any
) -> None:
    """PostgreSQL: the second waits on the key's row until the first commits, then replays."""
    from sqlalchemy.orm import sessionmaker

    from giftq import db as giftq_db
    from giftq.settings import reset_settings
    from tests.api.conftest import ApiDriver

    monkeypatch.setenv("GIFTQ_DATABASE_URL", pg_url)
    reset_settings()
    giftq_db.reset_engine()
    engine = giftq_db.make_engine(pg_url)
    driver = ApiDriver(sessionmaker(engine, expire_on_commit=False))
    token = driver.key()
    answers: list[Any] = []
    start = threading.Barrier(4)

    def send() -> None:
        start.wait()
        answers.append(
            driver.client.post("/v1/orders", json=order_body, headers=driver.headers(token, "twin"))
        )

    with driver.client:
        threads = [threading.Thread(target=send) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    counted = driver.counts()["orders"]
    engine.dispose()
    giftq_db.reset_engine()
    assert [a.status_code for a in answers] == [201] * 4
    assert len({a.json()["order_id"] for a in answers}) == 1
    assert sum(a.headers.get("idempotent-replayed") == "true" for a in answers) == 3
    assert counted == 1
