"""Every protected operation of the OpenAPI document refuses every bad API key: missing,
malformed, unknown, a right id with a wrong secret and revoked keys get 401, a key without
the operation's scope 403; each a problem+json, before the request is even validated (a
refused caller learns nothing about what a valid request looks like), and nothing is written.

SCOPES is the table of who may do what: a new operation fails here until it is entered.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from api import openapi
from api.keys import SCOPES as ALL_SCOPES
from api.keys import revoke_key

DOCUMENT = json.loads(openapi.PATH.read_text())
OPERATIONS = sorted(
    (method.upper(), path, operation)
    for path, methods in DOCUMENT["paths"].items()
    for method, operation in methods.items()
)
PROTECTED = [(m, p, o) for m, p, o in OPERATIONS if o.get("security")]

SCOPES: dict[tuple[str, str], set[str]] = {
    ("POST", "/v1/orders"): {"orders"},
    ("GET", "/v1/orders/{order_id}"): {"orders", "ops"},
    ("POST", "/v1/redemptions"): {"redeem"},
    ("GET", "/v1/balance"): {"redeem", "checkout"},
    ("GET", "/v1/history"): {"redeem", "checkout"},
    ("POST", "/v1/checkouts"): {"checkout"},
    ("POST", "/v1/checkouts/{checkout_id}/capture"): {"checkout"},
    ("POST", "/v1/checkouts/{checkout_id}/release"): {"checkout"},
    ("POST", "/v1/checkouts/{checkout_id}/refund"): {"checkout"},
    ("POST", "/v1/orders/{order_id}/cancel"): {"ops"},
    ("POST", "/v1/deliveries/{delivery_id}/resend"): {"ops"},
    ("POST", "/v1/deliveries/{delivery_id}/replay"): {"ops"},
    ("POST", "/v1/order-lines/{line_id}/reissue"): {"ops"},
    ("POST", "/v1/cards/{card_id}/activate"): {"ops"},
    ("POST", "/v1/orders/{order_id}/payment"): {"orders"},
    ("POST", "/v1/orders/{order_id}/review"): {"ops"},
    ("POST", "/v1/orders/{order_id}/release"): {"ops"},
    ("POST", "/v1/orders/{order_id}/reject"): {"ops"},
    ("POST", "/v1/cards/{card_id}/reinstate"): {"ops"},
    ("POST", "/v1/cards/{card_id}/swap"): {"ops"},
}
# Open on purpose: health for load balancers; the provider callbacks and the printable
# downloads carry signatures or tokens of their own (tests/api/test_*_callbacks.py).
UNPROTECTED = {
    ("GET", "/v1/health"),
    ("POST", "/sms/status"),
    ("POST", "/v1/callbacks/fulfilment/reports"),
    ("GET", "/printables/{token}"),
}


def test_every_operation_is_either_in_the_scope_table_or_open_on_purpose() -> None:
    assert {(m, p) for m, p, _ in PROTECTED} == set(SCOPES)
    assert {(m, p) for m, p, o in OPERATIONS if not o.get("security")} == UNPROTECTED


def _request(api: Any, method: str, path: str, operation: dict[str, Any], authorization: str | None) -> Any:
    url = path
    params = {}
    for parameter in operation.get("parameters", []):
        if parameter["in"] == "path":
            url = url.replace("{" + parameter["name"] + "}", "1")
        elif parameter["in"] == "query" and parameter.get("required"):
            params[parameter["name"]] = {"marketplace": "US"}.get(parameter["name"], "someone")
    headers = {"Idempotency-Key": "abuse-1"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = {} if "requestBody" in operation else None
    return api.client.request(method, url, params=params, json=body, headers=headers)


def _bad_keys(api: Any) -> dict[str, str | None]:
    revoked = api.key(name="revoked")
    with api.Session.begin() as s:
        revoke_key(s, revoked[3:15])
    right = api.key(name="right id")
    return {
        "missing": None,
        "not bearer": "Basic dXNlcjpwdw==",
        "malformed": "Bearer nonsense",
        "unknown": "Bearer gq_0123456789ab_" + "A" * 43,
        "wrong secret": f"Bearer {right[:16]}{'B' if right[16] != 'B' else 'C'}{right[17:]}",
        "revoked": f"Bearer {revoked}",
    }


def test_every_protected_operation_refuses_missing_wrong_and_revoked_keys_with_401(api: Any) -> None:
    bad_keys = _bad_keys(api)
    before = api.counts()
    for method, path, operation in PROTECTED:
        for kind, authorization in bad_keys.items():
            answer = _request(api, method, path, operation, authorization)
            where = f"{method} {path} with a {kind} key"
            assert answer.status_code == 401, where
            assert answer.headers["content-type"] == "application/problem+json", where
            assert answer.headers["www-authenticate"].startswith("Bearer"), where
            assert answer.json()["type"] == "urn:giftq:problem:unauthorized", where
            if authorization:
                assert authorization.split()[-1] not in answer.text, where
    assert api.counts() == before


@pytest.mark.parametrize("scope", ALL_SCOPES)
def test_every_protected_operation_refuses_a_key_without_its_scope_with_403(api: Any, scope: str) -> None:
    token = api.key(scope, name=f"only {scope}")
    before = api.counts()
    refused = [(m, p, o) for m, p, o in PROTECTED if scope not in SCOPES[(m, p)]]
    assert refused, "every scope is too little for some operation"
    for method, path, operation in refused:
        answer = _request(api, method, path, operation, f"Bearer {token}")
        where = f"{method} {path} with a key holding only {scope}"
        assert answer.status_code == 403, where
        assert answer.headers["content-type"] == "application/problem+json", where
        problem = answer.json()
        assert problem["type"] == "urn:giftq:problem:forbidden", where
        assert all(
            f"the {s}" in problem["detail"] or f"or {s}" in problem["detail"] for s in SCOPES[(method, path)]
        ), where
    assert api.counts() == before
