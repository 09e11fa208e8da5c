"""A purchaser name with bidirectional controls must not turn a subject line around.

``"Eve\\u202egnp.exe"`` shows as "Eveexe.png": an override reverses everything after it in
the line, the rest of the subject included. Refused at intake with an error naming the
field and the character; and if one ever arrives (an old row, another caller), the
templates and the header builder strip it.
"""

from __future__ import annotations

import copy
import email
import email.policy
from types import SimpleNamespace
from typing import Any

import pytest

from delivery.channels.email import RenderedEmail, build_message, render_email
from delivery.errors import InvalidOrder
from delivery.orders.schemas import parse_order
from giftq.text import BIDI_CONTROLS, BIDI_MARKS, find_control

HOSTILE = ["Eve\u202egnp.exe", "Eve\u2066\u202eX\u2069", "Eve\u200f", "Eve\u061c", "Eve\u202a"]
EVERY_BIDI = BIDI_CONTROLS + BIDI_MARKS
ORDER: dict[str, Any] = {
    "purchaser": {"name": "Pat Buyer", "email": "pat@example.com"},
    "reference": "SHOP-1",
    "lines": [
        {
            "channel": "email",
            "amount": 2500,
            "marketplace": "US",
            "message": "Happy birthday!",
            "recipient": {"name": "Robin", "email": "robin@example.com"},
        }
    ],
}


def order_with(path: tuple[str | int, ...], value: str) -> dict[str, Any]:
    order = copy.deepcopy(ORDER)
    target: Any = order
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return order


@pytest.mark.parametrize("name", HOSTILE)
@pytest.mark.parametrize(
    "path",
    [("purchaser", "name"), ("lines", 0, "recipient", "name"), ("reference",)],
    ids=["purchaser", "recipient", "reference"],
)
def test_intake_refuses_bidi_controls_where_text_reaches_a_header(
    path: tuple[str | int, ...], name: str
) -> None:
    with pytest.raises(InvalidOrder) as refused:
        parse_order(order_with(path, name))
    (error,) = refused.value.errors
    assert error.path == ".".join(str(p) for p in path)
    char = find_control(name)
    assert char is not None
    assert f"U+{ord(char):04X}" in error.message
    assert "bidirectional" in error.message


def test_a_personal_message_may_hold_marks_but_no_override() -> None:
    hebrew = "יום הולדת שמח!\u200f\nשרה"
    parsed = parse_order(order_with(("lines", 0, "message"), hebrew))
    assert parsed.lines[0].message == hebrew
    with pytest.raises(InvalidOrder, match=r"lines\.0\.message"):
        parse_order(order_with(("lines", 0, "message"), "Happy \u202eyadhtrib"))


@pytest.mark.parametrize("name", HOSTILE)
def test_the_subject_and_headers_lose_them_if_one_arrives(samples: SimpleNamespace, name: str) -> None:
    rendered = render_email(samples.gift(sender_name=name, recipient_name=name))
    assert not any(c in rendered.subject for c in EVERY_BIDI)
    assert rendered.subject.startswith("Eve")
    assert rendered.subject.endswith("sent you a $25.00 gift card")
    message = email.message_from_bytes(
        build_message(rendered, to_name=name, to_addr="zoe@example.com"), policy=email.policy.default
    )
    assert not any(c in str(message["Subject"]) for c in EVERY_BIDI)
    assert not any(c in message["To"].addresses[0].display_name for c in EVERY_BIDI)
    # Nor do the bodies show the sender's name with its override.
    assert "Eve\u202e" not in rendered.text + rendered.html


def test_the_header_builder_strips_them_from_any_subject(samples: SimpleNamespace) -> None:
    rendered = render_email(samples.gift())
    forged = RenderedEmail(
        subject="Invoice \u202efdp.exe\u202c for you", text=rendered.text, html=rendered.html
    )
    message = email.message_from_bytes(
        build_message(forged, to_name="Zo\u202ee", to_addr="zoe@example.com"), policy=email.policy.default
    )
    assert str(message["Subject"]) == "Invoice fdp.exe for you"
    assert message["To"].addresses[0].display_name == "Zoe"
