from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from delivery.errors import InvalidOrder
from delivery.orders import schemas


def paths(exc: InvalidOrder) -> set[str]:
    return {e.path for e in exc.errors}


def test_a_valid_order(order_payload: Any) -> None:
    order = schemas.parse_order(order_payload(lines=2))
    assert len(order.lines) == 2
    assert order.lines[0].channel is schemas.Channel.EMAIL
    assert order.lines[0].message == "Happy birthday!\nLove, Pat"


def test_every_bad_field_is_named(order_payload: Any) -> None:
    payload = order_payload(lines=3)
    payload["purchaser"]["email"] = "not-an-address"
    payload["lines"][0]["amount"] = 12.5
    payload["lines"][1]["marketplace"] = "XX"
    payload["lines"][2]["send_at"] = {"local_time": "2025-06-01T09:00+02:00", "zone": "Mars/Base"}
    payload["colour"] = "red"
    with pytest.raises(InvalidOrder) as caught:
        schemas.parse_request(payload, "")
    assert paths(caught.value) == {
        "order.purchaser.email",
        "order.lines.0.amount",
        "order.lines.1.marketplace",
        "order.lines.2.send_at.local_time",
        "order.lines.2.send_at.zone",
        "order.colour",
        "idempotency_key",
    }
    text = str(caught.value)
    assert "order.lines.1.marketplace: unknown marketplace" in text
    assert "Mars/Base" in text


@pytest.mark.parametrize(
    ("channel", "missing"),
    [("email", "email"), ("sms", "phone"), ("physical", "address")],
)
def test_the_channel_names_the_recipient_field_it_needs(
    order_payload: Any, channel: str, missing: str
) -> None:
    payload = order_payload(channel=channel, recipient={"name": "R"})
    with pytest.raises(InvalidOrder) as caught:
        schemas.parse_order(payload)
    assert paths(caught.value) == {f"lines.0.recipient.{missing}"}
    assert f"required for channel {channel}" in str(caught.value)


def test_printable_needs_no_address(order_payload: Any) -> None:
    assert schemas.parse_order(order_payload(channel="printable", recipient={"name": "R"}))


def test_other_channels_validate(order_payload: Any) -> None:
    payload = order_payload(lines=1)
    payload["lines"] += [
        {
            "channel": "sms",
            "amount": 1000,
            "marketplace": "CA",
            "recipient": {"name": "Sam", "phone": "+14155550123"},
        },
        {
            "channel": "physical",
            "amount": 5000,
            "marketplace": "JP",
            "recipient": {
                "name": "Kei",
                "address": {
                    "line1": "1-2-3 Shibuya",
                    "city": "Tokyo",
                    "postal_code": "150-0002",
                    "country": "JP",
                },
            },
        },
    ]
    order = schemas.parse_order(payload)
    assert [line.channel for line in order.lines] == ["email", "sms", "physical"]


@pytest.mark.parametrize("phone", ["4155550123", "+1415555012", "+1 415 555 0123", "+999123456789"])
def test_phone_must_be_e164(order_payload: Any, phone: str) -> None:
    payload = order_payload(channel="sms", recipient={"name": "R", "phone": phone})
    with pytest.raises(InvalidOrder) as caught:
        schemas.parse_order(payload)
    assert paths(caught.value) == {"lines.0.recipient.phone"}


@pytest.mark.parametrize("name", ["Eve\r\nBcc: victim@example.com", "Eve\nX", "Eve\x00", "Eve\u2028X"])
def test_no_header_injection_through_names(order_payload: Any, name: str) -> None:
    payload = order_payload()
    payload["purchaser"]["name"] = name
    payload["lines"][0]["recipient"]["name"] = name
    with pytest.raises(InvalidOrder) as caught:
        schemas.parse_order(payload)
    assert paths(caught.value) == {"purchaser.name", "lines.0.recipient.name"}


def test_message_keeps_line_breaks_but_no_other_controls(order_payload: Any) -> None:
    assert schemas.parse_order(order_payload(message="a\r\nb")).lines[0].message == "a\nb"
    with pytest.raises(InvalidOrder, match=r"lines\.0\.message"):
        schemas.parse_order(order_payload(message="a\x1bb"))


@pytest.mark.parametrize("amount", [0, -5, True, "100", 10**9, 9.0])
def test_amount_is_a_positive_integer_of_minor_units(order_payload: Any, amount: object) -> None:
    with pytest.raises(InvalidOrder, match=r"lines\.0\.amount"):
        schemas.parse_order(order_payload(amount=amount))


def test_send_at_reads_local_time(order_payload: Any) -> None:
    order = schemas.parse_order(
        order_payload(send_at={"local_time": "2030-03-10T02:30", "zone": "America/New_York"})
    )
    send_at = order.lines[0].send_at
    assert send_at is not None
    assert send_at.local_time == dt.datetime(2030, 3, 10, 2, 30)
    assert send_at.due_at() == dt.datetime(2030, 3, 10, 7, 30, tzinfo=dt.UTC)


@pytest.mark.parametrize("local_time", ["2030-02-30T09:00", "1999-01-01T09:00", "tomorrow", 5])
def test_send_at_refuses_nonsense(order_payload: Any, local_time: object) -> None:
    with pytest.raises(InvalidOrder, match=r"lines\.0\.send_at\.local_time"):
        schemas.parse_order(order_payload(send_at={"local_time": local_time, "zone": "UTC"}))


def test_empty_and_oversized_orders(order_payload: Any) -> None:
    payload = order_payload()
    payload["lines"] = []
    with pytest.raises(InvalidOrder, match="lines: List should have at least 1 item"):
        schemas.parse_order(payload)


def test_json_text_and_garbage() -> None:
    with pytest.raises(InvalidOrder, match="order: Invalid JSON"):
        schemas.parse_order("{not json")
    with pytest.raises(InvalidOrder, match="Input should be a valid dictionary"):
        schemas.parse_order(["a", "list"])


@pytest.mark.parametrize("key", ["", "has space", "x" * 201, 42, None])
def test_idempotency_key(key: object) -> None:
    with pytest.raises(InvalidOrder, match="idempotency_key"):
        schemas.parse_key(key)


def test_published_schema_is_the_generated_one() -> None:
    committed = schemas.SCHEMA_PATH.read_text(encoding="utf-8")
    assert committed == schemas.schema_text(), (
        "delivery/orders/order.schema.json is stale; regenerate it: "
        'python -c "import delivery.orders.schemas as s; s.write_schema()"'
    )


def test_published_schema_says_what_the_channel_needs() -> None:
    schema = json.loads(schemas.SCHEMA_PATH.read_text(encoding="utf-8"))
    rules = schema["$defs"]["OrderLine"]["allOf"]
    needs = {
        rule["if"]["properties"]["channel"]["const"]: rule["then"]["properties"]["recipient"]["required"]
        for rule in rules
    }
    assert needs == {
        "email": ["email"],
        "sms": ["phone"],
        "physical": ["address"],
    }
    assert schema["$defs"]["OrderLine"]["properties"]["marketplace"]["enum"] == [
        "US",
        "CA",
        "UK",
        "DE",
        "FR",
        "JP",
    ]


def test_leap_day_in_a_common_year_is_sent_on_the_28th(order_payload: Any) -> None:
    order = schemas.parse_order(
        order_payload(send_at={"local_time": "2027-02-29T09:00", "zone": "Europe/Berlin"})
    )
    send_at = order.lines[0].send_at
    assert send_at is not None
    assert send_at.local_time == dt.datetime(2027, 2, 28, 9, 0)
    assert send_at.due_at() == dt.datetime(2027, 2, 28, 8, 0, tzinfo=dt.UTC)
    leap = schemas.parse_order(order_payload(send_at={"local_time": "2028-02-29T09:00", "zone": "UTC"}))
    assert leap.lines[0].send_at is not None
    assert leap.lines[0].send_at.local_time == dt.datetime(2028, 2, 29, 9, 0)


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("jorg@bücher.de", "jorg@xn--bcher-kva.de"),
        ("Robin@Example.COM", "Robin@example.com"),
    ],
)
def test_internationalised_domains_are_kept_in_their_ascii_form(
    order_payload: Any, given: str, kept: str
) -> None:
    payload = order_payload()
    payload["purchaser"]["email"] = given
    payload["lines"][0]["recipient"]["email"] = given
    order = schemas.parse_order(payload)
    assert order.purchaser.email == kept
    assert order.lines[0].recipient.email == kept


def test_a_non_ascii_mailbox_name_is_refused_with_the_reason(order_payload: Any) -> None:
    payload = order_payload()
    payload["lines"][0]["recipient"]["email"] = "jörg@example.de"
    with pytest.raises(InvalidOrder) as caught:
        schemas.parse_order(payload)
    assert paths(caught.value) == {"lines.0.recipient.email"}
    assert "must be ASCII" in str(caught.value)
    assert "SMTPUTF8" in str(caught.value)


def test_designs_are_the_folders_under_templates(order_payload: Any) -> None:
    from delivery import designs

    assert designs.known() == ("birthday", "classic", "holiday", "thank_you")
    assert schemas.parse_order(order_payload(design="thank_you")).lines[0].design == "thank_you"
    with pytest.raises(InvalidOrder) as caught:
        schemas.parse_order(order_payload(design="neon"))
    assert "unknown design (known: birthday, classic, holiday, thank_you)" in str(caught.value)
    listed = schemas.order_json_schema()["$defs"]["OrderLine"]["properties"]["design"]
    assert sorted(listed["enum"]) == list(designs.known())


@pytest.mark.parametrize(("tag", "kept"), [("de-DE", "de_DE"), ("fr", "fr"), ("en_GB", "en_GB")])
def test_readers_locales(order_payload: Any, tag: str, kept: str) -> None:
    payload = order_payload()
    payload["purchaser"]["locale"] = tag
    payload["lines"][0]["recipient"]["locale"] = tag
    order = schemas.parse_order(payload)
    assert (order.purchaser.locale, order.lines[0].recipient.locale) == (kept, kept)
    payload["purchaser"]["locale"] = "klingon-xx"
    with pytest.raises(InvalidOrder, match=r"purchaser\.locale"):
        schemas.parse_order(payload)
