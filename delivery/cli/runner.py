"""How an ops command runs: the database check first, one transaction, the audit log,
confirmation for what cannot be undone, dry runs, and errors as one line.

- :func:`reading` opens a transaction for a look-up.
- :func:`act` runs an action: asks first when it is destructive (or takes ``--yes``;
  with no terminal to ask, it is refused), writes the audit row in the action's own
  transaction, and with ``--dry-run`` rolls everything back (nothing is queued either:
  the outbox publishes only after a commit). A refusal is audited in a transaction of
  its own, after the action's was rolled back.

An error the code expects (a refusal, an unknown id, a database that is not ready) is
one line on stderr and exit 1; anything else too, unless ``--debug`` asks for the
traceback.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from sqlalchemy.orm import Session

from delivery.errors import DeliveryError
from delivery.ops import audit
from delivery.ops.models import Outcome
from giftq import migrate
from giftq.db import session_factory
from ledger.errors import LedgerError

R = TypeVar("R")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for scripts) instead of tables.")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show the traceback of an unexpected error.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do it without asking.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Show what it would do and change nothing (rolled back).")
]
ActorOption = Annotated[
    str | None, typer.Option("--actor", help="Who acts, for the audit log (default: the OS user).")
]

EXPECTED = (DeliveryError, LedgerError)


def fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def interactive() -> bool:
    """Whether someone can answer a question (stdin is a terminal)."""
    return sys.stdin.isatty()


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a bare container)
        return "unknown"


def _require_database() -> None:
    try:
        # Before any engine exists: a wrong data dir must not leave an empty database behind.
        migrate.require_head()
    except migrate.SchemaNotReady as exc:
        fail(str(exc))


def _unexpected(exc: Exception) -> NoReturn:
    fail(f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)")


@contextmanager
def reading(*, debug: bool = False) -> Iterator[Session]:
    _require_database()
    try:
        with session_factory().begin() as session:
            yield session
    except typer.Exit:
        raise
    except EXPECTED as exc:
        fail(str(exc))
    except Exception as exc:
        if debug:
            raise
        _unexpected(exc)


def _record(actor: str, action: str, arguments: Mapping[str, Any], outcome: Outcome, detail: str) -> None:
    with session_factory().begin() as session:
        audit.record(session, actor=actor, action=action, arguments=arguments, outcome=outcome, detail=detail)


def act(
    action: str,
    arguments: Mapping[str, Any],
    do: Callable[[Session], R],
    describe: Callable[[R], str],
    *,
    actor: str | None,
    dry_run: bool = False,
    confirm: str | None = None,
    yes: bool = False,
    debug: bool = False,
) -> R:
    """Run ``do`` in one transaction and audit it; ``confirm`` (the question) makes it ask first."""
    _require_database()
    who = actor or os_user()
    if confirm is not None and not (yes or dry_run):
        if not interactive():
            reason = "not confirmed: no terminal to ask, and no --yes"
            _record(who, action, arguments, Outcome.REFUSED, reason)
            fail(f"{action} changes what cannot be changed back: confirm with --yes (or try --dry-run)")
        if not typer.confirm(confirm, default=False, err=True):
            _record(who, action, arguments, Outcome.REFUSED, "not confirmed: declined at the prompt")
            fail("not confirmed; nothing changed")
    session = session_factory()()
    try:
        session.begin()
        result = do(session)
        if dry_run:
            session.rollback()
        else:
            detail = describe(result)
            audit.record(
                session, actor=who, action=action, arguments=arguments, outcome=Outcome.DONE, detail=detail
            )
            session.commit()
    except EXPECTED as exc:
        session.rollback()
        if not dry_run:
            _record(who, action, arguments, Outcome.REFUSED, str(exc))
        fail(str(exc))
    except Exception as exc:
        session.rollback()
        if not dry_run:
            # The database may be what failed; the error below says so either way.
            with suppress(Exception):
                _record(who, action, arguments, Outcome.FAILED, f"{type(exc).__name__}: {exc}")
        if debug:
            raise
        _unexpected(exc)
    finally:
        session.close()
    return result
