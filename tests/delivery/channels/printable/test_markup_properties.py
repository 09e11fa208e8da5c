"""Markup in names and messages, generated (hypothesis): the PDF draws it literally (the
text extracted from the page holds it as typed), and the layout checks still hold."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from delivery.channels.printable.render import render_with_boxes
from tests.markup import MARKUP


@settings(
    max_examples=6,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(recipient=MARKUP.filter(lambda n: len(n) <= 40), message=MARKUP)
def test_markup_prints_as_typed(pdf_tools: Any, new_card: Any, recipient: str, message: str) -> None:
    card = new_card(recipient_name=recipient, message=message)
    rendered = render_with_boxes(card)
    pdf_tools.check_layout(rendered.pdf, rendered.boxes, card)
    text = pdf_tools.words(pdf_tools.pdf_text(rendered.pdf))
    assert pdf_tools.words(recipient) in text
    assert pdf_tools.words(message) in text
