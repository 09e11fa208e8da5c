"""The Celery configuration is what the README promises (and refuses what cannot work)."""

from __future__ import annotations

from typing import Any

import pytest

from delivery.errors import InvalidOrder
from delivery.worker import tasks
from delivery.worker.celery_app import QUEUES, ROUTES, celery_config, check_timeouts, create_app
from giftq.settings import Settings, SettingsError, get_settings, reset_settings


def test_reliability_settings() -> None:
    conf = celery_config(get_settings())
    assert conf["task_serializer"] == conf["result_serializer"] == "json"
    assert conf["accept_content"] == ["json"]
    assert conf["task_acks_late"] is True
    assert conf["task_reject_on_worker_lost"] is True
    assert conf["worker_prefetch_multiplier"] == 1
    assert conf["task_soft_time_limit"] < conf["task_time_limit"]
    assert conf["broker_transport_options"]["visibility_timeout"] > conf["task_time_limit"]
    # A worker (and beat) waits out a broker outage instead of giving up after 100 tries.
    assert conf["broker_connection_max_retries"] is None
    assert (
        set(conf["task_queues"])
        == set(QUEUES)
        == {
            "orders",
            "celery",
            "email",
            "sms",
            "printables",
            "fulfilment",
            "scheduler",
        }
    )


def test_task_names_and_queues_are_stable() -> None:
    app = create_app()
    app.loader.import_default_modules()
    registered = {name for name in app.tasks if name.startswith("giftq.")}
    assert (
        registered
        == set(ROUTES)
        == {
            "giftq.place_order",
            "giftq.process_order",
            "giftq.confirm_payment",
            "giftq.decline_payment",
            "giftq.dispatch_email",
            "giftq.dispatch_sms",
            "giftq.dispatch_printable",
            "giftq.dispatch_physical",
            "giftq.dispatch_due",
            "giftq.sweep",
            "giftq.place_programs",
            "giftq.expire_holds",
            "giftq.expire_cards",
            "giftq.fulfilment_batch",
            "giftq.fulfilment_reports",
        }
    )
    assert ROUTES["giftq.place_order"] == "orders"
    assert ROUTES["giftq.confirm_payment"] == ROUTES["giftq.decline_payment"] == "orders"
    assert ROUTES["giftq.dispatch_email"] == "email"
    assert ROUTES["giftq.dispatch_sms"] == "sms"
    assert ROUTES["giftq.dispatch_printable"] == "printables"
    assert ROUTES["giftq.dispatch_physical"] == "fulfilment"
    assert ROUTES["giftq.fulfilment_batch"] == ROUTES["giftq.fulfilment_reports"] == "fulfilment"
    scheduler_tasks = (
        "giftq.dispatch_due",
        "giftq.sweep",
        "giftq.place_programs",
        "giftq.expire_holds",
        "giftq.expire_cards",
    )
    assert {ROUTES[name] for name in scheduler_tasks} == {"scheduler"}
    beat = {entry["task"] for entry in app.conf.beat_schedule.values()}
    assert beat == set(scheduler_tasks)
    app.close()


@pytest.mark.parametrize(
    ("env", "complaint"),
    [
        ({"GIFTQ_TASK_SOFT_TIME_LIMIT_SECONDS": "300"}, "SOFT_TIME_LIMIT"),
        ({"GIFTQ_BROKER_VISIBILITY_TIMEOUT_SECONDS": "200"}, "VISIBILITY_TIMEOUT"),
        ({"GIFTQ_SWEEP_SENDING_AFTER_SECONDS": "100"}, "SWEEP_SENDING_AFTER"),
    ],
)
def test_timeouts_that_would_resend_live_work_are_refused(
    env: dict[str, str], complaint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    reset_settings()
    with pytest.raises(SettingsError, match=complaint):
        check_timeouts(Settings())


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ([1, 2], True),
        ([], False),
        ("1,2", False),
        ([1, "2"], False),
        ([True], False),
        ([0], False),
        (None, False),
    ],
)
def test_delivery_ids_in_a_message(value: Any, ok: bool) -> None:
    if ok:
        assert tasks._ids(value, "delivery_ids") == value
    else:
        with pytest.raises(InvalidOrder, match="delivery_ids"):
            tasks._ids(value, "delivery_ids")


def test_workers_send_task_events_for_flower() -> None:
    conf = celery_config(get_settings())
    assert conf["worker_send_task_events"] is True
    assert conf["task_send_sent_event"] is True  # tasks still waiting in a queue show too
