"""Markup in the sender's name, generated (hypothesis): a text message is plain text, so the
name arrives exactly as typed (or its beginning, where it is shortened to save a segment),
neither escaped nor interpreted."""

from __future__ import annotations

from hypothesis import given, settings

from delivery.channels.sms.render import MIN_NAME_CHARS, GiftText, render_text
from ledger.codes import text as code_text
from tests.markup import MARKUP

CODE = code_text.display(code_text.generate())


@settings(max_examples=40, deadline=None, database=None)
@given(name=MARKUP.filter(lambda n: len(n) <= 40))
def test_markup_in_the_senders_name_arrives_as_typed(name: str) -> None:
    rendered = render_text(GiftText(name, 2500, "US", CODE))
    shown = name if not rendered.shortened else name[:MIN_NAME_CHARS].rstrip(" -.,")
    assert shown in rendered.body
    for entity in ("&lt;", "&gt;", "&amp;", "&#"):
        assert rendered.body.count(entity) <= name.count(entity)
