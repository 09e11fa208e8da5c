"""Bad order payloads, generated (hypothesis), at the Python door and the HTTP door: each is
refused with a typed error naming the bad field, and no table gains a row.

A payload is a valid order with one field spoiled: overlong, control and bidirectional
characters and CRLF (header injection) in names and references, controls in the message,
amounts at zero, below and past :data:`delivery.orders.schemas.MAX_AMOUNT` or of the
wrong type, unknown marketplaces, designs, channels and zones, addresses and phone numbers
that are not. The limits come from the code (the published order schema), never from
constants here; the values right at each limit are accepted.
"""

from __future__ import annotations

import copy
import re
import zoneinfo
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from delivery import designs, place_order
from delivery.errors import InvalidOrder
from delivery.models import Channel
from delivery.orders import schemas
from giftq.text import BIDI_CONTROLS, BIDI_MARKS, LINE_SEPARATORS
from ledger.limits import limits_for
from ledger.marketplaces import MARKETPLACES
from tests.api.conftest import BASE_ORDER
from tests.conftest import table_counts

SETTINGS = settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
SCHEMA = schemas.order_json_schema()


def max_length(model: str, field: str) -> int:
    """A string field's limit as the published order schema states it."""
    root = SCHEMA if model == "Order" else SCHEMA["$defs"][model]
    prop = root["properties"][field]
    for option in prop.get("anyOf", [prop]):
        if "maxLength" in option:
            return int(option["maxLength"])
    raise AssertionError(f"{model}.{field} has no maxLength")


NAME_MAX = max_length("Purchaser", "name")
REFERENCE_MAX = max_length("Order", "reference")
MESSAGE_MAX = max_length("OrderLine", "message")

WORDS = st.text(alphabet="abcdefghijklmnopqrstuvwxyzÄÖÜßéçñ", min_size=1, max_size=12)
ONE_LINE_BAD = st.sampled_from(
    "\x00\x07\t\n\r\x1b\x7f\x85\x9b" + LINE_SEPARATORS + BIDI_CONTROLS + BIDI_MARKS
)
PARAGRAPH_BAD = st.sampled_from("\x00\x08\x0b\x0c\x0e\x1f\x7f\x84\x86\x9f" + BIDI_CONTROLS)


def inside(bad: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """Text with ``bad`` between two words (leading and trailing whitespace is trimmed)."""
    return st.tuples(WORDS, bad, WORDS).map("".join)


def overlong(limit: int) -> st.SearchStrategy[str]:
    return st.integers(limit + 1, limit + 40).map(lambda n: ("Gift card " * (n // 10 + 1))[: n - 1] + "x")


CRLF = st.sampled_from(["\r\n", "\n", "\r", "\r\n\r\n"])
HEADER_INJECTION = st.tuples(WORDS, CRLF, st.sampled_from(["Bcc: x@evil.example", "Subject: hi"])).map(
    "".join
)
BAD_NAME = st.one_of(overlong(NAME_MAX), inside(ONE_LINE_BAD), HEADER_INJECTION)
E164 = re.compile(r"\+[1-9][0-9]{6,14}")


def not_in(values: Any) -> st.SearchStrategy[str]:
    return st.text(max_size=40).filter(lambda v: v not in values)


def _set(order: dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    node: Any = order
    for part in parents:
        node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
    node[last] = value


def _sms(order: dict[str, Any]) -> None:
    order["lines"][0]["channel"] = "sms"
    order["lines"][0]["recipient"] = {"name": "Robin", "phone": "+14155550123"}


def _scheduled(order: dict[str, Any]) -> None:
    order["lines"][0]["send_at"] = {"local_time": "2030-06-01T09:00", "zone": "Europe/Berlin"}


SPOILED = st.one_of(
    st.tuples(st.sampled_from(["purchaser.name", "lines.0.recipient.name"]), BAD_NAME),
    st.tuples(
        st.just("reference"), st.one_of(overlong(REFERENCE_MAX), inside(ONE_LINE_BAD), HEADER_INJECTION)
    ),
    st.tuples(st.just("lines.0.message"), st.one_of(overlong(MESSAGE_MAX), inside(PARAGRAPH_BAD))),
    st.tuples(
        st.just("lines.0.amount"),
        st.one_of(
            st.integers(max_value=0),
            st.integers(min_value=schemas.MAX_AMOUNT + 1),
            # Past the marketplace's ceiling (US: 2,000.00 USD), within the schema's.
            st.integers(min_value=(limits_for("US").max_card or 0) + 1, max_value=schemas.MAX_AMOUNT),
            st.floats(allow_nan=False, allow_infinity=False),
            st.text(max_size=10),
            st.booleans(),
            st.none(),
        ),
    ),
    st.tuples(st.just("lines.0.marketplace"), not_in(MARKETPLACES)),
    st.tuples(st.just("lines.0.design"), not_in(designs.known())),
    st.tuples(st.just("lines.0.channel"), not_in({str(c) for c in Channel})),
    st.tuples(
        st.sampled_from(["purchaser.email", "lines.0.recipient.email"]),
        st.one_of(
            st.text(max_size=40).filter(lambda v: "@" not in v),
            st.tuples(st.just("robin@example.com"), CRLF, st.just("Bcc: x@evil.example")).map("".join),
            st.sampled_from(["robin@", "@example.com", "robin@@example.com", "rob in@example.com"]),
        ),
    ),
    st.tuples(
        st.just("lines.0.recipient.phone"),
        st.one_of(
            st.text(max_size=20).filter(lambda v: not E164.fullmatch(v)),
            st.sampled_from(["+1 415 555 0123", "004915112345678", "+0123456789", "+1415555012345678"]),
        ),
    ),
    st.tuples(st.just("lines.0.send_at.zone"), not_in(zoneinfo.available_timezones())),
    st.tuples(
        st.just("lines.0.send_at.local_time"),
        st.one_of(
            st.sampled_from(
                ["2030-02-30T09:00", "2030-06-01T25:00", "2030-06-01T09:00+02:00", "1999-12-31T09:00"]
            ),
            st.text(max_size=20),
        ),
    ),
)


def spoil(path: str, value: Any) -> dict[str, Any]:
    order = copy.deepcopy(BASE_ORDER)
    if path == "lines.0.recipient.phone":
        _sms(order)
    if path.startswith("lines.0.send_at"):
        _scheduled(order)
    _set(order, path, value)
    return order


def every_table(api: Any) -> dict[str, int]:
    return table_counts(api.Session)


@SETTINGS
@given(spoiled=SPOILED)
def test_a_spoiled_order_is_refused_at_the_python_door_naming_the_field(
    api: Any, spoiled: tuple[str, Any]
) -> None:
    path, value = spoiled
    before = every_table(api)
    with pytest.raises(InvalidOrder) as refused:
        place_order(spoil(path, value), idempotency_key="spoiled-1")
    paths = [e.path for e in refused.value.errors]
    assert f"order.{path}" in paths, (value, paths)
    assert all(e.message for e in refused.value.errors)
    assert every_table(api) == before


@SETTINGS
@given(spoiled=SPOILED)
def test_a_spoiled_order_is_refused_at_the_http_door_naming_the_field(
    api: Any, spoiled: tuple[str, Any]
) -> None:
    path, value = spoiled
    token = api.key("orders")
    before = every_table(api)
    answer = api.client.post("/v1/orders", json=spoil(path, value), headers=api.headers(token))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["type"] == "urn:giftq:problem:validation"
    pointer = "#/" + path.replace(".", "/")
    assert pointer in [e.get("pointer") for e in problem["errors"]], (value, problem["errors"])
    assert every_table(api) == before


def _us_max_card() -> int:
    ceiling = limits_for(BASE_ORDER["lines"][0]["marketplace"]).max_card
    assert ceiling is not None and ceiling < schemas.MAX_AMOUNT
    return ceiling


def test_every_limit_holds_its_last_value_and_refuses_the_next(api: Any) -> None:
    at_limit = {
        "purchaser.name": "n" * NAME_MAX,
        "lines.0.recipient.name": "n" * NAME_MAX,
        "reference": "r" * REFERENCE_MAX,
        "lines.0.message": "m" * MESSAGE_MAX,
        # The marketplace's own ceiling, below the schema's (schemas.MAX_AMOUNT).
        "lines.0.amount": _us_max_card(),
    }
    past = {path: value + 1 if isinstance(value, int) else value + "x" for path, value in at_limit.items()}
    for i, (path, value) in enumerate(at_limit.items()):
        assert place_order(spoil(path, value), idempotency_key=f"limit-{i}").created, path
    placed = every_table(api)
    for path, value in past.items():
        with pytest.raises(InvalidOrder) as refused:
            place_order(spoil(path, value), idempotency_key="past-limit")
        assert [e.path for e in refused.value.errors] == [f"order.{path}"]
    lines = [copy.deepcopy(BASE_ORDER["lines"][0])] * (schemas.MAX_LINES + 1)
    with pytest.raises(InvalidOrder) as refused:
        place_order({**BASE_ORDER, "lines": lines}, idempotency_key="too-many-lines")
    assert [e.path for e in refused.value.errors] == ["order.lines"]
    assert every_table(api) == placed
