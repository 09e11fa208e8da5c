"""X-Twilio-Signature, checked against the official ``twilio`` package's RequestValidator."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from delivery.channels.sms import compute_signature, verify_signature
from delivery.channels.sms.signature import signed_pairs

TOKEN = "12345"


class MultiDict:
    """Repeated form names, as Flask's MultiDict shows them to RequestValidator (getall)."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self.pairs = list(pairs)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(dict.fromkeys(name for name, _ in self.pairs))

    def __len__(self) -> int:
        return len(self.pairs)

    def getall(self, name: str) -> list[str]:
        return [value for key, value in self.pairs if key == name]


def test_twilio_documented_example() -> None:
    # The example in Twilio's security documentation and the twilio-python tests.
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    expected = RequestValidator(TOKEN).compute_signature(url, params)
    assert compute_signature(url, params, TOKEN) == expected
    assert verify_signature(url, params, expected, TOKEN)


names = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)
values = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=40)
urls = st.builds(
    "{}://{}{}/{}{}".format,
    st.sampled_from(["https", "http"]),
    st.sampled_from(["giftq.example", "gifts.example.com", "127.0.0.1", "localhost"]),
    st.sampled_from(["", ":8443", ":8000"]),
    st.text(alphabet="abcdefghij/_-ü", max_size=20),
    st.sampled_from(["", "?ref=17", "?ref=17&x=%C3%BC", "?a=1&a=2"]),
)


@settings(max_examples=400)
@given(url=urls, params=st.dictionaries(names, values, max_size=8), token=st.text(min_size=1, max_size=40))
def test_matches_request_validator_on_dicts(url: str, params: dict[str, str], token: str) -> None:
    reference = RequestValidator(token)
    signature = compute_signature(url, params, token)
    assert signature == reference.compute_signature(url, params)
    assert verify_signature(url, params, signature, token)
    assert reference.validate(url, params, signature)


@settings(max_examples=300)
@given(
    url=urls,
    pairs=st.lists(st.tuples(st.sampled_from(["To", "Body", "x", "é", "MediaUrl"]), values), max_size=10),
)
def test_matches_request_validator_with_repeated_names(url: str, pairs: list[tuple[str, str]]) -> None:
    reference = RequestValidator(TOKEN)
    signature = compute_signature(url, pairs, TOKEN)
    assert signature == reference.compute_signature(url, MultiDict(pairs))
    assert verify_signature(url, pairs, signature, TOKEN)
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    assert compute_signature(url, grouped, TOKEN) == signature


@settings(max_examples=200)
@given(url=urls, params=st.dictionaries(names, values, min_size=1, max_size=6), token=st.text(min_size=1))
def test_agrees_with_request_validator_about_forgeries(url: str, params: dict[str, str], token: str) -> None:
    reference = RequestValidator(token)
    genuine = reference.compute_signature(url, params)
    name = sorted(params)[0]
    tampered = {**params, name: params[name] + "1"}
    assert not verify_signature(url, tampered, genuine, token)
    assert not reference.validate(url, tampered, genuine)
    assert not verify_signature(url, params, genuine, token + "x")
    assert verify_signature(url, params, genuine, token)


@pytest.mark.parametrize(
    ("signed_url", "requested_url"),
    [
        ("https://gifts.example.com/sms/status?ref=1", "https://gifts.example.com:443/sms/status?ref=1"),
        ("https://gifts.example.com:443/sms/status?ref=1", "https://gifts.example.com/sms/status?ref=1"),
        ("http://127.0.0.1/sms/status", "http://127.0.0.1:80/sms/status"),
        ("http://127.0.0.1:8000/sms/status", "http://127.0.0.1:8000/sms/status"),
    ],
)
def test_the_port_may_or_may_not_have_been_signed(signed_url: str, requested_url: str) -> None:
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered"}
    signature = compute_signature(signed_url, params, TOKEN)
    assert verify_signature(requested_url, params, signature, TOKEN)
    assert RequestValidator(TOKEN).validate(requested_url, params, signature)


@pytest.mark.parametrize(
    ("url", "signature"),
    [
        ("https://gifts.example.com/sms/status?ref=2", None),  # a changed URL (another delivery)
        ("https://gifts.example.com/sms/status?ref=1", ""),
        ("https://gifts.example.com/sms/status?ref=1", "not base64 at all ✗"),
        ("https://evil.example/sms/status?ref=1", None),
    ],
)
def test_wrong_or_missing_signatures_fail(url: str, signature: str | None) -> None:
    params = {"MessageSid": "SM" + "a" * 32, "MessageStatus": "delivered"}
    good = compute_signature("https://gifts.example.com/sms/status?ref=1", params, TOKEN)
    assert not verify_signature(url, params, good if signature is None else signature, TOKEN)


def test_an_empty_token_verifies_nothing() -> None:
    assert not verify_signature("https://x.example/", {}, compute_signature("https://x.example/", {}, ""), "")


def test_signing_order() -> None:
    pairs = [("b", "2"), ("a", "z"), ("a", "y"), ("B", "1"), ("a", "y")]
    assert signed_pairs(pairs) == [("B", "1"), ("a", "y"), ("a", "z"), ("b", "2")]
