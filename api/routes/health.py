"""Readiness: the database answers and its schema is the one this release needs.

No API key: load balancers and orchestrators call it. It says nothing about the broker:
orders are accepted while the broker is away (the sweeper enqueues them later).
"""

from __future__ import annotations

import logging
from functools import cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from fastapi import APIRouter
from sqlalchemy.exc import SQLAlchemyError

from api.errors import Problem
from api.problems import openapi_responses
from api.schemas import HealthOut
from giftq.db import default_engine
from giftq.migrate import alembic_config

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["health"])


@cache
def schema_head() -> str | None:
    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()


@router.get(
    "/health",
    response_model=HealthOut,
    responses=openapi_responses("unavailable"),
    summary="Ready to serve: the database answers and its schema is current",
)
def health() -> HealthOut:
    try:
        with default_engine().connect() as connection:
            revision = MigrationContext.configure(connection).get_current_revision()
    except SQLAlchemyError as exc:
        log.warning("health: the database is not reachable (%s)", type(exc).__name__)
        raise Problem("unavailable", "the database is not reachable") from None
    head = schema_head()
    if revision != head:
        raise Problem(
            "unavailable",
            f"the database schema is at {revision or 'nothing'}, this release needs {head}: "
            "run giftq db upgrade",
        )
    return HealthOut(status="ok", database="ok", schema_revision=revision)
