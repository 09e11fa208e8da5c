"""The order payload: what a storefront sends, validated with pydantic.

The same models validate all three doors (Python, the ``giftq.place_order`` Celery
message, later HTTP), and :func:`order_json_schema` is the JSON Schema published as
``delivery/orders/order.schema.json`` (regenerate:
``python -c "import delivery.orders.schemas as s; s.write_schema()"``; a test compares them).

Rules beyond types: a line's channel says which recipient field it needs (email: an
email address; sms: an E.164 phone number; physical: a postal address; printable:
nothing more, the PDF goes to the purchaser, who prints it and hands it over).
Names, references and postal addresses carry no control characters, line breaks or
bidirectional formatting characters (they end up in mail headers and subjects); a personal
message may hold line breaks, tabs and bidi marks (:mod:`giftq.text` has the one
definition). Amounts are integers of minor units.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from babel import Locale, UnknownLocaleError
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from delivery import designs, scheduling
from delivery.addresses import UndeliverableAddress, deliverable_email, deliverable_phone
from delivery.channels.physical import postal
from delivery.errors import FieldError, InvalidOrder
from delivery.models import Channel
from giftq.text import refuse_controls
from ledger.marketplaces import MARKETPLACES
from ledger.models import CardOrigin

SCHEMA_PATH = Path(__file__).with_name("order.schema.json")
SCHEMA_ID = "urn:giftq:schema:order:1"
MAX_LINES = 10_000
MAX_AMOUNT = 100_000_000
"""Per card, in minor units: 1,000,000.00 USD or 100,000,000 JPY; anything above is a typo."""


_LOCAL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?$")


def _no_control(value: str) -> str:
    # Names and references reach mail headers and subjects: see giftq.text.
    return refuse_controls(value)


def _message_text(value: str) -> str:
    return refuse_controls(value.replace("\r\n", "\n"), paragraphs=True)


def _mobile(value: str) -> str:
    try:
        number = deliverable_phone(value)
    except UndeliverableAddress as exc:
        raise ValueError(str(exc)) from None
    if number != value:
        raise ValueError(f"must be written in E.164, like {number}")
    return value


def _email(value: str) -> str:
    try:
        return deliverable_email(value)
    except UndeliverableAddress as exc:
        raise ValueError(str(exc)) from None


def _marketplace(value: str) -> str:
    if value not in MARKETPLACES:
        raise ValueError(f"unknown marketplace (known: {', '.join(MARKETPLACES)})")
    return value


def _local_time(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            raise ValueError("must be a local wall-clock time without an offset")
        if not 2000 <= value.year < 2200:
            raise ValueError("year must be between 2000 and 2199")
        return value.replace(microsecond=0)
    if not isinstance(value, str) or not _LOCAL_TIME.match(value):
        raise ValueError("must be a local time like 2025-06-01T09:00 (no offset; see zone)")
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        parsed = _leap_day(value)
    if not 2000 <= parsed.year < 2200:
        raise ValueError("year must be between 2000 and 2199")
    return parsed


def _leap_day(value: str) -> dt.datetime:
    """29 February in a common year is sent on 28 February (delivery.scheduling's rule)."""
    year, month, day = int(value[0:4]), int(value[5:7]), int(value[8:10])
    if (month, day) != (2, 29):
        raise ValueError("is not a real date and time")
    time = dt.time.fromisoformat(value[11:])
    return dt.datetime.combine(scheduling.birthday_in(year, month, day), time)


def _locale(value: str) -> str:
    try:
        parsed = Locale.parse(value.replace("-", "_"))
    except (ValueError, TypeError, UnknownLocaleError):
        raise ValueError("must be a language tag like en, de-DE or fr-CA") from None
    return str(parsed)


NOT_COUNTRIES = frozenset({"EU", "EZ", "UN", "QO", "ZZ"})
"""CLDR territories with two letters that are groupings, not countries."""


def _country(value: str) -> str:
    if value not in Locale("en").territories or value in NOT_COUNTRIES:
        raise ValueError("must be an ISO 3166-1 alpha-2 country code like US, GB or DE")
    return value


def _design(value: str) -> str:
    known = designs.known()
    if value not in known:
        raise ValueError(f"unknown design (known: {', '.join(known)})")
    return value


def _zone(value: str) -> str:
    scheduling.zone(value)
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_no_control),
]
Phone = Annotated[
    str,
    StringConstraints(pattern=r"^\+[1-9][0-9]{6,14}$"),
    AfterValidator(_mobile),
]
Email = Annotated[
    str,
    StringConstraints(max_length=320),
    AfterValidator(_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
Marketplace = Annotated[
    str,
    AfterValidator(_marketplace),
    WithJsonSchema({"type": "string", "enum": list(MARKETPLACES)}),
]
LocalTime = Annotated[
    dt.datetime,
    BeforeValidator(_local_time),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": _LOCAL_TIME.pattern,
            "description": "Local wall-clock time, no offset: 2025-06-01T09:00",
        }
    ),
]
ZoneName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=64),
    AfterValidator(_zone),
    WithJsonSchema({"type": "string", "description": "IANA time zone, e.g. Europe/Berlin"}),
]
LocaleTag = Annotated[
    str,
    StringConstraints(min_length=2, max_length=20, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8})*$"),
    AfterValidator(_locale),
    WithJsonSchema(
        {
            "type": "string",
            "description": "Language the person reads (BCP 47 like de-DE); default: the marketplace's",
        }
    ),
]
Design = Annotated[
    str,
    AfterValidator(_design),
    WithJsonSchema({"type": "string", "enum": list(designs.shipped())}),
]
IdempotencyKey = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=r"^[\x21-\x7e]+$")]


Country = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{2}$"),
    AfterValidator(_country),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[A-Z]{2}$",
            "description": "Where the purchaser lives, ISO 3166-1 alpha-2 (for unclaimed-property "
            "reporting); default: the country of the card's marketplace",
        }
    ),
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Purchaser(_Model):
    name: Name
    email: Email
    locale: LocaleTag | None = None
    """The purchaser's language for the receipt and notices; default: the first line's marketplace."""
    # Left out of the dump when absent, so that an order placed before it existed keeps
    # its request hash (the same key and order stay a replay, not a conflict).
    country: Country | None = Field(default=None, exclude_if=lambda value: value is None)


class PostalAddress(_Model):
    """A postal address, checked per country: US and CA need ``region`` (state or province
    code); postal codes as the country writes them (US 12345 or 12345-6789, CA A1A 1A1, GB
    postcodes, DE and FR 5 digits, JP 123-4567), kept in that form."""

    # Rules: delivery/channels/physical/postal.py. Country first: later fields check against it.
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2"
    )
    line1: Annotated[Text, AfterValidator(_no_control)]
    line2: Annotated[Text, AfterValidator(_no_control)] | None = None
    city: Annotated[Text, AfterValidator(_no_control)]
    region: Annotated[Text, AfterValidator(_no_control)] | None = Field(
        default=None, validate_default=True, description="State, province or prefecture (US, CA: required)"
    )
    postal_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9 -]{1,11}$")]

    @field_validator("region")
    @classmethod
    def _region_of_country(cls, value: str | None, info: ValidationInfo) -> str | None:
        country = info.data.get("country")
        return postal.check_region(country, value) if country else value

    @field_validator("postal_code")
    @classmethod
    def _postal_code_of_country(cls, value: str, info: ValidationInfo) -> str:
        country = info.data.get("country")
        return postal.check_postal_code(country, value) if country else value


class Recipient(_Model):
    name: Name
    email: Email | None = None
    phone: Phone | None = Field(default=None, description="E.164, e.g. +14155550123")
    address: PostalAddress | None = None
    locale: LocaleTag | None = None
    """The recipient's language for the gift; default: the line's marketplace."""


class SendAt(_Model):
    """When to send: a local wall-clock time in an IANA zone (see delivery.scheduling)."""

    local_time: LocalTime
    zone: ZoneName

    def due_at(self) -> dt.datetime:
        return scheduling.due_at(self.local_time, self.zone)


_NEEDS: dict[Channel, tuple[str, str] | None] = {
    Channel.EMAIL: ("email", "recipient.email"),
    Channel.SMS: ("phone", "recipient.phone"),
    Channel.PHYSICAL: ("address", "recipient.address"),
    Channel.PRINTABLE: None,
}


class OrderLine(_Model):
    """One card: its channel, value, marketplace, look and recipient."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {
                    "if": {"properties": {"channel": {"const": str(channel)}}},
                    "then": {"properties": {"recipient": {"required": [need[0]]}}},
                }
                for channel, need in _NEEDS.items()
                if need is not None
            ]
        }
    )

    channel: Channel
    amount: Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, description="minor units")]
    marketplace: Marketplace
    design: Design = designs.DEFAULT
    message: Annotated[str, StringConstraints(max_length=500), AfterValidator(_message_text)] | None = None
    recipient: Recipient
    send_at: SendAt | None = None
    origin: CardOrigin = Field(
        default=CardOrigin.PURCHASED,
        description="purchased (sold) or promotional (given by the store): with the marketplace, "
        "it picks the card's expiry rule, which every message about the card discloses",
    )

    @model_validator(mode="after")
    def _recipient_fits_channel(self) -> OrderLine:
        need = _NEEDS[self.channel]
        if need is not None and getattr(self.recipient, need[0]) is None:
            raise PydanticCustomError(
                "required_for_channel",
                "required for channel {channel}",
                {"channel": str(self.channel), "field": need[1]},
            )
        address = self.recipient.address
        if self.channel == Channel.PHYSICAL and address is not None:
            countries = postal.ships_to(self.marketplace)
            if address.country not in countries:
                raise PydanticCustomError(
                    "ships_to",
                    "the {marketplace} marketplace ships physical cards to {countries} only",
                    {
                        "marketplace": self.marketplace,
                        "countries": ", ".join(countries),
                        "field": "recipient.address.country",
                    },
                )
        return self


class Order(_Model):
    """A purchase: who pays, and one line per card."""

    model_config = ConfigDict(title="giftq order", json_schema_extra={"$id": SCHEMA_ID})

    purchaser: Purchaser
    lines: Annotated[list[OrderLine], Field(min_length=1, max_length=MAX_LINES)]
    reference: Annotated[Text, AfterValidator(_no_control)] | None = Field(
        default=None, description="The storefront's own order number, shown on the receipt"
    )
    payment: Literal["paid", "pending"] = Field(
        default="paid",
        description="pending: nothing is issued or sent until the payment is confirmed "
        "(POST /v1/orders/{id}/payment); cancelled if it is not by the deadline",
    )
    review: bool = Field(
        default=False, description="true: held for a fraud review until ops release (or reject) it"
    )


def _field_errors(exc: ValidationError, prefix: tuple[str | int, ...] = ()) -> list[FieldError]:
    errors = []
    for err in exc.errors(include_url=False):
        loc: tuple[str | int, ...] = prefix + tuple(err["loc"])
        extra = (err.get("ctx") or {}).get("field")
        if extra:
            loc += tuple(str(extra).split("."))
        message = err["msg"].removeprefix("Value error, ")
        errors.append(FieldError(".".join(str(p) for p in loc) or "order", message))
    return errors


HOLD_DEFAULTS: dict[str, Any] = {"payment": "paid", "review": False}
LINE_DEFAULTS: dict[str, Any] = {"origin": CardOrigin.PURCHASED.value}
"""Line fields added later, at their defaults: left out of the request hash (see intake)."""
"""The hold fields as an order without them reads: left out of its request hash."""


def parse_order(payload: Any) -> Order:
    """Validate a payload (dict, JSON text or an :class:`Order`); :class:`InvalidOrder` if bad."""
    if isinstance(payload, Order):
        return payload
    try:
        if isinstance(payload, str | bytes):
            return Order.model_validate_json(payload)
        return Order.model_validate(payload)
    except ValidationError as exc:
        raise InvalidOrder(_field_errors(exc)) from None


class _Key(_Model):
    idempotency_key: IdempotencyKey


def parse_key(key: Any) -> str:
    try:
        return _Key(idempotency_key=key).idempotency_key
    except ValidationError as exc:
        raise InvalidOrder(_field_errors(exc)) from None


def parse_request(order: Any, idempotency_key: Any) -> tuple[Order, str]:
    """Validate both parts of a request at once, so every bad field is named in one error."""
    errors: list[FieldError] = []
    parsed: Order | None = None
    key = ""
    try:
        parsed = parse_order(order)
    except InvalidOrder as exc:
        errors += [FieldError(f"order.{e.path}", e.message) for e in exc.errors]
    try:
        key = parse_key(idempotency_key)
    except InvalidOrder as exc:
        errors += exc.errors
    if errors or parsed is None:
        raise InvalidOrder(errors)
    return parsed, key


def order_json_schema() -> dict[str, Any]:
    schema = Order.model_json_schema()
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def schema_text() -> str:
    return json.dumps(order_json_schema(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(schema_text(), encoding="utf-8")
