"""Markup typed into the pages' code field, generated (hypothesis): the answer never echoes
it and gains no element from it (it says only that the code is not right)."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from tests.api.pages.conftest import field
from tests.markup import MARKUP, tags


@settings(
    max_examples=20,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(typed=MARKUP)
def test_markup_typed_as_a_code_is_neither_echoed_nor_rendered(api: Any, typed: str) -> None:
    def check(code: str) -> Any:
        page = api.client.get("/us/balance")
        return api.client.post(
            "/us/balance", data={"code": code, "csrf_token": field(page.text, "csrf_token")}
        )

    plain, answer = check("not a code"), check(typed)
    assert answer.status_code == plain.status_code == 422
    assert tags(answer.text) == tags(plain.text)
    assert typed not in answer.text or typed in plain.text  # (a lone quote is in every page)
