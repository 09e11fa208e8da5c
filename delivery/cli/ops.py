"""``giftq ops``: look up, replay, resend, reissue, cancel. Codes are always masked.

Every command is one transaction; what it queues is sent to the workers after commit
(the broker in ``GIFTQ_BROKER_URL``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from delivery import due, ops, sweeper
from delivery.errors import DeliveryError
from delivery.ops import lookups
from giftq import migrate
from giftq.db import session_factory
from ledger.marketplaces import get_marketplace

app = typer.Typer(help="Operations: orders, cards, failures, resends.", no_args_is_help=True)
console = Console(highlight=False)
_WHOLE = frozenset({"id", "order", "to", "card", "line", "amount"})


@contextmanager
def _transaction() -> Iterator[Session]:
    try:
        # Before any engine exists: a wrong data dir must not leave an empty database behind.
        migrate.require_head()
    except migrate.SchemaNotReady as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None
    try:
        with session_factory().begin() as session:
            yield session
    except DeliveryError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from None


def _money(amount: int, marketplace: str) -> str:
    market = get_marketplace(marketplace)
    if market.minor_units == 0:
        return f"{amount:,} {market.currency}"
    whole, part = divmod(amount, 10**market.minor_units)
    return f"{whole:,}.{part:0{market.minor_units}d} {market.currency}"


def _deliveries(rows: tuple[lookups.DeliveryView, ...] | list[lookups.DeliveryView], *, title: str) -> Table:
    table = Table(title=title)
    for column in ("id", "order", "kind", "status", "to", "card", "tries", "last error"):
        # Ids, addresses and masked codes are copied by hand: never wrap them.
        table.add_column(column, no_wrap=column in _WHOLE)
    for d in rows:
        table.add_row(
            str(d.id),
            str(d.order_id),
            d.kind,
            d.status,
            d.to_address or d.to_name,
            d.card or "",
            str(d.attempts) + (f" ({d.possible_duplicates} dup?)" if d.possible_duplicates else ""),
            (d.last_error or "")[:60],
        )
    return table


def _attempts(rows: tuple[lookups.DeliveryView, ...]) -> Table:
    table = Table(title="attempts")
    for column in ("delivery", "#", "outcome", "code", "answer", "at"):
        table.add_column(column)
    for d in rows:
        for a in d.log:
            table.add_row(
                str(d.id),
                str(a.number),
                a.outcome,
                str(a.code or ""),
                a.response[:60],
                f"{a.finished_at:%F %T}",
            )
    return table


@app.command()
def order(order_id: int) -> None:
    """Show an order: its lines, cards (masked), deliveries and their attempts."""
    with _transaction() as session:
        view = lookups.lookup_order(session, order_id)
    console.print(
        f"order {view.id} ({view.reference or 'no reference'}): {view.status}; "
        f"purchaser {view.purchaser_name} <{view.purchaser_email}>; placed {view.created_at:%F %T} UTC"
    )
    if view.error:
        console.print(f"error: {view.error}")
    lines = Table(title="lines")
    for column in ("line", "#", "channel", "amount", "recipient", "card", "send at"):
        lines.add_column(column, no_wrap=column in _WHOLE)
    for line in view.lines:
        lines.add_row(
            str(line.id),
            str(line.position),
            line.channel,
            _money(line.amount, line.marketplace),
            line.recipient_name,
            line.card or "not issued",
            line.send_at or "now",
        )
    console.print(lines)
    console.print(_deliveries(view.deliveries, title="deliveries"))
    console.print(_attempts(view.deliveries))


@app.command()
def card(card_id: int) -> None:
    """Show a card (masked) and every delivery of it."""
    with _transaction() as session:
        found = lookups.lookup_card(session, card_id)
    c = found.card
    console.print(
        f"card {c.card_id} {found.masked_code}: {c.status}, {_money(c.amount, c.marketplace)}, "
        f"order {found.order_id or '-'} line {found.line_id or '-'}, issued {c.issued_at:%F %T} UTC"
    )
    console.print(_deliveries(found.deliveries, title="deliveries"))
    console.print(_attempts(found.deliveries))


@app.command()
def failures(
    order_id: Annotated[int | None, typer.Option("--order", help="Only this order.")] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 100,
) -> None:
    """List deliveries that failed for good."""
    with _transaction() as session:
        rows = lookups.list_failures(session, order_id=order_id, limit=limit)
    console.print(_deliveries(rows, title=f"{len(rows)} failed deliveries"))


@app.command()
def replay(
    delivery_ids: Annotated[list[int] | None, typer.Argument(help="Deliveries to send again.")] = None,
    all_failures: Annotated[bool, typer.Option("--all", help="Every listed failure.")] = False,
    order_id: Annotated[int | None, typer.Option("--order", help="With --all: only this order.")] = None,
) -> None:
    """Queue failed deliveries again (after fixing their cause)."""
    if not delivery_ids and not all_failures:
        typer.echo("error: name delivery ids, or --all", err=True)
        raise typer.Exit(2)
    with _transaction() as session:
        if all_failures:
            replayed = ops.replay_failures(session, order_id=order_id)
        else:
            replayed = [ops.replay(session, d).id for d in delivery_ids or []]
    typer.echo(f"replayed {len(replayed)}: {' '.join(map(str, replayed))}".rstrip(": "))


@app.command()
def resend(
    delivery_id: int,
    email: Annotated[str | None, typer.Option(help="The corrected address (an email gift).")] = None,
    phone: Annotated[str | None, typer.Option(help="The corrected mobile number (a text gift).")] = None,
) -> None:
    """Send a gift's card again, to a corrected email address or mobile number."""
    with _transaction() as session:
        view = ops.resend(session, delivery_id, email=email, phone=phone)
    typer.echo(f"delivery {view.id} queued to {view.to_address} (card {view.card})")


@app.command()
def reissue(
    line_id: int,
    email: Annotated[str | None, typer.Option(help="Deliver the new card here instead (email).")] = None,
    phone: Annotated[str | None, typer.Option(help="Deliver the new card here instead (text).")] = None,
) -> None:
    """Void a line's card (its code went astray), issue a new one and deliver it."""
    with _transaction() as session:
        view = ops.reissue(session, line_id, email=email, phone=phone)
    typer.echo(f"new card {view.card}; delivery {view.id} {view.status} to {view.to_address or view.to_name}")


@app.command()
def cancel(order_id: int) -> None:
    """Cancel an order: stop unsent deliveries and void their cards."""
    with _transaction() as session:
        report = ops.cancel_order(session, order_id)
    typer.echo(
        f"order {order_id} cancelled: {len(report.cancelled_deliveries)} deliveries stopped, "
        f"cards voided: {' '.join(map(str, report.voided_cards)) or 'none'}; "
        f"already sent, still valid: {' '.join(map(str, report.kept_cards)) or 'none'}; "
        f"already redeemed: {' '.join(map(str, report.redeemed_cards)) or 'none'}; "
        f"voided before (reissued): {' '.join(map(str, report.already_voided_cards)) or 'none'}"
    )


@app.command()
def suppressed(limit: int = 100) -> None:
    """List addresses that no gift goes to (after a permanent failure)."""
    with _transaction() as session:
        found = lookups.list_suppressed(session, limit=limit)
        rows = [(r.address, r.code, r.response, r.created_at) for r in found]
    table = Table(title=f"{len(rows)} suppressed addresses")
    for column in ("address", "code", "answer", "since"):
        table.add_column(column)
    for address, code, response, since in rows:
        table.add_row(address, str(code or ""), response[:60], f"{since:%F %T}")
    console.print(table)


@app.command()
def unsuppress(address: str) -> None:
    """Let gifts go to ADDRESS again."""
    with _transaction() as session:
        cleared = ops.unsuppress(session, address)
    typer.echo(f"{address} cleared" if cleared else f"{address} was not suppressed")


@app.command()
def sweep() -> None:
    """Run the sweeper and the due dispatcher once, now (beat does it periodically)."""
    with _transaction() as session:
        report = sweeper.sweep(session)
        released = due.release_due(session)
    typer.echo(
        f"re-enqueued {report.orders} orders and {report.queued} deliveries; "
        f"recovered {report.recovered} interrupted sends ({report.abandoned} given up); "
        f"released {len(released)} due deliveries"
    )
