"""Claim codes never reach a URL, an access log line or an error body, and bodies that hold
codes are not logged: a run that redeems and fails to redeem, with every log captured."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from delivery.logs import configure_logging


def test_a_redeeming_run_logs_no_code_and_answers_none(api: Any, caplog: pytest.LogCaptureFixture) -> None:
    configure_logging(logging.DEBUG)
    token = api.key("redeem")
    good, other = (c.code.reveal() for c in api.issue(2500, 1000))
    mistyped = good[:-1] + ("A" if good[-1] != "A" else "B")
    wrong_market = api.issue(500, marketplace="DE")[0].code.reveal()
    answers = []
    with caplog.at_level(logging.DEBUG):
        for code in (good, good, mistyped, wrong_market, other.lower().replace("-", "")):
            body = {"code": code, "account": "dana", "marketplace": "US", "client_address": "192.0.2.44"}
            answers.append(api.client.post("/v1/redemptions", json=body, headers=api.headers(token)))
        # A code pasted where it does not belong: in a path and in a query string.
        answers.append(api.client.get(f"/v1/orders/{good}", headers={"Authorization": f"Bearer {token}"}))
        answers.append(api.client.get(f"/v1/balance?account={good}&marketplace=US&code={good}"))
    assert [a.status_code for a in answers] == [200, 409, 422, 422, 200, 403, 401]
    codes = {good, mistyped, wrong_market, other}
    variants = codes | {c.replace("-", "") for c in codes} | {c.lower().replace("-", "") for c in codes}
    for answer in answers:
        assert not any(v in answer.text for v in variants), answer.text
        assert not any(v in str(answer.request.url) for v in variants) or answer.status_code >= 400
    logged = "\n".join(
        h.format(r) for r in caplog.records for h in logging.getLogger().handlers[:1] if h.filter(r)
    )
    assert "POST /v1/redemptions 200" in caplog.text
    assert "POST /v1/redemptions 422" in caplog.text
    for variant in variants:
        assert variant not in caplog.text, variant
        assert variant not in logged, variant
