"""Two ``celery beat`` processes running by mistake (two hosts each started one) against one
PostgreSQL database, with a real worker (three pool processes) and a real SMTP server:
every periodic task is sent twice per tick and runs concurrently with its twin. No gift is
sent twice (one SMTP message per delivery's Message-ID), and no birthday program year is
placed twice (one placement and one order per program and year).
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import sessionmaker

from delivery import place_order
from delivery.channels.email.message import message_id_for
from delivery.channels.email.sink import SmtpServerThread
from delivery.models import Delivery, Order
from delivery.programs import rows, services
from delivery.programs.models import ProgramPlacement
from delivery.states import DeliveryStatus
from giftq.db import make_engine, utcnow

pytestmark = pytest.mark.timeout(180)
PROGRAMS, SCHEDULED = 6, 8
TICK = "0.5"


@pytest.fixture
def two_beats(
    request: pytest.FixtureRequest, tmp_path: Any, conftest: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, list[Any]]]:
    smtp = conftest.ScriptedSmtp()
    with (
        conftest.module_database("postgresql", request, tmp_path) as url,
        conftest.module_redis(14) as broker,
        SmtpServerThread(smtp, "127.0.0.1", 0) as server,
    ):
        env = conftest.pipeline_env(
            url,
            broker,
            server.port,
            tmp_path / "var",
            GIFTQ_SCHEDULER_INTERVAL_SECONDS=TICK,
            GIFTQ_PROGRAM_INTERVAL_SECONDS=TICK,
            GIFTQ_SWEEP_INTERVAL_SECONDS="1",
            # Short enough that the sweeper re-enqueues work the other beat's tasks still run.
            GIFTQ_SWEEP_STUCK_AFTER_SECONDS="2",
        )
        worker = conftest.WorkerProcess(
            env, tmp_path / "worker.log", "-Q", "orders,email,scheduler", "-c", "3"
        )
        beats = [
            conftest.BeatProcess(
                env | {"GIFTQ_DATA_DIR": str(tmp_path / f"host-{i}")}, tmp_path / f"beat-{i}.log"
            )
            for i in (1, 2)
        ]
        engine = make_engine(url)
        pipeline = conftest.Pipeline(
            url, broker, smtp, env, sessionmaker(engine, expire_on_commit=False), worker
        )
        conftest.use_pipeline(pipeline, monkeypatch)
        try:
            worker.start()
            yield pipeline, beats
        finally:
            for beat in beats:
                beat.stop()
            worker.stop()
            engine.dispose()


def _program_fields(i: int, birthday: dt.date) -> dict[str, str]:
    return {
        "name": f"Person {i}",
        "email": f"birthday-{i}@example.com",
        # A leap year, so that any day of the year is a birth date.
        "birth_date": birthday.replace(year=1992).isoformat(),
        "zone": "UTC",
        "marketplace": "US",
        "amount": "1000",
        "channel": "email",
        "purchaser_name": "Pat",
        "purchaser_email": "programs@example.com",
    }


def test_two_beats_send_no_gift_twice_and_place_no_program_year_twice(
    two_beats: tuple[Any, list[Any]], conftest: Any
) -> None:
    pipeline, beats = two_beats
    now = utcnow()
    # Birthdays in two days: inside the lead time, so each program's year is due at once.
    with pipeline.Session.begin() as s:
        for i in range(PROGRAMS):
            services.create(
                s, rows.program_row(_program_fields(i, (now + dt.timedelta(days=2)).date())), now=now
            )
    # Scheduled sends that fall due a few seconds after both beats are up.
    send_at = (now + dt.timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%S")
    for i in range(SCHEDULED):
        line = {
            "channel": "email",
            "amount": 2500,
            "marketplace": "US",
            "recipient": {"name": f"Recipient {i}", "email": f"scheduled-{i}@example.com"},
            "send_at": {"local_time": send_at, "zone": "UTC"},
        }
        order = {"purchaser": {"name": "Pat", "email": f"buyer-{i}@example.com"}, "lines": [line]}
        place_order(order, idempotency_key=f"two-beats-{i}")
    for beat in beats:
        beat.start()

    def program_gifts() -> list[int]:
        with pipeline.Session() as s:
            return list(
                s.scalars(
                    select(Delivery.id)
                    .join(Order, Order.id == Delivery.order_id)
                    .where(Delivery.kind == "gift", Order.idempotency_key.startswith("giftq:program:"))
                )
            )

    conftest.wait_until(lambda: len(program_gifts()) == PROGRAMS, timeout=60, what="the programs' gifts")
    # The birthdays' send time is two days off: what the clock would do, bring it to now.
    with pipeline.Session.begin() as s:
        s.execute(
            update(Delivery)
            .where(Delivery.id.in_(program_gifts()), Delivery.status == DeliveryStatus.SCHEDULED)
            .values(due_at=utcnow())
        )
    recipients = [f"birthday-{i}@example.com" for i in range(PROGRAMS)]
    recipients += [f"scheduled-{i}@example.com" for i in range(SCHEDULED)]
    conftest.wait_until(
        lambda: all(pipeline.smtp.to(r) for r in recipients), timeout=90, what="every gift to arrive"
    )
    # Let both beats tick on (dispatcher, sweeper, programs) well past the sweeper's limit.
    ticks = [_ticks(beat) for beat in beats]
    conftest.wait_until(
        lambda: all(_ticks(beat) >= before + 8 for beat, before in zip(beats, ticks, strict=True)),
        timeout=30,
        what="more ticks of both beats",
    )
    for beat in beats:
        beat.stop()

    assert {r: len(pipeline.smtp.to(r)) for r in recipients} == dict.fromkeys(recipients, 1)
    message_ids = Counter(str(m["Message-ID"]) for _, m in pipeline.smtp.accepted)
    assert [mid for mid, n in message_ids.items() if n > 1] == []
    with pipeline.Session() as s:
        gifts = s.execute(
            select(Delivery.id, Delivery.created_at, Delivery.status).where(Delivery.kind == "gift")
        ).all()
        placements = s.execute(
            select(ProgramPlacement.program_id, ProgramPlacement.year, ProgramPlacement.order_id)
        ).all()
        program_orders = s.scalar(
            select(func.count()).select_from(Order).where(Order.idempotency_key.startswith("giftq:program:"))
        )
    assert len(gifts) == PROGRAMS + SCHEDULED
    assert {status for _, _, status in gifts} <= {DeliveryStatus.SENT, DeliveryStatus.DELIVERED}
    assert {f"<{message_id_for(i, created)}>" for i, created, _ in gifts} <= set(message_ids)
    assert len(placements) == PROGRAMS
    assert len({(p, y) for p, y, _ in placements}) == PROGRAMS
    assert all(order_id is not None for _, _, order_id in placements)
    assert program_orders == PROGRAMS
    # Both beats did send the periodic tasks: the twins really ran side by side.
    for beat in beats:
        log = beat.log()
        for task in ("dispatch-due", "place-programs", "sweep"):
            assert f"Sending due task {task}" in log, (task, log[-2000:])


def _ticks(beat: Any) -> int:
    return int(beat.log().count("Sending due task dispatch-due"))
