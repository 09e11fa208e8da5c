"""Pacing: at most ``rate`` texts a second per sender, shared by every worker process.

A sender (a long code, a short code, a Messaging Service) has a throughput the carriers
allow: about 1 message a second for a US long code, 30 or more for a short code or a
pooled Messaging Service. Twilio queues what we send faster, and a message that waits
too long in that queue fails (30001, queue overflow); so we pace instead of flooding.

The limit is GCRA (the generic cell rate algorithm, a token bucket kept as one
timestamp): the sender's "theoretical arrival time" lives in Redis, and one Lua script
reads the Redis clock, books the next slot and says how long to wait for it, atomically.
All workers on all hosts share one clock (Redis's) and one bucket per sender. ``burst``
texts may go at once after a quiet spell; after that one every ``1/rate`` seconds.

:meth:`RedisRateLimiter.acquire` books a slot only if it is due within ``max_wait``
seconds and then sleeps until it; a thousand texts at once are paced, never refused:
whatever does not fit in one batch's wait budget is booked by a later batch. A slot
booked by a worker that then dies is simply not used: the rate can only come out lower.

:class:`LocalRateLimiter` is the same algorithm inside one process, for the demo and
tests without Redis; it does not pace several processes together.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Protocol

import redis

from giftq.settings import Settings, get_settings

KEY_PREFIX = "giftq:sms:pace:"

# KEYS[1] the sender's theoretical arrival time (TAT), microseconds on the Redis clock.
# ARGV: interval (us between texts), burst (texts at once), max_wait (us).
# Returns {granted 0/1, wait us, slot us}: with 0 nothing was booked.
_GCRA = """
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local max_wait = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local slot = tat - (burst - 1) * interval
if slot < now then slot = now end
local wait = slot - now
if wait > max_wait then
  return {0, wait, slot}
end
tat = tat + interval
-- %.0f: Lua's tostring would write 1.7e+15 and lose the microseconds.
redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000) + 1000)
return {1, wait, slot}
"""


@dataclass(frozen=True, slots=True)
class Reservation:
    """A slot to send in, or the news that the next one is too far away."""

    granted: bool
    """True: the slot is ours. False: nothing was booked (it was beyond ``max_wait``)."""
    wait: float
    """Seconds from the booking until the slot."""
    slot_us: int
    """When the slot is, in microseconds on the limiter's clock (Redis's, or monotonic)."""


class RateLimiter(Protocol):
    sender: str

    def reserve(self, max_wait: float) -> Reservation: ...

    def acquire(self, max_wait: float) -> Reservation: ...


def _check(rate_per_second: float, burst: int) -> int:
    if not rate_per_second > 0 or math.isinf(rate_per_second):
        raise ValueError("the send rate must be a positive number of texts per second")
    if type(burst) is not int or burst < 1:
        raise ValueError("the burst must be a whole number of texts, at least 1")
    return max(1, round(1_000_000 / rate_per_second))


class RedisRateLimiter:
    """GCRA for one sender in Redis, shared by every process that uses the same key."""

    def __init__(
        self,
        client: redis.Redis,
        sender: str,
        rate_per_second: float,
        burst: int,
        *,
        prefix: str = KEY_PREFIX,
    ) -> None:
        self.interval_us = _check(rate_per_second, burst)
        self.burst = burst
        self.sender = sender
        self.key = prefix + sender
        self._client = client
        self._script = client.register_script(_GCRA)

    def __repr__(self) -> str:
        return f"RedisRateLimiter(sender={self.sender!r}, interval_us={self.interval_us}, burst={self.burst})"

    def reserve(self, max_wait: float) -> Reservation:
        """Book the next slot if it is due within ``max_wait`` seconds; never sleeps."""
        granted, wait_us, slot_us = self._script(
            keys=[self.key], args=[self.interval_us, self.burst, max(0, int(max_wait * 1_000_000))]
        )
        return Reservation(bool(granted), int(wait_us) / 1_000_000, int(slot_us))

    def acquire(self, max_wait: float) -> Reservation:
        """Book a slot due within ``max_wait`` seconds and sleep until it.

        A reservation that is not ``granted`` booked nothing and did not sleep; its
        ``wait`` says how far away the next slot was.
        """
        reservation = self.reserve(max_wait)
        if reservation.granted and reservation.wait > 0:
            time.sleep(reservation.wait)
        return reservation


class LocalRateLimiter:
    """The same GCRA in this process only (demo, tests): threads share it, processes do not."""

    def __init__(self, sender: str, rate_per_second: float, burst: int) -> None:
        self.interval_us = _check(rate_per_second, burst)
        self.burst = burst
        self.sender = sender
        self._tat = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalRateLimiter(sender={self.sender!r}, interval_us={self.interval_us}, burst={self.burst})"

    def reserve(self, max_wait: float) -> Reservation:
        with self._lock:
            now = time.monotonic_ns() // 1000
            tat = max(self._tat, now)
            slot = max(now, tat - (self.burst - 1) * self.interval_us)
            wait = slot - now
            if wait > max_wait * 1_000_000:
                return Reservation(False, wait / 1_000_000, slot)
            self._tat = tat + self.interval_us
            return Reservation(True, wait / 1_000_000, slot)

    def acquire(self, max_wait: float) -> Reservation:
        reservation = self.reserve(max_wait)
        if reservation.granted and reservation.wait > 0:
            time.sleep(reservation.wait)
        return reservation


def rate_limiter_from_settings(sender: str, settings: Settings | None = None) -> RateLimiter:
    """Shared pacing in ``GIFTQ_SMS_RATE_REDIS_URL`` (default: the broker, when it is Redis);
    pacing inside this process only when there is no Redis (the demo's in-memory broker)."""
    settings = settings or get_settings()
    url = settings.sms_rate_redis_url or (
        settings.broker_url if settings.broker_url.startswith(("redis://", "rediss://")) else ""
    )
    if not url:
        return LocalRateLimiter(sender, settings.sms_rate_per_second, settings.sms_burst)
    client = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    return RedisRateLimiter(client, sender, settings.sms_rate_per_second, settings.sms_burst)
