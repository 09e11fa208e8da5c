"""Download links: signed, expiring, counted in the database; on SQLite and PostgreSQL.

A race of downloads on a link's last use lets exactly one through (PostgreSQL, threads).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import create_engine, delete, select, text
from sqlalchemy.orm import sessionmaker

from delivery.channels.printable import (
    LinkBadSignature,
    LinkExpired,
    LinkUnknown,
    LinkUsedUp,
    make_link,
    make_token,
    redeem_link,
)
from delivery.channels.printable.links import DOWNLOAD_PATH
from delivery.channels.printable.models import PrintableLink
from delivery.models import Delivery, Order
from giftq import db as giftq_db
from giftq.settings import reset_settings

NOW = dt.datetime(2026, 12, 2, 12, 0, 0, 250_000, tzinfo=dt.UTC)


def add_delivery(Session: Any) -> int:
    with Session.begin() as s:
        order = Order(
            idempotency_key=f"link-test-{time.monotonic_ns()}",
            request_hash="0" * 64,
            status="issued",
            purchaser_name="Pat Buyer",
            purchaser_email="pat@example.com",
            line_count=1,
        )
        s.add(order)
        s.flush()
        delivery = Delivery(
            order_id=order.id,
            kind="gift",
            channel="printable",
            status="queued",
            to_name="Robin Receiver",
            to_address="pat@example.com",
            due_at=NOW,
        )
        s.add(delivery)
        s.flush()
        return int(delivery.id)


def token_of(url: str) -> str:
    path = urlsplit(url).path
    assert path.startswith(DOWNLOAD_PATH)
    return path.removeprefix(DOWNLOAD_PATH)


@pytest.fixture
def delivery_id(Session: Any) -> int:
    return add_delivery(Session)


def test_a_link_downloads_its_delivery(Session: Any, delivery_id: int) -> None:
    with Session.begin() as s:
        url = make_link(s, delivery_id, NOW)
    assert url.startswith("http://localhost:8000/printables/")
    parts = urlsplit(url)
    assert parts.query == "" and parts.fragment == ""
    with Session.begin() as s:
        assert redeem_link(s, token_of(url), NOW + dt.timedelta(hours=1)) == delivery_id
    with Session() as s:
        link = s.scalars(select(PrintableLink)).one()
        assert (link.delivery_id, link.uses, link.max_uses) == (delivery_id, 1, 5)
        assert link.expires_at == dt.datetime(2026, 12, 9, 12, 0, 0, tzinfo=dt.UTC)


def test_uses_are_counted_up_to_the_limit(Session: Any, delivery_id: int, monkeypatch: Any) -> None:
    monkeypatch.setenv("GIFTQ_PRINTABLE_LINK_MAX_USES", "3")
    reset_settings()
    with Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
    for _ in range(3):
        with Session.begin() as s:
            assert redeem_link(s, token, NOW) == delivery_id
    with Session.begin() as s, pytest.raises(LinkUsedUp, match="3 time"):
        redeem_link(s, token, NOW)
    with Session() as s:
        assert s.scalars(select(PrintableLink.uses)).one() == 3


def test_a_link_expires(Session: Any, delivery_id: int, monkeypatch: Any) -> None:
    monkeypatch.setenv("GIFTQ_PRINTABLE_LINK_TTL_SECONDS", "600")
    reset_settings()
    with Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
    with Session.begin() as s:
        assert redeem_link(s, token, NOW + dt.timedelta(seconds=599)) == delivery_id
    with Session.begin() as s, pytest.raises(LinkExpired):
        redeem_link(s, token, NOW + dt.timedelta(seconds=600))
    with Session() as s:
        assert s.scalars(select(PrintableLink.uses)).one() == 1


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # the MAC
        lambda t: ("B" if t[0] != "B" else "C") + t[1:],  # the payload
        lambda t: t.replace(".", ""),
        lambda t: t + "=",
        lambda t: t + "!",
        lambda t: "",
        lambda t: "not-a-token",
        lambda t: "a" * 500,
    ],
)
def test_an_altered_or_malformed_token_has_a_bad_signature(
    Session: Any, delivery_id: int, tamper: Any
) -> None:
    with Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
    with Session.begin() as s, pytest.raises(LinkBadSignature) as caught:
        redeem_link(s, tamper(token), NOW)
    assert token not in str(caught.value)
    with Session() as s:
        assert s.scalars(select(PrintableLink.uses)).one() == 0


def test_a_token_made_under_another_pepper_has_a_bad_signature(
    Session: Any, delivery_id: int, monkeypatch: Any
) -> None:
    with Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
    import base64

    monkeypatch.setenv("GIFTQ_CODE_PEPPER", base64.b64encode(b"q" * 32).decode())
    reset_settings()
    with Session.begin() as s, pytest.raises(LinkBadSignature):
        redeem_link(s, token, NOW)


def test_a_signed_token_without_its_row_is_unknown(Session: Any, delivery_id: int) -> None:
    with Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
    with Session.begin() as s:
        s.execute(delete(PrintableLink))
    with Session.begin() as s, pytest.raises(LinkUnknown):
        redeem_link(s, token, NOW)


def test_a_row_that_is_not_the_one_signed_is_unknown(Session: Any, delivery_id: int) -> None:
    """A new row that took a deleted row's id does not honour the old row's token."""
    other = add_delivery(Session)
    with Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
        link_id = s.scalars(select(PrintableLink.id)).one()
    with Session.begin() as s:
        s.execute(delete(PrintableLink))
        s.add(PrintableLink(id=link_id, delivery_id=other, expires_at=NOW + dt.timedelta(days=7), max_uses=5))
    with Session.begin() as s, pytest.raises(LinkUnknown):
        redeem_link(s, token, NOW)


def test_the_token_holds_ids_and_no_secret(Session: Any, delivery_id: int) -> None:
    with Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
    payload, _, mac = token.partition(".")
    assert len(payload) == 34 and len(mac) == 43  # 25 bytes and 32 bytes, URL-safe base64
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")


@pytest.mark.parametrize("now", [dt.datetime(2026, 12, 2, 12, 0), "2026-12-02"])
def test_now_must_be_an_aware_datetime(Session: Any, delivery_id: int, now: Any) -> None:
    with Session.begin() as s, pytest.raises(ValueError, match="timezone-aware"):
        make_token(s, delivery_id, now)


def test_the_database_refuses_more_uses_than_allowed(Session: Any, delivery_id: int) -> None:
    from sqlalchemy.exc import IntegrityError

    with Session.begin() as s:
        make_token(s, delivery_id, NOW)
    with pytest.raises(IntegrityError), Session.begin() as s:
        s.execute(text("UPDATE printable_links SET uses = max_uses + 1"))


# --- races on PostgreSQL ---------------------------------------------------------------------


@pytest.fixture
def pg_Session(pg_url: str, monkeypatch: Any) -> Any:
    monkeypatch.setenv("GIFTQ_DATABASE_URL", pg_url)
    reset_settings()
    engine = giftq_db.make_engine(pg_url, pool_size=4, max_overflow=4)
    yield sessionmaker(engine, expire_on_commit=False)
    engine.dispose()


def test_two_downloads_racing_for_the_last_use_let_exactly_one_through(pg_Session: Any) -> None:
    delivery_id = add_delivery(pg_Session)
    with pg_Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
        s.execute(text("UPDATE printable_links SET uses = max_uses - 1"))

    # The first download counts its use and holds its transaction open; the second starts
    # while it is open and must wait on the row, then see that no use is left.
    first = pg_Session()
    first.begin()
    assert redeem_link(first, token, NOW) == delivery_id
    outcome: list[object] = []

    def second() -> None:
        with pg_Session.begin() as s:
            try:
                outcome.append(redeem_link(s, token, NOW))
            except LinkUsedUp as exc:
                outcome.append(exc)

    thread = threading.Thread(target=second)
    thread.start()
    _wait_for_a_lock_wait(pg_Session)
    first.commit()
    first.close()
    thread.join(30)
    assert not thread.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], LinkUsedUp)
    with pg_Session() as s:
        link = s.scalars(select(PrintableLink)).one()
        assert link.uses == link.max_uses


def _wait_for_a_lock_wait(Session: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    while time.monotonic() < deadline:
        with Session() as s:
            if s.scalar(query):
                return
        time.sleep(0.02)
    raise AssertionError("the second download never waited for the first")


def test_many_downloads_at_once_get_exactly_the_uses_allowed(pg_Session: Any) -> None:
    delivery_id = add_delivery(pg_Session)
    with pg_Session.begin() as s:
        token = make_token(s, delivery_id, NOW)
    engine = create_engine(pg_Session.kw["bind"].url, pool_size=8, max_overflow=0)
    Session = sessionmaker(engine)
    start = threading.Barrier(8)
    results: list[str] = []
    lock = threading.Lock()

    def download() -> None:
        start.wait()
        try:
            with Session.begin() as s:
                redeem_link(s, token, NOW)
            result = "ok"
        except LinkUsedUp:
            result = "used up"
        with lock:
            results.append(result)

    threads = [threading.Thread(target=download) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    engine.dispose()
    assert sorted(results) == ["ok"] * 5 + ["used up"] * 3
