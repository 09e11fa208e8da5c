"""``GET /printables/{token}``: the purchaser's download link gives the card's PDF, a limited
number of times, never cached, and the token stays out of the access log."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery import place_order
from delivery.channels.printable import make_link
from delivery.models import Delivery
from delivery.orders import processing
from giftq.db import utcnow
from giftq.settings import reset_settings
from ledger import reveal_code


@pytest.fixture
def link(
    Session: sessionmaker[Session], order_body: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> tuple[str, str]:
    monkeypatch.setenv("GIFTQ_PRINTABLE_LINK_MAX_USES", "2")
    reset_settings()
    order_body["lines"] = [{**order_body["lines"][0], "channel": "printable", "recipient": {"name": "Robin"}}]
    placed = place_order(order_body, idempotency_key="print-1")
    with Session.begin() as s:
        assert processing.issue_next_chunk(s, placed.order_id).done
        gift = s.scalars(select(Delivery).where(Delivery.kind == "gift")).one()
        url = make_link(s, gift.id, utcnow())
        code = reveal_code(s, gift.card_id or 0).reveal()
    return url.rsplit("/printables/", 1)[1], code


def test_the_link_gives_the_card_then_is_used_up(
    api: Any, link: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    token, code = link
    caplog.set_level(logging.INFO)
    first = api.client.get(f"/printables/{token}")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/pdf"
    assert first.headers["cache-control"] == "no-store"
    assert first.headers["referrer-policy"] == "no-referrer"
    assert first.headers["content-disposition"].startswith('attachment; filename="gift-card-robin-')
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(first.content)).pages)
    assert code in text
    assert api.client.get(f"/printables/{token}").status_code == 200
    used_up = api.client.get(f"/printables/{token}")
    assert (used_up.status_code, used_up.json()["type"]) == (404, "urn:giftq:problem:not-found")
    assert "used" in used_up.json()["detail"]
    # What the server logged (the test's own HTTP client logs the URL it requested).
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith("httpx"))
    assert "/printables/…" in logged
    assert token not in logged and code not in logged


def test_a_forged_link_is_refused(api: Any, link: tuple[str, str]) -> None:
    token, _ = link
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    answer = api.client.get(f"/printables/{forged}")
    assert (answer.status_code, answer.json()["type"]) == (404, "urn:giftq:problem:not-found")
