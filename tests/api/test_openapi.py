"""The committed ``api/openapi.json`` is the app's document (regenerate: python -m api.openapi)."""

from __future__ import annotations

import json

from api import openapi
from api.callbacks import ROUTERS


def test_the_committed_document_matches_the_app() -> None:
    committed = json.loads(openapi.PATH.read_text(encoding="utf-8"))
    assert committed == json.loads(openapi.text()), "api/openapi.json is stale: run python -m api.openapi"


PROVIDER_CALLBACKS = {"/sms/status", "/v1/callbacks/fulfilment/reports", "/printables/{token}"}
"""Routes a provider or a person calls, authenticated by a signature or a signed token in the
request, not by an API key."""


def test_callback_routes_exist_only_where_their_handling_is_written() -> None:
    paths = set(openapi.document()["paths"])
    assert paths >= PROVIDER_CALLBACKS
    assert not [p for p in paths - PROVIDER_CALLBACKS if "/callbacks/" in p or "/printables" in p]
    written = {route.path for router in ROUTERS for route in router.routes}  # type: ignore[attr-defined]
    assert written == PROVIDER_CALLBACKS


def test_every_write_requires_an_idempotency_key_and_every_route_but_health_a_key() -> None:
    doc = openapi.document()
    for path, operations in doc["paths"].items():
        if path in PROVIDER_CALLBACKS:
            continue
        for method, operation in operations.items():
            headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
            if method == "post":
                assert headers["Idempotency-Key"]["required"] is True, path
            if path != "/v1/health":
                assert operation["security"] == [{"ApiKey": []}], path
