"""Birthday programs through a controlled clock, on both engines: each year's gift placed
once, a set time ahead, at the local send time (year boundary, 29 February, DST), late
placements caught up within the window and skipped (on record) beyond it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from delivery.models import Order, OrderLine
from delivery.programs import rows, services
from delivery.programs.errors import ProgramRefused
from delivery.programs.models import ProgramPlacement, ProgramStatus, SkipReason


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def spec(**overrides: Any) -> rows.ProgramSpec:
    fields: dict[str, Any] = {
        "name": "Ada Lovelace",
        "email": "ada@example.com",
        "birth_date": "1990-01-03",
        "zone": "Europe/Berlin",
        "marketplace": "DE",
        "amount": 2500,
        "channel": "email",
        "message": "Happy birthday, {name}!",
        "purchaser_name": "Grace Hopper",
        "purchaser_email": "grace@example.com",
    }
    fields.update(overrides)
    return rows.parse_program(fields)


def make(Session: sessionmaker[Session], now: dt.datetime, **overrides: Any) -> int:
    with Session.begin() as s:
        return services.create(s, spec(**overrides), now=now).id


def run(Session: sessionmaker[Session], now: dt.datetime) -> services.DueResult:
    with Session.begin() as s:
        return services.place_due(s, now=now)


def lines_of(
    Session: sessionmaker[Session], program_id: int
) -> list[tuple[int, str, str | None, dt.datetime, int]]:
    """(year, order key, send_at_local, due_at, amount) of each order a program placed."""
    with Session() as s:
        return [
            (p.year, o.idempotency_key, line.send_at_local, line.due_at, line.amount)
            for p, o, line in s.execute(
                select(ProgramPlacement, Order, OrderLine)
                .join(Order, Order.id == ProgramPlacement.order_id)
                .join(OrderLine, OrderLine.order_id == Order.id)
                .where(ProgramPlacement.program_id == program_id)
                .order_by(ProgramPlacement.year)
            )
        ]


def skips_of(Session: sessionmaker[Session], program_id: int) -> list[tuple[int, SkipReason | None]]:
    with Session() as s:
        return [(p.year, p.skip_reason) for p in services.placements(s, program_id) if p.order_id is None]


def test_across_a_year_boundary_placed_once_a_week_ahead(Session: sessionmaker[Session]) -> None:
    # Born 3 January; 09:00 in Berlin (CET, +1) is 08:00 UTC; placed 7 days ahead, in December.
    program = make(Session, utc(2026, 6, 1))
    assert run(Session, utc(2026, 12, 27, 7, 59)).placed == 0
    assert run(Session, utc(2026, 12, 27, 8, 0)).placed == 1
    assert run(Session, utc(2026, 12, 27, 8, 5)).placed == 0  # the next beat adds nothing
    assert run(Session, utc(2027, 1, 3, 8, 0)).placed == 0
    [(year, key, local, due, amount)] = lines_of(Session, program)
    assert (year, key) == (2027, f"giftq:program:{program}:2027")
    assert (local, due, amount) == ("2027-01-03T09:00:00", utc(2027, 1, 3, 8, 0), 2500)
    with Session() as s:
        p = services.get(s, program)
        assert (p.next_year, p.next_place_at) == (2028, utc(2027, 12, 27, 8, 0))
        order = s.scalars(select(Order).where(Order.idempotency_key == key)).one()
        line = s.scalars(select(OrderLine).where(OrderLine.order_id == order.id)).one()
        assert line.message == "Happy birthday, Ada Lovelace!"
        assert (order.purchaser_email, line.recipient_email) == ("grace@example.com", "ada@example.com")
    assert run(Session, utc(2027, 12, 27, 8, 0)).placed == 1
    assert [row[:2] for row in lines_of(Session, program)] == [
        (2027, f"giftq:program:{program}:2027"),
        (2028, f"giftq:program:{program}:2028"),
    ]


def test_29_february_on_28_february_in_a_common_year(Session: sessionmaker[Session]) -> None:
    # New York in February is EST (-5): 09:00 is 14:00 UTC.
    program = make(
        Session, utc(2026, 1, 1), birth_date="2000-02-29", zone="America/New_York", marketplace="US"
    )
    assert run(Session, utc(2026, 2, 21, 13, 59)).placed == 0
    assert run(Session, utc(2026, 2, 21, 14, 0)).placed == 1
    assert run(Session, utc(2027, 2, 21, 14, 0)).placed == 1
    assert run(Session, utc(2028, 2, 22, 14, 0)).placed == 1  # a leap year: 29 February
    assert [(y, local, due) for y, _, local, due, _ in lines_of(Session, program)] == [
        (2026, "2026-02-28T09:00:00", utc(2026, 2, 28, 14, 0)),
        (2027, "2027-02-28T09:00:00", utc(2027, 2, 28, 14, 0)),
        (2028, "2028-02-29T09:00:00", utc(2028, 2, 29, 14, 0)),
    ]


def test_dst_gap_forward_and_fold_first(Session: sessionmaker[Session]) -> None:
    # 14 March 2027, 02:30 does not exist in New York: 03:30 EDT (07:30 UTC).
    spring = make(
        Session,
        utc(2026, 6, 1),
        birth_date="1980-03-14",
        zone="America/New_York",
        send_time="02:30",
        marketplace="US",
    )
    # 7 November 2027, 01:30 happens twice: the first, EDT (05:30 UTC).
    autumn = make(
        Session,
        utc(2026, 6, 1),
        birth_date="1980-11-07",
        zone="America/New_York",
        send_time="01:30",
        marketplace="US",
    )
    assert run(Session, utc(2027, 3, 7, 7, 29)).placed == 0
    assert run(Session, utc(2027, 3, 7, 7, 30)).placed == 1
    assert run(Session, utc(2027, 10, 31, 5, 30)).placed == 1
    assert [(local, due) for _, _, local, due, _ in lines_of(Session, spring)] == [
        ("2027-03-14T02:30:00", utc(2027, 3, 14, 7, 30))
    ]
    assert [(local, due) for _, _, local, due, _ in lines_of(Session, autumn)] == [
        ("2027-11-07T01:30:00", utc(2027, 11, 7, 5, 30))
    ]


def test_late_placements_caught_up_within_the_window_then_skipped_on_record(
    Session: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_PROGRAM_CATCH_UP_HOURS", "48")
    from giftq.settings import reset_settings

    reset_settings()
    caught = make(Session, utc(2026, 6, 1))  # placed at 2026-12-27 08:00
    missed = make(Session, utc(2026, 6, 1), birth_date="1990-01-01", email="bo@example.com")  # 12-25 08:00
    # Nothing ran from before Christmas until 27 December 09:00: 49 h late for one, 1 h for the other.
    result = run(Session, utc(2026, 12, 27, 9, 0))
    assert result.as_dict() == {"placed": 1, "skipped": 1}
    assert [y for y, *_ in lines_of(Session, caught)] == [2027]
    assert lines_of(Session, missed) == []
    assert skips_of(Session, missed) == [(2027, SkipReason.TOO_LATE)]
    with Session() as s:
        assert [p.program_id for p in services.skipped(s, since=utc(2026, 12, 1))] == [missed]
        assert services.get(s, missed).next_year == 2028  # next year goes ahead as usual
    assert run(Session, utc(2026, 12, 27, 9, 5)).as_dict() == {"placed": 0, "skipped": 0}


def test_never_what_is_long_past(Session: sessionmaker[Session]) -> None:
    program = make(Session, utc(2026, 6, 1))
    # Beat was down for over two years: each birthday over is on record, none is placed.
    assert run(Session, utc(2029, 2, 1)).as_dict() == {"placed": 0, "skipped": 3}
    assert skips_of(Session, program) == [(y, SkipReason.TOO_LATE) for y in (2027, 2028, 2029)]
    with Session() as s:
        assert services.get(s, program).next_year == 2030
    assert run(Session, utc(2029, 2, 1)).placed == 0
    with Session() as s:
        assert s.scalar(select(func.count()).select_from(Order)) == 0


def test_created_inside_the_lead_time_places_this_year_at_once(Session: sessionmaker[Session]) -> None:
    program = make(Session, utc(2027, 1, 1, 12, 0))  # two days before 3 January
    assert run(Session, utc(2027, 1, 1, 12, 1)).placed == 1
    assert [y for y, *_ in lines_of(Session, program)] == [2027]


def test_pause_resume_end(Session: sessionmaker[Session]) -> None:
    program = make(Session, utc(2026, 6, 1))
    with Session.begin() as s:
        assert services.pause(s, program, now=utc(2026, 12, 1)).status == ProgramStatus.PAUSED
    assert run(Session, utc(2026, 12, 27, 8, 0)).placed == 0
    with Session.begin() as s:  # resumed after the birthday: that year is on record as paused
        services.resume(s, program, now=utc(2027, 2, 1))
    assert skips_of(Session, program) == [(2027, SkipReason.PAUSED)]
    with Session.begin() as s:  # paused again and resumed inside next year's lead time
        services.pause(s, program, now=utc(2027, 12, 1))
    assert run(Session, utc(2027, 12, 27, 8, 0)).placed == 0
    with Session.begin() as s:
        services.resume(s, program, now=utc(2027, 12, 30))
    assert run(Session, utc(2027, 12, 30, 0, 1)).placed == 1  # still before 3 January: placed
    with Session.begin() as s:
        assert services.end(s, program, now=utc(2028, 6, 1)).status == ProgramStatus.ENDED
    assert run(Session, utc(2028, 12, 27, 8, 0)).placed == 0
    assert [y for y, *_ in lines_of(Session, program)] == [2028]
    with Session.begin() as s, pytest.raises(ProgramRefused, match="ended"):
        services.resume(s, program, now=utc(2028, 6, 2))


def test_change_applies_to_next_year_never_to_a_placed_gift(Session: sessionmaker[Session]) -> None:
    program = make(Session, utc(2026, 6, 1))
    assert run(Session, utc(2026, 12, 27, 8, 0)).placed == 1
    with Session.begin() as s:
        fields = services.spec_of(services.get(s, program)) | {"amount": 5000, "send_time": "18:00"}
        services.change(s, program, rows.parse_program(fields), now=utc(2026, 12, 28))
    assert run(Session, utc(2027, 1, 3, 17, 0)).placed == 0  # 2027 was placed: not again
    assert run(Session, utc(2027, 12, 27, 17, 0)).placed == 1
    assert [(y, local, amount) for y, _, local, _, amount in lines_of(Session, program)] == [
        (2027, "2027-01-03T09:00:00", 2500),
        (2028, "2028-01-03T18:00:00", 5000),
    ]
