"""The hand-over link: the README's worked example, and every way a link is refused."""

from __future__ import annotations

import pytest

from api.errors import HandoverInvalid
from api.pages import handover
from tests.api.pages.conftest import SECRET

NOW = 1767225300  # five minutes before the example's expiry


def test_the_worked_example_of_the_readme() -> None:
    assert (
        handover.message("US", "customer-42", 1767225600) == b"giftq-handover-v1\nUS\n1767225600\ncustomer-42"
    )
    signature = "1a81dbe48ccc7d47d764a9dcef5b635e8825206a9de9624e71419dd399b45cda"
    assert handover.sign(SECRET.encode(), "US", "customer-42", 1767225600) == signature
    assert handover.link("https://gifts.example", SECRET.encode(), "US", "customer-42", 1767225600) == (
        f"https://gifts.example/us/redeem?account=customer-42&expires=1767225600&signature={signature}"
    )
    taken = handover.verify("US", "customer-42", "1767225600", signature.upper(), now=NOW)
    assert taken == handover.Handover("customer-42", "US", 1767225600)


@pytest.mark.parametrize(
    ("marketplace", "account", "expires", "signature", "why"),
    [
        ("US", "customer-42", "1767225600", None, "lacks"),
        ("US", "customer-43", "1767225600", "sig", "64 hex"),
        ("DE", "customer-42", "1767225600", "good", "does not match"),
        ("US", "customer-43", "1767225600", "good", "does not match"),
        ("US", "customer-42", "17672256OO", "good", "number of seconds"),
        ("US", "bad\naccount", "1767225600", "good", "ledger can hold"),
    ],
)
def test_a_link_that_was_not_signed_for_this_is_refused(
    marketplace: str, account: str, expires: str, signature: str | None, why: str
) -> None:
    good = handover.sign(SECRET.encode(), "US", "customer-42", 1767225600)
    given = good if signature == "good" else signature
    with pytest.raises(HandoverInvalid, match=why):
        handover.verify(marketplace, account, expires, given, now=NOW)


def test_expired_and_far_future_links_are_refused() -> None:
    key = SECRET.encode()
    with pytest.raises(HandoverInvalid, match="expired"):
        handover.verify("US", "a", str(NOW), handover.sign(key, "US", "a", NOW), now=NOW)
    far = NOW + 601
    with pytest.raises(HandoverInvalid, match="too far ahead"):
        handover.verify("US", "a", str(far), handover.sign(key, "US", "a", far), now=NOW)
