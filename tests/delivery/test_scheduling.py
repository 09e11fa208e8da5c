from __future__ import annotations

import datetime as dt

import pytest

from delivery.scheduling import birthday_in, due_at, next_birthday_due


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=dt.UTC)


def test_plain_local_time() -> None:
    assert due_at(dt.datetime(2025, 6, 1, 9, 0), "Europe/Berlin") == utc(2025, 6, 1, 7, 0)
    assert due_at(dt.datetime(2025, 1, 1, 9, 0), "Asia/Tokyo") == utc(2025, 1, 1, 0, 0)


def test_gap_shifts_forward_by_the_gap() -> None:
    # 2025-03-09 02:30 does not exist in New York (02:00 -> 03:00): 03:30 EDT.
    assert due_at(dt.datetime(2025, 3, 9, 2, 30), "America/New_York") == utc(2025, 3, 9, 7, 30)
    assert (
        utc(2025, 3, 9, 7, 30)
        .astimezone(__import__("zoneinfo").ZoneInfo("America/New_York"))
        .strftime("%H:%M")
        == "03:30"
    )
    # Berlin, 2025-03-30 02:15 -> 03:15 CEST = 01:15 UTC.
    assert due_at(dt.datetime(2025, 3, 30, 2, 15), "Europe/Berlin") == utc(2025, 3, 30, 1, 15)
    # Lord Howe moves by half an hour: 02:10 -> 02:40 (+11) = 15:40 UTC the day before.
    assert due_at(dt.datetime(2025, 10, 5, 2, 10), "Australia/Lord_Howe") == utc(2025, 10, 4, 15, 40)


def test_fold_takes_the_first_occurrence() -> None:
    # 2025-11-02 01:30 happens twice in New York: first at 05:30 UTC (EDT), then 06:30.
    assert due_at(dt.datetime(2025, 11, 2, 1, 30), "America/New_York") == utc(2025, 11, 2, 5, 30)
    # Berlin, 2025-10-26 02:30 twice: first in CEST = 00:30 UTC.
    assert due_at(dt.datetime(2025, 10, 26, 2, 30), "Europe/Berlin") == utc(2025, 10, 26, 0, 30)


def test_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="without an offset"):
        due_at(utc(2025, 1, 1), "Europe/Berlin")


def test_unknown_zone_is_named() -> None:
    with pytest.raises(ValueError, match="Mars/Olympus"):
        due_at(dt.datetime(2025, 1, 1), "Mars/Olympus")


def test_29_february_falls_on_28_february_without_a_leap_day() -> None:
    assert birthday_in(2025, 2, 29) == dt.date(2025, 2, 28)
    assert birthday_in(2028, 2, 29) == dt.date(2028, 2, 29)
    assert birthday_in(2100, 2, 29) == dt.date(2100, 2, 28)  # not a leap year
    assert birthday_in(2025, 3, 1) == dt.date(2025, 3, 1)


def test_next_birthday() -> None:
    born = dt.date(2000, 2, 29)
    now = utc(2025, 3, 1)
    got = next_birthday_due(born, dt.time(9, 0), "Europe/Paris", now=now)
    assert got == utc(2026, 2, 28, 8, 0)
    assert next_birthday_due(born, dt.time(9, 0), "Europe/Paris", now=utc(2027, 6, 1)) == utc(
        2028, 2, 29, 8, 0
    )
    # Later the same day still counts.
    assert next_birthday_due(dt.date(1990, 7, 4), dt.time(18, 0), "UTC", now=utc(2025, 7, 4, 12)) == utc(
        2025, 7, 4, 18
    )
