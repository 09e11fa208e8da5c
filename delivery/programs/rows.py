"""One CSV row (or one ops command's fields) to something validated, with errors by column.

The order schema's types (:mod:`delivery.orders.schemas`) check every field they cover: names,
email addresses, mobile numbers, marketplaces, designs, zones, messages, amounts. A schedule
row becomes an order and is checked by the order schema itself, its errors mapped back to
the row's columns.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import string
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from delivery.errors import FieldError, InvalidOrder
from delivery.orders import schemas
from delivery.programs.errors import InvalidProgram

ROW_ID = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]
_WHOLE_NUMBER = re.compile(r"^[0-9]+$")
TEMPLATE_FIELDS = frozenset({"name"})


def _template(value: str) -> str:
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
    except ValueError as exc:
        raise ValueError(f"is not a valid template ({exc}); write a literal brace as {{{{ or }}}}") from None
    unknown = fields - TEMPLATE_FIELDS
    if unknown:
        raise ValueError(f"names {', '.join(sorted('{' + f + '}' for f in unknown))}; only {{name}} is known")
    return schemas._message_text(value)


def _birth_date(value: dt.date) -> dt.date:
    if not 1900 <= value.year <= dt.date.today().year:
        raise ValueError("year must be between 1900 and this year")
    return value


class ProgramSpec(schemas._Model):
    """A birthday program's fields, as ops give them (a CSV row, ``giftq programs change``)."""

    name: schemas.Name
    email: schemas.Email | None = None
    phone: schemas.Phone | None = None
    birth_date: Annotated[dt.date, AfterValidator(_birth_date)]
    zone: schemas.ZoneName
    marketplace: schemas.Marketplace
    amount: Annotated[int, Field(gt=0, le=schemas.MAX_AMOUNT)]
    channel: Annotated[str, StringConstraints(pattern=r"^(email|sms)$")]
    design: schemas.Design = "birthday"
    message: Annotated[str, StringConstraints(min_length=1, max_length=500), AfterValidator(_template)] = (
        "Happy birthday, {name}!"
    )
    send_time: Annotated[str, StringConstraints(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")] = "09:00"
    purchaser_name: schemas.Name
    purchaser_email: schemas.Email

    @model_validator(mode="after")
    def _reachable(self) -> ProgramSpec:
        need = "email" if self.channel == "email" else "phone"
        if getattr(self, need) is None:
            raise PydanticCustomError(
                "required_for_channel",
                "required for channel {channel}",
                {"channel": self.channel, "field": need},
            )
        return self


def _errors(exc: ValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors(include_url=False):
        extra = (err.get("ctx") or {}).get("field")
        column = str(extra) if extra else ".".join(str(p) for p in err["loc"]) or "row"
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch" and column == "channel":
            message = "must be email or sms"
        elif err["type"] == "string_pattern_mismatch" and column == "send_time":
            message = "must be a local time like 09:00"
        out.append(FieldError(column, message))
    return out


def parse_program(fields: Mapping[str, Any]) -> ProgramSpec:
    """Validate a program's fields; :class:`InvalidProgram` names each bad one."""
    try:
        return ProgramSpec.model_validate(dict(fields))
    except ValidationError as exc:
        raise InvalidProgram(_errors(exc)) from None


PROGRAM_COLUMNS = (
    "row_id", "name", "email", "phone", "birth_date", "zone", "marketplace", "amount", "channel",
    "design", "message", "send_time", "purchaser_name", "purchaser_email",
)  # fmt: skip
PROGRAM_REQUIRED = (
    "name",
    "birth_date",
    "zone",
    "marketplace",
    "amount",
    "channel",
    "purchaser_name",
    "purchaser_email",
)

SCHEDULE_COLUMNS = (
    "row_id", "purchaser_name", "purchaser_email", "reference", "channel", "amount", "marketplace",
    "design", "message", "recipient_name", "recipient_email", "recipient_phone", "send_at", "zone",
)  # fmt: skip
SCHEDULE_REQUIRED = (
    "purchaser_name", "purchaser_email", "channel", "amount", "marketplace", "recipient_name",
    "send_at", "zone",
)  # fmt: skip

_ORDER_PATHS = {
    "purchaser.name": "purchaser_name",
    "purchaser.email": "purchaser_email",
    "reference": "reference",
    "lines.0.channel": "channel",
    "lines.0.amount": "amount",
    "lines.0.marketplace": "marketplace",
    "lines.0.design": "design",
    "lines.0.message": "message",
    "lines.0.recipient.name": "recipient_name",
    "lines.0.recipient.email": "recipient_email",
    "lines.0.recipient.phone": "recipient_phone",
    "lines.0.send_at.local_time": "send_at",
    "lines.0.send_at.zone": "zone",
}


def _amount(value: str) -> int:
    if not _WHOLE_NUMBER.match(value):
        raise InvalidProgram(
            [FieldError("amount", "must be a whole number of minor units, like 2500 for 25.00")]
        )
    return int(value)


def _present(row: Mapping[str, str]) -> dict[str, str]:
    """The row's filled cells, trimmed; an empty cell is an absent value."""
    return {k: v.strip() for k, v in row.items() if k != "row_id" and v is not None and v.strip()}


def _with_amount(cells: dict[str, Any]) -> list[FieldError]:
    """Read the amount cell as an int in place; a bad one is an error, and a stand-in lets the
    other cells still be checked, so that one pass names every bad cell of the row."""
    if "amount" not in cells:
        return []
    try:
        cells["amount"] = _amount(cells["amount"])
    except InvalidProgram as exc:
        cells["amount"] = 1
        return list(exc.errors)
    return []


def program_row(row: Mapping[str, str]) -> ProgramSpec:
    cells: dict[str, Any] = _present(row)
    errors = _with_amount(cells)
    try:
        spec = parse_program(cells)
    except InvalidProgram as exc:
        errors += exc.errors
    if errors:
        raise InvalidProgram(errors)
    return spec


def schedule_row(row: Mapping[str, str]) -> schemas.Order:
    """A one-off send: one order of one line, checked by the order schema."""
    cells: dict[str, Any] = _present(row)
    channel = cells.get("channel", "")
    if channel == "physical":
        raise InvalidOrder(
            [FieldError("channel", "physical cards need a postal address: place them as orders")]
        )
    errors = _with_amount(cells)
    amount = cells.get("amount")
    recipient = {k: cells[f"recipient_{k}"] for k in ("name", "email", "phone") if f"recipient_{k}" in cells}
    line: dict[str, Any] = {
        "channel": channel,
        "amount": amount,
        "marketplace": cells.get("marketplace"),
        "recipient": recipient,
        "send_at": {"local_time": cells.get("send_at"), "zone": cells.get("zone")},
    }
    for optional in ("design", "message"):
        if optional in cells:
            line[optional] = cells[optional]
    order: dict[str, Any] = {
        "purchaser": {"name": cells.get("purchaser_name"), "email": cells.get("purchaser_email")},
        "lines": [line],
    }
    if "reference" in cells:
        order["reference"] = cells["reference"]
    try:
        parsed = schemas.parse_order(order)
    except InvalidOrder as exc:
        errors += [FieldError(_ORDER_PATHS.get(e.path, e.path), e.message) for e in exc.errors]
    if errors:
        raise InvalidOrder(errors)
    return parsed


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()
