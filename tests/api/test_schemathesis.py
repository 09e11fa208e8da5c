"""Property-based run of the whole API from its own OpenAPI document (schemathesis), on
PostgreSQL: no answer is a 500, every answer matches the document (status, media type,
headers, body), and a refused request leaves nothing half-written (every table but the
lockout's failure records counts the same before and after it).

Bounded: a few examples per operation, so the whole run stays well under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from api import openapi
from tests.api.conftest import ApiDriver

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


# The committed document (tests/api/test_openapi.py holds it equal to the app's).
schema = schemathesis.openapi.from_path(str(openapi.PATH))


@pytest.fixture
def contract_api(pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    from sqlalchemy.orm import sessionmaker

    from giftq import db as giftq_db
    from giftq.settings import reset_settings

    monkeypatch.setenv("GIFTQ_DATABASE_URL", pg_url)
    reset_settings()
    giftq_db.reset_engine()
    engine = giftq_db.make_engine(pg_url)
    driver = ApiDriver(sessionmaker(engine, expire_on_commit=False))
    token = driver.key()
    driver.issue(2500, 1000)
    yield driver, token
    engine.dispose()
    giftq_db.reset_engine()


@schema.parametrize()
@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_the_api_keeps_its_contract(case: Any, contract_api: tuple[ApiDriver, str]) -> None:
    driver, token = contract_api
    before = driver.counts()
    response = case.call_and_validate(
        app=driver.client.app,
        base_url="http://testserver",
        headers={"Authorization": f"Bearer {token}"},
        checks=CHECKS,
    )
    if response.status_code >= 400:
        after = driver.counts()
        assert after["failures"] >= before["failures"]
        before.pop("failures"), after.pop("failures")
        assert after == before, f"{case.method} {case.path} answered {response.status_code} and wrote {after}"
