"""Errors are RFC 9457 problem details with a stable type each, documented in the OpenAPI."""

from __future__ import annotations

from typing import Any

from api.openapi import document
from api.problems import REDEMPTION_TYPES, TYPES, URN
from ledger import errors as ledger_errors


def test_every_redemption_refusal_has_a_type_of_its_own() -> None:
    refusals = {cls for cls in vars(ledger_errors).values() if isinstance(cls, type)}
    refusals = {cls for cls in refusals if issubclass(cls, ledger_errors.RedemptionRefused)}
    assert refusals - {ledger_errors.RedemptionRefused} == set(REDEMPTION_TYPES)
    assert len(set(REDEMPTION_TYPES.values())) == len(REDEMPTION_TYPES)


def test_every_type_is_documented_in_the_openapi_document() -> None:
    doc = document()
    described = str(doc["paths"])
    listed = doc["info"]["description"]
    for kind in TYPES.values():
        assert f"`{kind.uri}` ({kind.status})" in listed, kind.slug
        if kind.slug not in {"method-not-allowed"}:
            assert kind.uri in described, kind.slug
        assert kind.uri.startswith(URN)


def test_unknown_paths_and_methods_are_problems(api: Any) -> None:
    nowhere = api.client.get("/v1/nowhere")
    assert (nowhere.status_code, nowhere.json()["type"]) == (404, URN + "not-found")
    assert nowhere.headers["content-type"] == "application/problem+json"
    wrong = api.client.delete("/v1/orders")
    assert (wrong.status_code, wrong.json()["type"]) == (405, URN + "method-not-allowed")


def test_a_body_that_is_not_json_is_a_validation_problem(api: Any) -> None:
    token = api.key()
    answer = api.client.post(
        "/v1/redemptions",
        content=b"{not json",
        headers=api.headers(token) | {"Content-Type": "application/json"},
    )
    assert answer.status_code == 422
    assert answer.json()["type"] == URN + "validation"
