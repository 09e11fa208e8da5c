"""Fixtures of the delivery tests.

Every test starts with the in-process broker (``memory://``) so that nothing reaches a
real Redis unless the test asks for one (``redis_url``) and sets it itself.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import email
import email.message
import email.policy
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from delivery.worker.celery_app import reset_app
from giftq.settings import reset_settings


@pytest.fixture(autouse=True)
def _memory_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GIFTQ_BROKER_URL", "memory://")
    reset_settings()
    reset_app()
    yield
    reset_app()


BASE_ORDER: dict[str, Any] = {
    "purchaser": {"name": "Pat Buyer", "email": "pat@example.com"},
    "reference": "SHOP-1001",
    "lines": [
        {
            "channel": "email",
            "amount": 2500,
            "marketplace": "US",
            "design": "birthday",
            "message": "Happy birthday!\nLove, Pat",
            "recipient": {"name": "Robin Receiver", "email": "robin@example.com"},
        }
    ],
}


def make_order(lines: int = 1, **line_overrides: Any) -> dict[str, Any]:
    """A valid order with ``lines`` email lines (recipients r0@, r1@, ...)."""
    order = copy.deepcopy(BASE_ORDER)
    template = order["lines"][0]
    order["lines"] = []
    for i in range(lines):
        line = copy.deepcopy(template)
        line["recipient"] = {"name": f"Recipient {i}", "email": f"r{i}@example.com"}
        line.update(copy.deepcopy(line_overrides))
        order["lines"].append(line)
    return order


@pytest.fixture
def order_payload() -> Any:
    """``order_payload(lines=1, **line_overrides)``: a valid order as a storefront sends it."""
    return make_order


def drain(queue: str) -> list[tuple[str, dict[str, Any]]]:
    """Take every message waiting on ``queue`` of the current app's broker: (task, kwargs)."""
    from delivery.worker.celery_app import get_app

    taken = []
    with get_app().connection_for_read() as connection:
        channel = connection.default_channel
        while (message := channel.basic_get(queue)) is not None:
            _args, kwargs, _embed = message.decode()
            taken.append((message.headers["task"], kwargs))
    return taken


@pytest.fixture
def broker_messages() -> Any:
    """``broker_messages(queue)``: drain the in-process broker's ``queue`` (see :func:`drain`)."""
    for queue in ("orders", "email", "scheduler"):
        drain(queue)
    return drain


@pytest.fixture
def issued_order(Session: Any, order_payload: Any) -> Any:
    """``issued_order(lines=1, key=..., **line_overrides) -> order_id``: placed and issued."""
    from delivery import place_order
    from delivery.orders import processing

    counter = iter(range(1_000_000))

    def make(lines: int = 1, key: str | None = None, **overrides: Any) -> int:
        placed = place_order(order_payload(lines, **overrides), idempotency_key=key or f"k{next(counter)}")
        while True:
            with Session.begin() as s:
                if processing.issue_next_chunk(s, placed.order_id).done:
                    return placed.order_id

    return make


# --- a real SMTP server with scripted answers ---------------------------------------------

CODE_PATTERN = re.compile(r"\b[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{5}\b")


class ScriptedSmtp:
    """An aiosmtpd handler: answers from ``script[address]`` at RCPT, one per attempt,
    then accepts. ``script["flaky@example.com"] = ["421 4.7.0 busy"] * 2`` says busy twice.
    Accepted messages are kept as ``(rcpt, parsed message)``."""

    def __init__(self) -> None:
        self.script: dict[str, list[str]] = {}
        self.delay = 0.0
        """Seconds to think before answering DATA (a slow server keeps batches in flight)."""
        self.rcpt_answers: list[tuple[str, str]] = []
        self.accepted: list[tuple[str, email.message.Message]] = []
        self._changed = threading.Condition()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        answers = self.script.get(address.lower())
        answer = answers.pop(0) if answers else "250 2.1.5 OK"
        with self._changed:
            self.rcpt_answers.append((address.lower(), answer))
        if answer.startswith("250"):
            envelope.rcpt_tos.append(address)
        return answer

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        parsed = email.message_from_bytes(envelope.original_content or b"", policy=email.policy.default)
        with self._changed:
            for rcpt in envelope.rcpt_tos:
                self.accepted.append((rcpt.lower(), parsed))
            self._changed.notify_all()
        return "250 2.0.0 queued"

    def to(self, address: str) -> list[email.message.Message]:
        with self._changed:
            return [m for rcpt, m in self.accepted if rcpt == address.lower()]

    def answers_to(self, address: str) -> list[str]:
        with self._changed:
            return [a for rcpt, a in self.rcpt_answers if rcpt == address.lower()]

    def wait(self, address: str, count: int = 1, timeout: float = 30.0) -> list[email.message.Message]:
        with self._changed:
            self._changed.wait_for(
                lambda: sum(1 for rcpt, _ in self.accepted if rcpt == address.lower()) >= count, timeout
            )
        return self.to(address)


def text_of(message: email.message.Message) -> str:
    body = message.get_body(preferencelist=("plain",))  # type: ignore[attr-defined]
    assert body is not None
    return str(body.get_content())


def codes_in(message: email.message.Message) -> list[str]:
    return CODE_PATTERN.findall(text_of(message))


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedSmtp]:
    """A scripted SMTP server for this test; settings (and the email transport) point at it."""
    from delivery.channels.email import close_transport
    from delivery.channels.email.sink import SmtpServerThread

    handler = ScriptedSmtp()
    with SmtpServerThread(handler, "127.0.0.1", 0) as server:
        monkeypatch.setenv("GIFTQ_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("GIFTQ_SMTP_PORT", str(server.port))
        reset_settings()
        close_transport()
        yield handler
        close_transport()


@pytest.fixture(scope="session")
def conftest() -> Any:
    """This module, for its helpers (``conftest.codes_in(message)``): tests import nothing here."""
    import sys

    return sys.modules[__name__]


# --- real Celery workers in their own processes -------------------------------------------

ROOT = Path(__file__).resolve().parents[2]
CELERY = str(Path(sys.executable).with_name("celery"))


class WorkerProcess:
    """``celery -A worker worker`` as a subprocess in its own session (so that a kill takes
    the pool children too), logging to a file the test can read."""

    command: tuple[str, ...] = ("worker", "--without-mingle", "--without-gossip")
    default_args: tuple[str, ...] = ("-Q", "orders,email,scheduler", "-c", "2")
    ready = " ready."
    """What the log says once the process is up."""

    def __init__(self, env: dict[str, str], log_path: Path, *args: str) -> None:
        self.env = env
        self.log_path = log_path
        self.args = args or self.default_args
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 30.0) -> None:
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [CELERY, "-A", "worker", self.command[0], "--loglevel=INFO", *self.command[1:], *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while self.ready not in self.log()[offset:]:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start:\n{self.log()[offset:]}")
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: nothing gets to clean up."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)


class BeatProcess(WorkerProcess):
    """``celery -A worker beat``: sends the periodic tasks (its schedule file in its data dir)."""

    command = ("beat",)
    default_args = ()
    ready = "beat: Starting..."


def wait_until(check: Any, timeout: float = 30.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


@dataclass
class Pipeline:
    """A database, a broker and an SMTP server shared by the tests of one module."""

    database_url: str
    broker_url: str
    smtp: ScriptedSmtp
    env: dict[str, str]
    Session: Any
    worker: WorkerProcess | None = None

    def send(self, task: str, **kwargs: Any) -> str:
        """Send a task by name, as any Celery client would; returns its id."""
        from delivery.worker.celery_app import ROUTES, get_app

        return str(get_app().send_task(task, kwargs=kwargs, queue=ROUTES[task]).id)

    def deliveries(self, **where: Any) -> list[Any]:
        from sqlalchemy import select

        from delivery.models import Delivery

        with self.Session() as s:
            query = select(Delivery).filter_by(**where).order_by(Delivery.id)
            return list(s.scalars(query))


def pipeline_env(
    database_url: str, broker_url: str, smtp_port: int, data_dir: Path, **extra: str
) -> dict[str, str]:
    """The environment of a worker (and of the test process talking to it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTQ_") or k.startswith("GIFTQ_TEST_")}
    env.update(
        {
            "GIFTQ_ENV": "test",
            "GIFTQ_DATA_DIR": str(data_dir),
            "GIFTQ_DATABASE_URL": database_url,
            "GIFTQ_BROKER_URL": broker_url,
            "GIFTQ_SMTP_HOST": "127.0.0.1",
            "GIFTQ_SMTP_PORT": str(smtp_port),
            "GIFTQ_CODE_PEPPER": base64.b64encode(secrets.token_bytes(32)).decode(),
            "GIFTQ_CODE_KEYS": "m1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
            "GIFTQ_RETRY_SCHEDULE_SECONDS": "[1, 1, 1]",
            "GIFTQ_RETRY_JITTER": "0",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra)
    return env


def use_pipeline(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point this test process (settings, engine, Celery app, email transport) at ``pipeline``."""
    from delivery.channels.email import close_transport
    from delivery.worker.celery_app import reset_app
    from giftq import db as giftq_db

    for name, value in pipeline.env.items():
        if name.startswith("GIFTQ_"):
            monkeypatch.setenv(name, value)
    reset_settings()
    reset_app()
    giftq_db.reset_engine()
    close_transport()


@contextmanager
def module_database(kind: str, request: pytest.FixtureRequest, tmp: Path) -> Iterator[str]:
    """A migrated database that lives as long as a module (copied from the session's template)."""
    if kind == "sqlite":
        template: Path = request.getfixturevalue("_sqlite_template")
        path = tmp / "pipeline.sqlite3"
        shutil.copyfile(template, path)
        yield f"sqlite:///{path}"
        return
    admin = request.getfixturevalue("_pg_admin")
    template_name = request.getfixturevalue("_pg_template")
    if admin is None or template_name is None:
        pytest.skip("PostgreSQL is not reachable")
    name = f"giftq_pipeline_{os.getpid()}_{tmp.name}".replace("-", "_")[:60]
    with admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    try:
        yield str(make_url(str(admin.url)).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def running_pipeline(
    request: pytest.FixtureRequest, tmp: Path, redis_db: int, **settings: str
) -> Iterator[Pipeline]:
    """A module's pipeline: a PostgreSQL database, a Redis database, an SMTP server that
    answers as scripted, and one worker with its embedded beat (``-B``, prefork, 2
    children) serving the orders, email and scheduler queues; ``settings`` add to its
    environment."""
    from sqlalchemy.orm import sessionmaker

    from delivery.channels.email.sink import SmtpServerThread
    from giftq.db import make_engine

    smtp = ScriptedSmtp()
    with (
        module_database("postgresql", request, tmp) as url,
        module_redis(redis_db) as broker,
        SmtpServerThread(smtp, "127.0.0.1", 0) as server,
    ):
        env = pipeline_env(url, broker, server.port, tmp / "var", **settings)
        worker = WorkerProcess(env, tmp / "worker.log", "-Q", "orders,email,scheduler", "-c", "2", "-B")
        worker.start()
        engine = make_engine(url)
        try:
            yield Pipeline(url, broker, smtp, env, sessionmaker(engine, expire_on_commit=False), worker)
        finally:
            worker.stop()
            engine.dispose()


@contextmanager
def module_redis(db: int) -> Iterator[str]:
    """A Redis database of its own for a module's worker (emptied before and after)."""
    import redis

    url = f"{os.environ.get('GIFTQ_TEST_REDIS_URL', 'redis://127.0.0.1:6379').rstrip('/')}/{db}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        if os.environ.get("GIFTQ_REQUIRE_SERVICES") == "1":
            pytest.fail(f"Redis is not reachable ({exc})")
        pytest.skip(f"Redis is not reachable ({exc})")
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def run_queued() -> Any:
    """``run_queued(Session)``: send whatever is queued or due, on every configured channel,
    until nothing is left (what the workers would do), in this process."""
    from sqlalchemy import select

    from delivery import dispatch
    from delivery.channels import registry
    from delivery.models import Delivery
    from delivery.states import DeliveryStatus as S

    def run(Session: Any) -> None:
        for _ in range(10):
            with Session() as s:
                due = s.execute(
                    select(Delivery.channel, Delivery.id)
                    .where(
                        Delivery.status.in_([S.QUEUED, S.FAILED_RETRYABLE]),
                        Delivery.channel.in_(sorted(registry.configured())),
                    )
                    .order_by(Delivery.id)
                ).all()
            if not due:
                return
            for channel in sorted({c for c, _ in due}):
                dispatch.run_batch(Session, channel, [i for c, i in due if c == channel])

    return run
