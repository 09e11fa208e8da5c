"""Which channels exist, where their work is queued, and which back end each one uses.

:data:`CHANNELS` is static data (no imports of SMTP, HTTP or templates), so the outbox,
the due dispatcher, the sweeper and ops can route a delivery by its channel without
loading the channel. :func:`get` builds a channel's back end from settings, once per
process, importing it only then. :func:`configured` says which channels have a back end
in this deployment: deliveries of the others wait, visible to ops, until one is set up.
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from delivery.models import Channel
from giftq.settings import get_settings

if TYPE_CHECKING:
    from delivery.channels.base import Sender


@dataclass(frozen=True, slots=True)
class ChannelInfo:
    channel: Channel
    queue: str
    """The Celery queue its sends go to: a slow channel never starves another."""
    task: str
    """The task that sends a batch of its deliveries (kwargs: ``delivery_ids``)."""
    factory: str
    """``module:function`` that builds the configured back end (imported on first use)."""


CHANNELS: dict[Channel, ChannelInfo] = {
    info.channel: info
    for info in (
        ChannelInfo(
            Channel.EMAIL, "email", "giftq.dispatch_email", "delivery.channels.email.sender:from_settings"
        ),
        ChannelInfo(Channel.SMS, "sms", "giftq.dispatch_sms", "delivery.channels.sms.sender:from_settings"),
        ChannelInfo(
            Channel.PRINTABLE,
            "printables",
            "giftq.dispatch_printable",
            "delivery.channels.printable.sender:from_settings",
        ),
        ChannelInfo(
            Channel.PHYSICAL,
            "fulfilment",
            "giftq.dispatch_physical",
            "delivery.channels.physical.sender:from_settings",
        ),
    )
}


def info(channel: Channel | str) -> ChannelInfo:
    return CHANNELS[Channel(channel)]


def backend(channel: Channel | str) -> str:
    """The back end a channel uses here (``none`` when it has none)."""
    settings = get_settings()
    name = {
        Channel.EMAIL: "smtp",
        Channel.SMS: settings.sms_backend,
        Channel.PRINTABLE: settings.printable_backend,
        Channel.PHYSICAL: settings.fulfilment_backend,
    }[Channel(channel)]
    return str(name)


def configured() -> frozenset[Channel]:
    """The channels that have a back end in this deployment."""
    return frozenset(c for c in CHANNELS if backend(c) != "none")


def unconfigured_reason(channel: Channel | str) -> str:
    setting = {
        Channel.SMS: "GIFTQ_SMS_BACKEND",
        Channel.PRINTABLE: "GIFTQ_PRINTABLE_BACKEND",
        Channel.PHYSICAL: "GIFTQ_FULFILMENT_BACKEND",
    }.get(Channel(channel), "")
    return f"waiting: no back end is configured for {Channel(channel)} ({setting}=none)"


_built: dict[Channel, Sender] = {}
_lock = threading.Lock()


def get(channel: Channel | str) -> Sender:
    """The process's sender for ``channel``, built from settings on first use."""
    key = Channel(channel)
    with _lock:
        sender = _built.get(key)
        if sender is None:
            module, _, attr = info(key).factory.partition(":")
            sender = _built[key] = getattr(importlib.import_module(module), attr)()
        return sender


def use(channel: Channel | str, sender: Sender) -> None:
    """Put ``sender`` in place of the configured one (tests, the demo)."""
    with _lock:
        _built[Channel(channel)] = sender


def close_all() -> None:
    """Close and forget every sender this process built (worker shutdown, tests)."""
    with _lock:
        senders = list(_built.values())
        _built.clear()
    for sender in senders:
        sender.close()
