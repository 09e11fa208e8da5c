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


# --- observability, the development mail server, the fulfilment drop folder ---------------

ENV_EXAMPLE = ROOT / ".env.example"


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            assert name and name == name.strip() and name.isupper(), line
            values[name] = value
    return values


def _interpolated(compose_text: str) -> dict[str, str]:
    """Each ``${NAME...}`` of the compose file: its name and what follows it (``:?``, ``:-``)."""
    import re

    return {m.group(1): m.group(2) for m in re.finditer(r"\$\{([A-Z0-9_]+)([^}]*)\}", compose_text)}


def test_env_example_names_every_variable_compose_reads_and_no_other() -> None:
    from giftq.settings import Settings, variable

    example = _env_example()
    interpolated = _interpolated((ROOT / "docker-compose.yml").read_text())
    assert set(example) == set(interpolated)
    settings = {variable(name) for name in Settings.model_fields}
    assert {name for name in example if name.startswith("GIFTQ_")} <= settings
    # What compose requires is left empty in the example, so that nobody runs on a sample secret.
    required = {name for name, rest in interpolated.items() if rest.startswith(":?")}
    assert required == {"GIFTQ_CODE_PEPPER", "GIFTQ_CODE_KEYS", "FLOWER_BASIC_AUTH"}
    assert all(example[name] == "" for name in required)


def test_env_example_defaults_agree_with_compose(compose: dict[str, Any]) -> None:
    """Copying the example unchanged gives the stack compose gives without it."""
    interpolated = _interpolated((ROOT / "docker-compose.yml").read_text())
    for name, value in _env_example().items():
        rest = interpolated[name]
        if rest.startswith(":-"):
            assert value == rest[2:], name


def test_giftq_services_write_metrics_into_an_empty_multiprocess_folder(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if "PROMETHEUS_MULTIPROC_DIR" in env:
            # A tmpfs starts empty with the container: no counts of an earlier run are added in.
            assert env["PROMETHEUS_MULTIPROC_DIR"] in service["tmpfs"], name
    services = compose["services"]
    for name in ("worker-orders", "worker-email", "worker-channels", "worker-scheduler", "api"):
        assert "PROMETHEUS_MULTIPROC_DIR" in services[name]["environment"], name
    for name in ("worker-orders", "worker-email", "worker-channels", "worker-scheduler"):
        env = services[name]["environment"]
        assert int(env["GIFTQ_WORKER_METRICS_PORT"]) > 0 and env["GIFTQ_WORKER_METRICS_HOST"] == "0.0.0.0"
    # The one-shot migration never imports a multiprocess metric without its folder.
    assert "PROMETHEUS_MULTIPROC_DIR" not in services["migrate"]["environment"]


def test_flower_watches_the_giftq_broker_behind_a_password(compose: dict[str, Any]) -> None:
    flower = compose["services"]["flower"]
    image, _, tag = flower["image"].partition(":")
    assert image == "mher/flower" and tag and tag != "latest"
    broker = compose["x-giftq-environment"]["GIFTQ_BROKER_URL"]
    assert f"--broker={broker}" in flower["command"]
    assert flower["environment"]["FLOWER_BASIC_AUTH"].startswith("${FLOWER_BASIC_AUTH:?")
    assert all(port.startswith("127.0.0.1:") for port in flower["ports"])
    assert flower["depends_on"]["redis"]["condition"] == "service_healthy"


def test_mailpit_is_the_smtp_server_giftq_sends_to_by_default(compose: dict[str, Any]) -> None:
    mail = compose["services"]["mail"]
    image, _, tag = mail["image"].partition(":")
    assert image == "axllent/mailpit" and tag.startswith("v1.")
    env = compose["x-giftq-environment"]
    # giftq's defaults point at it: host "mail", Mailpit's SMTP port 1025, no TLS inside the network.
    assert env["GIFTQ_SMTP_HOST"] == "${GIFTQ_SMTP_HOST:-mail}"
    assert env["GIFTQ_SMTP_PORT"] == "${GIFTQ_SMTP_PORT:-1025}"
    assert env["GIFTQ_SMTP_SECURITY"] == "${GIFTQ_SMTP_SECURITY:-none}"
    # Its web UI (8025) on this host only: it shows every message, claim codes included.
    assert mail["ports"] == ["127.0.0.1:8025:8025"]
    assert mail["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]


def test_the_fulfilment_worker_keeps_its_drop_and_inbox_folders_on_a_volume(compose: dict[str, Any]) -> None:
    services = compose["services"]
    (name,) = [
        n
        for n, s in services.items()
        if s.get("command", [])[:4] == ["celery", "-A", "worker", "worker"]
        and "fulfilment" in s["command"][s["command"].index("-Q") + 1].split(",")
    ]
    env = services[name]["environment"]
    mounts = {target: source for source, target in (v.split(":", 1) for v in services[name]["volumes"])}
    for setting in ("GIFTQ_FULFILMENT_DROP_DIR", "GIFTQ_FULFILMENT_INBOX_DIR"):
        (mounted,) = [target for target in mounts if env[setting].startswith(target + "/")]
        assert mounts[mounted] in compose["volumes"], setting
