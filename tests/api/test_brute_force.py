"""Brute force of claim codes at the configured limits (not lowered for the test): guessing
through the redemption API and through the balance page locks the guesser out, the lockout
shows in /metrics, a locked-out guesser adds no more counts, and the right code is refused
too while the lockout lasts."""

from __future__ import annotations

from typing import Any

from giftq.settings import get_settings
from ledger.codes import text as code_text
from tests.api.pages.conftest import field
from tests.api.test_metrics import scrape

URN = "urn:giftq:problem:"


def unknown_codes(n: int) -> list[str]:
    """``n`` well-formed codes (right check character) that no card has: real guesses."""
    codes = []
    for i in range(n):
        body = (
            "".join(code_text.ALPHABET[(i >> shift) & 31] for shift in range(0, 20, 5)) + "ZZZZKQ7M" + "HJ2B"
        )
        codes.append(code_text.display(body + code_text.check_symbol(body)))
    return codes


def lockouts(api: Any) -> dict[str, float]:
    samples = scrape(api.client.get("/metrics").text)
    return {
        dict(labels)["scope"]: value for (name, labels), value in samples.items() if name == "giftq_lockouts"
    }


def test_guessing_codes_through_the_api_locks_the_client_out_and_shows_in_the_metrics(api: Any) -> None:
    limit = get_settings().redeem_max_failures_per_client
    token = api.key("redeem")
    good = api.issue(2500)[0]
    guesses = unknown_codes(limit + 5)

    def redeem(code: str, account: str) -> Any:
        body = {"code": code, "account": account, "marketplace": "US", "client_address": "203.0.113.66"}
        return api.client.post("/v1/redemptions", json=body, headers=api.headers(token))

    assert lockouts(api) == {"account": 0, "client": 0}
    # A fresh account name for each guess: only the per-client count can stop this guesser.
    answers = [redeem(code, f"victim-{i}") for i, code in enumerate(guesses)]
    assert [a.json()["type"] for a in answers[:limit]] == [URN + "code-not-valid"] * limit
    assert {(a.status_code, a.json()["type"]) for a in answers[limit:]} == {(429, URN + "too-many-attempts")}
    assert all(
        0 < int(a.headers["retry-after"]) <= get_settings().redeem_window_seconds for a in answers[limit:]
    )
    assert lockouts(api) == {"account": 0, "client": 1}
    # Once locked out, guesses are not even counted (one per account and one per client).
    assert api.counts()["failures"] == 2 * limit

    refused = redeem(good.code.reveal(), "victim-0")
    assert (refused.status_code, refused.json()["type"]) == (429, URN + "too-many-attempts")
    assert api.counts()["redemptions"] == 0
    answer = api.client.get(
        "/v1/balance", params={"account": "victim-0", "marketplace": "US"}, headers=api.headers(token)
    )
    assert answer.json()["amount"] == 0


def test_guessing_for_one_account_from_many_addresses_locks_the_account_out(api: Any) -> None:
    limit = get_settings().redeem_max_failures_per_account
    token = api.key("redeem")
    good = api.issue(2500)[0]

    def redeem(code: str, client: int) -> Any:
        body = {"code": code, "account": "target", "marketplace": "US", "client_address": f"192.0.2.{client}"}
        return api.client.post("/v1/redemptions", json=body, headers=api.headers(token))

    answers = [redeem(code, i + 1) for i, code in enumerate(unknown_codes(limit + 2))]
    assert [a.status_code for a in answers] == [422] * limit + [429] * 2
    assert lockouts(api) == {"account": 1, "client": 0}
    assert redeem(good.code.reveal(), 200).status_code == 429
    # Mistyped codes reveal nothing about real ones and never count: only guesses do.
    assert api.counts()["failures"] == 2 * limit


def test_guessing_on_the_balance_page_locks_the_client_out_and_shows_in_the_metrics(api: Any) -> None:
    limit = get_settings().redeem_max_failures_per_client
    good = api.issue(2500)[0]

    def check(code: str) -> Any:
        page = api.client.get("/us/balance")
        return api.client.post(
            "/us/balance", data={"code": code, "csrf_token": field(page.text, "csrf_token")}
        )

    answers = [check(code) for code in unknown_codes(limit + 3)]
    assert [a.status_code for a in answers] == [422] * limit + [429] * 3
    assert lockouts(api) == {"account": 0, "client": 1}
    assert api.counts()["failures"] == limit  # the page knows no account: the client only
    locked = check(good.code.reveal())
    assert locked.status_code == 429
    assert "$25.00" not in locked.text
    assert good.code.reveal() not in locked.text
