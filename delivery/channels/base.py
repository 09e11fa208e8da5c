"""The seam between the delivery core and a channel: what a channel must do.

The core (claim, record, retry, sweep, ops) knows a channel only through
:class:`Sender`, four calls::

    compose(session, rows)  ->  [Composed | Outcome]   in the claim transaction: load what
                                                         each message says (codes revealed
                                                         into memory only); an Outcome for a
                                                         row that cannot make a message
    send(batch, report)                                  no transaction open: send each item,
                                                         calling ``report(outcome)`` as each
                                                         answer comes, before the next send
    classify(error)         ->  FailureKind              what an exception of this channel means
    close()                                              end connections (worker shutdown)

and the static :class:`~delivery.channels.registry.ChannelInfo` (its queue and task).
Each channel has a real back end, a local one for the demo, and tests drive it through
a fake at the transport level (an SMTP server, an HTTP server), never by patching.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from sqlalchemy.orm import Session

from delivery.models import Channel, Delivery, Order
from delivery.reasons import FailureReason
from delivery.retry import FailureKind


@dataclass(frozen=True, slots=True)
class Composed:
    """One claimed delivery, ready to send. ``message`` may hold a claim code: kept out of repr."""

    delivery_id: int
    address: str
    """Where it goes: an email address, an E.164 number; empty when the channel has none."""
    to_name: str
    message: Any = field(repr=False)


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one send. ``response`` is the provider's answer, redacted, one line."""

    delivery_id: int
    accepted: bool
    kind: FailureKind | None = None
    """For a failure: retry it, or not."""
    code: int | None = None
    """The provider's status code (SMTP reply, HTTP status, or the provider's error code)."""
    response: str = ""
    provider_ref: str | None = None
    """The provider's id for the message (SMS message SID), to match its later reports."""
    reason: FailureReason | None = None
    """For a failure, why, in a key the purchaser's notice renders; None: from ``kind``."""
    suppress: bool = False
    """A permanent failure that must stop sends to this address until ops clear it."""
    retry_after: float | None = None
    """Not attempted (the provider asked us to slow down, or the send rate ran out): send
    it again after this many seconds. A deferral is not a failed attempt."""

    @classmethod
    def deferred(cls, delivery_id: int, retry_after: float, response: str = "deferred") -> Outcome:
        return cls(delivery_id, False, None, None, response, retry_after=max(retry_after, 0.0))

    @classmethod
    def failed(
        cls, delivery_id: int, kind: FailureKind, response: str, *, reason: FailureReason | None = None
    ) -> Outcome:
        return cls(delivery_id, False, kind, None, response, reason=reason)


Report = Callable[[Outcome], None]


class Sender(Protocol):
    """A channel's back end (see the module docstring)."""

    channel: ClassVar[Channel]
    reports_delivery: ClassVar[bool]
    """True when the provider later reports delivery (then "delivered" waits for that report)."""

    def compose(
        self, session: Session, rows: Sequence[tuple[Delivery, Order]]
    ) -> list[Composed | Outcome]: ...

    def send(self, batch: Sequence[Composed], report: Report) -> None: ...

    def classify(self, error: BaseException) -> FailureKind: ...

    def close(self) -> None: ...
