"""An order's request hash stays what it was in the release before held orders, card
origins and purchaser countries: an idempotency key placed then and retried after an
upgrade is the same request, not a conflict."""

from __future__ import annotations

import copy
from typing import Any

from delivery.orders import intake, schemas

PAYLOAD: dict[str, Any] = {
    "purchaser": {"name": "Ada Lovelace", "email": "ada@example.com"},
    "lines": [
        {
            "channel": "email",
            "amount": 2500,
            "marketplace": "US",
            "recipient": {"name": "Grace Hopper", "email": "grace@example.com"},
            "message": "Happy birthday",
        },
        {
            "channel": "sms",
            "amount": 1000,
            "marketplace": "UK",
            "recipient": {"name": "Joan Clarke", "phone": "+447911123456"},
        },
    ],
}
# request_hash(PAYLOAD) as the release before these fields computed it.
BEFORE = "b208325de295b956e9bb01f31c2e44b80666aeab717f173a899c5b3a073d1cac"


def _hash(payload: dict[str, Any]) -> str:
    return intake.request_hash(schemas.Order.model_validate(payload))


def test_an_order_using_no_new_field_hashes_as_in_the_release_before() -> None:
    assert _hash(PAYLOAD) == BEFORE


def test_new_fields_at_their_defaults_hash_as_absent_and_otherwise_change_the_request() -> None:
    explicit = copy.deepcopy(PAYLOAD)
    explicit["payment"] = "paid"
    explicit["review"] = False
    for line in explicit["lines"]:
        line["origin"] = "purchased"
    assert _hash(explicit) == BEFORE

    for change in (
        lambda p: p.update(payment="pending"),
        lambda p: p.update(review=True),
        lambda p: p["lines"][0].update(origin="promotional"),
        lambda p: p["purchaser"].update(country="GB"),
    ):
        changed = copy.deepcopy(PAYLOAD)
        change(changed)
        assert _hash(changed) != BEFORE
