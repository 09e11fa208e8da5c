"""Each giftq service of docker-compose.yml, run as a local process.

No Docker engine runs here, so the compose file's own commands and environment
are run with the container hostnames pointed at the test's PostgreSQL and Redis,
``/data`` and each tmpfs at a temporary folder, and each metrics port at a free one.
What each must do: ``migrate`` brings the schema to head; ``sms`` keeps a text;
the API answers its healthcheck and ``/metrics``; every worker answers a ping on
exactly the queues the file gives it and serves its metrics; ``beat`` publishes
the periodic tasks. ``mail`` (Mailpit) and ``flower`` are third-party images that
cannot run here: ``test_compose_file.py`` checks their configuration.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from alembic.script import ScriptDirectory
from prometheus_client.parser import text_string_to_metric_families

from delivery.worker.celery_app import create_app
from giftq import migrate
from giftq.settings import reset_settings

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _environment(service: dict[str, Any], pg_url: str, redis_url: str, data: Path) -> dict[str, str]:
    """The service's environment as compose would give it, with this machine's addresses."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_")}
    for name, declared in (service.get("environment") or {}).items():
        value = str(declared)
        if name == "GIFTQ_DATABASE_URL":
            assert "@postgres:5432/" in value
            value = pg_url
        elif name == "GIFTQ_BROKER_URL":
            assert value.startswith("redis://redis:6379/")
            value = redis_url
        elif name in ("GIFTQ_CODE_PEPPER", "GIFTQ_CODE_KEYS"):
            value = os.environ[name]  # the test secrets the autouse settings fixture sets
        elif name == "PROMETHEUS_MULTIPROC_DIR":
            assert value in service.get("tmpfs", []), "the multiprocess folder must start empty"
            value = str(data / "tmpfs" / value.strip("/"))
            Path(value).mkdir(parents=True, exist_ok=True)
        elif name == "GIFTQ_WORKER_METRICS_PORT":
            value = str(_free_port())  # several workers share this host here
        elif value.startswith("${"):
            value = value.split(":-", 1)[1].rstrip("}") if ":-" in value else ""
        elif value.startswith("/data/"):
            value = str(data) + value[len("/data") :]
        env[name] = value
    env["GIFTQ_DATA_DIR"] = str(data)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


def _command(service: dict[str, Any], data: Path) -> list[str]:
    return [str(part).replace("/data", str(data)) for part in service["command"]]


def _healthcheck(
    service: dict[str, Any], env: dict[str, str], hostname: str | None = None, **replace: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the service's healthcheck as Docker does (CMD or CMD-SHELL) inside its container,
    whose hostname is the one its worker's ``%h`` stands for."""
    kind, *test = service["healthcheck"]["test"]
    env = {**env, "HOSTNAME": hostname or socket.gethostname()}
    if kind == "CMD-SHELL":
        # Compose turns "$$" into "$"; the container's shell expands the rest.
        argv = ["sh", "-c", test[0].replace("$$", "$")]
    else:
        assert kind == "CMD"
        argv = test
    argv = [str(part) for part in argv]
    for old, new in replace.items():
        argv = [part.replace(old, new) for part in argv]
    return subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, timeout=60, check=False)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    data = tmp_path / "data"
    data.mkdir()
    return data


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen[bytes]]]:
    processes: list[subprocess.Popen[bytes]] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_migrate_service_brings_the_schema_to_head(pg_url: str, redis_url: str, run_dir: Path) -> None:
    migrate.downgrade(pg_url, "base")
    service = _compose()["services"]["migrate"]
    done = subprocess.run(
        _command(service, run_dir),
        env=_environment(service, pg_url, redis_url, run_dir),
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    head = ScriptDirectory.from_config(migrate.alembic_config(pg_url)).get_current_head()
    assert migrate.current(pg_url) == head


def test_sms_service_accepts_and_keeps_texts(
    pg_url: str, redis_url: str, run_dir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    from delivery.channels.sms.sink import SINK_ACCOUNT_SID, SINK_AUTH_TOKEN
    from delivery.channels.sms.twilio import TwilioClient

    service = _compose()["services"]["sms"]
    command = _command(service, run_dir)
    port = _free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    env = _environment(service, pg_url, redis_url, run_dir)
    started.append(
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    )
    deadline = time.monotonic() + 30
    while _healthcheck(service, env, **{"8026": str(port)}).returncode != 0:
        assert time.monotonic() < deadline, "the sms service never listened"
        time.sleep(0.2)
    client = TwilioClient(
        SINK_ACCOUNT_SID, SINK_AUTH_TOKEN, base_url=f"http://127.0.0.1:{port}", from_number="+15005550006"
    )
    try:
        answer = client.send("+447911123456", "compose check", status_callback="http://127.0.0.1:9/none")
    finally:
        client.close()
    assert answer.accepted, answer
    (stored,) = (run_dir / "sms").glob("*.json")
    assert "compose check" in stored.read_text()


def test_api_service_serves_and_answers_its_healthcheck(
    pg_url: str, redis_url: str, run_dir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    service = _compose()["services"]["api"]
    command = _command(service, run_dir)
    port = _free_port()
    command[command.index("--port") + 1] = str(port)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--workers") + 1] = "1"
    env = _environment(service, pg_url, redis_url, run_dir)
    started.append(
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    )
    deadline = time.monotonic() + 60
    while _healthcheck(service, env, **{"8000": str(port)}).returncode != 0:
        assert time.monotonic() < deadline, "the api service never answered its healthcheck"
        time.sleep(0.5)
    samples = _metrics(port)
    assert samples[("giftq_database_up", ())] == 1
    # Multiprocess mode: the uvicorn workers write their samples into the tmpfs.
    assert any(Path(env["PROMETHEUS_MULTIPROC_DIR"]).iterdir())


def _metrics(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """One scrape, parsed as Prometheus parses it."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


WORKERS = ["worker-orders", "worker-email", "worker-channels", "worker-scheduler"]


def test_worker_services_consume_their_queues(
    pg_url: str,
    redis_url: str,
    run_dir: Path,
    started: list[subprocess.Popen[bytes]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected: dict[str, list[str]] = {}
    metrics_ports: dict[str, int] = {}
    for name in WORKERS:
        service = _compose()["services"][name]
        command = _command(service, run_dir)
        node = command[command.index("-n") + 1].replace("%h", socket.gethostname())
        expected[node] = sorted(command[command.index("-Q") + 1].split(","))
        env = _environment(service, pg_url, redis_url, run_dir / name)
        metrics_ports[name] = int(env["GIFTQ_WORKER_METRICS_PORT"])
        started.append(
            subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
    # Ask them over the same broker, as Flower or `celery inspect` would.
    monkeypatch.setenv("GIFTQ_BROKER_URL", redis_url)
    reset_settings()
    app = create_app()
    try:
        answers: dict[str, Any] = {}
        deadline = time.monotonic() + 90
        while set(answers) != set(expected) and time.monotonic() < deadline:
            answers.update(app.control.inspect(timeout=1.0).active_queues() or {})
        consumed = {node: sorted(q["name"] for q in queues) for node, queues in answers.items()}
    finally:
        app.close()
    assert consumed == expected

    # Each worker's main process serves metrics (the pool's children write to its tmpfs).
    for name, metrics_port in metrics_ports.items():
        samples = _metrics(metrics_port)
        assert samples[("giftq_database_up", ())] == 1, name

    # Each worker's healthcheck, run as Docker runs it inside that worker's container.
    for name in WORKERS:
        service = _compose()["services"][name]
        env = _environment(service, pg_url, redis_url, run_dir)
        assert _healthcheck(service, env).returncode == 0, name
    # And it fails for a worker that is not there (another container's hostname).
    service = _compose()["services"]["worker-orders"]
    env = _environment(service, pg_url, redis_url, run_dir)
    assert _healthcheck(service, env, hostname="elsewhere").returncode != 0


def test_beat_service_publishes_the_periodic_tasks(
    pg_url: str, redis_url: str, run_dir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    service = _compose()["services"]["beat"]
    env = _environment(service, pg_url, redis_url, run_dir)
    env["GIFTQ_SCHEDULER_INTERVAL_SECONDS"] = "1"
    started.append(
        subprocess.Popen(
            _command(service, run_dir),
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    broker = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + 30
    names: set[str] = set()
    while time.monotonic() < deadline and "giftq.dispatch_due" not in names:
        for raw in broker.lrange("scheduler", 0, -1):
            names.add(json.loads(raw)["headers"]["task"])
        time.sleep(0.3)
    broker.close()
    assert "giftq.dispatch_due" in names
    assert (run_dir / "celerybeat-schedule").exists() or list(run_dir.glob("celerybeat-schedule*"))


def test_an_order_goes_through_the_api_to_the_mail_server(
    pg_url: str, redis_url: str, run_dir: Path, started: list[subprocess.Popen[bytes]]
) -> None:
    """The stack as compose runs it: the API, the orders and email workers, and a mail server
    (giftq's SMTP sink stands in for Mailpit, a third-party image that cannot run here)."""
    mail_port = _free_port()
    mail_dir = run_dir / "mail"
    started.append(
        subprocess.Popen(
            [
                str(BIN / "giftq"),
                "smtp-sink",
                "--host",
                "127.0.0.1",
                "--port",
                str(mail_port),
                "--dir",
                str(mail_dir),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    )
    services = _compose()["services"]

    def environment(name: str) -> dict[str, str]:
        env = _environment(services[name], pg_url, redis_url, run_dir / name)
        env.update(GIFTQ_SMTP_HOST="127.0.0.1", GIFTQ_SMTP_PORT=str(mail_port))
        return env

    for name in ("worker-orders", "worker-email"):
        started.append(
            subprocess.Popen(
                _command(services[name], run_dir / name),
                env=environment(name),
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    api = services["api"]
    command = _command(api, run_dir / "api")
    api_port = _free_port()
    command[command.index("--port") + 1] = str(api_port)
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--workers") + 1] = "1"
    api_env = environment("api")
    started.append(
        subprocess.Popen(command, env=api_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    )
    # A storefront's key, made as the README says, with the API's own settings.
    made = subprocess.run(
        [str(BIN / "giftq"), "api-keys", "create", "--name", "shop", "--scope", "orders"],
        env=api_env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    token = made.stdout.strip().splitlines()[-1]
    deadline = time.monotonic() + 60
    while _healthcheck(api, api_env, **{"8000": str(api_port)}).returncode != 0:
        assert time.monotonic() < deadline, "the api service never answered its healthcheck"
        time.sleep(0.5)

    order = {
        "purchaser": {"name": "Pat Buyer", "email": "pat@example.com"},
        "lines": [
            {
                "channel": "email",
                "amount": 2500,
                "marketplace": "US",
                "recipient": {"name": "Robin", "email": "robin@example.com"},
            }
        ],
    }
    request = urllib.request.Request(
        f"http://127.0.0.1:{api_port}/v1/orders",
        data=json.dumps(order).encode(),
        method="POST",
        headers={
            "Authorization": f"Bearer {token}",
            "Idempotency-Key": "compose-order-1",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        assert answer.status == 201

    def delivered() -> list[Path]:
        new = mail_dir / "new"
        return [p for p in new.iterdir() if b"robin@example.com" in p.read_bytes()] if new.is_dir() else []

    deadline = time.monotonic() + 90
    while not delivered():
        assert time.monotonic() < deadline, "the gift never reached the mail server"
        time.sleep(0.5)
