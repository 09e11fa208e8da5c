"""Logging set-up for giftq processes (CLI, workers, the API): structlog, codes redacted.

One pipeline for every record. Code that logs through the standard library
(``logging.getLogger(__name__)``: giftq itself, Celery, uvicorn, SQLAlchemy) and code
that logs through structlog (``structlog.get_logger()``) end in the same handler, whose
:class:`structlog.stdlib.ProcessorFormatter` renders JSON lines in production
(``GIFTQ_LOG_FORMAT=json``, the default when ``GIFTQ_ENV=production``) and readable
lines in development (``console``). Ids bound with :func:`bind` (order, delivery,
card, task) ride along on every line logged in that context, standard-library lines
included, through structlog's contextvars.

A claim code never reaches a log. Three places see to it, because a record can leave
by three roads:

- every standard-library record is redacted when it is *made* (a record factory), so
  that a logger that does not propagate and writes through a handler of its own
  (uvicorn's, a library's) writes a masked message and traceback too;
- every structlog event is redacted in its processor chain, values and rendered
  traceback alike, before it is rendered;
- the handlers keep :class:`~ledger.codes.redact.RedactClaimCodes`, for handlers that
  others add later.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from giftq.settings import SettingsError, get_settings
from ledger.codes.redact import RedactClaimCodes, redact_value

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
"""The plain format, for callers that format records without structlog."""

_REDACT = RedactClaimCodes()


def redact_event(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask claim codes in every value of the event."""
    return {key: redact_value(value) for key, value in event_dict.items()}


def _exception_text(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # The record factory already rendered (and masked) the traceback into exc_text.
    record = event_dict.get("_record")
    if record is not None and record.exc_text and "exc_info" not in event_dict:
        event_dict["exception"] = record.exc_text
    return event_dict


def _shared() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def log_format() -> str:
    """``json`` or ``console``, as ``GIFTQ_LOG_FORMAT`` (or ``GIFTQ_ENV``) says."""
    try:
        settings = get_settings()
    except SettingsError:
        return "console"  # the caller reports the bad setting, in one line, on its own
    if settings.log_format != "auto":
        return settings.log_format
    return "json" if settings.env == "production" else "console"


def formatter(fmt: str | None = None) -> logging.Formatter:
    """The formatter of giftq's handlers; also makes sure structlog and the record factory
    are set up (``logging.config.dictConfig`` calls this through ``"()"``)."""
    fmt = fmt or log_format()
    _configure_structlog()
    install_record_redaction()
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer(ensure_ascii=False)
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    return structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), _exception_text],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
    )


def _configure_structlog() -> None:
    if structlog.is_configured():
        return
    structlog.configure(
        processors=[
            *_shared(),
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            redact_event,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def install_record_redaction() -> None:
    """Mask claim codes in every standard-library record as it is made; idempotent."""
    current = logging.getLogRecordFactory()
    if getattr(current, "giftq_redacts", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        _REDACT.filter(record)
        return record

    factory.giftq_redacts = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def configure_logging(level: int | str = logging.INFO, fmt: str | None = None) -> None:
    """Root handler rendering through structlog, codes redacted; safe to call more than once.

    With no root handler yet (a CLI command, a worker), one on standard error is added.
    Handlers already there get the redaction filter, and giftq's formatter if they have
    none of their own (a test's capture handler keeps its own).
    """
    root = logging.getLogger()
    root.setLevel(level)
    if not root.handlers:
        root.addHandler(logging.StreamHandler(sys.stderr))
    chosen = formatter(fmt)
    for handler in root.handlers:
        if handler.formatter is None:
            handler.setFormatter(chosen)
        if not any(isinstance(f, RedactClaimCodes) for f in handler.filters):
            handler.addFilter(RedactClaimCodes())


def logging_config(level: str = "INFO") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` document with the same pipeline (for uvicorn)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "ledger.codes.redact.RedactClaimCodes"}},
        "formatters": {"giftq": {"()": "delivery.logs.formatter"}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "giftq",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level, "propagate": False},
            "uvicorn.error": {"level": level},
        },
        "root": {"handlers": ["default"], "level": level},
    }


def bind(**ids: Any) -> None:
    """Bind ids (``order_id``, ``delivery_id``, ``card_id``, ``task_id``) to this context's
    log lines until :func:`clear` (a task's end)."""
    structlog.contextvars.bind_contextvars(**ids)


def clear() -> None:
    structlog.contextvars.clear_contextvars()


@contextmanager
def bound(**ids: Any) -> Iterator[None]:
    """Bind ids for the lines logged inside the block only."""
    with structlog.contextvars.bound_contextvars(**ids):
        yield


def context() -> MutableMapping[str, Any]:
    """What is bound now (for tests and for the odd caller that passes it on)."""
    return structlog.contextvars.get_contextvars()
