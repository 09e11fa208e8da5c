"""The orders of a fault run: a reproducible mix, and what each one should come to.

Every order has a reference of its own (``FR-<n>``, the order's ``reference``), by which
the checks find it in the database, and goes through one door (``python``, ``celery``,
``http``, in turn). Lines are 1 to ``max_lines``, of every channel: email, text,
printable (to the purchaser), physical (shipped in the US). Some are scheduled a few
seconds ahead; one order in twenty has a first line to an address or number that fails
for good, and one in twenty to one that fails twice and then accepts. A few orders are
malformed: each door must refuse them with a reason, and write nothing.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from dataclasses import dataclass, field
from typing import Any

DOORS = ("python", "celery", "http")
CHANNEL_WEIGHTS = {"email": 50, "sms": 20, "printable": 15, "physical": 15}
MARKETPLACES = ("US", "UK", "DE", "FR", "JP", "CA")
AMOUNTS = {"JP": (1000, 3000, 5000), "default": (1000, 2500, 5000, 10000)}
US_ADDRESS = {
    "line1": "1600 Pennsylvania Ave NW",
    "city": "Washington",
    "region": "DC",
    "postal_code": "20500",
    "country": "US",
}


@dataclass
class PlannedOrder:
    """One order of the run, and what it should come to."""

    number: int
    door: str
    key: str
    order: dict[str, Any]
    valid: bool = True
    schedule_in: float | None = None
    """Seconds after placing that its lines are due (fixed when it is first sent)."""
    permanent: list[str] = field(default_factory=list)
    """Addresses or numbers of this order that fail for good."""
    flaky: list[str] = field(default_factory=list)

    @property
    def reference(self) -> str:
        return str(self.order.get("reference", ""))

    @property
    def lines(self) -> int:
        return len(self.order.get("lines", [])) if self.valid else 0

    def ready(self, now: dt.datetime) -> dict[str, Any]:
        """The order as sent, the send time fixed at the first call (a retry resends it as it was)."""
        if self.schedule_in is not None and "send_at" not in self.order["lines"][0]:
            at = (now + dt.timedelta(seconds=self.schedule_in)).replace(tzinfo=None, microsecond=0)
            for line in self.order["lines"]:
                line["send_at"] = {"local_time": at.isoformat(), "zone": "UTC"}
        return self.order


def _line(rng: random.Random, n: int, i: int, plan: PlannedOrder, failing: str | None) -> dict[str, Any]:
    channel = rng.choices(list(CHANNEL_WEIGHTS), weights=list(CHANNEL_WEIGHTS.values()))[0]
    if failing and i == 0:
        channel = "email" if n % 40 < 20 else "sms"
    marketplace = "US" if channel == "physical" else rng.choice(MARKETPLACES)
    amounts = AMOUNTS.get(marketplace, AMOUNTS["default"])
    line: dict[str, Any] = {
        "channel": channel,
        "amount": rng.choice(amounts),
        "marketplace": marketplace,
        "design": rng.choice(("classic", "birthday", "thank_you", "holiday")),
        "message": f"For you, from order {n} line {i}",
    }
    name = f"Recipient {n}-{i}"
    if channel == "sms":
        phone = f"+4479{n * 100 + i:08d}"
        line["recipient"] = {"name": name, "phone": phone}
        address = phone
    elif channel == "physical":
        line["recipient"] = {"name": name, "address": dict(US_ADDRESS)}
        address = None
    else:
        prefix = failing or "r"
        email = f"{prefix}-{n}-{i}@gift.example"
        line["recipient"] = {"name": name, "email": email}
        address = email if channel == "email" else None
    if failing and address is not None and i == 0:
        (plan.permanent if failing == "gone" else plan.flaky).append(address)
    return line


def plan_orders(
    count: int, *, max_lines: int = 10, seed: int = 12, invalid_every: int = 97
) -> list[PlannedOrder]:
    """``count`` orders (about one in ``invalid_every`` malformed), spread over the doors."""
    rng = random.Random(seed)
    planned = []
    for n in range(count):
        door = DOORS[n % len(DOORS)]
        plan = PlannedOrder(n, door, f"fault-run-{n}", {})
        plan.order = {
            "purchaser": {"name": f"Buyer {n}", "email": f"buyer-{n}@shop.example"},
            "reference": f"FR-{n:06d}",
            "lines": [],
        }
        failing = {7: "gone", 13: "flaky"}.get(n % 20)
        lines = rng.randint(1, max_lines)
        plan.order["lines"] = [_line(rng, n, i, plan, failing) for i in range(lines)]
        if rng.random() < 0.1:
            plan.schedule_in = rng.uniform(3, 10)
        if n % invalid_every == invalid_every - 1:
            plan.valid = False
            plan.order = _malformed(plan.order, rng)
            plan.permanent, plan.flaky = [], []
        planned.append(plan)
    return planned


def _malformed(order: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    bad = copy.deepcopy(order)
    flaw = rng.choice(("amount", "design", "email"))
    first = bad["lines"][0]
    if flaw == "amount":
        first["amount"] = "lots"
    elif flaw == "design":
        first["design"] = "no-such-design"
    else:
        first["channel"] = "email"
        first["recipient"] = {"name": "Nobody"}
    return bad
