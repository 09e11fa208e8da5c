"""What a birthday program does: its yearly placement, and the ops actions on it.

Every function takes the caller's session and, where time matters, ``now`` (a UTC instant),
so that a test runs a year in a few calls. The rules:

- Year Y's gift is sent at ``send_time`` local on the birthday in Y (29 February in a common
  year: 28 February; DST: :mod:`delivery.scheduling`), and placed ``GIFTQ_PROGRAM_LEAD_DAYS``
  before that instant through :func:`delivery.place_order`, under the key
  ``giftq:program:<id>:<Y>``, in the same transaction as its placement row: a rerun, a
  second beat or a crash between the two never doubles a gift.
- :func:`place_due` places every active program whose placement time has come. One that is
  late by more than ``GIFTQ_PROGRAM_CATCH_UP_HOURS`` (nothing ran for days) is skipped, with a
  ``too_late`` placement row for ops: a gift is never placed long after its time.
- A program created, resumed or changed less than the lead time before a birthday places
  that year's gift at once (its placement time is "now"), unless the send time has passed.
- A change applies from the next unplaced year; an order already placed is its own row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from delivery import scheduling
from delivery.errors import InvalidOrder
from delivery.orders.intake import place_order
from delivery.programs.errors import ProgramNotFound, ProgramRefused
from delivery.programs.models import (
    BirthdayProgram,
    ProgramChannel,
    ProgramPlacement,
    ProgramStatus,
    SkipReason,
)
from delivery.programs.rows import ProgramSpec
from giftq.settings import get_settings


def order_key(program_id: int, year: int) -> str:
    return f"giftq:program:{program_id}:{year}"


def send_instant(birth_date: dt.date, send_time: str, zone: str, year: int) -> dt.datetime:
    """The UTC instant of ``year``'s gift: the local send time on the birthday in that year."""
    day = scheduling.birthday_in(year, birth_date.month, birth_date.day)
    return scheduling.due_at(dt.datetime.combine(day, dt.time.fromisoformat(send_time)), zone)


def render_message(template: str, name: str) -> str:
    return template.format(name=name)


def _lead() -> dt.timedelta:
    return dt.timedelta(days=get_settings().program_lead_days)


def _schedule_from(program: BirthdayProgram, now: dt.datetime, *, earliest_year: int) -> None:
    """Point the program at its next year to place: the first at or after ``earliest_year``
    whose send instant is still ahead; it is placed at its lead time, or now if that passed."""
    year = max(earliest_year, now.astimezone(scheduling.zone(program.zone)).year - 1)
    while (instant := send_instant(program.birth_date, program.send_time, program.zone, year)) <= now:
        year += 1
    program.next_year = year
    program.next_place_at = max(instant - _lead(), now)


def create(
    session: Session, spec: ProgramSpec, *, now: dt.datetime, import_key: str | None = None
) -> BirthdayProgram:
    """A new active program from validated fields (:class:`~delivery.programs.rows.ProgramSpec`)."""
    program = BirthdayProgram(**program_values(spec, now=now, import_key=import_key))
    session.add(program)
    session.flush()
    return program


def program_values(spec: ProgramSpec, *, now: dt.datetime, import_key: str | None) -> dict[str, Any]:
    """The row of a new program (also the bulk insert's values)."""
    probe = BirthdayProgram(birth_date=spec.birth_date, send_time=spec.send_time, zone=spec.zone)
    _schedule_from(probe, now, earliest_year=1)
    return {
        "name": spec.name,
        "email": spec.email,
        "phone": spec.phone,
        "birth_date": spec.birth_date,
        "zone": spec.zone,
        "marketplace": spec.marketplace,
        "amount": spec.amount,
        "channel": ProgramChannel(spec.channel),
        "design": spec.design,
        "message_template": spec.message,
        "send_time": spec.send_time,
        "purchaser_name": spec.purchaser_name,
        "purchaser_email": spec.purchaser_email,
        "status": ProgramStatus.ACTIVE,
        "next_year": probe.next_year,
        "next_place_at": probe.next_place_at,
        "import_key": import_key,
        "created_at": now,
        "updated_at": now,
    }


def get(session: Session, program_id: int, *, lock: bool = False) -> BirthdayProgram:
    query = select(BirthdayProgram).where(BirthdayProgram.id == program_id)
    if lock:
        query = query.with_for_update()
    program = session.scalars(query).one_or_none()
    if program is None:
        raise ProgramNotFound(f"no birthday program {program_id}")
    return program


def list_programs(
    session: Session, *, status: ProgramStatus | None = None, limit: int = 100
) -> Sequence[BirthdayProgram]:
    query = select(BirthdayProgram).order_by(BirthdayProgram.id).limit(limit)
    if status is not None:
        query = query.where(BirthdayProgram.status == status)
    return session.scalars(query).all()


def placements(session: Session, program_id: int) -> Sequence[ProgramPlacement]:
    return session.scalars(
        select(ProgramPlacement)
        .where(ProgramPlacement.program_id == program_id)
        .order_by(ProgramPlacement.year)
    ).all()


def skipped(session: Session, *, since: dt.datetime, limit: int = 100) -> Sequence[ProgramPlacement]:
    """Years skipped since ``since`` (too late, paused, refused), newest first: for ops."""
    return session.scalars(
        select(ProgramPlacement)
        .where(ProgramPlacement.skip_reason.is_not(None), ProgramPlacement.created_at >= since)
        .order_by(ProgramPlacement.created_at.desc())
        .limit(limit)
    ).all()


def pause(session: Session, program_id: int, *, now: dt.datetime) -> BirthdayProgram:
    program = _open(session, program_id)
    program.status = ProgramStatus.PAUSED
    program.updated_at = now
    return program


def resume(session: Session, program_id: int, *, now: dt.datetime) -> BirthdayProgram:
    """Active again from the next birthday still ahead; years whose placement time passed
    while paused are recorded as skipped (``paused``), never placed late."""
    program = _open(session, program_id)
    if program.status == ProgramStatus.ACTIVE:
        return program
    first_missed = program.next_year
    _schedule_from(program, now, earliest_year=first_missed)
    # A year whose placement time passed while paused but whose send time is still ahead is
    # placed now (as a new program would be); only years already over are skipped.
    for year in range(first_missed, program.next_year):
        _record(session, program, year, now=now, skip=SkipReason.PAUSED)
    program.status = ProgramStatus.ACTIVE
    program.updated_at = now
    return program


def end(session: Session, program_id: int, *, now: dt.datetime) -> BirthdayProgram:
    program = get(session, program_id, lock=True)
    program.status = ProgramStatus.ENDED
    program.updated_at = now
    return program


def change(session: Session, program_id: int, spec: ProgramSpec, *, now: dt.datetime) -> BirthdayProgram:
    """Replace the program's fields with ``spec`` (validated as a whole); it applies from the
    next year not yet placed, and its schedule is worked out again from there."""
    program = _open(session, program_id)
    values = program_values(spec, now=now, import_key=program.import_key)
    for field in ("status", "next_year", "next_place_at", "created_at", "import_key"):
        values.pop(field)
    for field, value in values.items():
        setattr(program, field, value)
    _schedule_from(program, now, earliest_year=program.next_year)
    return program


def spec_of(program: BirthdayProgram) -> dict[str, Any]:
    """The program's fields as a :class:`ProgramSpec` takes them (the base of a change)."""
    return {
        "name": program.name,
        "email": program.email,
        "phone": program.phone,
        "birth_date": program.birth_date,
        "zone": program.zone,
        "marketplace": program.marketplace,
        "amount": program.amount,
        "channel": str(program.channel),
        "design": program.design,
        "message": program.message_template,
        "send_time": program.send_time,
        "purchaser_name": program.purchaser_name,
        "purchaser_email": program.purchaser_email,
    }


def _open(session: Session, program_id: int) -> BirthdayProgram:
    program = get(session, program_id, lock=True)
    if program.status == ProgramStatus.ENDED:
        raise ProgramRefused(f"birthday program {program_id} has ended")
    return program


@dataclass(frozen=True, slots=True)
class DueResult:
    placed: int
    skipped: int

    def as_dict(self) -> dict[str, int]:
        return {"placed": self.placed, "skipped": self.skipped}


def place_due(session: Session, *, now: dt.datetime, limit: int = 500) -> DueResult:
    """Place (or skip as too late) each active program's gift whose placement time has come,
    at most ``limit`` programs; the caller commits, and calls again while ``limit`` came back.

    Rows are locked (``SKIP LOCKED`` on PostgreSQL), so two beats share the work; the order's
    key and the unique placement row make a rerun add nothing even without the lock."""
    catch_up = dt.timedelta(hours=get_settings().program_catch_up_hours)
    programs = session.scalars(
        select(BirthdayProgram)
        .where(BirthdayProgram.status == ProgramStatus.ACTIVE, BirthdayProgram.next_place_at <= now)
        .order_by(BirthdayProgram.next_place_at, BirthdayProgram.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    ).all()
    placed = skipped_count = 0
    for program in programs:
        year = program.next_year
        if now - program.next_place_at > catch_up:
            _record(session, program, year, now=now, skip=SkipReason.TOO_LATE)
            skipped_count += 1
        elif _place(session, program, year, now=now):
            placed += 1
        else:
            skipped_count += 1
        _schedule_from(program, now, earliest_year=year + 1)
        # Years over while nothing ran at all (a beat down for a year and more): on record too.
        for missed in range(year + 1, program.next_year):
            _record(session, program, missed, now=now, skip=SkipReason.TOO_LATE)
            skipped_count += 1
    return DueResult(placed, skipped_count)


def _place(session: Session, program: BirthdayProgram, year: int, *, now: dt.datetime) -> bool:
    day = scheduling.birthday_in(year, program.birth_date.month, program.birth_date.day)
    recipient: dict[str, Any] = {"name": program.name}
    if program.channel == ProgramChannel.EMAIL:
        recipient["email"] = program.email
    else:
        recipient["phone"] = program.phone
    order = {
        "purchaser": {"name": program.purchaser_name, "email": program.purchaser_email},
        "reference": f"birthday-program-{program.id}-{year}",
        "lines": [
            {
                "channel": str(program.channel),
                "amount": program.amount,
                "marketplace": program.marketplace,
                "design": program.design,
                "message": render_message(program.message_template, program.name),
                "recipient": recipient,
                "send_at": {"local_time": f"{day.isoformat()}T{program.send_time}", "zone": program.zone},
            }
        ],
    }
    try:
        with session.begin_nested():
            placed = place_order(order, idempotency_key=order_key(program.id, year), session=session)
    except InvalidOrder as exc:
        # What was valid when the program was made may not be now (a design removed): the
        # year is skipped with the reason for ops, and later years are still tried.
        _record(session, program, year, now=now, skip=SkipReason.REFUSED, detail=str(exc))
        return False
    _record(session, program, year, now=now, order_id=placed.order_id)
    return True


def _record(
    session: Session,
    program: BirthdayProgram,
    year: int,
    *,
    now: dt.datetime,
    order_id: int | None = None,
    skip: SkipReason | None = None,
    detail: str | None = None,
) -> None:
    existing = session.scalars(
        select(ProgramPlacement).where(
            ProgramPlacement.program_id == program.id, ProgramPlacement.year == year
        )
    ).one_or_none()
    if existing is not None:
        return
    session.add(
        ProgramPlacement(
            program_id=program.id,
            year=year,
            order_id=order_id,
            skip_reason=skip,
            detail=detail,
            send_at=send_instant(program.birth_date, program.send_time, program.zone, year),
            created_at=now,
        )
    )
    session.flush()
