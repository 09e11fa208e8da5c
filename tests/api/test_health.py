"""Readiness answers 200 when the database and its schema are right, 503 otherwise."""

from __future__ import annotations

from typing import Any

from giftq import migrate


def test_ready_when_the_schema_is_current(api: Any) -> None:
    answer = api.client.get("/v1/health")
    assert answer.status_code == 200
    assert answer.json()["database"] == "ok"


def test_not_ready_when_the_schema_is_behind(api: Any, database_url: str) -> None:
    migrate.downgrade(database_url, "0003")
    answer = api.client.get("/v1/health")
    assert answer.status_code == 503
    assert answer.json()["type"] == "urn:giftq:problem:unavailable"
    assert "giftq db upgrade" in answer.json()["detail"]


def test_not_ready_when_the_database_is_away(api: Any, monkeypatch: Any) -> None:
    from giftq import db as giftq_db
    from giftq.settings import reset_settings

    monkeypatch.setenv("GIFTQ_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")
    reset_settings()
    giftq_db.reset_engine()
    answer = api.client.get("/v1/health")
    assert answer.status_code == 503
    assert answer.json()["detail"] == "the database is not reachable"
