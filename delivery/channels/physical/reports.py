"""The vendor's reports: a card shipped (with carrier and tracking number), lost or damaged.

Two doors, one behaviour (:func:`apply`):

- **CSV files** dropped in ``GIFTQ_FULFILMENT_INBOX_DIR`` (written under a name starting
  with a dot or ending in ``.tmp``, then renamed to ``*.csv``), taken by the beat task
  ``giftq.fulfilment_reports`` (:func:`process_inbox`): UTF-8, a header row, columns
  ``item_ref,event,carrier,tracking_number,tracking_url,detail`` (the last four may be
  empty or left out). A file is applied whole or not at all: a refused file moves to
  ``refused/`` beside ``<name>.errors.txt``, which names every refused row and why; an
  applied one moves to ``done/``.
- **An HTTP callback** (:func:`handle_callback`, for the HTTP API to mount): a JSON body
  ``{"reports": [{"item_ref": ..., "event": ..., ...}]}`` signed with
  ``X-Giftq-Signature: sha256=<hex HMAC-SHA256 of the body under
  GIFTQ_FULFILMENT_CALLBACK_SECRET>``; applied whole or refused whole, the same way.

What a row does:

==========  ======================================================================
shipped     needs ``carrier`` and ``tracking_number`` (``tracking_url``: https only);
            activates the card, makes the delivery ``delivered``, and tells the
            purchaser the tracking (a delivered notice, in the purchaser's language)
lost        the card is voided and a new card for the same line goes into the next
damaged     batch; the delivery becomes ``bounced`` (``detail``: what happened)
==========  ======================================================================

Refused, with the reason, changing nothing: an ``item_ref`` that is not one of ours, a
malformed row (unknown event, missing or overlong field), a card not handed to the
vendor yet, any report about a card already shipped (other than that same shipment
again), and "shipped" for a card reported lost. The same report twice changes nothing
the second time (a file processed again after a crash, a callback retried).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from delivery import lifecycle
from delivery.channels.physical.errors import BadSignature, FulfilmentConfigError, ReportRefused, RowProblem
from delivery.channels.physical.manifest import parse_item_ref
from delivery.channels.physical.models import FulfilmentReport, ReportEvent
from delivery.errors import DeliveryError
from delivery.models import Channel, Delivery, DeliveryKind, Order, OrderLine
from delivery.ops import actions
from delivery.states import DeliveryStatus as S
from giftq.db import utcnow
from giftq.settings import get_settings
from ledger import activate_card, get_card, void_card
from ledger.codes.redact import redact
from ledger.errors import LedgerError
from ledger.models import CardStatus

log = logging.getLogger(__name__)

COLUMNS = ("item_ref", "event", "carrier", "tracking_number", "tracking_url", "detail")
REQUIRED = ("item_ref", "event")
SIGNATURE_HEADER = "X-Giftq-Signature"
MAX_FILE_BYTES = 5_000_000
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_TRACKING = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 -]{0,63}$")


@dataclass(frozen=True, slots=True)
class VendorReport:
    """One row of a report, checked for shape (not yet against our rows)."""

    row: int
    item_ref: str
    event: ReportEvent
    carrier: str | None = None
    tracking_number: str | None = None
    tracking_url: str | None = None
    detail: str | None = None


@dataclass(frozen=True, slots=True)
class Applied:
    """What a report changed."""

    changed: tuple[str, ...] = ()
    """Item refs whose card moved on (shipped, or voided and replaced)."""
    unchanged: tuple[str, ...] = ()
    """Item refs reported the same way before: nothing to do."""
    replacements: dict[str, int] = field(default_factory=dict)
    """For a lost or damaged card: its item ref -> the new delivery, in the next batch."""


class _Refusal(Exception):
    """One row cannot be applied; the message is the reason."""


# --- parsing ------------------------------------------------------------------------------


def _text(record: Mapping[str, Any], name: str, limit: int) -> str | None:
    value = record.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Refusal(f"{name} must be text")
    value = value.strip()
    if not value:
        return None
    if len(value) > limit:
        raise _Refusal(f"{name} is longer than {limit} characters")
    if _CONTROL.search(value):
        raise _Refusal(f"{name} holds control characters or line breaks")
    return value


def _parse_record(row: int, record: Mapping[str, Any]) -> VendorReport:
    unknown = sorted(set(record) - set(COLUMNS))
    if unknown:
        raise _Refusal(f"unknown fields {', '.join(unknown)} (known: {', '.join(COLUMNS)})")
    ref = _text(record, "item_ref", 64)
    event_text = _text(record, "event", 16)
    if ref is None:
        raise _Refusal("item_ref is missing")
    if event_text is None:
        raise _Refusal("event is missing")
    try:
        event = ReportEvent(event_text.lower())
    except ValueError:
        raise _Refusal(f"unknown event {event_text!r} (known: shipped, lost, damaged)") from None
    carrier = _text(record, "carrier", 40)
    tracking = _text(record, "tracking_number", 64)
    url = _text(record, "tracking_url", 500)
    detail = _text(record, "detail", 500)
    if event is ReportEvent.SHIPPED:
        if carrier is None or tracking is None:
            raise _Refusal("a shipped card needs carrier and tracking_number")
        if not _TRACKING.match(tracking):
            raise _Refusal("tracking_number must be letters, digits, spaces and dashes")
        if url is not None and (not url.startswith("https://") or " " in url):
            raise _Refusal("tracking_url must be an https:// URL")
    else:
        carrier = tracking = url = None
    return VendorReport(row, ref, event, carrier, tracking, url, detail)


def parse_records(
    records: Iterable[tuple[int, Mapping[str, Any]]],
) -> tuple[list[VendorReport], list[RowProblem]]:
    """Check the shape of each ``(row number, record)``; a bad one becomes a :class:`RowProblem`."""
    reports: list[VendorReport] = []
    problems: list[RowProblem] = []
    for number, record in records:
        try:
            reports.append(_parse_record(number, record))
        except _Refusal as exc:
            problems.append(RowProblem(number, _shown(record.get("item_ref")), str(exc)))
    if not reports and not problems:
        problems.append(RowProblem(0, "", "the report has no rows"))
    return reports, problems


def _shown(value: object) -> str:
    """A value from the report, safe to echo back (redacted, one line, short)."""
    return redact(_CONTROL.sub(" ", str(value)))[:64] if isinstance(value, str) else ""


def parse_csv(data: bytes) -> tuple[list[VendorReport], list[RowProblem]]:
    if len(data) > MAX_FILE_BYTES:
        return [], [RowProblem(0, "", f"the file is larger than {MAX_FILE_BYTES} bytes")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return [], [RowProblem(0, "", "the file is not UTF-8")]
    reader = csv.DictReader(io.StringIO(text, newline=""), strict=True)
    records: list[tuple[int, Mapping[str, Any]]] = []
    problems: list[RowProblem] = []
    try:
        header = reader.fieldnames or []
        missing = [c for c in REQUIRED if c not in header]
        unknown = [c for c in header if c not in COLUMNS]
        if missing or unknown:
            why = [f"lacks {', '.join(missing)}"] if missing else []
            why += [f"has unknown columns {', '.join(map(_shown, unknown))}"] if unknown else []
            return [], [RowProblem(0, "", f"the header {' and '.join(why)} (columns: {', '.join(COLUMNS)})")]
        for number, record in enumerate(reader, start=1):
            if None in record:
                problems.append(RowProblem(number, _shown(record.get("item_ref")), "more cells than columns"))
            else:
                records.append((number, record))
    except csv.Error as exc:
        return [], [RowProblem(reader.line_num, "", f"not CSV: {exc}")]
    if problems and not records:
        return [], problems
    reports, more = parse_records(records)
    return reports, problems + more


def parse_json(payload: Any) -> tuple[list[VendorReport], list[RowProblem]]:
    if not isinstance(payload, dict) or not isinstance(payload.get("reports"), list):
        return [], [RowProblem(0, "", 'the body must be {"reports": [...]}')]
    records = payload["reports"]
    if not all(isinstance(r, dict) for r in records):
        return [], [RowProblem(0, "", "each report must be an object")]
    return parse_records(enumerate(records, start=1))


# --- applying -----------------------------------------------------------------------------


def apply(
    session: Session,
    reports: Iterable[VendorReport],
    problems: Iterable[RowProblem] = (),
    *,
    source: str,
) -> Applied:
    """Apply every report in the caller's transaction, or raise :class:`ReportRefused`.

    On a refusal the caller's transaction must be rolled back (a ``with
    sessions.begin()`` block does it): rows before the refused one were applied in it.
    Every row is checked, so that the refusal names all the problems at once.
    """
    refused = list(problems)
    changed: list[str] = []
    unchanged: list[str] = []
    replacements: dict[str, int] = {}
    now = utcnow()
    for report in reports:
        savepoint = session.begin_nested()
        try:
            replacement = _apply_one(session, report, source=source, now=now)
        except _Refusal as exc:
            savepoint.rollback()
            refused.append(RowProblem(report.row, _shown(report.item_ref), str(exc)))
            continue
        savepoint.commit()
        if replacement is None:
            unchanged.append(report.item_ref)
            continue
        changed.append(report.item_ref)
        if replacement:
            replacements[report.item_ref] = replacement
    if refused:
        raise ReportRefused(sorted(refused, key=lambda p: p.row))
    return Applied(tuple(changed), tuple(unchanged), replacements)


def _apply_one(session: Session, report: VendorReport, *, source: str, now: dt.datetime) -> int | None:
    """Apply one report; returns None if it changed nothing, else the replacement delivery
    id of a lost card (0 for a shipment)."""
    delivery_id = parse_item_ref(report.item_ref)
    found = None
    if delivery_id is not None:
        found = session.execute(
            select(Delivery, Order)
            .join(Order, Delivery.order_id == Order.id)
            .where(
                Delivery.id == delivery_id,
                Delivery.channel == Channel.PHYSICAL,
                Delivery.kind == DeliveryKind.GIFT,
            )
            .with_for_update(of=Delivery)
            .execution_options(populate_existing=True)
        ).one_or_none()
    if found is None:
        raise _Refusal("unknown item_ref: no physical card of ours has it")
    delivery, order = found
    earlier = {
        r.event: r
        for r in session.scalars(select(FulfilmentReport).where(FulfilmentReport.delivery_id == delivery.id))
    }
    shipped = earlier.get(ReportEvent.SHIPPED)
    if report.event in earlier:
        if (
            shipped is not None
            and report.event is ReportEvent.SHIPPED
            and not _same_shipment(shipped, report)
        ):
            raise _Refusal(f"already shipped with {shipped.carrier} {shipped.tracking_number}")
        return None  # the same report again
    if shipped is not None:
        when = f"{shipped.created_at:%Y-%m-%d}"
        raise _Refusal(f"already shipped with {shipped.carrier} {shipped.tracking_number} on {when}")
    if earlier:
        lost = next(iter(earlier))
        raise _Refusal(f"reported {lost} before: its card was voided and replaced")
    if delivery.status != S.SENT:
        raise _Refusal(f"not with the vendor: the delivery is {delivery.status}")
    session.add(
        FulfilmentReport(
            delivery_id=delivery.id,
            event=report.event,
            carrier=report.carrier,
            tracking_number=report.tracking_number,
            tracking_url=report.tracking_url,
            detail=report.detail,
            source=source[:200],
            created_at=now,
        )
    )
    if report.event is ReportEvent.SHIPPED:
        return _shipped(session, delivery, order, report, now)
    return _lost(session, delivery, order, report, now)


def _same_shipment(shipped: FulfilmentReport, report: VendorReport) -> bool:
    return (shipped.carrier, shipped.tracking_number) == (report.carrier, report.tracking_number)


def _shipped(
    session: Session, delivery: Delivery, order: Order, report: VendorReport, now: dt.datetime
) -> int:
    try:
        activate_card(
            session, delivery.card_id or 0, idempotency_key=f"giftq:fulfilment:shipped:{delivery.id}"
        )
    except LedgerError as exc:
        raise _Refusal(f"its card cannot be activated: {exc}") from None
    lifecycle.reported(
        session,
        delivery,
        order,
        delivered=True,
        now=now,
    )
    return 0


def _lost(session: Session, delivery: Delivery, order: Order, report: VendorReport, now: dt.datetime) -> int:
    what = f"{report.event} at the vendor" + (f": {report.detail}" if report.detail else "")
    try:
        return replace_card(session, delivery, order, what=what, now=now)
    except (DeliveryError, LedgerError) as exc:
        raise _Refusal(str(exc)) from None


def replace_card(session: Session, delivery: Delivery, order: Order, *, what: str, now: dt.datetime) -> int:
    """A card that will never reach its recipient: void it, and send a new one in the
    next batch. Returns the new delivery's id (0 when the line has a newer card already).

    Raises what :func:`delivery.ops.actions.reissue` raises (a redeemed card, a send in
    flight); the caller's transaction must then be rolled back.
    """
    if delivery.status == S.SENT:
        # The vendor had it and gave it back: final for this delivery, no failure notice
        # (the purchaser hears when the replacement ships).
        lifecycle.reported(session, delivery, order, delivered=False, response=what, notify=False, now=now)
    line = session.get_one(OrderLine, delivery.line_id)
    if line.card_id != delivery.card_id:
        # Reissued meanwhile: the line's newer card stands; make sure this one is dead.
        if delivery.card_id is not None and get_card(session, delivery.card_id).status != CardStatus.VOIDED:
            void_card(session, delivery.card_id, idempotency_key=f"giftq:fulfilment:void:{delivery.card_id}")
        return 0
    return actions.reissue(session, line.id).id


# --- the two doors ------------------------------------------------------------------------


def apply_csv(session: Session, data: bytes, *, source: str) -> Applied:
    reports, problems = parse_csv(data)
    return apply(session, reports, problems, source=source)


def verify_signature(body: bytes, signature: str | None) -> None:
    """Raise :class:`BadSignature` unless ``signature`` is ``sha256=<hex HMAC of body>``."""
    secret = get_settings().fulfilment_callback_secret
    if secret is None:
        raise FulfilmentConfigError("GIFTQ_FULFILMENT_CALLBACK_SECRET is not set: callbacks are refused")
    expected = "sha256=" + hmac.new(secret.get_secret_value().encode(), body, hashlib.sha256).hexdigest()
    if not signature or not hmac.compare_digest(expected, signature.strip()):
        raise BadSignature(f"{SIGNATURE_HEADER} does not match the body")


def handle_callback(session: Session, body: bytes, signature: str | None) -> Applied:
    """The vendor's report callback: verify, parse, apply (or raise; nothing changed then).

    The HTTP API answers :class:`BadSignature` with 401, :class:`ReportRefused` with 422
    and its ``problems``, and an :class:`Applied` with 200.
    """
    verify_signature(body, signature)
    try:
        payload = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ReportRefused([RowProblem(0, "", "the body is not JSON")]) from None
    reports, problems = parse_json(payload)
    return apply(session, reports, problems, source="callback")


@dataclass(frozen=True, slots=True)
class FileResult:
    name: str
    applied: Applied | None
    """None when the file was refused."""
    problems: tuple[RowProblem, ...] = ()


def inbox_dir() -> Path:
    settings = get_settings()
    return settings.fulfilment_inbox_dir or settings.data_dir / "fulfilment" / "inbox"


def process_inbox(sessions: sessionmaker[Session], directory: Path | None = None) -> list[FileResult]:
    """Apply every complete report file in the inbox, each all or nothing, oldest name first."""
    directory = directory or inbox_dir()
    if not directory.is_dir():
        return []
    results = []
    for path in sorted(p for p in directory.glob("*.csv") if p.is_file() and not p.name.startswith(".")):
        data = path.read_bytes()
        try:
            with sessions.begin() as session:
                applied = apply_csv(session, data, source=f"inbox:{path.name}")
        except ReportRefused as exc:
            refused = _move(path, directory / "refused")
            refused.with_name(refused.name + ".errors.txt").write_text(
                "".join(f"{p}\n" for p in exc.problems), encoding="utf-8"
            )
            log.warning("fulfilment report %s refused, nothing changed: %s", path.name, exc)
            results.append(FileResult(path.name, None, exc.problems))
            continue
        # Moved after the commit: a crash in between applies the file again, which
        # changes nothing the second time.
        _move(path, directory / "done")
        log.info(
            "fulfilment report %s: %d changed, %d already known",
            path.name,
            len(applied.changed),
            len(applied.unchanged),
        )
        results.append(FileResult(path.name, applied))
    return results


def _move(path: Path, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / path.name
    if target.exists():
        target = folder / f"{path.stem}.{utcnow():%Y%m%dT%H%M%S%f}{path.suffix}"
    path.rename(target)
    return target
