"""Bad provider callbacks, generated (hypothesis), through the app: text-message status
reports with wrong signatures or spoiled fields, and fulfilment reports with spoiled rows or
bodies of any shape. Each is refused with its problem (403 or 401 for the signature, 422
naming the field or the row otherwise), never a 500, and no table changes.
"""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery.channels.physical.manifest import item_ref
from delivery.channels.sms.signature import SIGNATURE_HEADER, compute_signature
from delivery.models import Delivery
from tests.api import test_fulfilment_callbacks as fulfilment_callbacks
from tests.api import test_sms_callbacks as sms_callbacks
from tests.conftest import table_counts

# The fixtures of those tests (a text gift sent, a physical card with the vendor), shared.
sent_text = sms_callbacks.sent_text
shipped_card = fulfilment_callbacks.shipped_card
ACCOUNT, PUBLIC, SID, TOKEN = (
    sms_callbacks.ACCOUNT,
    sms_callbacks.PUBLIC,
    sms_callbacks.SID,
    sms_callbacks.TOKEN,
)
post_report = fulfilment_callbacks.post

SETTINGS = settings(
    max_examples=15,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
URN = "urn:giftq:problem:"
FORM_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | FORM_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(FORM_TEXT, inner, max_size=4),
    max_leaves=8,
)


def _status(api: Any, delivery_id: int) -> str:
    with api.Session() as s:
        return str(s.get_one(Delivery, delivery_id).status)


# --- text-message status reports ----------------------------------------------------------


def _sms_post(api: Any, delivery_id: int, form: dict[str, str], signature: str) -> Any:
    return api.client.post(f"/sms/status?ref={delivery_id}", data=form, headers={SIGNATURE_HEADER: signature})


def _valid_form() -> dict[str, str]:
    return {"MessageSid": SID, "MessageStatus": "delivered", "AccountSid": ACCOUNT}


@SETTINGS
@given(
    extra=st.dictionaries(
        st.sampled_from(["MessageStatus", "ErrorCode", "SmsStatus", "To"]), FORM_TEXT, max_size=2
    ),
    signature=st.one_of(
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=40),
        st.binary(min_size=20, max_size=32).map(lambda b: b.hex()),
    ),
)
def test_a_status_report_without_the_providers_signature_is_refused(
    api: Any, sent_text: int, extra: dict[str, str], signature: str
) -> None:
    before = table_counts(api.Session)
    answer = _sms_post(api, sent_text, _valid_form() | extra, signature)
    assert (answer.status_code, answer.json()["type"]) == (403, URN + "forbidden")
    assert _status(api, sent_text) == "sent"
    assert table_counts(api.Session) == before


SPOILED_SMS = st.one_of(
    st.tuples(
        st.sampled_from(["MessageSid"]),
        FORM_TEXT.filter(lambda v: not re.fullmatch(r"(SM|MM)[0-9a-f]{32}", v)),
    ),
    st.tuples(
        st.just("MessageStatus"),
        FORM_TEXT.filter(
            lambda v: (
                v
                not in {
                    "accepted",
                    "scheduled",
                    "queued",
                    "sending",
                    "sent",
                    "delivered",
                    "undelivered",
                    "failed",
                    "read",
                    "partially_delivered",
                    "canceled",
                    "receiving",
                    "received",
                    "",
                }
            )
        ),
    ),
    st.tuples(
        st.just("ErrorCode"), FORM_TEXT.filter(lambda v: v != "" and not (v.isdigit() and len(v) <= 6))
    ),
    st.tuples(st.just("AccountSid"), FORM_TEXT.filter(lambda v: v != ACCOUNT)),
)


@SETTINGS
@given(spoiled=SPOILED_SMS)
def test_a_signed_status_report_with_a_bad_field_is_refused_naming_it(
    api: Any, sent_text: int, spoiled: tuple[str, str]
) -> None:
    name, value = spoiled
    form = _valid_form() | {name: value}
    signature = compute_signature(f"{PUBLIC}/sms/status?ref={sent_text}", list(form.items()), TOKEN)
    before = table_counts(api.Session)
    answer = _sms_post(api, sent_text, form, signature)
    assert (answer.status_code, answer.json()["type"]) == (422, URN + "validation"), answer.text
    assert f"{name}:" in answer.json()["detail"]
    assert _status(api, sent_text) == "sent"
    assert table_counts(api.Session) == before


# --- fulfilment reports -------------------------------------------------------------------

TRACKING = re.compile(r"[A-Za-z0-9][A-Za-z0-9 -]{0,63}")
CONTROL = st.sampled_from("\x00\x07\t\n\r\x1b\x7f\x85\u2028\u2029")
SPOILED_ROW = st.one_of(
    st.tuples(
        st.just("event"), FORM_TEXT.filter(lambda v: v.strip().lower() not in {"shipped", "lost", "damaged"})
    ),
    st.tuples(
        st.just("carrier"),
        st.one_of(st.just("x" * 41), st.tuples(st.just("UPS"), CONTROL, st.just("Ground")).map("".join)),
    ),
    st.tuples(st.just("tracking_number"), FORM_TEXT.filter(lambda v: not TRACKING.fullmatch(v.strip()))),
    st.tuples(
        st.just("tracking_url"),
        FORM_TEXT.filter(lambda v: v.strip() and not v.strip().startswith("https://"))
        | st.just("https://track.example/a b"),
    ),
    st.tuples(st.just("item_ref"), FORM_TEXT),
    st.tuples(
        st.text(min_size=1, max_size=10).filter(
            lambda k: k not in {"item_ref", "event", "carrier", "tracking_number", "tracking_url", "detail"}
        ),
        FORM_TEXT,
    ),
    st.tuples(
        st.sampled_from(["event", "carrier", "detail"]),
        JSON.filter(lambda v: v is not None and not isinstance(v, str)),
    ),
)


def _fulfilment_unchanged(api: Any, delivery_id: int, before: dict[str, int]) -> None:
    assert _status(api, delivery_id) == "sent"
    assert table_counts(api.Session) == before


@SETTINGS
@given(spoiled=SPOILED_ROW)
def test_a_signed_fulfilment_report_with_a_bad_row_is_refused_naming_the_field(
    api: Any, shipped_card: int, spoiled: tuple[str, Any]
) -> None:
    name, value = spoiled
    row = {
        "item_ref": item_ref(shipped_card),
        "event": "shipped",
        "carrier": "UPS",
        "tracking_number": "1Z999",
    }
    row[name] = value
    before = table_counts(api.Session)
    answer = post_report(api, json.dumps({"reports": [row]}).encode())
    assert (answer.status_code, answer.json()["type"]) == (422, URN + "validation"), answer.text
    (problem,) = answer.json()["rows"]
    assert problem["row"] == 1
    assert name in problem["reason"], problem
    _fulfilment_unchanged(api, shipped_card, before)


@SETTINGS
@given(body=st.one_of(JSON, st.binary(max_size=60)))
def test_a_signed_fulfilment_body_of_any_other_shape_is_refused(
    api: Any, shipped_card: int, body: Any
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    before = table_counts(api.Session)
    answer = post_report(api, raw)
    assert (answer.status_code, answer.json()["type"]) == (422, URN + "validation"), answer.text
    _fulfilment_unchanged(api, shipped_card, before)
