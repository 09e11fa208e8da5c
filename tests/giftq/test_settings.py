from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import get_origin

import pytest

from giftq.settings import Settings, SettingsError, get_settings, reset_settings


def _clear_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GIFTQ_CODE_PEPPER")
    monkeypatch.delenv("GIFTQ_CODE_KEYS")
    reset_settings()


def test_production_refuses_to_start_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    _clear_secrets(monkeypatch)
    monkeypatch.setenv("GIFTQ_ENV", "production")
    monkeypatch.setenv("GIFTQ_DATABASE_URL", "postgresql://db/giftq")
    with pytest.raises(SettingsError, match="GIFTQ_CODE_PEPPER, GIFTQ_CODE_KEYS"):
        Settings()


def test_production_needs_a_database_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_ENV", "production")
    with pytest.raises(SettingsError, match="GIFTQ_DATABASE_URL"):
        Settings()


def test_development_generates_secrets_once_and_warns(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    _clear_secrets(monkeypatch)
    monkeypatch.setenv("GIFTQ_ENV", "development")
    monkeypatch.setenv("GIFTQ_DATA_DIR", str(tmp_path / "data"))
    reset_settings()
    with caplog.at_level(logging.WARNING, logger="giftq.settings"):
        pepper = get_settings().pepper()
        keys = get_settings().code_keyring()
    assert len(pepper) == 32
    assert [len(k) for k in keys.values()] == [32]
    assert "generated development secrets" in caplog.text
    stored = json.loads((tmp_path / "data" / "secrets.json").read_text())
    assert base64.b64decode(stored["code_pepper"]) == pepper
    assert (tmp_path / "data" / "secrets.json").stat().st_mode & 0o077 == 0

    # A restart reads the same secrets back (codes sealed before stay readable), silently.
    caplog.clear()
    reset_settings()
    with caplog.at_level(logging.WARNING, logger="giftq.settings"):
        assert get_settings().pepper() == pepper
    assert caplog.text == ""


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nokey", "kid:base64key"),
        ("k1:not base64!", "is not base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "must be 32 bytes"),
    ],
)
def test_malformed_code_keys_are_named(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("GIFTQ_CODE_KEYS", value)
    reset_settings()
    with pytest.raises(SettingsError, match=message):
        get_settings().code_keyring()


def test_short_pepper_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_CODE_PEPPER", base64.b64encode(b"x" * 16).decode())
    reset_settings()
    with pytest.raises(SettingsError, match="at least 32 bytes"):
        get_settings().pepper()


def test_keyring_keeps_order_first_key_is_active(monkeypatch: pytest.MonkeyPatch) -> None:
    new, old = base64.b64encode(b"n" * 32).decode(), base64.b64encode(b"o" * 32).decode()
    monkeypatch.setenv("GIFTQ_CODE_KEYS", f"2026b:{new}, 2026a:{old}")
    reset_settings()
    assert list(get_settings().code_keyring()) == ["2026b", "2026a"]


def test_secrets_do_not_show_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = get_settings()
    assert settings.code_pepper is not None
    assert settings.code_pepper.get_secret_value() not in repr(settings)


def test_database_url_defaults_to_sqlite_in_data_dir(tmp_path: Path) -> None:
    assert get_settings().sqlalchemy_url == f"sqlite:///{tmp_path / 'var' / 'giftq.sqlite3'}"


def test_plain_postgresql_urls_use_psycopg3(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_DATABASE_URL", "postgresql://u@h:5432/giftq")
    reset_settings()
    assert get_settings().sqlalchemy_url == "postgresql+psycopg://u@h:5432/giftq"


# --- list settings, and bad values -------------------------------------------------------


def _list_settings() -> list[str]:
    return [
        name for name, info in Settings.model_fields.items() if get_origin(info.annotation) in (tuple, list)
    ]


def test_there_are_list_settings_to_check() -> None:
    assert "retry_schedule_seconds" in _list_settings()


@pytest.mark.parametrize("name", _list_settings())
@pytest.mark.parametrize("form", ["comma", "comma with spaces", "json"])
def test_every_list_setting_takes_the_comma_form_and_json(
    monkeypatch: pytest.MonkeyPatch, name: str, form: str
) -> None:
    default = Settings.model_fields[name].default
    assert default, f"{name}: give the test a non-empty default to write back"
    written = {
        "comma": ",".join(map(str, default)),
        "comma with spaces": " , ".join(map(str, default)),
        "json": json.dumps(list(default)),
    }[form]
    monkeypatch.setenv(f"GIFTQ_{name.upper()}", written)
    assert getattr(Settings(), name) == default


def test_a_short_retry_schedule_in_the_comma_form(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", "30,60")
    assert Settings().retry_schedule_seconds == (30, 60)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("30,abc", r"^GIFTQ_RETRY_SCHEDULE_SECONDS item 2: .*valid integer.*\(got 'abc'\)$"),
        ("30,,60", r"^GIFTQ_RETRY_SCHEDULE_SECONDS item 2: .*valid integer"),
        ("[30, 60", r"^GIFTQ_RETRY_SCHEDULE_SECONDS: not valid JSON"),
    ],
)
def test_a_bad_list_names_its_variable(monkeypatch: pytest.MonkeyPatch, value: str, message: str) -> None:
    monkeypatch.setenv("GIFTQ_RETRY_SCHEDULE_SECONDS", value)
    with pytest.raises(SettingsError, match=message):
        Settings()


def test_every_bad_value_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIFTQ_SMTP_PORT", "twenty-five")
    monkeypatch.setenv("GIFTQ_SMTP_SECURITY", "ssl")
    with pytest.raises(SettingsError) as raised:
        Settings()
    problems = str(raised.value).split("; ")
    assert [p.split(":")[0] for p in problems] == ["GIFTQ_SMTP_PORT", "GIFTQ_SMTP_SECURITY"]
    assert "(got 'ssl')" in problems[1]


def test_a_bad_secret_is_named_but_not_shown() -> None:
    with pytest.raises(SettingsError, match=r"^GIFTQ_CODE_PEPPER: ") as raised:
        Settings(code_pepper=987654321)
    assert "987654321" not in str(raised.value)


def test_an_empty_variable_counts_as_unset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("GIFTQ_SMTP_PORT", "GIFTQ_DATA_DIR", "GIFTQ_RETRY_SCHEDULE_SECONDS", "GIFTQ_ENV"):
        monkeypatch.setenv(name, "")
    settings = Settings()
    assert settings.smtp_port == Settings.model_fields["smtp_port"].default
    assert settings.data_dir == tmp_path / "var"
    assert settings.retry_schedule_seconds == Settings.model_fields["retry_schedule_seconds"].default
    assert settings.env == "development"
