"""docker-compose.yml: valid for ``docker compose``, and saying what giftq needs.

No Docker engine runs in CI, so the file is checked against the Compose
Specification's JSON Schema, and its giftq services' commands are run as local
processes by ``test_compose_services.py``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = Path(__file__).resolve().parents[1] / "contracts" / "compose-spec.json"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_compose_file_follows_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text())
    jsonschema.validate(compose, schema, cls=jsonschema.Draft7Validator)


SINKS = {"mail", "sms"}
"""Local stand-ins (SMTP, the SMS provider): they hold no secrets and open no database."""


def test_every_giftq_service_gets_the_secrets_and_the_database(compose: dict[str, Any]) -> None:
    giftq_services = {
        name: svc for name, svc in compose["services"].items() if svc.get("image", "").startswith("giftq")
    }
    assert {"migrate", "worker-orders", "worker-email", "worker-scheduler", "beat"} <= set(giftq_services)
    for name, service in giftq_services.items():
        if name in SINKS:
            continue
        env = service["environment"]
        assert env["GIFTQ_ENV"] == "production", name
        assert env["GIFTQ_DATABASE_URL"].startswith("postgresql://"), name
        assert env["GIFTQ_BROKER_URL"].startswith("redis://"), name
        # Secrets come from the operator's environment; compose refuses to start without them.
        assert env["GIFTQ_CODE_PEPPER"].startswith("${GIFTQ_CODE_PEPPER:?"), name
        assert env["GIFTQ_CODE_KEYS"].startswith("${GIFTQ_CODE_KEYS:?"), name


def test_workers_start_after_migrations_and_cover_every_queue_with_tasks(compose: dict[str, Any]) -> None:
    from delivery.worker.celery_app import CLIENT_DEFAULT_QUEUE, ROUTES

    consumed: set[str] = set()
    for name, service in compose["services"].items():
        command = service.get("command", [])
        if command[:4] == ["celery", "-A", "worker", "worker"]:
            assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully", name
            consumed.update(command[command.index("-Q") + 1].split(","))
    # Orders a storefront's client sends without naming a queue land in Celery's default one.
    assert set(ROUTES.values()) | {CLIENT_DEFAULT_QUEUE} <= consumed


def test_the_broker_keeps_queued_tasks_across_restarts(compose: dict[str, Any]) -> None:
    command = compose["services"]["redis"]["command"]
    assert command[command.index("--appendonly") + 1] == "yes"
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


def _one_shot(compose: dict[str, Any]) -> set[str]:
    """Services that others wait for to *finish* (``service_completed_successfully``)."""
    return {
        name
        for service in compose["services"].values()
        for name, dependency in (service.get("depends_on") or {}).items()
        if dependency.get("condition") == "service_completed_successfully"
    }


def test_every_long_running_service_restarts_by_itself(compose: dict[str, Any]) -> None:
    one_shot = _one_shot(compose)
    assert one_shot == {"migrate"}
    for name, service in compose["services"].items():
        if name in one_shot:
            # A finished migration must stay finished, not run again in a loop.
            assert service.get("restart", "no") in ("no", "on-failure"), name
        else:
            assert service.get("restart") in ("always", "unless-stopped"), name


def test_services_others_wait_for_and_every_worker_have_healthchecks(compose: dict[str, Any]) -> None:
    services = compose["services"]
    awaited_healthy = {
        name
        for service in services.values()
        for name, dependency in (service.get("depends_on") or {}).items()
        if dependency.get("condition") == "service_healthy"
    }
    workers = {
        name
        for name, service in services.items()
        if service.get("command", [])[:4] == ["celery", "-A", "worker", "worker"]
    }
    assert {"postgres", "redis"} <= awaited_healthy
    assert workers == {"worker-orders", "worker-email", "worker-channels", "worker-scheduler"}
    for name in awaited_healthy | workers | SINKS:
        assert services[name]["healthcheck"]["test"], name


def test_stopped_workers_may_finish_their_running_tasks(compose: dict[str, Any]) -> None:
    from giftq.settings import Settings

    limit = Settings().task_time_limit_seconds
    for name in ("worker-orders", "worker-email", "worker-scheduler"):
        grace = compose["services"][name]["stop_grace_period"]
        assert grace.endswith("s") and grace[:-1].isdigit(), name
        assert int(grace[:-1]) > limit, name
