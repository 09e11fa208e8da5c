"""API keys: made and revoked from the command line, shown once, stored hashed, scoped;
every refusal is 401 or 403 and is logged without the key."""

from __future__ import annotations

import hashlib
import logging
from typing import Any

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import keys_app
from api.models import ApiKey

giftq = typer.Typer()
giftq.add_typer(keys_app, name="api-keys")


def _cli(*args: str) -> Any:
    return CliRunner().invoke(giftq, ["api-keys", *args])


def test_a_key_is_shown_once_and_kept_as_a_digest(api: Any) -> None:
    made = _cli("create", "--name", "shop-us", "--scope", "redeem", "--scope", "orders")
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().splitlines()[0]
    assert token.startswith("gq_")
    key_id, secret = token[3:15], token[16:]
    with api.Session() as s:
        row = s.scalars(select(ApiKey)).one()
    assert row.key_id == key_id
    assert row.secret_sha256 == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in repr(row.__dict__)
    assert row.scopes == "orders redeem"

    listed = _cli("list")
    assert key_id in listed.stdout and "shop-us" in listed.stdout
    assert secret not in listed.stdout

    answer = api.client.get(
        "/v1/balance?account=a&marketplace=US", headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 200


def test_unknown_scope_and_unknown_key_are_refused_by_name(api: Any) -> None:
    bad = _cli("create", "--name", "x", "--scope", "admin")
    assert bad.exit_code == 1
    assert "unknown scope admin" in bad.stderr
    missing = _cli("revoke", "0123456789ab")
    assert missing.exit_code == 1
    assert "no API key" in missing.stderr


def test_a_revoked_key_stops_working_at_once(api: Any) -> None:
    token = api.key("redeem")
    url = "/v1/balance?account=a&marketplace=US"
    assert api.client.get(url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    revoked = _cli("revoke", token[3:15])
    assert revoked.exit_code == 0, revoked.output
    answer = api.client.get(url, headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert answer.json()["type"] == "urn:giftq:problem:unauthorized"


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("Bearer nonsense", "malformed"),
        ("Bearer gq_0123456789ab_" + "A" * 43, "unknown"),
        ("Basic dXNlcjpwdw==", "missing"),
    ],
)
def test_missing_or_wrong_keys_get_401_and_a_log_line_without_the_key(
    api: Any, caplog: pytest.LogCaptureFixture, header: str | None, reason: str
) -> None:
    headers = {"Authorization": header} if header else {}
    with caplog.at_level(logging.WARNING, logger="api.auth"):
        answer = api.client.get("/v1/balance?account=a&marketplace=US", headers=headers)
    assert answer.status_code == 401
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert f"API key refused ({reason})" in caplog.text
    if header:
        assert header.split()[-1] not in caplog.text


def test_a_right_id_with_a_wrong_secret_is_refused_and_the_secret_not_logged(
    api: Any, caplog: pytest.LogCaptureFixture
) -> None:
    token = api.key("redeem")
    forged = token[:16] + ("B" if token[16] != "B" else "C") + token[17:]
    with caplog.at_level(logging.WARNING, logger="api.auth"):
        answer = api.client.get(
            "/v1/balance?account=a&marketplace=US", headers={"Authorization": f"Bearer {forged}"}
        )
    assert answer.status_code == 401
    assert f"API key refused (wrong secret): key {token[3:15]}" in caplog.text
    assert token[16:] not in caplog.text and forged[16:] not in caplog.text


def test_a_key_without_the_scope_gets_403(
    api: Any, caplog: pytest.LogCaptureFixture, order_body: Any
) -> None:
    token = api.key("redeem")
    with caplog.at_level(logging.WARNING, logger="api.auth"):
        answer = api.client.post("/v1/orders", json=order_body, headers=api.headers(token))
    assert answer.status_code == 403
    assert answer.json()["type"] == "urn:giftq:problem:forbidden"
    assert "needs an API key with the orders scope" in answer.json()["detail"]
    assert f"API key {token[3:15]} lacks scope orders" in caplog.text
    assert token[16:] not in caplog.text
    assert api.counts()["orders"] == 0
