"""``giftq ops``: look up, replay, resend, reissue, reinstate, swap, cancel, expire, the held
orders and their fraud review; and the audit log of it all.

Codes are always masked. Every command prints a table (``--json`` for scripts); every
action is one transaction with its audit row, sent to the workers after commit (the
broker in ``GIFTQ_BROKER_URL``), asks before it cancels, voids or sends (or takes
``--yes``), and shows what it would do with ``--dry-run``. See :mod:`delivery.cli.runner`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated

import typer
from rich.console import RenderableType
from sqlalchemy.orm import Session

from delivery import due, ops, sweeper
from delivery.cli.output import Column, emit_json, money, report_action, say, show, table, when
from delivery.cli.runner import ActorOption, DebugOption, DryRunOption, JsonOption, YesOption, act, reading
from delivery.expiry import jobs as expiry_jobs
from delivery.ops import audit, lookups, swaps
from giftq.db import utcnow

app = typer.Typer(help="Operations: orders, cards, failures, resends.", no_args_is_help=True)

MAX_ID_DIGITS = 12
"""A card argument of more digits than this is a code typed without dashes, not an id."""


def _deliveries(rows: Sequence[lookups.DeliveryView], *, title: str) -> RenderableType:
    columns = [
        Column("id", whole=True),
        Column("order", whole=True),
        Column("kind"),
        Column("status"),
        Column("to", whole=True),
        Column("card", whole=True),
        Column("tries"),
        Column("last error"),
    ]
    return table(
        title,
        columns,
        [
            [
                str(d.id),
                str(d.order_id),
                d.kind,
                d.status,
                d.to_address or d.to_name,
                d.card or "",
                str(d.attempts) + (f" ({d.possible_duplicates} dup?)" if d.possible_duplicates else ""),
                (d.last_error or "")[:120],
            ]
            for d in rows
        ],
    )


def _attempts(rows: Sequence[lookups.DeliveryView]) -> RenderableType:
    columns = [
        Column("delivery", whole=True),
        Column("#"),
        Column("outcome"),
        Column("code"),
        Column("answer"),
        Column("at", whole=True),
    ]
    return table(
        "attempts",
        columns,
        [
            [str(d.id), str(a.number), a.outcome, str(a.code or ""), a.response[:120], when(a.finished_at)]
            for d in rows
            for a in d.log
        ],
    )


def _delivery_line(view: lookups.DeliveryView) -> str:
    return f"delivery {view.id} {view.status} to {view.to_address or view.to_name} (card {view.card})"


# --- look-ups -----------------------------------------------------------------------------


@app.command()
def order(
    order: Annotated[str, typer.Argument(help="The order's id, or the storefront's reference.")],
    reference: Annotated[
        bool, typer.Option("--ref", help="ORDER is a reference even if it is all digits.")
    ] = False,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show an order: its lines, cards (masked), deliveries and their attempts."""
    with reading(debug=debug) as session:
        if order.isdigit() and not reference:
            view = lookups.lookup_order(session, int(order))
        else:
            view = lookups.lookup_order_by_reference(session, order)
    if json:
        emit_json(view)
        return
    say(
        f"order {view.id} ({view.reference or 'no reference'}): {view.status}; "
        f"purchaser {view.purchaser_name} <{view.purchaser_email}>; placed {when(view.created_at)} UTC"
    )
    if view.error:
        say(f"error: {view.error}")
    lines = table(
        "lines",
        [
            Column("line", whole=True),
            Column("#"),
            Column("channel"),
            Column("amount", whole=True),
            Column("recipient"),
            Column("card", whole=True),
            Column("send at"),
        ],
        [
            [
                str(line.id),
                str(line.position),
                line.channel,
                money(line.amount, line.marketplace),
                line.recipient_name,
                line.card or "not issued",
                line.send_at or "now",
            ]
            for line in view.lines
        ],
    )
    show(lines, _deliveries(view.deliveries, title="deliveries"), _attempts(view.deliveries))


def _read_code() -> str:
    # Hidden, so that the code stays out of the terminal's scrollback and the shell history.
    code: str = typer.prompt("code", hide_input=True, err=True)
    return code


@app.command()
def card(
    card: Annotated[
        str | None, typer.Argument(help="The card's id, or its code as typed or pasted.", show_default=False)
    ] = None,
    code: Annotated[
        bool, typer.Option("--code", help="Ask for the code (hidden; or read it from stdin).")
    ] = False,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Show a card (masked): state, amount, every delivery and attempt, who redeemed it."""
    if (card is None) == (not code):
        typer.echo("error: name a card id or code, or --code (and not both)", err=True)
        raise typer.Exit(2)
    typed = _read_code() if code else (card or "")
    with reading(debug=debug) as session:
        if not code and typed.strip().isdigit() and len(typed.strip()) <= MAX_ID_DIGITS:
            found = lookups.lookup_card(session, int(typed))
        else:
            found = lookups.lookup_card_by_code(session, typed)
    if json:
        emit_json(found)
        return
    c = found.card
    say(
        f"card {c.card_id} {found.masked_code}: {c.status}, {money(c.amount, c.marketplace)}, "
        f"marketplace {c.marketplace}, order {found.order_id or '-'} line {found.line_id or '-'}, "
        f"issued {when(c.issued_at)} UTC"
    )
    if c.activated_at:
        say(f"activated {when(c.activated_at)} UTC")
    if c.redeemed_at:
        say(f"redeemed {when(c.redeemed_at)} UTC into account {found.redeemed_by}")
    if c.voided_at:
        say(f"voided {when(c.voided_at)} UTC")
    say(
        f"{c.origin}; "
        + (f"expires {when(c.expires_at)} UTC" if c.expires_at else "does not expire")
        + (f"; expired {when(c.expired_at)} UTC (giftq ops reinstate {c.card_id})" if c.expired_at else "")
        + (f"; replaces card {c.replaces_card_id}" if c.replaces_card_id else "")
    )
    show(_deliveries(found.deliveries, title="deliveries"), _attempts(found.deliveries))


@app.command()
def failures(
    order_id: Annotated[int | None, typer.Option("--order", help="Only this order.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """List deliveries that failed for good, then those waiting for a channel's back end."""
    with reading(debug=debug) as session:
        rows = lookups.list_failures(session, order_id=order_id, limit=limit)
    if json:
        emit_json(rows)
        return
    show(_deliveries(rows, title=f"{len(rows)} failed deliveries"))


@app.command()
def held(
    limit: Annotated[int, typer.Option(help="At most this many, oldest first.")] = 100,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """List held orders (awaiting payment, in review): what each waits for, and its gifts' days.

    A held order's gifts are not sent, even on their day: "overdue" counts those whose
    send time has passed, "soon" flags a gift due within a day."""
    now = utcnow()
    with reading(debug=debug) as session:
        rows = ops.list_held(session, now=now, limit=limit)
    if json:
        emit_json(rows)
        return
    columns = [
        Column("order", whole=True),
        Column("status"),
        Column("purchaser", whole=True),
        Column("placed", whole=True),
        Column("pay by", whole=True),
        Column("cards"),
        Column("first gift", whole=True),
        Column("gifts"),
    ]
    cells = [
        [
            str(r.id),
            r.status,
            r.purchaser_email,
            when(r.created_at),
            when(r.payment_due_at) if r.payment == "pending" else "",
            str(r.lines),
            when(r.first_scheduled_at) or "at once",
            f"{r.overdue_gifts} overdue" if r.overdue_gifts else ("due soon" if r.due_soon else ""),
        ]
        for r in rows
    ]
    show(table(f"{len(rows)} held orders (times UTC)", columns, cells))


@app.command()
def suppressed(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """List addresses that no gift goes to (after a permanent failure)."""
    with reading(debug=debug) as session:
        rows = [
            lookups.SuppressedView(r.address, r.code, r.response, r.created_at)
            for r in lookups.list_suppressed(session, limit=limit)
        ]
    if json:
        emit_json(rows)
        return
    columns = [Column("address", whole=True), Column("code"), Column("answer"), Column("since", whole=True)]
    cells = [[r.address, str(r.code or ""), r.response[:120], when(r.since)] for r in rows]
    show(table(f"{len(rows)} suppressed addresses", columns, cells))


@app.command(name="audit")
def audit_log(
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """List what ops did (and were refused), newest first."""
    with reading(debug=debug) as session:
        rows = audit.recent(session, limit=limit)
    if json:
        emit_json(rows)
        return
    columns = [
        Column("id", whole=True),
        Column("at", whole=True),
        Column("actor", whole=True),
        Column("action", whole=True),
        Column("arguments"),
        Column("outcome"),
        Column("detail"),
    ]
    cells = [
        [
            str(r.id),
            when(r.at),
            r.actor,
            r.action,
            " ".join(f"{k}={v}" for k, v in r.arguments.items() if v not in (None, False, [])),
            r.outcome,
            r.detail,
        ]
        for r in rows
    ]
    show(table(f"{len(rows)} audit entries", columns, cells))


# --- actions ------------------------------------------------------------------------------


@app.command()
def replay(
    delivery_ids: Annotated[list[int] | None, typer.Argument(help="Deliveries to send again.")] = None,
    all_failures: Annotated[bool, typer.Option("--all", help="Every listed failure.")] = False,
    *,
    order_id: Annotated[int | None, typer.Option("--order", help="With --all: only this order.")] = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Queue failed deliveries again (after fixing their cause). --all asks first."""
    if not delivery_ids and not all_failures:
        typer.echo("error: name delivery ids, or --all", err=True)
        raise typer.Exit(2)

    def do(session: Session) -> list[int]:
        if all_failures:
            return ops.replay_failures(session, order_id=order_id)
        return [ops.replay(session, d).id for d in delivery_ids or []]

    def describe(ids: list[int]) -> str:
        return f"replayed {len(ids)}: {' '.join(map(str, ids))}".rstrip(": ")

    scope = f"of order {order_id}" if order_id is not None else "of every order"
    replayed = act(
        "ops replay",
        {"deliveries": delivery_ids or [], "all": all_failures, "order": order_id},
        do,
        describe,
        actor=actor,
        dry_run=dry_run,
        confirm=f"Send every listed failure {scope} again?" if all_failures else None,
        yes=yes,
        debug=debug,
    )
    report_action(json, dry_run, describe(replayed), {"replayed": replayed})


@app.command()
def resend(
    delivery_id: int,
    *,
    email: Annotated[str | None, typer.Option(help="The corrected address (an email gift).")] = None,
    phone: Annotated[str | None, typer.Option(help="The corrected mobile number (a text gift).")] = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Send a gift's card again, to a corrected email address or mobile number."""
    to = email or phone
    view = act(
        "ops resend",
        {"delivery": delivery_id, "email": email, "phone": phone},
        lambda session: ops.resend(session, delivery_id, email=email, phone=phone),
        lambda v: f"resent: {_delivery_line(v)}",
        actor=actor,
        dry_run=dry_run,
        confirm=f"Send the card of delivery {delivery_id} again, to {to}?",
        yes=yes,
        debug=debug,
    )
    report_action(json, dry_run, f"resent: {_delivery_line(view)}", view)


@app.command()
def reissue(
    line_id: int,
    *,
    email: Annotated[str | None, typer.Option(help="Deliver the new card here instead (email).")] = None,
    phone: Annotated[str | None, typer.Option(help="Deliver the new card here instead (text).")] = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Void a line's card (its code went astray), issue a new one and deliver it."""

    def describe(v: ops.DeliveryView) -> str:
        return f"issued new card {v.card}; {_delivery_line(v)}"

    view = act(
        "ops reissue",
        {"line": line_id, "email": email, "phone": phone},
        lambda session: ops.reissue(session, line_id, email=email, phone=phone),
        describe,
        actor=actor,
        dry_run=dry_run,
        confirm=f"Void the card of line {line_id} and send a new one?",
        yes=yes,
        debug=debug,
    )
    report_action(json, dry_run, describe(view), view)


@app.command()
def reinstate(
    card_id: int,
    *,
    email: Annotated[str | None, typer.Option(help="Deliver the new card here instead (email).")] = None,
    phone: Annotated[str | None, typer.Option(help="Deliver the new card here instead (text).")] = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Replace an expired card with a new code of the same value and deliver it."""

    def describe(v: ops.DeliveryView) -> str:
        return f"reinstated card {card_id} as new card {v.card}; {_delivery_line(v)}"

    view = act(
        "ops reinstate",
        {"card": card_id, "email": email, "phone": phone},
        lambda session: ops.reinstate(session, card_id, email=email, phone=phone),
        describe,
        actor=actor,
        dry_run=dry_run,
        confirm=f"Issue a new card with the value of expired card {card_id} and send it?",
        yes=yes,
        debug=debug,
    )
    report_action(json, dry_run, describe(view), view)


@app.command()
def expire(
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Expire due cards to breakage and queue due expiry reminders, now (beat does it hourly)."""

    def describe(r: expiry_jobs.ExpiryReport) -> str:
        return (
            f"expired cards: {_ids(r.expired_cards)}; unsent gifts stopped: "
            f"{_ids(r.cancelled_deliveries)}; reminders queued: {_ids(r.reminders)}"
        )

    report = act(
        "ops expire",
        {},
        lambda session: expiry_jobs.run(session, now=utcnow()),
        describe,
        actor=actor,
        dry_run=dry_run,
        debug=debug,
    )
    report_action(json, dry_run, describe(report), report)


def _ids(ids: list[int]) -> str:
    return " ".join(map(str, ids)) or "none"


@app.command()
def cancel(
    order_id: int,
    *,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Cancel an order: stop unsent deliveries and void their cards."""

    def describe(r: ops.CancelReport) -> str:
        return (
            f"cancelled order {order_id}: {len(r.cancelled_deliveries)} deliveries stopped, "
            f"cards voided: {_ids(r.voided_cards)}; already sent, still valid: {_ids(r.kept_cards)}; "
            f"already redeemed: {_ids(r.redeemed_cards)}; "
            f"voided before (reissued): {_ids(r.already_voided_cards)}; expired: {_ids(r.expired_cards)}"
        )

    report = act(
        "ops cancel",
        {"order": order_id},
        lambda session: ops.cancel_order(session, order_id),
        describe,
        actor=actor,
        dry_run=dry_run,
        confirm=f"Cancel order {order_id}, stop its unsent gifts and void their cards?",
        yes=yes,
        debug=debug,
    )
    report_action(json, dry_run, describe(report), report)


@app.command()
def unsuppress(
    address: str,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Let gifts go to ADDRESS again."""
    cleared = act(
        "ops unsuppress",
        {"address": address},
        lambda session: ops.unsuppress(session, address),
        lambda done: f"{address} cleared" if done else f"{address} was not suppressed",
        actor=actor,
        dry_run=dry_run,
        debug=debug,
    )
    text = f"{address} cleared" if cleared else f"{address} was not suppressed"
    report_action(json, dry_run, text, {"address": address, "cleared": cleared})


@app.command()
def sweep(
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Run the sweeper and the due dispatcher once, now (beat does it periodically)."""

    def do(session: Session) -> dict[str, int]:
        report = sweeper.sweep(session)
        released = due.release_due(session)
        return {
            "orders": report.orders,
            "queued": report.queued,
            "recovered": report.recovered,
            "abandoned": report.abandoned,
            "released": len(released),
        }

    def describe(r: dict[str, int]) -> str:
        return (
            f"re-enqueued {r['orders']} orders and {r['queued']} deliveries; "
            f"recovered {r['recovered']} interrupted sends ({r['abandoned']} given up); "
            f"released {r['released']} due deliveries"
        )

    result = act("ops sweep", {}, do, describe, actor=actor, dry_run=dry_run, debug=debug)
    report_action(json, dry_run, describe(result), result)


def _decide(
    action: str,
    decide: Callable[[Session, int], ops.HoldAnswer],
    order_id: int,
    *,
    confirm: str | None,
    yes: bool,
    dry_run: bool,
    actor: str | None,
    json: bool,
    debug: bool,
) -> None:
    def describe(a: ops.HoldAnswer) -> str:
        return f"order {a.order_id}: {a.status}" + ("" if a.changed else " (unchanged: it already was)")

    answer = act(
        f"ops {action}",
        {"order": order_id},
        lambda session: decide(session, order_id),
        describe,
        actor=actor,
        dry_run=dry_run,
        confirm=confirm,
        yes=yes,
        debug=debug,
    )
    report_action(json, dry_run, describe(answer), answer)


@app.command()
def review(
    order_id: int,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Hold an order for a fraud review (only before its cards are issued)."""
    _decide(
        "review",
        ops.hold_for_review,
        order_id,
        confirm=None,
        yes=True,
        dry_run=dry_run,
        actor=actor,
        json=json,
        debug=debug,
    )


@app.command()
def release(
    order_id: int,
    *,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Release an order from its fraud review: its cards are issued and sent."""
    question = f"Release order {order_id}: issue its cards and send them?"
    _decide(
        "release",
        ops.release_review,
        order_id,
        confirm=question,
        yes=yes,
        dry_run=dry_run,
        actor=actor,
        json=json,
        debug=debug,
    )


@app.command()
def reject(
    order_id: int,
    *,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Reject an order in its fraud review: cancel it (nothing was issued) and tell the purchaser."""
    question = f"Reject order {order_id}: cancel it and tell the purchaser?"
    _decide(
        "reject",
        ops.reject_review,
        order_id,
        confirm=question,
        yes=yes,
        dry_run=dry_run,
        actor=actor,
        json=json,
        debug=debug,
    )


@app.command()
def swap(
    card_id: Annotated[int, typer.Argument(metavar="CARD", help="The card's id (giftq ops card shows it).")],
    *,
    to: Annotated[str, typer.Option("--to", help="The marketplace of the new card (UK, DE, ...).")],
    email: Annotated[
        str | None, typer.Option(help="Send the new card here (default: where its email gift went).")
    ] = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    actor: ActorOption = None,
    json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Swap an unredeemed card into another marketplace at today's rate; email the new card."""
    market = to.upper()

    def describe(r: swaps.SwapReport) -> str:
        return (
            f"swapped card {r.old_card_id} ({money(r.from_amount, r.from_marketplace)}) for card "
            f"{r.new_card} ({money(r.to_amount, r.to_marketplace)}) at {r.rate}"
            f"{f' (rate of {r.rate_date})' if r.rate_date else ''}; {_delivery_line(r.delivery)}"
        )

    report = act(
        "ops swap",
        {"card": card_id, "to": market, "email": email},
        lambda session: swaps.swap(session, card_id, marketplace=market, email=email),
        describe,
        actor=actor,
        dry_run=dry_run,
        confirm=f"Void card {card_id} and send its value as a {market} card?",
        yes=yes,
        debug=debug,
    )
    report_action(json, dry_run, describe(report), report)
