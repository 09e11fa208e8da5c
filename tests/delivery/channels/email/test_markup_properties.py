"""Markup in names and messages, generated (hypothesis): the HTML part adds no element of
it and shows it as typed; the plain text part and the subject carry it unescaped."""

from __future__ import annotations

from html import unescape
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings

from delivery.channels.email import render_email
from tests.markup import MARKUP, tags, words


@settings(
    max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(name=MARKUP, message=MARKUP)
def test_markup_in_a_gift_is_shown_as_typed_and_adds_no_element(
    samples: SimpleNamespace, name: str, message: str
) -> None:
    plain = render_email(samples.gift(sender_name="Pat", message="Hello"))
    rendered = render_email(samples.gift(sender_name=name, message=message))
    assert tags(rendered.html) == tags(plain.html)
    shown = words(unescape(rendered.html))
    assert words(message) in shown and words(name) in shown
    assert words(message) in words(rendered.text)
    assert rendered.subject.startswith(words(name))
