"""Cut-offs: the due time of every physical card, and beat's schedule of the batch task,
come from one function, in the vendor's time zone."""

from __future__ import annotations

import base64
import datetime as dt
import pickle
from typing import Any

import pytest

from delivery.channels.physical.cutoff import next_cutoff
from delivery.channels.physical.schedule import CutoffSchedule
from delivery.worker.celery_app import celery_config
from giftq.settings import SettingsError, get_settings, reset_settings

UTC = dt.UTC


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.mark.parametrize(
    ("now", "due"),
    [
        ("2026-06-01T08:00", "2026-06-01T08:00"),  # 10:00 Berlin (CEST) is 08:00 UTC: exactly at it
        ("2026-06-01T08:00:01", "2026-06-01T13:30"),  # then 15:30 Berlin
        ("2026-06-01T13:31", "2026-06-02T08:00"),  # tomorrow morning
        ("2026-12-01T14:31", "2026-12-02T09:00"),  # winter: CET, UTC+1 (15:30 was 14:30 UTC)
    ],
)
def test_the_next_cut_off_in_the_vendors_zone(now: str, due: str) -> None:
    assert next_cutoff(at(now), ("15:30", "10:00"), "Europe/Berlin") == at(due)


def test_a_cut_off_in_a_dst_gap_moves_forward_by_the_gap() -> None:
    # 02:30 does not exist in Berlin on 29 March 2026: it is read as 03:30 CEST (01:30 UTC).
    assert next_cutoff(at("2026-03-29T00:00"), ("02:30",), "Europe/Berlin") == at("2026-03-29T01:30")


def test_settings_give_the_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    assert get_settings().fulfilment_cutoffs == ("15:00",)
    assert next_cutoff(at("2026-06-01T15:00:01")) == at("2026-06-02T15:00")
    monkeypatch.setenv("GIFTQ_FULFILMENT_CUTOFFS", '["9:00"]')
    reset_settings()
    with pytest.raises(SettingsError, match="GIFTQ_FULFILMENT_CUTOFFS item 1"):
        get_settings()


class Clock:
    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def test_the_beat_schedule_is_due_at_each_cut_off_once() -> None:
    clock = Clock(at("2026-06-01T07:00"))
    schedule = CutoffSchedule(("10:00", "15:30"), "Europe/Berlin", nowfun=clock)
    last_run = at("2026-06-01T06:00")
    due, wait = schedule.is_due(last_run)
    assert (due, wait) == (False, 3600.0)  # an hour to 10:00 Berlin
    clock.now = at("2026-06-01T08:00:02")
    due, wait = schedule.is_due(last_run)
    assert due and wait == pytest.approx(5.5 * 3600 - 2)
    last_run = clock.now
    assert schedule.is_due(last_run)[0] is False
    clock.now = at("2026-06-03T12:00")  # beat was down over three cut-offs: one run, not three
    assert schedule.is_due(last_run)[0] is True
    assert schedule.is_due(clock.now)[0] is False


def test_the_schedule_survives_beats_shelve_and_compares_by_value() -> None:
    schedule = CutoffSchedule(("15:00",), "Asia/Tokyo")
    copy = pickle.loads(pickle.dumps(schedule))
    assert copy == schedule and (copy.cutoffs, copy.zone) == (("15:00",), "Asia/Tokyo")
    assert schedule != CutoffSchedule(("16:00",), "Asia/Tokyo")


def test_beat_runs_the_batch_and_the_inbox_only_when_the_channel_is_on(monkeypatch: Any) -> None:
    assert "fulfilment-batch" not in celery_config(get_settings())["beat_schedule"]
    monkeypatch.setenv("GIFTQ_FULFILMENT_BACKEND", "file")
    monkeypatch.setenv("GIFTQ_FULFILMENT_CUTOFFS", '["11:00", "16:00"]')
    monkeypatch.setenv("GIFTQ_FULFILMENT_CUTOFF_ZONE", "America/New_Yrok")
    reset_settings()
    with pytest.raises(SettingsError, match="needs GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY"):
        celery_config(get_settings())
    monkeypatch.setenv("GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY", base64.b64encode(b"k" * 32).decode())
    reset_settings()
    with pytest.raises(SettingsError, match="unknown time zone 'America/New_Yrok'"):
        celery_config(get_settings())
    monkeypatch.setenv("GIFTQ_FULFILMENT_CUTOFF_ZONE", "America/New_York")
    reset_settings()
    beat = celery_config(get_settings())["beat_schedule"]
    assert beat["fulfilment-batch"]["task"] == "giftq.fulfilment_batch"
    assert beat["fulfilment-batch"]["schedule"] == CutoffSchedule(("11:00", "16:00"), "America/New_York")
    assert beat["fulfilment-reports"]["task"] == "giftq.fulfilment_reports"
    assert beat["fulfilment-reports"]["schedule"] == 60
