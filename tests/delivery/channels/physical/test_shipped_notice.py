"""The purchaser's notice that a physical card shipped: its own template, in the purchaser's
language, with carrier and tracking; scored by SpamAssassin like every other email."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import sessionmaker

from delivery import dispatch
from delivery.channels.email import GiftShippedEmail, build_message, render_email
from delivery.channels.physical.reports import apply, parse_records
from delivery.models import Delivery, DeliveryKind
from giftq.settings import reset_settings

DE_ADDRESS = {"line1": "Hauptstr. 1", "city": "Köln", "postal_code": "50667", "country": "DE"}


def notice(marketplace: str, **overrides: Any) -> GiftShippedEmail:
    fields: dict[str, Any] = {
        "purchaser_name": "Pat Buyer",
        "purchaser_email": "pat@example.com",
        "recipient_name": "Robin Receiver",
        "channel": "physical",
        "amount": 5000,
        "marketplace": marketplace,
        "carrier": "DHL",
        "tracking_number": "00340434161234567890",
        "tracking_url": "https://www.dhl.de/track?piececode=00340434161234567890",
        "order_ref": "SHOP-1001",
    }
    fields.update(overrides)
    return GiftShippedEmail(**fields)


@pytest.mark.parametrize(
    ("marketplace", "subject", "said"),
    [
        ("US", "Your gift card for Robin Receiver is on its way", "has been posted with DHL"),
        ("DE", "Ihre Geschenkkarte für Robin Receiver ist unterwegs", "ist mit DHL verschickt worden"),
        ("FR", "Votre carte cadeau pour Robin Receiver est en route", "a été expédiée par DHL"),
    ],
)
def test_the_notice_speaks_the_purchasers_language(marketplace: str, subject: str, said: str) -> None:
    rendered = render_email(notice(marketplace))
    assert rendered.subject == subject
    text = " ".join(rendered.text.split())
    assert said in text and "00340434161234567890" in text
    assert "https://www.dhl.de/track?piececode=00340434161234567890" in rendered.text
    assert 'href="https://www.dhl.de/track?piececode=00340434161234567890"' in rendered.html
    assert rendered.auto_submitted


def test_what_the_vendor_wrote_is_escaped_and_kept_on_one_line() -> None:
    rendered = render_email(notice("US", carrier="<b>DHL</b>", tracking_url='https://x.example/"><script>'))
    assert "<b>DHL</b>" not in rendered.html and "&lt;b&gt;DHL&lt;/b&gt;" in rendered.html
    assert "<script>" not in rendered.html
    assert "Tracking number" in rendered.text and rendered.subject.count("\n") == 0


def test_a_german_order_gets_its_notice_in_german_when_the_card_ships(
    *, Session: sessionmaker[Any], vendor: Any, physical_order: Any, run_cutoff: Any, smtp: Any, conftest: Any
) -> None:
    order_id = physical_order(
        marketplace="DE", recipient={"name": "Kim Schäfer", "address": DE_ADDRESS}, message=None
    )
    run_cutoff(Session)
    with Session() as s:
        gift = s.scalars(select(Delivery).where(Delivery.order_id == order_id, Delivery.kind == "gift")).one()
    record = {"item_ref": f"gq-{gift.id}", "event": "shipped", "carrier": "DHL", "tracking_number": "JJD0001"}
    with Session.begin() as s:
        apply(s, *parse_records([(1, record)]), source="test")
    with Session() as s:
        ids = list(s.scalars(select(Delivery.id).where(Delivery.status == "queued")))
        kinds = s.scalars(select(Delivery.kind).where(Delivery.id.in_(ids)).order_by(Delivery.id)).all()
    assert kinds == [DeliveryKind.CONFIRMATION, DeliveryKind.DELIVERED_NOTICE]
    dispatch.run_batch(Session, "email", ids)
    shipped = smtp.wait("pat@example.com", count=2)[1]
    assert shipped["Subject"] == "Ihre Geschenkkarte für Kim Schäfer ist unterwegs"
    assert "Sendungsnummer: JJD0001" in conftest.text_of(shipped)


def test_the_notice_scores_low_with_spamassassin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spamassassin = shutil.which("spamassassin")
    if spamassassin is None:
        message = "spamassassin is not installed (Debian: apt-get install spamassassin)"
        if os.environ.get("GIFTQ_REQUIRE_SERVICES") == "1":
            pytest.fail(f"{message}; GIFTQ_REQUIRE_SERVICES=1 forbids skipping", pytrace=False)
        pytest.skip(message)
    monkeypatch.setenv("GIFTQ_EMAIL_FROM", "Giftq <gifts@giftq.example>")
    reset_settings()
    mbox = bytearray()
    for marketplace in ("US", "DE", "FR"):
        ctx = notice(marketplace)
        data = build_message(
            render_email(ctx),
            to_name=ctx.to_name,
            to_addr=ctx.to_addr,
            message_id=f"giftq.delivery.{len(mbox) + 1}.{marketplace.lower()}@giftq.example",
        )
        body = data.replace(b"\r\n", b"\n").replace(b"\nFrom ", b"\n>From ")
        mbox += b"From gifts@giftq.example Mon Feb  1 10:30:00 2027\n" + body + b"\n"
    result = subprocess.run(
        [spamassassin, "-L", "-t", "--mbox"],
        input=bytes(mbox),
        capture_output=True,
        env={**os.environ, "HOME": str(tmp_path)},
        timeout=120,
        check=True,
    )
    scores = [float(s) for s in re.findall(rb"X-Spam-Status: \w+, score=(-?\d+\.\d+)", result.stdout)]
    assert len(scores) == 3 and max(scores) <= 1.0, result.stdout.decode(errors="replace")[-3000:]
