"""Checkout over HTTP: hold a balance, capture or release it, refund; shortfalls are problems."""

from __future__ import annotations

from typing import Any

URN = "urn:giftq:problem:"


def _fund(api: Any, token: str, amount: int, account: str = "carol") -> None:
    code = api.issue(amount)[0].code.reveal()
    body = {"code": code, "account": account, "marketplace": "US", "client_address": "192.0.2.9"}
    assert api.client.post("/v1/redemptions", json=body, headers=api.headers(token)).status_code == 200


def test_hold_capture_refund_release(api: Any) -> None:
    token = api.key("redeem", "checkout")
    _fund(api, token, 5000)
    held = api.client.post(
        "/v1/checkouts",
        json={"account": "carol", "marketplace": "US", "order_ref": "SHOP-1", "order_total": 7999},
        headers=api.headers(token),
    )
    assert held.status_code == 201
    state = held.json()
    assert (state["held"], state["remaining_to_pay"], state["outstanding"]) == (5000, 2999, 5000)
    checkout = state["checkout_id"]

    captured = api.client.post(
        f"/v1/checkouts/{checkout}/capture", json={"amount": 3000}, headers=api.headers(token)
    )
    assert (captured.status_code, captured.json()["captured"]) == (200, 3000)
    released = api.client.post(f"/v1/checkouts/{checkout}/release", json={}, headers=api.headers(token))
    assert (released.json()["released"], released.json()["outstanding"]) == (2000, 0)
    refunded = api.client.post(
        f"/v1/checkouts/{checkout}/refund", json={"amount": 1000}, headers=api.headers(token)
    )
    assert refunded.json()["refunded"] == 1000
    balance = api.client.get(
        "/v1/balance",
        params={"account": "carol", "marketplace": "US"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert balance.json()["amount"] == 3000


def test_a_zero_balance_holds_nothing(api: Any) -> None:
    token = api.key("checkout")
    answer = api.client.post(
        "/v1/checkouts",
        json={"account": "nobody", "marketplace": "US", "order_ref": "SHOP-2", "order_total": 100},
        headers=api.headers(token),
    )
    assert answer.status_code == 200
    assert answer.json()["checkout_id"] is None
    assert answer.json()["remaining_to_pay"] == 100


def test_shortfalls_and_unknown_checkouts_are_problems_that_change_nothing(api: Any) -> None:
    token = api.key("redeem", "checkout")
    _fund(api, token, 1000)
    checkout = api.client.post(
        "/v1/checkouts",
        json={"account": "carol", "marketplace": "US", "order_ref": "SHOP-3", "order_total": 1000},
        headers=api.headers(token),
    ).json()["checkout_id"]
    before = api.counts()
    over = api.client.post(
        f"/v1/checkouts/{checkout}/capture", json={"amount": 1001}, headers=api.headers(token)
    )
    assert (over.status_code, over.json()["type"]) == (409, URN + "insufficient-funds")
    refund = api.client.post(
        f"/v1/checkouts/{checkout}/refund", json={"amount": 1}, headers=api.headers(token)
    )
    assert refund.json()["type"] == URN + "insufficient-funds"
    missing = api.client.post("/v1/checkouts/999999/capture", json={}, headers=api.headers(token))
    assert (missing.status_code, missing.json()["type"]) == (404, URN + "not-found")
    float_amount = api.client.post(
        f"/v1/checkouts/{checkout}/capture", json={"amount": 10.5}, headers=api.headers(token)
    )
    assert float_amount.status_code == 422
    assert float_amount.json()["errors"][0]["pointer"] == "#/amount"
    assert api.counts() == before
