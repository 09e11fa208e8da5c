"""Held orders and limits over HTTP: the storefront answers for a payment, ops decide a review
(audited), and an order past a marketplace's limit is a 422 that names the limit."""

from __future__ import annotations

from typing import Any

from delivery.ops import audit

URN = "urn:giftq:problem:"


def _place(api: Any, token: str, body: Any) -> dict[str, Any]:
    answer = api.client.post("/v1/orders", json=body, headers=api.headers(token))
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def _read(api: Any, token: str, order_id: int) -> dict[str, Any]:
    return dict(api.client.get(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"}).json())


def test_an_order_placed_awaiting_payment_is_released_by_the_storefronts_confirmation(
    api: Any, order_body: Any
) -> None:
    token = api.key("orders")
    placed = _place(api, token, {**order_body, "payment": "pending"})
    assert placed["status"] == "awaiting_payment"
    order = _read(api, token, placed["order_id"])
    assert (order["payment"], order["review"], order["deliveries"]) == ("pending", None, [])
    assert order["payment_due_at"] is not None
    headers = api.headers(token, "pay-1")
    url = f"/v1/orders/{placed['order_id']}/payment"
    first = api.client.post(url, json={"outcome": "confirmed"}, headers=headers)
    replayed = api.client.post(url, json={"outcome": "confirmed"}, headers=headers)
    assert first.status_code == replayed.status_code == 200
    assert (
        first.json()
        == replayed.json()
        == {
            "order_id": placed["order_id"],
            "status": "received",
            "payment": "confirmed",
            "review": None,
            "changed": True,
        }
    )
    # Another key, same answer: nothing changes, and it says so.
    again = api.client.post(url, json={"outcome": "confirmed"}, headers=api.headers(token))
    assert again.json()["changed"] is False
    declined = api.client.post(url, json={"outcome": "declined"}, headers=api.headers(token))
    assert (declined.status_code, declined.json()["type"]) == (409, URN + "invalid-state")
    assert "was confirmed before" in declined.json()["detail"]


def test_a_declined_payment_cancels_the_order(api: Any, order_body: Any) -> None:
    token = api.key("orders")
    placed = _place(api, token, {**order_body, "payment": "pending"})
    url = f"/v1/orders/{placed['order_id']}/payment"
    answer = api.client.post(url, json={"outcome": "declined"}, headers=api.headers(token))
    assert answer.json()["status"] == "cancelled"
    order = _read(api, token, placed["order_id"])
    assert [(d["kind"], d["to_address"]) for d in order["deliveries"]] == [
        ("cancelled_notice", "pat@example.com")
    ]
    bad = api.client.post(url, json={"outcome": "maybe"}, headers=api.headers(token))
    assert (bad.status_code, bad.json()["errors"][0]["pointer"]) == (422, "#/outcome")


def test_payment_answers_need_the_orders_scope_and_a_held_order(api: Any, order_body: Any) -> None:
    token = api.key("orders")
    placed = _place(api, token, order_body)
    refused = api.client.post(
        f"/v1/orders/{placed['order_id']}/payment", json={"outcome": "confirmed"}, headers=api.headers(token)
    )
    assert (refused.status_code, refused.json()["type"]) == (409, URN + "invalid-state")
    assert "was not placed awaiting payment" in refused.json()["detail"]
    ops_only = api.key("ops")
    forbidden = api.client.post(
        f"/v1/orders/{placed['order_id']}/payment",
        json={"outcome": "confirmed"},
        headers=api.headers(ops_only),
    )
    assert forbidden.status_code == 403
    missing = api.client.post(
        "/v1/orders/424242/payment", json={"outcome": "confirmed"}, headers=api.headers(token)
    )
    assert missing.status_code == 404


def test_ops_review_decisions_are_audited(api: Any, order_body: Any) -> None:
    token = api.key("orders", "ops")
    flagged = _place(api, token, {**order_body, "review": True})
    assert flagged["status"] == "in_review"
    released = api.client.post(f"/v1/orders/{flagged['order_id']}/release", headers=api.headers(token))
    assert (released.status_code, released.json()["status"], released.json()["review"]) == (
        200,
        "received",
        "released",
    )
    rejected = api.client.post(f"/v1/orders/{flagged['order_id']}/reject", headers=api.headers(token))
    assert (rejected.status_code, rejected.json()["type"]) == (409, URN + "invalid-state")

    other = _place(api, token, {**order_body, "reference": "SHOP-1002"})
    held = api.client.post(f"/v1/orders/{other['order_id']}/review", headers=api.headers(token))
    assert held.json()["status"] == "in_review"
    gone = api.client.post(f"/v1/orders/{other['order_id']}/reject", headers=api.headers(token))
    assert gone.json()["status"] == "cancelled"
    with api.Session() as s:
        rows = [(r.action, r.outcome, r.arguments) for r in reversed(audit.recent(s, limit=10))]
    assert rows == [
        ("release", "done", {"order_id": flagged["order_id"]}),
        ("reject", "refused", {"order_id": flagged["order_id"]}),
        ("review", "done", {"order_id": other["order_id"]}),
        ("reject", "done", {"order_id": other["order_id"]}),
    ]


def test_an_order_past_a_limit_is_a_422_naming_the_limit(api: Any, order_body: Any) -> None:
    token = api.key("orders")
    order_body["lines"][0]["amount"] = 250_000
    answer = api.client.post("/v1/orders", json=order_body, headers=api.headers(token))
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == URN + "validation"
    assert problem["detail"] == (
        "the order goes past a limit of its marketplace: "
        "card amount 2,500.00 USD is above the US maximum of 2,000.00 USD"
    )
    assert problem["errors"] == [
        {
            "pointer": "#/lines/0/amount",
            "detail": "card amount 2,500.00 USD is above the US maximum of 2,000.00 USD",
        }
    ]
    assert problem["limits"] == [
        {
            "limit": "max_card",
            "marketplace": "US",
            "currency": "USD",
            "value": 200_000,
            "amount": 250_000,
            "pointer": "#/lines/0/amount",
        }
    ]
    assert api.counts()["orders"] == 0
