"""Beat's task places every due program, batch after batch, on both engines."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.models import Order
from delivery.programs import rows, services
from delivery.programs import tasks as program_tasks
from delivery.programs.models import ProgramPlacement


def test_every_due_program_in_batches(
    Session: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(program_tasks, "BATCH", 2)
    now = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
    with Session.begin() as s:
        for i in range(5):
            fields = {
                "name": f"Person {i}",
                "email": f"p{i}@example.com",
                "birth_date": "1990-06-05",
                "zone": "UTC",
                "marketplace": "US",
                "amount": 1000,
                "channel": "email",
                "purchaser_name": "Pat",
                "purchaser_email": "pat@example.com",
            }
            services.create(s, rows.parse_program(fields), now=now)
    assert program_tasks.place_due_programs(Session, now=now) == {"placed": 5, "skipped": 0}
    assert program_tasks.place_due_programs(Session, now=now) == {"placed": 0, "skipped": 0}
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 5
        assert s.scalar(select(func.count()).select_from(ProgramPlacement)) == 5


def test_the_celery_task_uses_the_configured_database(Session: sessionmaker[Session]) -> None:
    from delivery.worker.tasks import place_programs

    with Session.begin() as s:
        fields = {
            "name": "Ada",
            "email": "ada@example.com",
            "birth_date": "1990-01-01",
            "zone": "UTC",
            "marketplace": "US",
            "amount": 1000,
            "channel": "email",
            "purchaser_name": "Pat",
            "purchaser_email": "pat@example.com",
        }
        # Created now, within a week of a birthday or not: placed at once only if within.
        program = services.create(s, rows.parse_program(fields), now=dt.datetime.now(dt.UTC))
        program.next_place_at = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    assert place_programs() == {"placed": 1, "skipped": 0}
