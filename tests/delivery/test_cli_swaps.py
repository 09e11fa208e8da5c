"""``giftq ledger rates`` and ``giftq ops swap`` and ``giftq report liability`` through the
real CLI (both engines): rates loaded from a file all or nothing, a swap audited with its
masked new card, and the report's CSV and JSON with the purchaser's country."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from delivery.cli import app
from delivery.models import Delivery
from delivery.ops import audit
from ledger import reconcile
from ledger.swaps import list_rates

TODAY = dt.datetime.now(dt.UTC).date()


def cli(*args: str, **kwargs: Any) -> Any:
    return CliRunner().invoke(app, list(args), env={"COLUMNS": "100"}, **kwargs)


def test_rates_load_all_or_nothing_and_list(Session: sessionmaker[Session], tmp_path: Path) -> None:
    good = tmp_path / "rates.csv"
    good.write_text(f"from,to,rate,effective_from\nUSD,GBP,0.79,{TODAY}\nUSD,JPY,151.37,{TODAY}\n")
    bad = tmp_path / "bad.csv"
    bad.write_text(f"from,to,rate,effective_from\nUSD,EUR,0.92,{TODAY}\nUSD,CAD,1.2e,{TODAY}\n")

    refused = cli("ledger", "rates", "load", str(bad))
    assert refused.exit_code == 1
    assert "line 3" in refused.output and "not a decimal number" in refused.output
    with Session() as s:
        assert list_rates(s) == []

    loaded = cli("ledger", "rates", "load", str(good))
    assert (loaded.exit_code, loaded.output) == (0, "loaded 2 rates\n")
    one = cli("ledger", "rates", "set", "gbp", "usd", "1.27", "--from", str(TODAY))
    assert one.output == f"rate GBP->USD 1.27 from {TODAY}\n"
    changed = cli("ledger", "rates", "set", "USD", "GBP", "0.8", "--from", str(TODAY))
    assert changed.exit_code == 1 and "rates never change" in changed.output

    listed = json.loads(cli("ledger", "rates", "list", "--from", "USD", "--json").stdout)
    assert listed == [
        {"from": "USD", "to": "GBP", "rate": "0.79", "effective_from": str(TODAY)},
        {"from": "USD", "to": "JPY", "rate": "151.37", "effective_from": str(TODAY)},
    ]
    with Session() as s:
        actions = [(e.action, e.outcome) for e in audit.recent(s)]
    assert actions[:2] == [("ledger rates set", "refused"), ("ledger rates set", "done")]


def test_ops_swap_and_the_liability_report(
    Session: sessionmaker[Session], issued_order: Any, order_payload: Any
) -> None:
    assert cli("ledger", "rates", "set", "USD", "GBP", "0.79", "--from", str(TODAY)).exit_code == 0
    from delivery import place_order
    from delivery.orders import processing

    payload = order_payload(2)
    payload["purchaser"]["country"] = "IE"
    placed = place_order(payload, idempotency_key="with-country")
    with Session.begin() as s:
        processing.issue_next_chunk(s, placed.order_id)
    issued_order()  # one more US card, from an order that names no country
    with Session() as s:
        card_id = s.scalars(
            select(Delivery.card_id).where(Delivery.order_id == placed.order_id, Delivery.kind == "gift")
        ).first()
    assert card_id is not None

    swapped = cli("ops", "swap", str(card_id), "--to", "uk", "--yes", "--json")
    assert swapped.exit_code == 0, swapped.output
    result = json.loads(swapped.stdout)["result"]
    assert (result["from_amount"], result["to_amount"], result["rate"]) == (2500, 1975, "0.79")
    assert result["new_card"].startswith(f"#{result['new_card_id']} ••••-")
    assert result["delivery"]["to_address"] == "r0@example.com"
    again = cli("ops", "swap", str(card_id), "--to", "UK", "--yes")
    assert again.exit_code == 1 and "not the current card of any order line" in again.output
    with Session() as s:
        assert [(e.action, e.outcome) for e in audit.recent(s, limit=2)] == [
            ("ops swap", "refused"),
            ("ops swap", "done"),
        ]

    shown = cli("report", "liability")
    assert shown.exit_code == 0, shown.output
    rows = list(csv.DictReader(io.StringIO(shown.stdout)))
    outstanding = {
        (r["currency"], r["country"], r["group"]): (int(r["count"]), int(r["amount"]))
        for r in rows
        if r["section"] == "outstanding_by_issue_age"
    }
    # The swapped card is the Irish purchaser's too (its line points at it now).
    assert outstanding == {
        ("USD", "IE", "0-1"): (1, 2500),
        ("GBP", "IE", "0-1"): (1, 1975),
        ("USD", "US", "0-1"): (1, 2500),
    }
    swaps = [r for r in rows if r["section"] == "movement" and r["kind"] == "swap"]
    assert sorted((r["currency"], r["amount"]) for r in swaps) == [("GBP", "1975"), ("USD", "2500")]

    report = json.loads(cli("report", "liability", "--json").stdout)
    with Session() as s:
        ledger_totals = {t.currency: t.outstanding_liability for t in reconcile(s).currencies}
    assert report["outstanding"] == {c: v for c, v in ledger_totals.items() if v}
    yesterday = TODAY - dt.timedelta(days=1)
    before = json.loads(cli("report", "liability", "--as-of", str(yesterday), "--json").stdout)
    assert before["report"]["by_issue_age"] == [] and before["report"]["as_of"].startswith(str(TODAY))
    assert cli("report", "liability", "--as-of", "soon").exit_code == 2
