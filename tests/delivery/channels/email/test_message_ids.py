"""Message-IDs: one per delivery, the same on every attempt, never the same for two deliveries.

Delivery ids start at 1 in every database, so an id built from them alone repeated across
installations (and test, demo and restored databases): receivers that de-duplicate by
Message-ID then dropped real gifts as duplicates.
"""

from __future__ import annotations

import base64
import datetime as dt
import email
import re
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.channels.email import build_message, compose, render_email
from delivery.channels.email.message import message_id_for
from delivery.models import Delivery, Order
from delivery.orders import processing
from giftq import db as giftq_db
from giftq.settings import reset_settings

MESSAGE_ID = re.compile(r"[a-z2-7]{32}@giftq\.example")
ORDER: dict[str, Any] = {
    "purchaser": {"name": "Pat Buyer", "email": "pat@example.com"},
    "lines": [
        {
            "channel": "email",
            "amount": 2500,
            "marketplace": "US",
            "recipient": {"name": "Robin", "email": "robin@example.com"},
        }
    ],
}


def message_ids(Session: sessionmaker[Session]) -> dict[int, str]:
    """Each delivery's Message-ID as the email channel composes it."""
    with Session() as s:
        rows = s.execute(select(Delivery, Order).join(Order).order_by(Delivery.id)).all()
        loaded = compose.load(s, [d for d, _ in rows])
        return {d.id: str(compose.context(d, o, loaded).message_id) for d, o in rows}


def wire_message_id(Session: sessionmaker[Session], delivery_id: int) -> str:
    """The Message-ID header of the message built for one delivery."""
    with Session() as s:
        delivery, order = s.execute(
            select(Delivery, Order).join(Order).where(Delivery.id == delivery_id)
        ).one()
        ctx = compose.context(delivery, order, compose.load(s, [delivery]))
    data = build_message(render_email(ctx), to_name=ctx.to_name, to_addr=ctx.to_addr)
    return str(email.message_from_bytes(data)["Message-ID"])


@pytest.fixture
def engines() -> Iterator[list[Engine]]:
    made: list[Engine] = []
    yield made
    for engine in made:
        engine.dispose()
    giftq_db.reset_engine()


def placed_in(url: str, monkeypatch: pytest.MonkeyPatch, engines: list[Engine]) -> sessionmaker[Session]:
    """A one-card order placed and issued in the database at ``url``."""
    monkeypatch.setenv("GIFTQ_DATABASE_URL", url)
    reset_settings()
    giftq_db.reset_engine()
    placed = place_order(ORDER, idempotency_key="same-everywhere")
    engines.append(giftq_db.make_engine(url))
    Session = sessionmaker(engines[-1], expire_on_commit=False)
    while True:
        with Session.begin() as s:
            if processing.issue_next_chunk(s, placed.order_id).done:
                return Session


def test_two_databases_give_their_delivery_1_different_ids(
    sqlite_url: str, pg_url: str, monkeypatch: pytest.MonkeyPatch, engines: list[Engine]
) -> None:
    first = placed_in(sqlite_url, monkeypatch, engines)
    second = placed_in(pg_url, monkeypatch, engines)
    ids_first, ids_second = message_ids(first), message_ids(second)
    # The same numbering in both: the gift and the receipt are deliveries 1 and 2 in each.
    assert sorted(ids_first) == sorted(ids_second) == [1, 2]
    assert not set(ids_first.values()) & set(ids_second.values())
    assert len(set(ids_first.values())) == 2
    assert wire_message_id(first, 1) != wire_message_id(second, 1)
    for value in [*ids_first.values(), *ids_second.values()]:
        assert MESSAGE_ID.fullmatch(value), value


def test_a_retry_carries_the_same_id(Session: sessionmaker[Session], order_payload: Any) -> None:
    placed = place_order(order_payload(1), idempotency_key="retry-1")
    with Session.begin() as s:
        processing.issue_next_chunk(s, placed.order_id)
    before = message_ids(Session)
    on_the_wire = wire_message_id(Session, 1)
    assert on_the_wire == f"<{before[1]}>"
    # The first attempt failed (a 4xx): the row moves on, in another transaction.
    with Session.begin() as s:
        s.execute(
            update(Delivery)
            .where(Delivery.id == 1)
            .values(status="failed_retryable", attempts=1, last_error="451 later", claimed_by="task-1")
        )
    assert message_ids(Session) == before
    assert wire_message_id(Session, 1) == on_the_wire


def test_another_installation_makes_other_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    created = dt.datetime(2027, 2, 1, 10, 30, 0, 123456, tzinfo=dt.UTC)
    ours = message_id_for(1, created)
    assert message_id_for(1, created) == ours
    assert message_id_for(2, created) != ours
    assert message_id_for(1, created + dt.timedelta(microseconds=1)) != ours
    # The same instant written in another zone is the same instant.
    assert message_id_for(1, created.astimezone(dt.timezone(dt.timedelta(hours=9)))) == ours
    monkeypatch.setenv("GIFTQ_CODE_PEPPER", base64.b64encode(b"another installation pepper 32by").decode())
    reset_settings()
    assert message_id_for(1, created) != ours


def test_the_id_tells_nothing_and_lives_on_the_sender_domain() -> None:
    created = dt.datetime(2027, 2, 1, tzinfo=dt.UTC)
    value = message_id_for(31337, created)
    assert MESSAGE_ID.fullmatch(value)
    assert "31337" not in value
    with pytest.raises(ValueError, match="timezone-aware"):
        message_id_for(1, dt.datetime(2027, 2, 1))


def test_an_explicit_id_still_wins(samples: Any) -> None:
    rendered = render_email(samples.gift(message_id="from-context@giftq.example"))
    assert rendered.message_id == "from-context@giftq.example"
    built = build_message(rendered, to_name="Zoë", to_addr="zoe@example.com")
    assert email.message_from_bytes(built)["Message-ID"] == "<from-context@giftq.example>"
    built = build_message(rendered, to_name="Zoë", to_addr="zoe@example.com", message_id="x@giftq.example")
    assert email.message_from_bytes(built)["Message-ID"] == "<x@giftq.example>"
