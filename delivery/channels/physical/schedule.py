"""The beat schedule of ``giftq.fulfilment_batch``: due at each cut-off.

Celery's ``crontab`` reads times in the app's time zone; the cut-offs are in the
vendor's (``GIFTQ_FULFILMENT_CUTOFF_ZONE``), with DST rules of their own. So the schedule
asks :func:`delivery.channels.physical.cutoff.next_cutoff`, the function that gave every
card its due time: the batch runs at the instants the cards became due. A cut-off
missed while beat was down runs once when it is back.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from celery.schedules import BaseSchedule, schedstate

from delivery.channels.physical.cutoff import next_cutoff

_TICK = dt.timedelta(microseconds=1)


class CutoffSchedule(BaseSchedule):  # type: ignore[misc]  # Celery ships no types
    def __init__(self, cutoffs: Sequence[str], zone: str, **kwargs: Any) -> None:
        self.cutoffs = tuple(cutoffs)
        self.zone = zone
        super().__init__(**kwargs)

    def _aware(self, value: dt.datetime) -> dt.datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)

    def remaining_estimate(self, last_run_at: dt.datetime) -> dt.timedelta:
        after = next_cutoff(self._aware(last_run_at) + _TICK, self.cutoffs, self.zone)
        return after - self._aware(self.now())

    def is_due(self, last_run_at: dt.datetime) -> schedstate:
        now = self._aware(self.now())
        if next_cutoff(self._aware(last_run_at) + _TICK, self.cutoffs, self.zone) <= now:
            following = next_cutoff(now + _TICK, self.cutoffs, self.zone)
            return schedstate(True, (following - now).total_seconds())
        return schedstate(False, self.remaining_estimate(last_run_at).total_seconds())

    def __reduce__(self) -> tuple[type, tuple[tuple[str, ...], str]]:
        return (self.__class__, (self.cutoffs, self.zone))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, CutoffSchedule):
            return (self.cutoffs, self.zone) == (other.cutoffs, other.zone)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.cutoffs, self.zone))

    def __repr__(self) -> str:
        return f"<cut-offs {', '.join(self.cutoffs)} {self.zone}>"
