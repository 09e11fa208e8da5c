"""Ops actions over HTTP: each one at most once per Idempotency-Key, refusals as problems."""

from __future__ import annotations

from typing import Any

from delivery.orders import processing

URN = "urn:giftq:problem:"


def _issued_order(api: Any, token: str, body: Any) -> dict[str, Any]:
    order_id = api.client.post("/v1/orders", json=body, headers=api.headers(token)).json()["order_id"]
    with api.Session.begin() as s:
        while not processing.issue_next_chunk(s, order_id).done:
            pass
    read = api.client.get(f"/v1/orders/{order_id}", headers={"Authorization": f"Bearer {token}"})
    return dict(read.json())


def test_resend_goes_once_per_key_to_the_corrected_address(api: Any, order_body: Any) -> None:
    token = api.key("orders", "ops")
    order = _issued_order(api, token, order_body)
    gift = next(d for d in order["deliveries"] if d["kind"] == "gift")
    headers = api.headers(token, "resend-1")
    first = api.client.post(
        f"/v1/deliveries/{gift['id']}/resend", json={"email": "robin@example.org"}, headers=headers
    )
    again = api.client.post(
        f"/v1/deliveries/{gift['id']}/resend", json={"email": "robin@example.org"}, headers=headers
    )
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert first.json()["to_address"] == "robin@example.org"
    assert first.json()["parent_id"] == gift["id"]
    assert api.counts()["deliveries"] == len(order["deliveries"]) + 1


def test_reissue_voids_the_card_and_sends_a_new_one(api: Any, order_body: Any) -> None:
    token = api.key("orders", "ops")
    order = _issued_order(api, token, order_body)
    line = order["lines"][0]
    answer = api.client.post(f"/v1/order-lines/{line['id']}/reissue", json={}, headers=api.headers(token))
    assert answer.status_code == 201
    assert answer.json()["card"] != line["card"]
    refused = api.client.post(
        f"/v1/order-lines/{line['id']}/reissue", json={"phone": "+14155550123"}, headers=api.headers(token)
    )
    assert (refused.status_code, refused.json()["type"]) == (409, URN + "invalid-state")


def test_cancel_replays_its_report_and_a_second_cancel_is_refused(api: Any, order_body: Any) -> None:
    token = api.key("orders", "ops")
    order = _issued_order(api, token, order_body)
    headers = api.headers(token, "cancel-1")
    first = api.client.post(f"/v1/orders/{order['id']}/cancel", headers=headers)
    replayed = api.client.post(f"/v1/orders/{order['id']}/cancel", headers=headers)
    assert first.status_code == replayed.status_code == 200
    assert replayed.json() == first.json()
    assert first.json()["voided_cards"]
    second = api.client.post(f"/v1/orders/{order['id']}/cancel", headers=api.headers(token))
    assert (second.status_code, second.json()["type"]) == (409, URN + "invalid-state")


def test_replay_refuses_a_delivery_that_did_not_fail(api: Any, order_body: Any) -> None:
    token = api.key("orders", "ops")
    order = _issued_order(api, token, order_body)
    gift = next(d for d in order["deliveries"] if d["kind"] == "gift")
    before = api.counts()
    answer = api.client.post(f"/v1/deliveries/{gift['id']}/replay", headers=api.headers(token))
    assert (answer.status_code, answer.json()["type"]) == (409, URN + "invalid-state")
    assert "only final failures are replayed" in answer.json()["detail"]
    assert api.counts() == before
    missing = api.client.post("/v1/deliveries/99999/replay", headers=api.headers(token))
    assert missing.status_code == 404


def test_activate_a_physical_card_by_hand(api: Any) -> None:
    token = api.key("ops")
    (card,) = api.issue(2500, active=False)
    answer = api.client.post(f"/v1/cards/{card.card_id}/activate", headers=api.headers(token, "act-1"))
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["card_id"], body["amount"]) == ("active", card.card_id, 2500)
    assert body["card"].endswith(card.last4) and card.code.reveal() not in answer.text
    (voided,) = api.issue(1000)
    with api.Session.begin() as s:
        from ledger import void_card

        void_card(s, voided.card_id, idempotency_key="void-1")
    refused = api.client.post(f"/v1/cards/{voided.card_id}/activate", headers=api.headers(token, "act-2"))
    assert (refused.status_code, refused.json()["type"]) == (409, URN + "invalid-state")
    missing = api.client.post("/v1/cards/999999/activate", headers=api.headers(token, "act-3"))
    assert (missing.status_code, missing.json()["type"]) == (404, URN + "not-found")


def test_ops_actions_over_http_are_in_the_audit_log(api: Any, order_body: Any) -> None:
    from delivery.ops import audit

    token = api.key("orders", "ops")
    order = _issued_order(api, token, order_body)
    done = api.client.post(f"/v1/orders/{order['id']}/cancel", headers=api.headers(token, "audit-1"))
    again = api.client.post(f"/v1/orders/{order['id']}/cancel", headers=api.headers(token, "audit-1"))
    refused = api.client.post(f"/v1/orders/{order['id']}/cancel", headers=api.headers(token, "audit-2"))
    assert (done.status_code, again.status_code, refused.status_code) == (200, 200, 409)
    with api.Session() as s:
        entries = audit.recent(s)
    # Newest first: the refusal, then the cancel; the replayed answer did nothing and wrote nothing.
    assert [(e.action, e.outcome) for e in entries] == [("cancel", "refused"), ("cancel", "done")]
    assert {e.arguments["order_id"] for e in entries} == {order["id"]}
    assert all(e.actor.startswith("api-key:") for e in entries)
    assert "already cancelled" in entries[0].detail
