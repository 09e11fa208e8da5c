"""The Celery app: configuration only (tasks live in ``delivery.worker.tasks``).

Task names are stable; other languages send them by name:

======================  ==========  =============================================
task                    queue       kwargs (JSON)
======================  ==========  =============================================
giftq.place_order       orders      ``order`` (delivery/orders/order.schema.json), ``idempotency_key``
                        (or ``celery``, a client's default queue)
giftq.process_order     orders      ``order_id``: issue the cards, create deliveries
giftq.confirm_payment   orders      ``order_id``: the payment of a held order cleared
giftq.decline_payment   orders      ``order_id``: it did not; cancel, tell the purchaser
giftq.dispatch_email    email       ``delivery_ids``: send a batch of emails
giftq.dispatch_sms      sms         ``delivery_ids``: send a batch of text messages
giftq.dispatch_printable printables ``delivery_ids``: render and send printable cards
giftq.dispatch_physical fulfilment  ``delivery_ids``: hand physical cards to fulfilment
giftq.dispatch_due      scheduler   none: release due scheduled sends and retries (beat)
giftq.sweep             scheduler   none: re-enqueue stuck orders and deliveries (beat)
giftq.place_programs    scheduler   none: place the birthday programs' due gifts (beat)
giftq.expire_holds      scheduler   none: cancel orders whose payment is overdue (beat)
giftq.expire_cards      scheduler   none: expire due cards, send expiry reminders (beat)
giftq.fulfilment_batch  fulfilment  none: physical cards' batch at each cut-off (beat)
giftq.fulfilment_reports fulfilment none: apply the vendor's report files (beat)
======================  ==========  =============================================

Each channel has its own queue (``delivery.channels.registry``), so that a slow
channel never starves another; ``delivery.routes`` holds the table. ``celery`` is the
queue a Celery client publishes to when it names none; the orders workers consume it,
so that an order sent that way is placed instead of waiting in Redis with nobody
reading it.

Reliability: JSON only; a task is acknowledged after it ran (``acks_late``) and
redelivered if its worker died (``reject_on_worker_lost``, and Redis re-delivers
unacknowledged messages after the visibility timeout, which is longer than the hard
time limit of any task); prefetch 1, so a busy worker does not sit on messages that
another could run. Long waits never ride Celery ETAs: they are rows with a due time.

Observability: workers send task events (Flower shows each task sent, started, retried
or failed); Celery's logging is giftq's (:mod:`delivery.logs`), with the task's id and
the ids in its kwargs bound to every line it logs; with ``GIFTQ_WORKER_METRICS_PORT`` the
main process serves the pool's metrics (:mod:`delivery.metrics.exposition`).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import Any

from celery import Celery
from celery.signals import (
    after_setup_logger,
    after_setup_task_logger,
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
)

from delivery import logs
from delivery.channels import registry
from delivery.channels.physical.cutoff import next_cutoff
from delivery.channels.physical.schedule import CutoffSchedule
from delivery.metrics import exposition, instruments
from delivery.routes import CLIENT_DEFAULT_QUEUE, QUEUES, ROUTES
from giftq import db
from giftq.db import utcnow
from giftq.settings import Settings, SettingsError, get_settings
from ledger.codes.redact import RedactClaimCodes

__all__ = [
    "CLIENT_DEFAULT_QUEUE",
    "QUEUES",
    "ROUTES",
    "celery_config",
    "check_timeouts",
    "create_app",
    "get_app",
    "reset_app",
]


def check_timeouts(s: Settings) -> None:
    """Refuse time settings under which a live task could be redelivered or swept."""
    problems = []
    if s.task_soft_time_limit_seconds >= s.task_time_limit_seconds:
        problems.append("GIFTQ_TASK_SOFT_TIME_LIMIT_SECONDS must be below the hard limit")
    if s.broker_visibility_timeout_seconds <= s.task_time_limit_seconds + s.retry_countdown_max_seconds:
        problems.append(
            "GIFTQ_BROKER_VISIBILITY_TIMEOUT_SECONDS must exceed the task time limit plus "
            "the longest retry countdown"
        )
    if s.sweep_sending_after_seconds <= s.task_time_limit_seconds:
        problems.append("GIFTQ_SWEEP_SENDING_AFTER_SECONDS must exceed the task time limit")
    if problems:
        raise SettingsError("; ".join(problems))


def celery_config(s: Settings) -> dict[str, Any]:
    check_timeouts(s)
    return {
        "broker_url": s.broker_url,
        "result_backend": s.result_backend or None,
        "task_ignore_result": not s.result_backend,
        "result_expires": 24 * 3600,
        "task_serializer": "json",
        "result_serializer": "json",
        "accept_content": ["json"],
        "result_accept_content": ["json"],
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_acks_on_failure_or_timeout": True,
        "worker_prefetch_multiplier": 1,
        "task_soft_time_limit": s.task_soft_time_limit_seconds,
        "task_time_limit": s.task_time_limit_seconds,
        "broker_transport_options": {"visibility_timeout": s.broker_visibility_timeout_seconds},
        "broker_connection_retry_on_startup": True,
        # Wait out a broker outage of any length (the default gives up after 100 tries, about
        # 45 minutes, and the worker exits): what is queued waits in Redis's append-only file.
        "broker_connection_max_retries": None,
        "worker_cancel_long_running_tasks_on_connection_loss": True,
        "task_publish_retry_policy": {
            "max_retries": 3,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 1,
        },
        "task_queues": {
            # Celery's own convention: a direct exchange per queue, named like it.
            name: {"exchange": name, "exchange_type": "direct", "routing_key": name}
            for name in QUEUES
        },
        "task_default_queue": "orders",
        "task_default_exchange": "orders",
        "task_default_routing_key": "orders",
        "task_routes": {name: {"queue": queue, "routing_key": queue} for name, queue in ROUTES.items()},
        "worker_hijack_root_logger": True,
        # Events, so that Flower (and `celery events`) show every task as it runs; "sent"
        # events let them show tasks still waiting in a queue too.
        "worker_send_task_events": True,
        "task_send_sent_event": True,
        "beat_schedule_filename": str(s.data_dir / "celerybeat-schedule"),
        "beat_schedule": {
            "dispatch-due": {
                "task": "giftq.dispatch_due",
                "schedule": s.scheduler_interval_seconds,
                # A beat tick nobody ran in time is superseded by the next one.
                "options": {"expires": s.scheduler_interval_seconds},
            },
            "sweep": {
                "task": "giftq.sweep",
                "schedule": s.sweep_interval_seconds,
                "options": {"expires": s.sweep_interval_seconds},
            },
            "expire-holds": {
                "task": "giftq.expire_holds",
                "schedule": s.sweep_interval_seconds,
                "options": {"expires": s.sweep_interval_seconds},
            },
            "place-programs": {
                "task": "giftq.place_programs",
                "schedule": s.program_interval_seconds,
                "options": {"expires": s.program_interval_seconds},
            },
            "expire-cards": {
                "task": "giftq.expire_cards",
                "schedule": s.expiry_interval_seconds,
                "options": {"expires": s.expiry_interval_seconds},
            },
            **_fulfilment_beat(s),
        },
    }


def _fulfilment_beat(s: Settings) -> dict[str, Any]:
    """The physical cards' batch at each cut-off and the vendor's reports, when they are on;
    settings that could never make a batch stop the app here, not at the first cut-off."""
    if s.fulfilment_backend == "none":
        return {}
    if not s.fulfilment_vendor_public_key:
        raise SettingsError(
            "GIFTQ_FULFILMENT_BACKEND needs GIFTQ_FULFILMENT_VENDOR_PUBLIC_KEY (codes are sealed to it)"
        )
    if s.fulfilment_backend == "http" and not s.fulfilment_http_url:
        raise SettingsError("GIFTQ_FULFILMENT_BACKEND=http needs GIFTQ_FULFILMENT_HTTP_URL")
    try:
        next_cutoff(utcnow())
    except ValueError as exc:
        raise SettingsError(f"GIFTQ_FULFILMENT_CUTOFF_ZONE: {exc}") from None
    return {
        "fulfilment-batch": {
            "task": "giftq.fulfilment_batch",
            "schedule": CutoffSchedule(s.fulfilment_cutoffs, s.fulfilment_cutoff_zone),
        },
        "fulfilment-reports": {
            "task": "giftq.fulfilment_reports",
            "schedule": s.fulfilment_inbox_interval_seconds,
            "options": {"expires": s.fulfilment_inbox_interval_seconds},
        },
    }


def create_app(settings: Settings | None = None) -> Celery:
    settings = settings or get_settings()
    app = Celery("giftq", include=["delivery.worker.tasks"], set_as_current=False)
    app.conf.update(celery_config(settings))
    # beat keeps its schedule file there and will not create the directory itself.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return app


@lru_cache(maxsize=1)
def get_app() -> Celery:
    """The process-wide app, configured from settings (``worker.py`` exposes it)."""
    app = create_app()
    app.set_current()
    return app


def reset_app() -> None:
    """Forget the app (after settings change: tests, the demo); closes its broker pool."""
    if get_app.cache_info().currsize:
        app = get_app()
        app.close()
    get_app.cache_clear()


def _fresh_connections_after_fork(**_: Any) -> None:
    # A forked pool child must not share the parent's database connections.
    db.reset_engine()


def _close_channels(**_: Any) -> None:
    # Pool children leave through os._exit, skipping atexit: say QUIT to the relay here.
    registry.close_all()


def _redact_codes(logger: logging.Logger, **_: Any) -> None:
    # Last line of defence: whatever any library logs, a claim code is masked.
    for handler in logger.handlers:
        if not any(isinstance(f, RedactClaimCodes) for f in handler.filters):
            handler.addFilter(RedactClaimCodes())


# --- logs and metrics -------------------------------------------------------------------


def _setup_logging(loglevel: int | str | None = None, **_: Any) -> None:
    # Connected, this replaces Celery's own set-up: its records go through giftq's handler
    # (JSON in production, codes masked, task ids bound).
    logs.configure_logging(loglevel or logging.INFO)


_CONTEXT_KWARGS = ("order_id", "delivery_ids", "card_id", "line_id")
"""Task kwargs worth binding to the task's log lines: ids only (messages carry no more)."""


def _bind_task(task_id: str | None = None, task: Any = None, kwargs: Any = None, **_: Any) -> None:
    logs.clear()
    ids = {k: v for k, v in (kwargs or {}).items() if k in _CONTEXT_KWARGS}
    logs.bind(task_id=task_id, task=getattr(task, "name", None), **ids)


def _unbind_task(task_id: str | None = None, task: Any = None, state: str | None = None, **_: Any) -> None:
    instruments.TASKS.labels(task=getattr(task, "name", "unknown"), state=state or "unknown").inc()
    logs.clear()


def _worker_metrics(**_: Any) -> None:
    # In the worker's main process, before the pool forks: children write their samples to
    # PROMETHEUS_MULTIPROC_DIR and this server adds them up at each scrape.
    exposition.start_worker_server(get_settings())


def _forget_dead_child(pid: int | None = None, **_: Any) -> None:
    exposition.child_exited(pid)


setup_logging.connect(_setup_logging, weak=False)
task_prerun.connect(_bind_task, weak=False)
task_postrun.connect(_unbind_task, weak=False)
worker_init.connect(_worker_metrics, weak=False)
worker_process_shutdown.connect(_forget_dead_child, weak=False)

worker_process_init.connect(_fresh_connections_after_fork, weak=False)
worker_process_shutdown.connect(_close_channels, weak=False)
after_setup_logger.connect(_redact_codes, weak=False)
after_setup_task_logger.connect(_redact_codes, weak=False)
