"""Redeeming into an account over HTTP (every refusal with its own problem type), the
per-client lockout, balances now and at an instant, history paged by cursor."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from giftq.settings import reset_settings

URN = "urn:giftq:problem:"


def _redeem(
    api: Any, token: str, code: str, account: str = "alice", marketplace: str = "US", **extra: Any
) -> Any:
    body = {"code": code, "account": account, "marketplace": marketplace, "client_address": "198.51.100.7"}
    body.update(extra)
    return api.client.post("/v1/redemptions", json=body, headers=api.headers(token))


def test_a_code_moves_into_the_balance_once(api: Any) -> None:
    token = api.key("redeem")
    card = api.issue(2500)[0]
    typed = card.code.reveal().lower().replace("-", " ")
    answer = _redeem(api, token, typed)
    assert answer.status_code == 200
    assert answer.json() | {"redeemed_at": None, "transaction_id": None} == {
        "card_id": card.card_id,
        "account": "alice",
        "marketplace": "US",
        "amount": 2500,
        "currency": "USD",
        "balance_after": 2500,
        "transaction_id": None,
        "redeemed_at": None,
    }
    again = _redeem(api, token, card.code.reveal())
    assert again.status_code == 409
    assert again.json()["type"] == URN + "already-redeemed"
    assert again.json()["to_this_account"] is True
    other = _redeem(api, token, card.code.reveal(), account="bob")
    assert other.json()["to_this_account"] is False


def test_every_refusal_has_its_own_type_and_never_echoes_the_code(api: Any) -> None:
    from ledger import void_card

    token = api.key("redeem")
    uk, inactive, voided = (
        api.issue(1000, marketplace="UK")[0],
        api.issue(1000, active=False)[0],
        api.issue(1000)[0],
    )
    with api.Session.begin() as s:
        void_card(s, voided.card_id, idempotency_key="void-1")
    good = api.issue(1000)[0].code.reveal()
    mistyped = good[:-1] + ("A" if good[-1] != "A" else "B")
    cases = {
        mistyped: ("code-mistyped", 422),
        "7K3M-Q9RT-ZX2B-PW4N" + "0": ("code-mistyped", 422),
        uk.code.reveal(): ("wrong-marketplace", 422),
        inactive.code.reveal(): ("card-not-active", 409),
        voided.code.reveal(): ("card-voided", 409),
    }
    for code, (slug, status) in cases.items():
        answer = _redeem(api, token, code)
        assert (answer.status_code, answer.json()["type"]) == (status, URN + slug), code
        assert answer.headers["content-type"] == "application/problem+json"
        assert code not in answer.text and code.replace("-", "") not in answer.text
    assert _redeem(api, token, uk.code.reveal()).json()["card_marketplace"] == "UK"


def test_a_well_formed_unknown_code_is_not_valid(api: Any) -> None:
    from ledger.codes import text as code_text

    token = api.key("redeem")
    body = "7K3MQ9RTZX2BPW4N"
    unknown = code_text.display(body + code_text.check_symbol(body))
    answer = _redeem(api, token, unknown)
    assert (answer.status_code, answer.json()["type"]) == (422, URN + "code-not-valid")
    assert api.counts()["failures"] == 2  # one for the account, one for the client


def _unknown_codes(n: int) -> list[str]:
    from ledger.codes import text as code_text

    codes = []
    for i in range(n):
        body = f"7K3MQ9RTZX2B{i:04d}".replace("0", "A").replace("1", "B")
        codes.append(code_text.display(body + code_text.check_symbol(body)))
    return codes


def test_a_client_locked_out_gets_429_with_retry_after_whatever_account_it_names(
    api: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIFTQ_REDEEM_MAX_FAILURES_PER_CLIENT", "3")
    reset_settings()
    token = api.key("redeem")
    for i, code in enumerate(_unknown_codes(3)):
        assert _redeem(api, token, code, account=f"guess-{i}").status_code == 422
    good = api.issue(1000)[0].code.reveal()
    locked = _redeem(api, token, good, account="someone-new")
    assert locked.status_code == 429
    assert locked.json()["type"] == URN + "too-many-attempts"
    assert 0 < int(locked.headers["retry-after"]) <= 900
    assert locked.json()["retry_after"] == int(locked.headers["retry-after"])
    # Another customer, at another address, is not locked out.
    other = _redeem(api, token, good, account="someone-new", client_address="198.51.100.8")
    assert other.status_code == 200


def test_ipv6_clients_are_counted_by_their_64(api: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_REDEEM_MAX_FAILURES_PER_CLIENT", "2")
    reset_settings()
    token = api.key("redeem")
    for i, code in enumerate(_unknown_codes(2)):
        _redeem(api, token, code, account=f"g{i}", client_address=f"2001:db8:1:2::{i + 1}")
    locked = _redeem(api, token, _unknown_codes(3)[2], account="g9", client_address="2001:db8:1:2:ffff::9")
    assert locked.status_code == 429


def test_the_client_address_is_required_and_checked(api: Any) -> None:
    token = api.key("redeem")
    body = {"code": "AAAA", "account": "a", "marketplace": "US"}
    missing = api.client.post("/v1/redemptions", json=body, headers=api.headers(token))
    assert missing.status_code == 422
    assert {"pointer": "#/client_address"}.items() <= missing.json()["errors"][0].items()
    wrong = api.client.post(
        "/v1/redemptions",
        json=body | {"client_address": "somewhere", "marketplace": "XX", "account": ""},
        headers=api.headers(token),
    )
    pointers = sorted(e["pointer"] for e in wrong.json()["errors"])
    assert pointers == ["#/account", "#/client_address", "#/marketplace"]
    assert api.counts()["failures"] == 0


def test_balance_now_and_at_an_instant(api: Any) -> None:
    token = api.key("redeem")
    before = dt.datetime.now(dt.UTC)
    _redeem(api, token, api.issue(2500)[0].code.reveal())
    headers = {"Authorization": f"Bearer {token}"}
    now = api.client.get("/v1/balance", params={"account": "alice", "marketplace": "US"}, headers=headers)
    assert now.json() == {
        "account": "alice",
        "marketplace": "US",
        "currency": "USD",
        "amount": 2500,
        "at": None,
    }
    earlier = api.client.get(
        "/v1/balance",
        params={"account": "alice", "marketplace": "US", "at": before.isoformat()},
        headers=headers,
    )
    assert earlier.json()["amount"] == 0
    naive = api.client.get(
        "/v1/balance",
        params={"account": "alice", "marketplace": "US", "at": "2026-01-01T00:00:00"},
        headers=headers,
    )
    assert naive.status_code == 422
    assert naive.json()["errors"][0]["parameter"] == "at"


def test_history_pages_by_cursor_with_a_running_balance(api: Any) -> None:
    token = api.key("redeem", "checkout")
    for amount in (1000, 2000, 3000):
        _redeem(api, token, api.issue(amount)[0].code.reveal())
    headers = {"Authorization": f"Bearer {token}"}
    params: dict[str, Any] = {"account": "alice", "marketplace": "US", "limit": 2}
    first = api.client.get("/v1/history", params=params, headers=headers).json()
    assert [(i["amount"], i["balance_after"]) for i in first["items"]] == [(3000, 6000), (2000, 3000)]
    second = api.client.get(
        "/v1/history", params=params | {"cursor": first["next_cursor"]}, headers=headers
    ).json()
    assert [(i["amount"], i["balance_after"]) for i in second["items"]] == [(1000, 1000)]
    assert second["next_cursor"] is None
    bad = api.client.get("/v1/history", params=params | {"cursor": "bm9wZQ"}, headers=headers)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["parameter"] == "cursor"
