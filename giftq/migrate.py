"""Schema migrations: Alembic, driven from code so that ``giftq db upgrade`` needs no ini file.

:func:`upgrade` is the one place that creates a database (and, for SQLite, its folder).
Commands that only use a database call :func:`require_head` first. It creates nothing,
no SQLite file and no folder, and raises one of these:

    SchemaNotReady        the database cannot be used by this code
    ├── NoDatabase        nothing at that address, or nothing migrated there yet
    ├── Unreachable       the database server did not answer
    └── SchemaMismatch    migrated, but to another revision than this code's head
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

import migrations
from giftq.db import make_engine
from giftq.settings import get_settings

SCRIPT_LOCATION = Path(migrations.__file__).resolve().parent
UPGRADE_HINT = "run: giftq db upgrade"


class SchemaNotReady(RuntimeError):
    """The database at the configured address cannot be used by this code as it is."""


class NoDatabase(SchemaNotReady):
    """No database at that address, or one that no migration has run in."""

    def __init__(self, where: str) -> None:
        super().__init__(f"no giftq database at {where} ({UPGRADE_HINT})")
        self.where = where


class Unreachable(SchemaNotReady):
    """The database server refused or did not answer the connection."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"cannot open the giftq database at {where}: {reason}")
        self.where = where


class SchemaMismatch(SchemaNotReady):
    """The database is migrated to ``current``, and this code needs ``head``."""

    def __init__(self, where: str, current: str, head: str, *, known: bool) -> None:
        if known:
            message = (
                f"the giftq database at {where} is at revision {current}; "
                f"the code's head is {head} ({UPGRADE_HINT})"
            )
        else:
            # A newer giftq migrated it: upgrading the database cannot help, upgrading giftq can.
            message = (
                f"the giftq database at {where} is at revision {current}, which this code does "
                f"not know (its head is {head}): run a giftq as new as the one that migrated it"
            )
        super().__init__(message)
        self.where, self.current, self.head = where, current, head


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_LOCATION))
    # "%" is ConfigParser interpolation syntax; URLs may contain it (escaped passwords).
    config.set_main_option("sqlalchemy.url", (url or get_settings().sqlalchemy_url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    url = url or get_settings().sqlalchemy_url
    database = _sqlite_file(url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def head() -> str:
    """The newest revision this code has."""
    newest = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert newest is not None, "no migrations"
    return newest


def where(url: str | None = None) -> str:
    """The database as a person names it: a SQLite file's path, or the URL without its password."""
    url = url or get_settings().sqlalchemy_url
    database = _sqlite_file(url)
    if database is not None:
        return str(database)
    return make_url(url).render_as_string(hide_password=True)


def current(url: str | None = None) -> str | None:
    """The revision the database is at; None when it exists but no migration ran in it.

    Creates nothing: a SQLite file that is not there is :class:`NoDatabase`.
    """
    url = url or get_settings().sqlalchemy_url
    database = _sqlite_file(url)
    if database is not None and not database.is_file():
        raise NoDatabase(where(url))
    engine = make_engine(url)
    try:
        with engine.connect() as connection, _quiet_alembic():
            return MigrationContext.configure(connection).get_current_revision()
    except OperationalError as exc:
        # The driver's first line says why (refused, no such database, bad password).
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise Unreachable(where(url), reason) from None
    finally:
        engine.dispose()


def require_head(url: str | None = None) -> str:
    """The database's revision, when it is this code's head; else :class:`SchemaNotReady`."""
    url = url or get_settings().sqlalchemy_url
    at = current(url)
    if at is None:
        raise NoDatabase(where(url))
    newest = head()
    if at != newest:
        raise SchemaMismatch(where(url), at, newest, known=_known(at))
    return at


def _known(revision: str) -> bool:
    try:
        return ScriptDirectory.from_config(alembic_config("sqlite://")).get_revision(revision) is not None
    except CommandError:
        return False


def _sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL; None for other engines and in-memory databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database).expanduser().resolve()


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    # MigrationContext announces its dialect at INFO: noise in front of a one-line answer.
    logger = logging.getLogger("alembic.runtime.migration")
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)
