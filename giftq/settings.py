"""Configuration, read once from ``GIFTQ_*`` environment variables.

Every module asks :func:`get_settings`; nothing else reads the environment.

Secrets (the claim-code pepper and encryption keys) are required when
``GIFTQ_ENV=production``. In development a missing secret is generated once,
kept in ``<GIFTQ_DATA_DIR>/secrets.json`` so that codes stay readable across
restarts, and announced with a warning: never a silent constant.

A list setting is written comma-separated (``GIFTQ_RETRY_SCHEDULE_SECONDS=30,120,600``) or
as a JSON list (``[30, 120, 600]``); an empty variable counts as unset. A bad value is a
:class:`SettingsError` that names its variable. The README's configuration table lists
every setting with its default (``tests/test_readme.py`` holds the two together).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import Field, SecretStr, StringConstraints, ValidationError, field_validator, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ENV_PREFIX = "GIFTQ_"


class SettingsError(RuntimeError):
    """The configuration is unusable: a bad value, or a required secret missing or malformed."""


def variable(field_name: str) -> str:
    """The environment variable of a setting: ``retry_jitter`` -> ``GIFTQ_RETRY_JITTER``."""
    return f"{ENV_PREFIX}{field_name}".upper()


class _EnvSource(EnvSettingsSource):
    """``GIFTQ_*`` variables, where a list is comma-separated or a JSON list."""

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if not isinstance(value, str):
            return super().decode_complex_value(field_name, field, value)
        text = value.strip()
        if text.startswith(("[", "{")):
            try:
                return json.loads(text)
            except ValueError as exc:
                # Not a ValueError: pydantic-settings would hide this one behind its own message.
                raise SettingsError(
                    f"{variable(field_name)}: not valid JSON ({exc}); a list can also be written 30,60"
                ) from None
        return [item.strip() for item in text.split(",")]


class Settings(BaseSettings):
    # An empty variable is an unset one: compose files pass "${GIFTQ_X:-}" through as "".
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, env_ignore_empty=True
    )

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise SettingsError(_explain(exc)) from None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _EnvSource(settings_cls), dotenv_settings, file_secret_settings

    env: Literal["development", "test", "production"] = "development"
    data_dir: Path = Path("var")
    database_url: str = ""
    """SQLAlchemy URL; empty means the embedded SQLite file ``<data_dir>/giftq.sqlite3``."""
    database_pool_size: int = 10
    sqlite_busy_timeout_ms: int = 30_000

    broker_url: str = "redis://127.0.0.1:6379/0"
    result_backend: str = ""
    """Empty: no result backend. Task results never carry claim codes either way."""

    code_pepper: SecretStr | None = None
    """Key of the HMAC that turns a claim code into its lookup hash (at least 32 bytes)."""
    code_keys: SecretStr | None = None
    """Claim-code encryption keys: ``kid:base64key,kid:base64key``; the first encrypts."""

    # Redemption lockout: failures (not valid / mistyped) counted per account and per client.
    redeem_window_seconds: int = Field(default=900, gt=0)
    redeem_max_failures_per_account: int = Field(default=10, gt=0)
    redeem_max_failures_per_client: int = Field(default=50, gt=0)

    templates_dir: Path = PROJECT_ROOT / "templates"
    public_base_url: str = "http://localhost:8000"
    """Where customers redeem codes: ``<public_base_url>/<marketplace>/redeem``."""

    # --- email (delivery.channels.email) ---
    email_from: str = "giftq <gifts@localhost>"
    email_reply_to: str = ""
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_username: str = ""
    smtp_password: SecretStr | None = None
    smtp_timeout_seconds: float = 30.0
    smtp_batch_size: int = Field(default=100, gt=0)
    dkim_domain: str = ""
    dkim_selector: str = ""
    dkim_private_key_path: Path | None = None
    """PEM private key; DKIM signing is on when domain, selector and key are all set."""

    # --- delivery pipeline (delivery) ---
    issue_chunk_size: int = Field(default=500, gt=0)
    dispatch_batch_size: int = Field(default=100, gt=0)
    task_soft_time_limit_seconds: int = Field(default=240, gt=0)
    task_time_limit_seconds: int = Field(default=300, gt=0)
    broker_visibility_timeout_seconds: int = Field(default=3600, gt=0)
    """Redis redelivers an unacknowledged task after this: longer than any task may run."""
    retry_schedule_seconds: tuple[int, ...] = (30, 120, 600, 1800, 3600, 10800, 21600)
    retry_jitter: float = Field(default=0.2, ge=0, lt=1)
    retry_cap_seconds: int = Field(default=21600, gt=0)
    retry_countdown_max_seconds: int = Field(default=60, ge=0)
    """Retries due this soon ride a Celery countdown; later ones wait for the due dispatcher."""
    scheduler_interval_seconds: float = Field(default=15, gt=0)
    sweep_interval_seconds: float = Field(default=60, gt=0)
    sweep_stuck_after_seconds: int = Field(default=300, gt=0)
    """Orders and queued deliveries with no progress for this long are enqueued again."""
    sweep_sending_after_seconds: int = Field(default=900, gt=0)
    """A delivery ``sending`` this long lost its worker (longer than the task time limit)."""
    delivered_notice_max_lines: int = Field(default=5, ge=0)
    """Purchasers hear of each delivered gift only for orders up to this many lines."""
    payment_deadline_seconds: int = Field(default=24 * 3600, gt=0)
    """An order placed awaiting payment is cancelled (and its purchaser told) when the
    storefront has not confirmed the payment this long after it was placed."""
    marketplace_limits: dict[str, dict[str, int | None]] = {}
    """Per marketplace, limits that replace the shipped ones (``ledger.limits``), as JSON:
    ``{"US": {"max_card": 50000, "max_cards_per_day": 20}}``; null lifts a limit."""
    notices: Literal["all", "later", "failures"] = "later"
    """Which sent gifts the purchaser hears of (failures always): ``all``; ``later``, only those
    sent after the receipt (scheduled, retried) or reported by their channel; ``failures``: none."""

    # --- channels: the back end of each ("none": its deliveries wait, listed by giftq ops failures) ---
    printable_backend: Literal["email", "none"] = "none"
    """``email``: the card's PDF attached to an email to the purchaser, who prints it."""
    fulfilment_backend: Literal["file", "http", "none"] = "none"

    # --- text messages (delivery.channels.sms) ---
    sms_backend: Literal["twilio", "sink", "none"] = "none"
    """``twilio``: Twilio's Messages API; ``sink``: the local ``giftq sms-sink``; ``none``: off."""
    sms_account_sid: str = Field(default="", pattern=r"^(AC[0-9a-fA-F]{32})?$")
    sms_auth_token: SecretStr | None = None
    """Signs the API requests (basic auth) and verifies the status callbacks."""
    sms_api_base_url: str = ""
    """Empty: ``https://api.twilio.com``, or ``http://127.0.0.1:8026`` with the sink."""
    sms_messaging_service_sid: str = Field(default="", pattern=r"^(MG[0-9a-fA-F]{32})?$")
    """Send through this Messaging Service (its sender pool); wins over ``sms_from_number``."""
    sms_from_number: str = ""
    """The sender when no Messaging Service is set: E.164 long code, short code or alphanumeric ID."""
    sms_status_callback_url: str = ""
    """Where the provider reports delivery; empty: ``<public_base_url>/sms/status``."""
    sms_timeout_seconds: float = Field(default=10.0, gt=0)
    sms_rate_per_second: float = Field(default=1.0, gt=0)
    """Messages per second per sender, shared by every worker (a long code sends about 1/s)."""
    sms_burst: int = Field(default=1, ge=1)
    """Messages a sender may send at once after a quiet spell, before the rate applies."""
    sms_rate_redis_url: str = ""
    """The Redis that holds the shared send rate; empty: the broker's (when it is Redis)."""
    sms_pace_max_wait_seconds: float = Field(default=60.0, ge=0)
    """A batch waits this long at most for the send rate; what is left is deferred, not failed."""
    sms_max_segments: int = Field(default=3, ge=1, le=10)
    """A text that would travel as more segments than this is refused, never cut."""

    # --- printable cards (delivery.channels.printable) ---
    printable_link_ttl_seconds: int = Field(default=7 * 24 * 3600, gt=0)
    """How long a printable card's download link works after it is made."""
    printable_link_max_uses: int = Field(default=5, gt=0)
    """How many downloads one link allows (a second device, a printer that jammed)."""

    # --- logs and metrics (delivery.logs, delivery.metrics) ---
    log_format: Literal["auto", "json", "console"] = "auto"
    """``json`` (one object a line, for a log shipper), ``console`` (for people), or ``auto``:
    JSON when ``env`` is production, console otherwise."""
    worker_metrics_port: int = Field(default=0, ge=0, lt=65536)
    """A Celery worker's main process serves Prometheus metrics on this port; 0: it does not."""
    worker_metrics_host: str = "127.0.0.1"
    """Where that metrics endpoint listens (``0.0.0.0`` in a container)."""

    # --- HTTP API (api) ---
    api_host: str = "127.0.0.1"
    api_port: int = Field(default=8000, gt=0, lt=65536)
    api_workers: int = Field(default=1, gt=0)
    api_forwarded_allow_ips: str = "127.0.0.1"
    """Proxies whose X-Forwarded-For and -Proto are believed: comma-separated addresses or
    networks, ``*`` for any. The client address drives the redemption lockout."""
    handover_secret: SecretStr | None = None
    """Shared with the storefronts: the HMAC-SHA256 key (its UTF-8 bytes, at least 32) of the
    links that hand a signed-in customer over to the redeem page. Unset: no hand-over is accepted."""
    handover_max_seconds: int = Field(default=600, gt=0)
    """A hand-over link may expire at most this far ahead: storefronts make them on the click."""
    page_session_seconds: int = Field(default=1800, gt=0)
    """How long a handed-over customer stays signed in on the redeem page."""
    storefront_signin_url: str = ""
    """The store page that signs a customer in and hands over (``{marketplace}`` is replaced by
    the lower-case code), linked from the redeem page when no one is signed in. Empty: text only."""

    # --- physical cards (delivery.channels.physical) ---
    fulfilment_cutoffs: tuple[
        Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")], ...
    ] = Field(default=("15:00",), min_length=1)
    """Local times (``HH:MM``) at which a batch of physical cards goes to the vendor."""
    fulfilment_cutoff_zone: str = "UTC"
    """The IANA zone of the cut-off times (the vendor's, usually)."""
    fulfilment_batch_max_cards: int = Field(default=1000, gt=0)
    """Cards per batch at most; a cut-off with more makes several batches."""
    fulfilment_vendor_public_key: str = Field(default="", pattern=r"^([A-Za-z0-9+/]{43}=)?$")
    """The vendor's X25519 public key (base64, 32 bytes): codes are sealed to it."""
    fulfilment_drop_dir: Path | None = None
    """``file``: where batches are dropped for the vendor; None: ``<data_dir>/fulfilment/drop``."""
    fulfilment_http_url: str = ""
    """``http``: the vendor's batch endpoint (HTTPS in production)."""
    fulfilment_http_token: SecretStr | None = None
    """``http``: sent as ``Authorization: Bearer <token>``."""
    fulfilment_http_timeout_seconds: float = Field(default=30.0, gt=0)
    fulfilment_inbox_dir: Path | None = None
    """Where the vendor drops its reports (CSV); None: ``<data_dir>/fulfilment/inbox``."""
    fulfilment_inbox_interval_seconds: float = Field(default=60, gt=0)
    fulfilment_callback_secret: SecretStr | None = None
    """Key of the HMAC-SHA256 that signs the vendor's report callbacks (HTTP)."""
    fulfilment_ship_to: dict[str, tuple[Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")], ...]] = {}
    """Per marketplace, the countries it ships physical cards to (default: its own country)."""

    # --- birthday programs (delivery.programs) ---
    program_lead_days: int = Field(default=7, ge=0, le=60)
    """A program's yearly gift is placed this many days before its send time."""
    program_catch_up_hours: float = Field(default=48, ge=0)
    """A placement missed (nothing ran) is still made this long after its time; later, it is
    skipped as too late and recorded for ops."""
    program_interval_seconds: float = Field(default=300, gt=0)
    """How often beat places the programs' due gifts."""
    import_batch_size: int = Field(default=1000, gt=0, le=50_000)
    """CSV imports write this many rows per transaction."""

    # --- expiry and disclosures (ledger.expiry_policy, delivery.expiry) ---
    terms_url: str = Field(default="", pattern=r"^(https?://\S+)?$")
    """Where each marketplace's card terms are; ``{marketplace}`` becomes its code in lower
    case. Empty: ``<public_base_url>/{marketplace}/terms``."""
    expiry_reminder_days: int = Field(default=30, ge=0, le=365)
    """Recipients of a card with value are reminded this many days before it expires; 0: never."""
    expiry_interval_seconds: float = Field(default=3600, gt=0)
    """How often beat expires due cards and sends the reminders."""

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @model_validator(mode="after")
    def _require_production_secrets(self) -> Settings:
        if self.env == "production":
            missing = [name for name in ("code_pepper", "code_keys") if getattr(self, name) is None]
            if missing:
                names = ", ".join(f"GIFTQ_{n.upper()}" for n in missing)
                raise SettingsError(f"production needs {names}")
            if not self.database_url:
                raise SettingsError("production needs GIFTQ_DATABASE_URL")
        return self

    @property
    def sqlalchemy_url(self) -> str:
        if self.database_url:
            url = self.database_url
            # Bare "postgresql://" would pick psycopg2; giftq ships psycopg 3.
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{self.data_dir / 'giftq.sqlite3'}"

    def pepper(self) -> bytes:
        value = self._secret("code_pepper")
        try:
            raw = base64.b64decode(value, validate=True)
        except ValueError as exc:
            raise SettingsError("GIFTQ_CODE_PEPPER must be base64") from exc
        if len(raw) < 32:
            raise SettingsError("GIFTQ_CODE_PEPPER must hold at least 32 bytes")
        return raw

    def code_keyring(self) -> dict[str, bytes]:
        """Encryption keys by id, the active (first) one first."""
        keyring: dict[str, bytes] = {}
        for item in self._secret("code_keys").split(","):
            kid, sep, b64 = item.strip().partition(":")
            if not sep or not kid:
                raise SettingsError("GIFTQ_CODE_KEYS entries look like kid:base64key")
            try:
                key = base64.b64decode(b64, validate=True)
            except ValueError as exc:
                raise SettingsError(f"GIFTQ_CODE_KEYS key {kid!r} is not base64") from exc
            if len(key) != 32:
                raise SettingsError(f"GIFTQ_CODE_KEYS key {kid!r} must be 32 bytes (AES-256)")
            keyring[kid] = key
        return keyring

    def _secret(self, name: str) -> str:
        value: SecretStr | None = getattr(self, name)
        if value is not None:
            return value.get_secret_value()
        return _development_secrets(self.data_dir)[name]


def _explain(error: ValidationError) -> str:
    """One line per bad value, each naming its variable; secrets' values are never echoed."""
    problems = []
    for item in error.errors(include_url=False):
        field, *inner = item["loc"]
        where = "".join(f" item {i + 1}" if isinstance(i, int) else f" {i}" for i in inner)
        info = Settings.model_fields.get(str(field))
        annotation = info.annotation if info is not None else None
        secret = annotation is SecretStr or SecretStr in get_args(annotation)
        shown = "" if secret or item["type"] == "missing" else f" (got {item['input']!r})"
        problems.append(f"{variable(str(field))}{where}: {item['msg']}{shown}")
    return "; ".join(problems)


def _development_secrets(data_dir: Path) -> dict[str, str]:
    """Generated local secrets for development, kept on disk and announced."""
    path = data_dir / "secrets.json"
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    data_dir.mkdir(parents=True, exist_ok=True)
    generated = {
        "code_pepper": base64.b64encode(secrets.token_bytes(32)).decode(),
        "code_keys": "dev1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
    }
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(generated, f)
    try:
        # link() fails if another process got there first; theirs wins, so all agree.
        os.link(tmp, path)
    except FileExistsError:
        os.unlink(tmp)
        winner: dict[str, str] = json.loads(path.read_text())
        return winner
    os.unlink(tmp)
    log.warning(
        "GIFTQ_CODE_PEPPER and GIFTQ_CODE_KEYS are not set: generated development secrets "
        "in %s. Set both in production.",
        path,
    )
    return generated


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget the cached settings (tests and the demo change the environment)."""
    get_settings.cache_clear()
