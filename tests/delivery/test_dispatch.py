"""Dispatch against a real SMTP server (aiosmtpd), without Celery: claim, send, record."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import NullPool

from delivery import dispatch
from delivery.channels import registry
from delivery.models import Delivery, DeliveryAttempt, SuppressedAddress
from giftq.settings import reset_settings
from ledger import redeem


@pytest.fixture(autouse=True)
def _quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "[0, 0]")
    monkeypatch.setenv("GIFTQ_RETRY_JITTER", "0")
    reset_settings()


def deliveries(Session: sessionmaker[Session], kind: str | None = None) -> list[Delivery]:
    query = select(Delivery).order_by(Delivery.id)
    if kind:
        query = query.where(Delivery.kind == kind)
    with Session() as s:
        return list(s.scalars(query))


def attempts(Session: sessionmaker[Session], delivery_id: int) -> list[tuple[int, str, int | None]]:
    with Session() as s:
        rows = s.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
        return [(a.number, a.outcome, a.code) for a in rows]


def test_the_gift_arrives_and_its_code_redeems(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    order_id = issued_order(lines=1)
    run_queued(Session)
    (gift,) = smtp.to("r0@example.com")
    assert gift["Subject"]
    # Stable per delivery and unique across installations (channels/email/message.py).
    assert re.fullmatch(r"<[a-z2-7]{32}@localhost>", gift["Message-ID"])
    (code,) = conftest.codes_in(gift)
    with Session.begin() as s:
        result = redeem(s, code, account="robin", marketplace="US", idempotency_key="redeem-1")
    assert (result.amount, result.currency) == (2500, "USD")

    (confirmation,) = smtp.to("pat@example.com")[:1]
    receipt = conftest.text_of(confirmation)
    assert code not in receipt
    assert code[-4:] in receipt  # the masked code shows the last four
    (gift_row,) = deliveries(Session, "gift")
    assert (gift_row.status, gift_row.attempts, gift_row.order_id) == ("sent", 1, order_id)
    assert attempts(Session, gift_row.id) == [(1, "accepted", 250)]
    # An email gift sent at once leaves with its receipt, which says it is on its way:
    # no "sent" notice follows (GIFTQ_NOTICES=later, the default).
    notice_kinds = [d.kind for d in deliveries(Session) if d.to_address == "pat@example.com"]
    assert notice_kinds == ["confirmation"]
    assert len(smtp.to("pat@example.com")) == 1


def test_with_every_notice_the_purchaser_hears_the_gift_went_out(
    run_queued: Any,
    Session: sessionmaker[Session],
    issued_order: Any,
    smtp: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GIFTQ_NOTICES", "all")
    reset_settings()
    issued_order(lines=1)
    run_queued(Session)
    notice_kinds = [d.kind for d in deliveries(Session) if d.to_address == "pat@example.com"]
    assert sorted(notice_kinds) == ["confirmation", "delivered_notice"]
    assert len(smtp.to("pat@example.com")) == 2


def test_a_batch_that_runs_twice_sends_once(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    issued_order(lines=3)
    ids = [d.id for d in deliveries(Session)]
    first = dispatch.run_batch(Session, "email", ids, claimer="task-1")
    again = dispatch.run_batch(Session, "email", ids, claimer="task-1")
    other = dispatch.run_batch(Session, "email", ids, claimer="task-2")
    assert (first.sent, again.claimed, other.claimed) == (4, 0, 0)
    assert len(smtp.accepted) == 4


def test_busy_server_then_accepted_is_delivered_once_with_attempts_logged(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    smtp.script["r0@example.com"] = ["421 4.7.0 try again later"] * 3
    issued_order(lines=1)
    run_queued(Session)
    assert len(smtp.to("r0@example.com")) == 1
    assert smtp.answers_to("r0@example.com")[-1].startswith("250")
    (gift,) = deliveries(Session, "gift")
    log = attempts(Session, gift.id)
    # 421 closes the connection; the transport reconnects once within a batch, so the
    # server may see more refusals than we log attempts. Each logged attempt is real.
    assert gift.status == "sent"
    assert len(log) >= 2
    assert log[:-1] == [(n, "retryable", 421) for n in range(1, len(log))]
    assert log[-1] == (len(log), "accepted", 250)


def test_retries_run_out(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    smtp.script["r0@example.com"] = ["451 4.3.0 later"] * 5
    issued_order(lines=1)
    run_queued(Session)
    (gift,) = deliveries(Session, "gift")
    assert (gift.status, gift.attempts) == ("failed_permanent", 3)
    (notice,) = deliveries(Session, "failed_notice")
    assert notice.status == "sent"
    assert notice.reason == "unreachable"  # a key: the purchaser's catalog says it
    with Session() as s:
        assert s.scalars(select(SuppressedAddress)).all() == []  # a 4xx says nothing about the address


def test_unknown_mailbox_fails_for_good_tells_the_purchaser_and_suppresses(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any, conftest: Any
) -> None:
    smtp.script["r0@example.com"] = ["550 5.1.1 no such mailbox"]
    issued_order(lines=1)
    run_queued(Session)
    assert smtp.answers_to("r0@example.com") == ["550 5.1.1 no such mailbox"]  # nothing retried
    (gift,) = deliveries(Session, "gift")
    assert (gift.status, gift.attempts) == ("failed_permanent", 1)
    assert attempts(Session, gift.id) == [(1, "permanent", 550)]
    assert "no such mailbox" in (gift.last_error or "")
    with Session() as s:
        (suppressed,) = s.scalars(select(SuppressedAddress)).all()
        assert (suppressed.address, suppressed.code, suppressed.delivery_id) == (
            "r0@example.com",
            550,
            gift.id,
        )
    failed_notice = [m for m in smtp.to("pat@example.com") if "r0@example.com" in conftest.text_of(m)]
    assert len(failed_notice) == 1

    # The next gift to that address is not even tried, and the purchaser hears why.
    issued_order(lines=1)
    run_queued(Session)
    assert smtp.answers_to("r0@example.com") == ["550 5.1.1 no such mailbox"]
    second = deliveries(Session, "gift")[1]
    assert second.status == "failed_permanent"
    assert attempts(Session, second.id) == [(1, "suppressed", None)]
    assert len(deliveries(Session, "failed_notice")) == 2


def test_a_redelivered_task_takes_back_its_own_half_done_batch(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    issued_order(lines=2)
    ids = [d.id for d in deliveries(Session)]
    with Session.begin() as s:
        claimed = dispatch.claim(s, registry.get("email"), ids, claimer="task-1")
    assert len(claimed) == 3
    # The worker died here. Another task cannot take the rows; the same task id can.
    assert dispatch.run_batch(Session, "email", ids, claimer="task-2").claimed == 0
    assert dispatch.run_batch(Session, "email", ids, claimer="task-1").sent == 3


def test_a_row_that_cannot_be_rendered_fails_alone(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    issued_order(lines=2)
    gifts = deliveries(Session, "gift")
    with Session.begin() as s:
        s.execute(update(Delivery).where(Delivery.id == gifts[0].id).values(card_id=987654))
    report = dispatch.run_batch(Session, "email", [d.id for d in deliveries(Session)])
    assert (report.claimed, report.sent) == (2, 2)
    broken = deliveries(Session, "gift")[0]
    assert broken.status == "failed_permanent"
    assert "no card 987654" in (broken.last_error or "")
    assert len(smtp.to("r1@example.com")) == 1


def test_smtp_server_down_means_retry(
    Session: sessionmaker[Session], issued_order: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from delivery.channels.email import close_transport

    monkeypatch.setenv("GIFTQ_SMTP_PORT", "1")
    reset_settings()
    close_transport()
    issued_order(lines=1)
    report = dispatch.run_batch(Session, "email", [d.id for d in deliveries(Session)])
    assert report.retrying == 2
    assert {d.status for d in deliveries(Session)} == {"failed_retryable"}
    close_transport()


def test_no_code_in_rows_or_logs(
    run_queued: Any,
    Session: sessionmaker[Session],
    issued_order: Any,
    smtp: Any,
    conftest: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    smtp.script["r1@example.com"] = ["550 5.1.1 nobody"]
    caplog.set_level("DEBUG")
    issued_order(lines=2)
    run_queued(Session)
    (code,) = conftest.codes_in(smtp.to("r0@example.com")[0])
    # aiosmtpd's "mail.log" is the test's own mail server, which sees the message.
    ours = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("mail.log"))
    assert ours and code not in ours
    with Session() as s:
        text = " ".join(str(v) for d in s.scalars(select(Delivery)) for v in vars(d).values())
        text += " ".join(str(v) for a in s.scalars(select(DeliveryAttempt)) for v in vars(a).values())
    assert code not in text
    assert code.replace("-", "") not in text


def test_a_short_batch_is_topped_up_with_other_queued_emails(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    issued_order(lines=6)
    ids = [d.id for d in deliveries(Session)]  # 6 gifts and the receipt
    report = dispatch.run_batch(Session, "email", [ids[-1]], claimer="t1", fill_to=3)
    assert report.claimed == 3  # its own, and two others
    sent = {d.id for d in deliveries(Session) if d.status == "sent"}
    assert ids[-1] in sent and len(sent) == 3
    # Their own messages come later and find nothing left to do.
    assert dispatch.run_batch(Session, "email", sorted(sent - {ids[-1]}), claimer="t2").claimed == 0
    assert dispatch.run_batch(Session, "email", ids, claimer="t3").claimed == 4
    assert len(smtp.accepted) == 7


def test_a_redelivered_task_takes_back_the_rows_it_topped_up_with(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    issued_order(lines=6)
    ids = [d.id for d in deliveries(Session)]
    with Session.begin() as s:
        claimed = dispatch.claim(s, registry.get("email"), [ids[-1]], claimer="task-1", fill_to=3)
        held = {c.delivery_id for c in claimed}
    assert len(held) == 3
    # The worker died; the broker redelivers the message, which names only ids[-1].
    assert dispatch.run_batch(Session, "email", [ids[-1]], claimer="task-1").sent == 3
    assert {d.id for d in deliveries(Session) if d.status == "sent"} == held


def test_a_batch_waits_for_the_database_before_its_next_send(
    pg_url: str,
    _pg_admin: Any,
    order_payload: Any,
    conftest: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """PostgreSQL goes away after the relay took the first message: the batch sends
    nothing more until that answer is written, so a crash could re-send only one message."""
    import threading

    from sqlalchemy import text

    from delivery import place_order
    from delivery.channels.email import close_transport
    from delivery.channels.email.sink import SmtpServerThread
    from delivery.orders import processing
    from giftq import db as giftq_db

    monkeypatch.setenv("GIFTQ_DATABASE_URL", pg_url)
    reset_settings()
    giftq_db.reset_engine()
    name = pg_url.rsplit("/", 1)[1]
    events: list[str] = []

    def allow(yes: bool) -> None:
        with _pg_admin.connect() as c:
            c.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(yes).lower()}'))
            if not yes:
                c.execute(
                    text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'")
                )
        events.append("database back" if yes else "database away")

    class DatabaseAwayAfterFirst(conftest.ScriptedSmtp):  # type: ignore[misc]
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            events.append(f"DATA {envelope.rcpt_tos[0]}")
            if len(events) == 1:
                allow(False)
                threading.Timer(1.0, allow, args=(True,)).start()
            answer: str = await super().handle_DATA(server, session, envelope)
            return answer

    handler = DatabaseAwayAfterFirst()
    # A connection per transaction: each one the batch opens while the database is
    # away is refused, as after a restart (which cuts the kept ones too).
    engine = create_engine(pg_url, poolclass=NullPool)
    Session = sessionmaker(engine, expire_on_commit=False)
    try:
        with SmtpServerThread(handler, "127.0.0.1", 0) as server:
            monkeypatch.setenv("GIFTQ_SMTP_HOST", "127.0.0.1")
            monkeypatch.setenv("GIFTQ_SMTP_PORT", str(server.port))
            reset_settings()
            close_transport()
            placed = place_order(order_payload(3), idempotency_key="away-1")
            with Session.begin() as s:
                assert processing.issue_next_chunk(s, placed.order_id).done
            gifts = [d.id for d in deliveries(Session, "gift")]
            report = dispatch.run_batch(Session, "email", gifts)
            close_transport()
    finally:
        allow(True)
        engine.dispose()
        giftq_db.reset_engine()

    assert (report.claimed, report.sent) == (3, 3)
    assert events[:4] == ["DATA r0@example.com", "database away", "database back", "DATA r1@example.com"]
    assert [d.status for d in deliveries(Session, "gift")] == ["sent"] * 3
    assert len(handler.accepted) == 3


def test_an_answer_needing_no_notice_is_recorded_only_while_its_claim_holds(
    Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    from delivery import lifecycle
    from delivery.channels.email.sender import EmailSender
    from delivery.models import Order
    from giftq.db import utcnow

    issued_order(lines=1)
    (gift, receipt) = deliveries(Session)
    quiet: set[int] = set()
    with Session.begin() as s:
        dispatch.claim(s, EmailSender(), [gift.id, receipt.id], claimer="task-1", quiet=quiet)
        order = s.get_one(Order, gift.order_id)
        # Neither needs a notice once accepted: a gift sent at once, and the receipt.
        assert quiet == {gift.id, receipt.id}
        assert not lifecycle.notice_on_accept(s.get_one(Delivery, gift.id), order, reports_delivery=False)
    now = utcnow()
    answer = {"code": 250, "response": "250 ok", "provider_ref": None, "started": now, "now": now}
    with Session.begin() as s:
        # Another task's claim (the sweeper gave the row to it): nothing changes.
        assert not lifecycle.accepted_quietly(s, gift.id, claimer="task-2", **answer)
    assert attempts(Session, gift.id) == []
    with Session.begin() as s:
        assert lifecycle.accepted_quietly(s, gift.id, claimer="task-1", **answer)
    with Session.begin() as s:
        assert not lifecycle.accepted_quietly(s, gift.id, claimer="task-1", **answer)  # sent already
    (sent,) = deliveries(Session, "gift")
    assert (sent.status, sent.attempts, sent.sent_at, sent.last_error) == ("sent", 1, now, None)
    assert attempts(Session, gift.id) == [(1, "accepted", 250)]


def test_a_retried_gift_is_recorded_with_its_notice(
    run_queued: Any, Session: sessionmaker[Session], issued_order: Any, smtp: Any
) -> None:
    smtp.script["r0@example.com"] = ["421 4.7.0 try again later"] * 3
    issued_order(lines=1)
    run_queued(Session)
    (gift,) = deliveries(Session, "gift")
    assert gift.status == "sent" and gift.attempts >= 2
    # It went out later than its receipt said: the purchaser hears it did (GIFTQ_NOTICES=later).
    (notice,) = deliveries(Session, "delivered_notice")
    assert (notice.parent_id, notice.to_address, notice.status) == (gift.id, "pat@example.com", "sent")
