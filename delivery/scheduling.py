"""From a local wall-clock send time and an IANA zone to the UTC instant it is due.

Rules (deliberate, and the same everywhere):

- **DST gap** (the clock jumps, e.g. 02:30 on a spring-forward night does not exist):
  shift forward by the length of the gap, so 02:30 becomes 03:30 local. The gift goes
  out as soon after the asked time as the clock allows.
- **DST fold** (the clock repeats, e.g. 01:30 on a fall-back night happens twice):
  the first occurrence (PEP 495 ``fold=0``). Nobody waits an extra hour.
- **29 February** birthdays in a year without one: 28 February, so the gift arrives on
  the last day of the birthday's month rather than in March.

Both DST rules are what PEP 495 ``fold=0`` gives: in a gap, ``fold=0`` reads the time
with the offset in force before the transition, which lands exactly one gap later.
"""

from __future__ import annotations

import calendar
import datetime as dt
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def zone(name: str) -> ZoneInfo:
    """The IANA zone ``name``; ValueError names it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r} (use an IANA name like Europe/Paris)") from exc


def due_at(local: dt.datetime, zone_name: str) -> dt.datetime:
    """The UTC instant of the local wall-clock time ``local`` in ``zone_name``."""
    if local.tzinfo is not None:
        raise ValueError("local send time must be a wall-clock time without an offset")
    return local.replace(tzinfo=zone(zone_name), fold=0).astimezone(dt.UTC)


def birthday_in(year: int, month: int, day: int) -> dt.date:
    """The date a yearly ``month``/``day`` falls on in ``year`` (29 Feb -> 28 Feb if absent)."""
    if month == 2 and day == 29 and not calendar.isleap(year):
        return dt.date(year, 2, 28)
    return dt.date(year, month, day)


def next_birthday_due(birthday: dt.date, at: dt.time, zone_name: str, *, now: dt.datetime) -> dt.datetime:
    """The next UTC instant, at or after ``now``, of ``birthday`` at local time ``at``."""
    year = now.astimezone(zone(zone_name)).year
    while True:
        day = birthday_in(year, birthday.month, birthday.day)
        instant = due_at(dt.datetime.combine(day, at), zone_name)
        if instant >= now:
            return instant
        year += 1
