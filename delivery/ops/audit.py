"""The ops audit log: :func:`record` an action in the caller's transaction, list the
latest with :func:`recent`.

The caller decides the transaction: an action's row goes in the action's own (it
commits or rolls back with it); a refusal's row goes in a fresh one, after the action's
was rolled back. Arguments must not hold a claim code: :func:`record` refuses a key
named ``code`` rather than trust every caller.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery.ops.models import AuditEntry, Outcome
from giftq.db import utcnow

MAX_DETAIL = 2000
SECRET_ARGUMENTS = frozenset({"code", "claim_code"})


@dataclass(frozen=True, slots=True)
class AuditView:
    id: int
    at: dt.datetime
    actor: str
    action: str
    arguments: dict[str, Any]
    outcome: str
    detail: str


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    arguments: Mapping[str, Any],
    outcome: Outcome,
    detail: str,
) -> AuditView:
    if SECRET_ARGUMENTS & set(arguments):
        raise ValueError("a claim code is never written to the audit log")
    entry = AuditEntry(
        at=utcnow(),
        actor=actor[:100],
        action=action,
        arguments=dict(arguments),
        outcome=outcome,
        detail=" ".join(detail.split())[:MAX_DETAIL],
    )
    session.add(entry)
    session.flush()
    return _view(entry)


def recent(session: Session, *, limit: int = 50) -> list[AuditView]:
    """The latest entries, newest first."""
    rows = session.scalars(select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit))
    return [_view(e) for e in rows]


def _view(entry: AuditEntry) -> AuditView:
    return AuditView(
        entry.id, entry.at, entry.actor, entry.action, dict(entry.arguments), str(entry.outcome), entry.detail
    )
