"""The committed ``api/openapi.json`` is the app's document (regenerate: python -m api.openapi)."""

from __future__ import annotations

import json

from api import openapi
from api.callbacks import ROUTERS


def test_the_committed_document_matches_the_app() -> None:
    committed = json.loads(openapi.PATH.read_text(encoding="utf-8"))
    assert committed == json.loads(openapi.text()), "api/openapi.json is stale: run python -m api.openapi"


def test_callback_routes_do_not_exist_until_they_are_written() -> None:
    paths = openapi.document()["paths"]
    assert not [p for p in paths if "/callbacks/" in p or "/printables" in p]
    assert all(not router.routes for router in ROUTERS)


def test_every_write_requires_an_idempotency_key_and_every_route_but_health_a_key() -> None:
    doc = openapi.document()
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            headers = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "header"}
            if method == "post":
                assert headers["Idempotency-Key"]["required"] is True, path
            if path != "/v1/health":
                assert operation["security"] == [{"ApiKey": []}], path
