"""When physical cards leave: the vendor's cut-off times, as due times.

A physical gift is due at the first cut-off at or after the time it may go
(``GIFTQ_FULFILMENT_CUTOFFS``, local ``HH:MM`` times in ``GIFTQ_FULFILMENT_CUTOFF_ZONE``),
so it waits as a ``scheduled`` row like any far-off send, and every card of one cut-off
goes to the vendor in the same batch. Local times follow :mod:`delivery.scheduling`'s
rules: a cut-off in a DST gap moves forward by the gap, one in a fold is the first.

Pure functions of settings: the beat schedule that runs the batch
(:mod:`delivery.channels.physical.schedule`) and the due time of each card come from
:func:`next_cutoff`, so they agree by construction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from delivery import scheduling
from giftq.settings import get_settings


def next_cutoff(
    after: dt.datetime, cutoffs: Sequence[str] | None = None, zone: str | None = None
) -> dt.datetime:
    """The first cut-off instant (UTC) at or after ``after`` (an aware instant)."""
    if after.tzinfo is None:
        raise ValueError("next_cutoff needs an aware instant")
    settings = get_settings()
    times = sorted(dt.time.fromisoformat(t) for t in (cutoffs or settings.fulfilment_cutoffs))
    zone = zone or settings.fulfilment_cutoff_zone
    day = after.astimezone(scheduling.zone(zone)).date()
    for offset in range(3):
        for at in times:
            instant = scheduling.due_at(dt.datetime.combine(day + dt.timedelta(days=offset), at), zone)
            if instant >= after:
                return instant
    raise AssertionError("a cut-off always comes within two days")  # pragma: no cover
