"""The promises a fault run proves, each a function that reads what happened and answers
a :class:`Check`: passed or not, its figures, and the first problems it saw.

What each reads: the database (orders, lines, deliveries, the ledger), what the doors
answered, the messages the relay accepted (files), the texts the provider accepted,
and the batches in the fulfilment drop folder (opened with the vendor's key).
"""

from __future__ import annotations

import base64
import csv
import email
import email.policy
import io
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nacl.public import PrivateKey, SealedBox
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bench.fault_doors import DoorOutcome
from bench.fault_orders import PlannedOrder
from bench.fault_scan import ScanReport, codes_in, normalized
from bench.fault_servers import Received
from delivery.channels.email.message import message_id_for
from delivery.channels.physical.manifest import parse_item_ref
from delivery.models import Delivery, DeliveryKind, Order, OrderLine, OrderStatus
from delivery.states import DeliveryStatus as S
from ledger import reconcile, reveal_codes
from ledger.models import Account, Card, Entry

SHOWN_PROBLEMS = 5
DONE = (S.SENT, S.DELIVERED)


@dataclass
class Check:
    """One promise: kept or not, with its figures and the first problems found."""

    name: str
    ok: bool
    figures: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def line(self) -> str:
        figures = ", ".join(f"{k} {v}" for k, v in self.figures.items())
        shown = "".join(f"\n      {p}" for p in self.problems[:SHOWN_PROBLEMS])
        more = (
            f"\n      ... and {len(self.problems) - SHOWN_PROBLEMS} more"
            if len(self.problems) > SHOWN_PROBLEMS
            else ""
        )
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {figures}{shown}{more}"


def _check(name: str, problems: list[str], **figures: Any) -> Check:
    return Check(name, not problems, figures, problems)


# --- orders ------------------------------------------------------------------------------


def orders_check(
    session: Session,
    planned: Sequence[PlannedOrder],
    outcomes: dict[str, DoorOutcome],
    worker_logs: str,
    client_imported_giftq: bool | None,
) -> Check:
    """Every order completed or failed with a reason; every malformed one refused with one."""
    rows = {o.reference: o for o in session.scalars(select(Order).where(Order.reference.like("FR-%")))}
    problems: list[str] = []
    statuses: Counter[str] = Counter()
    refused_by = Counter[str]()
    for plan in planned:
        outcome, row = outcomes[plan.key], rows.get(plan.reference)
        if not plan.valid:
            refused = outcome.refused or _refusal(worker_logs, outcome.task_id)
            if row is not None:
                problems.append(f"{plan.reference}: malformed, yet stored (order {row.id})")
            elif not refused:
                problems.append(f"{plan.reference}: malformed, and the {plan.door} door gave no reason")
            else:
                refused_by[plan.door] += 1
            continue
        if not outcome.placed:
            problems.append(
                f"{plan.reference}: the {plan.door} door could not place it ({outcome.errors[-3:]})"
            )
        elif row is None:
            problems.append(f"{plan.reference}: placed through {plan.door}, but no order in the database")
        else:
            statuses[row.status] += 1
            if row.status == OrderStatus.FAILED and not row.error:
                problems.append(f"{plan.reference}: failed without a reason")
            elif row.status not in (OrderStatus.ISSUED, OrderStatus.FAILED):
                problems.append(f"{plan.reference}: still {row.status}")
    if client_imported_giftq is not False:
        problems.append(f"the Celery client imported giftq (or never said): {client_imported_giftq}")
    retried = sum(1 for o in outcomes.values() if o.tries > 1)
    return _check(
        "every order processed or refused with a reason",
        problems,
        orders=len(planned),
        **{k: v for k, v in sorted(statuses.items())},
        refused=sum(refused_by.values()),
        placed_after_a_retry=retried,
    )


def _refusal(worker_logs: str, task_id: str | None) -> str:
    """The Celery door's refusal: the worker's log line naming the task (the client printed its id)."""
    if not task_id:
        return ""
    return next((line for line in worker_logs.splitlines() if f"{task_id} refused" in line), "")


# --- cards and the ledger -----------------------------------------------------------------


def cards_check(session: Session) -> Check:
    """Cards issued equal order lines, none twice; each card's issuance posted exactly once."""
    problems: list[str] = []
    lines = session.execute(
        select(OrderLine.id, OrderLine.card_id, OrderLine.amount, Order.status)
        .join(Order, Order.id == OrderLine.order_id)
        .where(Order.reference.like("FR-%"))
    ).all()
    issued_lines = [row for row in lines if row.status == OrderStatus.ISSUED]
    card_ids = [row.card_id for row in issued_lines if row.card_id is not None]
    cards = session.scalar(select(func.count()).select_from(Card)) or 0
    if len(card_ids) != len(issued_lines):
        problems.append(f"{len(issued_lines) - len(card_ids)} lines of issued orders have no card")
    twice = [card for card, n in Counter(card_ids).items() if n > 1]
    problems += [f"card {card} is on two lines" for card in twice]
    if cards != len(issued_lines):
        problems.append(f"{cards} cards in the ledger for {len(issued_lines)} lines of issued orders")
    # One entry per card account (the issuance), for exactly the line's amount.
    per_card = dict(
        session.execute(
            select(Card.id, func.count(Entry.id))
            .join(Account, Account.id == Card.account_id)
            .join(Entry, Entry.account_id == Account.id)
            .group_by(Card.id)
        ).all()
    )
    balances = dict(
        session.execute(select(Card.id, Account.balance).join(Account, Account.id == Card.account_id)).all()
    )
    for row in issued_lines:
        if row.card_id is None:
            continue
        if per_card.get(row.card_id) != 1:
            problems.append(f"card {row.card_id}: {per_card.get(row.card_id, 0)} ledger entries, not 1")
        if balances.get(row.card_id) != row.amount:
            problems.append(
                f"card {row.card_id}: balance {balances.get(row.card_id)}, line amount {row.amount}"
            )
    return _check(
        "cards issued equal order lines, none twice, each posted once",
        problems,
        lines=len(issued_lines),
        cards=cards,
        distinct=len(set(card_ids)),
    )


def ledger_check(session: Session) -> Check:
    report = reconcile(session)
    figures = {t.currency: f"cards {t.card} funding {t.funding} sum {t.total}" for t in report.currencies}
    return _check(
        "ledger reconciles (zero-sum, balances equal entries, none negative)",
        list(report.problems),
        **figures,
    )


# --- gifts --------------------------------------------------------------------------------


@dataclass
class Accepted:
    """What each channel accepted, by delivery id: how many times, and with the right code."""

    times: Counter[int] = field(default_factory=Counter)
    wrong_code: list[str] = field(default_factory=list)


def issued_codes(session: Session) -> dict[int, str]:
    """Card id -> normalized code, decrypted from the database with the run's keys."""
    ids = list(session.scalars(select(Card.id)))
    found: dict[int, str] = {}
    for start in range(0, len(ids), 1000):
        for card_id, code in reveal_codes(session, ids[start : start + 1000]).items():
            found[card_id] = normalized(code.reveal())
    return found


def accepted_emails(session: Session, received: Iterable[Received], codes: dict[int, str]) -> Accepted:
    """Messages the relay took, matched to deliveries by Message-ID (which no column
    stores: it is made again from each delivery's id and creation time)."""
    by_message_id: dict[str, Delivery] = {}
    for delivery in session.scalars(select(Delivery).where(Delivery.channel.in_(["email", "printable"]))):
        by_message_id[f"<{message_id_for(delivery.id, delivery.created_at)}>"] = delivery
    accepted = Accepted()
    for item in received:
        message = email.message_from_bytes(item.path.read_bytes(), policy=email.policy.default)
        found = by_message_id.get(str(message.get("Message-ID", "")).strip())
        if found is None or (found.to_address or "").lower() not in item.rcpts:
            continue
        delivery = found
        accepted.times[delivery.id] += 1
        if (
            delivery.kind == DeliveryKind.GIFT
            and delivery.channel == "email"
            and delivery.card_id is not None
        ):
            body = message.get_body(preferencelist=("plain",))
            if codes.get(delivery.card_id) not in codes_in(
                str(body.get_content()) if body else "", {codes.get(delivery.card_id, "")}
            ):
                accepted.wrong_code.append(f"delivery {delivery.id}: the gift email lacks its card's code")
    return accepted


def accepted_texts(session: Session, texts: Iterable[dict[str, Any]], codes: dict[int, str]) -> Accepted:
    card_of_code = {code: card for card, code in codes.items()}
    gifts = {
        d.card_id: d
        for d in session.scalars(select(Delivery).where(Delivery.channel == "sms", Delivery.kind == "gift"))
    }
    accepted = Accepted()
    for text in texts:
        for code in codes_in(text["body"], set(card_of_code)):
            delivery = gifts.get(card_of_code[code])
            if delivery is not None and delivery.to_address == text["to"]:
                accepted.times[delivery.id] += 1
            else:
                accepted.wrong_code.append(
                    f"a text to {text['to']} holds a code that is not that number's gift"
                )
    return accepted


def accepted_cards(drop: Path, vendor: PrivateKey, session: Session, codes: dict[int, str]) -> Accepted:
    """Physical cards in complete batch folders, each sealed code opened with the vendor's key."""
    cards = {d.id: d.card_id for d in session.scalars(select(Delivery).where(Delivery.channel == "physical"))}
    accepted = Accepted()
    folders = (
        sorted(p for p in drop.iterdir() if p.is_dir() and not p.name.startswith("."))
        if drop.is_dir()
        else []
    )
    for folder in folders:
        text = (folder / "manifest.csv").read_bytes().decode("utf-8")
        for row in csv.DictReader(io.StringIO(text, newline="")):
            delivery_id = parse_item_ref(row["item_ref"])
            if delivery_id is None or delivery_id not in cards:
                accepted.wrong_code.append(f"{folder.name}: unknown item {row['item_ref']}")
                continue
            opened = SealedBox(vendor).decrypt(base64.b64decode(row["code_sealed"])).decode("ascii")
            if normalized(opened) != codes.get(cards[delivery_id] or 0):
                accepted.wrong_code.append(f"{folder.name}: {row['item_ref']} holds another card's code")
            accepted.times[delivery_id] += 1
    return accepted


def gifts_check(session: Session, accepted: dict[str, Accepted], planned_failures: set[str]) -> Check:
    """Every gift accepted by its channel at least once; duplicates only where a worker
    died mid-send (the delivery counts a possible duplicate); failures only where planned."""
    problems: list[str] = []
    duplicates: Counter[str] = Counter()
    unflagged = 0
    gifts = list(session.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.GIFT)))
    sent: Counter[str] = Counter()
    failed = 0
    for gift in gifts:
        times = accepted[gift.channel].times[gift.id]
        if gift.status in DONE:
            sent[gift.channel] += 1
            if times == 0:
                problems.append(
                    f"{gift.channel} gift {gift.id} is {gift.status} but its channel never took it"
                )
        elif gift.status == S.FAILED_PERMANENT:
            failed += 1
            if (gift.to_address or "") not in planned_failures:
                problems.append(
                    f"{gift.channel} gift {gift.id} to {gift.to_address} failed for good: {gift.last_error}"
                )
        else:
            problems.append(f"{gift.channel} gift {gift.id} is still {gift.status}")
        if times > 1:
            duplicates[gift.channel] += times - 1
            if gift.possible_duplicates == 0:
                unflagged += 1
                problems.append(
                    f"{gift.channel} gift {gift.id} went out {times} times and counts no duplicate"
                )
    for seen in {id(a): a for a in accepted.values()}.values():  # email and printable share one
        problems += seen.wrong_code
    flagged = sum(1 for g in gifts if g.possible_duplicates > 0)
    return _check(
        "every gift accepted by its channel at least once",
        problems,
        gifts=len(gifts),
        **{f"sent_{c}": n for c, n in sorted(sent.items())},
        failed_as_planned=failed,
        duplicates=sum(duplicates.values()),
        **{f"duplicates_{c}": n for c, n in sorted(duplicates.items())},
        flagged_possible_duplicates=flagged,
    )


def notices_check(session: Session, accepted: Accepted) -> Check:
    """Every failure told to the purchaser: a failure notice, sent and taken by the relay."""
    problems: list[str] = []
    failed = list(
        session.scalars(
            select(Delivery).where(Delivery.kind == DeliveryKind.GIFT, Delivery.status == S.FAILED_PERMANENT)
        )
    )
    notices = defaultdict(list)
    for notice in session.scalars(select(Delivery).where(Delivery.kind == DeliveryKind.FAILED_NOTICE)):
        notices[notice.parent_id].append(notice)
    told = 0
    for gift in failed:
        sent = [n for n in notices[gift.id] if n.status in DONE and accepted.times[n.id] > 0]
        if sent:
            told += 1
        else:
            problems.append(f"gift {gift.id} failed for good; its purchaser was not told")
    receipts = session.execute(
        select(Delivery.status, func.count())
        .where(Delivery.kind == DeliveryKind.CONFIRMATION)
        .group_by(Delivery.status)
    ).all()
    pending = sum(n for status, n in receipts if status not in DONE)
    if pending:
        problems.append(f"{pending} order receipts not sent")
    return _check(
        "every failure told to the purchaser",
        problems,
        failed_gifts=len(failed),
        told=told,
        receipts_sent=sum(n for s, n in receipts if s in DONE),
    )


def memory_check(samples: dict[str, tuple[int, int]], *, factor: float = 2.0, slack_mb: int = 150) -> Check:
    """Each worker's processes' resident memory at the start and the end of the run."""
    problems = []
    figures = {}
    for worker, (start, end) in samples.items():
        figures[worker] = f"{start / 2**20:.0f}->{end / 2**20:.0f} MB"
        if end > max(start * factor, start + slack_mb * 2**20):
            problems.append(f"{worker}: {start / 2**20:.0f} MB at the start, {end / 2**20:.0f} MB at the end")
    return _check(
        f"worker memory bounded (end <= max({factor}x start, start + {slack_mb} MB))", problems, **figures
    )


def secrets_check(report: ScanReport, codes: int) -> Check:
    problems = [f"{n} claim codes found in {place}" for place, n in report.found.items()]
    return _check(
        "no claim code outside the gifts and the sealed manifest",
        problems,
        codes=codes,
        **{place: f"{n} scanned" for place, n in report.scanned.items()},
    )


def settle_check(seconds: float | None, bound: float) -> Check:
    problems = [] if seconds is not None else [f"still unsettled after the bound of {bound:.0f} s"]
    shown = f"{seconds:.0f} s" if seconds is not None else "never"
    return _check(
        "settled by itself (beat and the sweeper only)", problems, settled_in=shown, bound=f"{bound:.0f} s"
    )
