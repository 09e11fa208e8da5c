"""The body of beat's ``giftq.place_programs`` task: every due program, batch by batch."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from delivery.programs import services

BATCH = 500
"""Programs per transaction: a crash loses at most one batch's work, which the next beat redoes."""


def place_due_programs(sessions: sessionmaker[Session], *, now: dt.datetime) -> dict[str, int]:
    """Place (or skip as too late) every program due at ``now``, one transaction per batch."""
    placed = skipped = 0
    while True:
        with sessions.begin() as session:
            result = services.place_due(session, now=now, limit=BATCH)
        placed += result.placed
        skipped += result.skipped
        if result.placed + result.skipped < BATCH:
            return {"placed": placed, "skipped": skipped}
