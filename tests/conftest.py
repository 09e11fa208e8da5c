"""Shared fixtures: real databases and a real Redis.

- ``database_url``: a fresh, migrated database for one test, on each engine
  (the test runs twice: ``[sqlite]`` and ``[postgresql]``). Tests commit for real,
  so the deferred constraint triggers run as they do in production.
- ``pg_url``: the same, PostgreSQL only (races, SKIP LOCKED).
- ``engine`` / ``Session``: an engine and a sessionmaker bound to ``database_url``.
- ``redis_url``: an emptied Redis database of its own.
- :func:`table_counts`: the number of rows in every table, to show that a refusal wrote nothing.

PostgreSQL and Redis are found at GIFTQ_TEST_POSTGRES_URL / GIFTQ_TEST_REDIS_URL
(defaults: the local servers). When one is not reachable its tests are skipped,
unless GIFTQ_REQUIRE_SERVICES=1, when they fail: CI sets it so that a missing
service can never turn into a green run.
"""

from __future__ import annotations

import base64
import itertools
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine, orm, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from giftq import db as giftq_db
from giftq import migrate
from giftq.settings import reset_settings

REQUIRE_SERVICES = os.environ.get("GIFTQ_REQUIRE_SERVICES") == "1"
PG_ADMIN_URL = os.environ.get(
    "GIFTQ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_BASE_URL = os.environ.get("GIFTQ_TEST_REDIS_URL", "redis://127.0.0.1:6379")

# Fixed test secrets: 32-byte pepper and one AES-256 key (never used outside tests).
TEST_PEPPER = base64.b64encode(b"p" * 32).decode()
TEST_KEYS = "t1:" + base64.b64encode(b"k" * 32).decode()

_counter = itertools.count()


def service_unavailable(what: str, why: object) -> None:
    message = f"{what} is not reachable ({why})"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; GIFTQ_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
    pytest.skip(message)


@pytest.fixture(autouse=True)
def _settings_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test gets its own data dir and the test secrets; no state leaks between tests."""
    for name in list(os.environ):
        if (
            name.startswith("GIFTQ_")
            and not name.startswith("GIFTQ_TEST_")
            and name != "GIFTQ_REQUIRE_SERVICES"
        ):
            monkeypatch.delenv(name)
    monkeypatch.setenv("GIFTQ_ENV", "test")
    monkeypatch.setenv("GIFTQ_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("GIFTQ_CODE_PEPPER", TEST_PEPPER)
    monkeypatch.setenv("GIFTQ_CODE_KEYS", TEST_KEYS)
    reset_settings()
    giftq_db.reset_engine()
    yield
    giftq_db.reset_engine()
    reset_settings()


# --- PostgreSQL -------------------------------------------------------------------------


def _pg_url(database: str) -> str:
    return make_url(PG_ADMIN_URL).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _pg_admin() -> Iterator[Engine | None]:
    engine = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_size=2)
    try:
        with engine.connect() as connection:
            connection.execute(text("select 1"))
    except Exception as exc:
        engine.dispose()
        yield None
        _ = exc
        return
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def _pg_template(_pg_admin: Engine | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """A database migrated once per run; each test copies it (CREATE DATABASE ... TEMPLATE)."""
    if _pg_admin is None:
        yield None
        return
    name = f"giftq_tmpl_{os.getpid()}"
    with _pg_admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        c.execute(text(f'CREATE DATABASE "{name}"'))
    _migrate_with_test_env(_pg_url(name), tmp_path_factory)
    yield name
    with _pg_admin.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _migrate_with_test_env(url: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    # Session-scoped fixtures run outside the autouse settings fixture.
    mp = pytest.MonkeyPatch()
    mp.setenv("GIFTQ_ENV", "test")
    mp.setenv("GIFTQ_DATA_DIR", str(tmp_path_factory.mktemp("migrate")))
    mp.setenv("GIFTQ_CODE_PEPPER", TEST_PEPPER)
    mp.setenv("GIFTQ_CODE_KEYS", TEST_KEYS)
    reset_settings()
    try:
        migrate.upgrade(url)
    finally:
        mp.undo()
        reset_settings()


@contextmanager
def pg_database(admin: Engine | None, template: str | None) -> Iterator[str]:
    """A fresh migrated PostgreSQL database (copied from the run's template) while the block lasts;
    for fixtures of a wider scope than ``pg_url``'s."""
    if admin is None or template is None:
        service_unavailable("PostgreSQL", PG_ADMIN_URL)
        raise AssertionError("unreachable")
    name = f"giftq_t_{os.getpid()}_{next(_counter)}"
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _pg_url(name).replace("postgresql://", "postgresql+psycopg://", 1)
    finally:
        giftq_db.reset_engine()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_url(_pg_admin: Engine | None, _pg_template: str | None) -> Iterator[str]:
    with pg_database(_pg_admin, _pg_template) as url:
        yield url


# --- SQLite -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    _migrate_with_test_env(f"sqlite:///{path}", tmp_path_factory)
    return path


@pytest.fixture
def sqlite_url(_sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "giftq.sqlite3"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite:///{path}"


# --- Both engines -----------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    url: str = request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "pg_url")
    # Entry points (tasks, CLI) read the URL from settings; point them at this database.
    monkeypatch.setenv("GIFTQ_DATABASE_URL", url)
    reset_settings()
    giftq_db.reset_engine()
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = giftq_db.make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def Session(engine: Engine) -> sessionmaker[orm.Session]:
    return sessionmaker(engine, expire_on_commit=False)


def table_counts(session_maker: sessionmaker[orm.Session]) -> dict[str, int]:
    """Rows in every table the migrations know (a refused request must leave these as they were)."""
    from sqlalchemy import func, select

    from migrations.metadata import target_metadata

    with session_maker() as session:
        return {
            table.name: session.scalar(select(func.count()).select_from(table)) or 0
            for table in target_metadata.sorted_tables
        }


# --- Redis ------------------------------------------------------------------------------

# Databases 14 and 15 belong to module-scoped workers (tests/delivery/conftest.py: module_redis).
_redis_db = itertools.cycle(range(1, 14))


@pytest.fixture
def redis_url() -> str:
    import redis

    url = f"{REDIS_BASE_URL.rstrip('/')}/{next(_redis_db)}"
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        service_unavailable("Redis", exc)
    finally:
        client.close()
    return url
