"""delivery.logs: structlog over the standard library, JSON or console, ids bound, codes masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from delivery import logs
from ledger.codes import text as code_text


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """giftq's logging on a fresh root handler writing here; everything put back after."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level, logging.getLogRecordFactory())
    out = io.StringIO()
    root.handlers = [logging.StreamHandler(out)]
    structlog.reset_defaults()
    yield out
    root.handlers, level, factory = saved
    root.setLevel(level)
    logging.setLogRecordFactory(factory)
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


def _code() -> str:
    return code_text.display(code_text.generate())


def test_production_logs_are_json_with_the_bound_ids(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_ENV", "production")
    monkeypatch.setenv("GIFTQ_DATABASE_URL", "postgresql://giftq@localhost/giftq")
    from giftq.settings import reset_settings

    reset_settings()
    assert logs.log_format() == "json"
    logs.configure_logging()
    logs.bind(task_id="t-1", order_id=17)
    with logs.bound(delivery_id=311):
        logging.getLogger("delivery.dispatch").info("sent %d of %d", 1, 2)
        structlog.get_logger("delivery.test").info("structured", card_id=42)
    logging.getLogger("delivery.dispatch").warning("after the block")
    logs.clear()
    first, second, third = _lines(stream)
    assert first["event"] == "sent 1 of 2" and first["level"] == "info"
    assert first["logger"] == "delivery.dispatch"
    assert (first["task_id"], first["order_id"], first["delivery_id"]) == ("t-1", 17, 311)
    assert second["event"] == "structured" and second["card_id"] == 42 and second["delivery_id"] == 311
    assert "delivery_id" not in third and third["order_id"] == 17
    assert "timestamp" in first


def test_development_logs_are_readable_lines(stream: io.StringIO) -> None:
    assert logs.log_format() == "console"
    logs.configure_logging()
    logging.getLogger("giftq.test").info("hello %s", "ops")
    line = stream.getvalue().strip()
    assert "hello ops" in line and "giftq.test" in line
    assert not line.startswith("{")


def test_log_format_setting_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from giftq.settings import reset_settings

    monkeypatch.setenv("GIFTQ_LOG_FORMAT", "json")
    reset_settings()
    assert logs.log_format() == "json"


def test_a_code_is_masked_through_structlog_stdlib_and_tracebacks(stream: io.StringIO) -> None:
    logs.configure_logging(fmt="json")
    code = _code()
    structlog.get_logger("t").info("redeemed %s", code, code=code, nested={"codes": [code]})
    logging.getLogger("t").info("code %s typed", code.lower())
    try:
        raise ValueError(f"bad {code}")
    except ValueError:
        logging.getLogger("t").exception("failed")
        structlog.get_logger("t").exception("failed again")
    text = stream.getvalue()
    assert code not in text and code.lower() not in text and code.replace("-", "") not in text
    assert text.count(code_text.mask(code.replace("-", "")[-4:])) >= 6
    assert "ValueError" in text  # the traceback is still there, masked


def test_a_code_is_masked_in_a_logger_that_does_not_propagate(stream: io.StringIO) -> None:
    """uvicorn's loggers (and a library's) write through handlers of their own."""
    logs.configure_logging(fmt="json")
    own = io.StringIO()
    lonely = logging.getLogger("lonely.library")
    lonely.propagate = False
    handler = logging.StreamHandler(own)
    handler.setFormatter(logging.Formatter("%(message)s"))  # no giftq filter, no giftq formatter
    lonely.addHandler(handler)
    code = _code()
    try:
        lonely.warning("got %s", code)
        try:
            raise RuntimeError(code)
        except RuntimeError:
            lonely.exception("boom")
    finally:
        lonely.removeHandler(handler)
        lonely.propagate = True
    text = own.getvalue()
    assert "got ••••" in text or code_text.mask(code[-4:]) in text
    assert code not in text
    assert "RuntimeError" in text


def test_uvicorn_config_renders_through_the_same_pipeline(stream: io.StringIO) -> None:
    import logging.config

    out = io.StringIO()
    config = logs.logging_config()
    config["handlers"]["default"]["stream"] = out
    logging.config.dictConfig(config)
    code = _code()
    logging.getLogger("uvicorn.error").info("started with %s", code)
    text = out.getvalue()
    assert "started with" in text and code not in text


def test_a_bad_setting_does_not_stop_logging_from_starting(
    stream: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The command line configures logs first, then reports a bad variable in one line."""
    from giftq.settings import reset_settings

    monkeypatch.setenv("GIFTQ_SMTP_PORT", "not-a-port")
    reset_settings()
    logs.configure_logging()
    logging.getLogger("giftq.test").info("still logging")
    assert "still logging" in stream.getvalue()
