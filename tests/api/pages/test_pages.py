"""The redeem and balance pages, in process: hand-over, CSRF, every answer in plain words,
headers, languages, and the lockout they share with the API."""

from __future__ import annotations

import re
from typing import Any

import pytest

from giftq.settings import reset_settings
from ledger import void_card
from tests.api.pages.conftest import field, handover_link


def _submit(api: Any, page: Any, code: str, path: str = "/us/redeem") -> Any:
    data = {"code": code, "csrf_token": field(page.text, "csrf_token")}
    if "attempt" in page.text:
        data["attempt"] = field(page.text, "attempt")
    return api.client.post(path, data=data)


def test_without_a_hand_over_the_page_says_how_to_sign_in(api: Any) -> None:
    page = api.client.get("/us/redeem")
    assert page.status_code == 200
    assert "sign in to your account at the United States store" in page.text
    assert 'href="https://shop.example/us/account/gift-cards"' in page.text
    assert "<form" not in page.text
    csp = page.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "form-action 'self'" in csp
    assert page.headers["cache-control"] == "no-store"


def test_a_refused_link_says_so_and_signs_no_one_in(api: Any) -> None:
    link = handover_link("customer-1").replace("customer-1", "customer-2")
    page = api.client.get(link, follow_redirects=False)
    assert page.status_code == 400
    assert "This sign-in link has expired or is not valid" in page.text
    assert "<form" not in api.client.get("/us/redeem").text
    other_store = api.client.get(
        handover_link("customer-1", "US").replace("/us/", "/de/"), follow_redirects=False
    )
    assert other_store.status_code == 400


def test_a_hand_over_signs_in_and_leaves_the_address_bar(api: Any, signed_in: Any) -> None:
    first = api.client.get(handover_link("customer-1"), follow_redirects=False)
    assert first.headers["location"] == "/us/redeem"
    page = signed_in("customer-1")
    assert page.status_code == 200
    assert "Your balance: $0.00" in page.text
    assert '<label for="code">Gift card code</label>' in page.text
    assert 'aria-describedby="code-hint"' in page.text


def test_a_code_is_added_and_the_new_balance_shown(api: Any, signed_in: Any) -> None:
    page = signed_in("customer-1")
    code = api.issue(2500)[0].code.reveal()
    done = _submit(api, page, code.lower())
    assert done.status_code == 200
    assert "We added $25.00 to your balance." in done.text
    assert "Your balance is now $25.00." in done.text
    assert code not in done.text
    assert 'data-outcome="done"' in done.text


def test_a_post_without_the_form_token_is_refused(api: Any, signed_in: Any) -> None:
    signed_in("customer-1")
    code = api.issue(2500)[0].code.reveal()
    answer = api.client.post("/us/redeem", data={"code": code, "csrf_token": "forged"})
    assert answer.status_code == 403
    assert "This form has expired" in answer.text
    assert api.counts()["redemptions"] == 0


def _error(page: Any) -> str:
    found = re.search(r'<p class="error" id="code-error">(.*?)</p>', page.text, re.S)
    assert found, page.text
    assert 'aria-describedby="code-error code-hint"' in page.text
    assert 'aria-invalid="true"' in page.text
    return re.sub(r"<[^>]+>", "", found.group(1))


def test_each_refusal_in_plain_words_and_never_the_code(api: Any, signed_in: Any) -> None:
    page = signed_in("customer-1")
    mine, theirs = (card.code.reveal() for card in api.issue(1000, 1000))
    uk = api.issue(1000, marketplace="UK")[0].code.reveal()
    inactive = api.issue(1000, active=False)[0].code.reveal()
    voided_card = api.issue(1000)[0]
    with api.Session.begin() as s:
        void_card(s, voided_card.card_id, idempotency_key="void-page")
    assert _submit(api, page, mine).status_code == 200
    from ledger import redeem

    with api.Session.begin() as s:
        redeem(s, theirs, account="someone-else", marketplace="US", idempotency_key="elsewhere")
    cases = [
        (mine[:-1] + ("A" if mine[-1] != "A" else "B"), "Check each character"),
        (mine, "already added to your balance"),
        (theirs, "already redeemed on another account"),
        (uk, "for our United Kingdom store"),
        (inactive, "not active yet"),
        (voided_card.code.reveal(), "was cancelled"),
        ("", "Enter the code from your gift card"),
    ]
    for code, words in cases:
        page = api.client.get("/us/redeem")
        answer = _submit(api, page, code)
        assert answer.status_code == 422, (code, answer.status_code)
        assert words in _error(answer)
        if code:
            assert code not in answer.text and code.replace("-", "") not in answer.text


def test_too_many_attempts_says_when_to_try_again(
    api: Any, signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.codes import text as code_text

    monkeypatch.setenv("GIFTQ_REDEEM_MAX_FAILURES_PER_ACCOUNT", "2")
    reset_settings()
    signed_in("customer-1")
    for i in range(3):
        body = f"7K3MQ9RTZX2BPW{i}N".replace("0", "A").replace("1", "B")
        answer = _submit(
            api, api.client.get("/us/redeem"), code_text.display(body + code_text.check_symbol(body))
        )
    assert answer.status_code == 429
    assert 0 < int(answer.headers["retry-after"]) <= 900
    assert "Too many attempts. For your security, try again in 15 minutes." in _error(answer)


def test_pages_speak_the_marketplace_language(api: Any, signed_in: Any) -> None:
    page = signed_in("kunde-7", "DE")
    assert '<html lang="de">' in page.text
    assert "Ihr Guthaben: 0,00\xa0€" in page.text
    code = api.issue(2500, marketplace="DE")[0].code.reveal()
    done = _submit(api, page, code, "/de/redeem")
    assert "Wir haben Ihrem Guthaben 25,00\xa0€ gutgeschrieben." in done.text
    french = api.client.get("/fr/balance")
    assert "Vérifier le solde d\u2019une carte cadeau" in french.text
    japan = api.client.get("/jp/balance")
    assert '<html lang="en">' in japan.text


def test_an_unknown_marketplace_is_a_404_page(api: Any) -> None:
    page = api.client.get("/xx/redeem")
    assert page.status_code == 404
    assert "Page not found" in page.text


def test_the_balance_page_tells_no_more_than_a_redemption_would(api: Any) -> None:
    active, redeemed = api.issue(2500, 4000)
    from ledger import redeem

    with api.Session.begin() as s:
        redeem(s, redeemed.code.reveal(), account="x", marketplace="US", idempotency_key="bal-1")
    page = api.client.get("/us/balance")
    shown = _submit(api, page, active.code.reveal(), "/us/balance")
    assert "This gift card holds $25.00 and has not been redeemed yet." in shown.text
    used = _submit(api, api.client.get("/us/balance"), redeemed.code.reveal(), "/us/balance")
    assert "This gift card has already been redeemed." in used.text
    assert "$40.00" not in used.text
    assert active.code.reveal() not in shown.text
    assert api.counts()["redemptions"] == 1


def test_balance_checks_and_redemptions_share_the_client_lockout(
    api: Any, signed_in: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.codes import text as code_text

    monkeypatch.setenv("GIFTQ_REDEEM_MAX_FAILURES_PER_CLIENT", "3")
    reset_settings()
    for i in range(3):
        body = f"7K3MQ9RTZX2BPW{i}N".replace("0", "A").replace("1", "B")
        answer = _submit(
            api,
            api.client.get("/us/balance"),
            code_text.display(body + code_text.check_symbol(body)),
            "/us/balance",
        )
        assert answer.status_code == 422
    good = api.issue(2500)[0].code.reveal()
    locked = _submit(api, api.client.get("/us/balance"), good, "/us/balance")
    assert locked.status_code == 429
    assert "$25.00" not in locked.text
    page = signed_in("customer-9")
    assert _submit(api, page, good).status_code == 429
