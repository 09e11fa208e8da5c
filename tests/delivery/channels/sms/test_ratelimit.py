"""Per-sender pacing in a real Redis, shared by processes and threads.

The checks use the slots the limiter booked on Redis's clock (and Redis's clock after
each wait), not how fast this machine ran: a slower machine only spreads them more.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest
import redis

from delivery.channels.sms.ratelimit import (
    LocalRateLimiter,
    RedisRateLimiter,
    Reservation,
    rate_limiter_from_settings,
)
from giftq.settings import Settings

pytestmark = pytest.mark.redis


def redis_now_us(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1_000_000 + int(micros)


def assert_gcra(slots: list[int], interval_us: int, burst: int) -> None:
    """No window holds more than ``burst`` texts plus one per interval: for all i < j,
    slot[j] - slot[i] >= (j - i - (burst - 1)) * interval."""
    ordered = sorted(slots)
    for i in range(len(ordered)):
        for j in range(i + burst, len(ordered)):
            assert ordered[j] - ordered[i] >= (j - i - (burst - 1)) * interval_us, (i, j)


def test_a_burst_then_one_per_interval(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, "+15005550006", rate_per_second=2, burst=3)
    first = [limiter.reserve(max_wait=0) for _ in range(3)]
    assert [(r.granted, r.wait) for r in first] == [(True, 0.0)] * 3
    refused = limiter.reserve(max_wait=0)
    assert not refused.granted
    assert 0 < refused.wait <= 0.5
    # A refusal booked nothing: the next caller willing to wait gets that very slot.
    taken = limiter.reserve(max_wait=1)
    assert (taken.granted, taken.slot_us) == (True, refused.slot_us)
    after = limiter.reserve(max_wait=10)
    assert after.slot_us - taken.slot_us == 500_000
    assert client.pttl(limiter.key) > 0  # an idle sender's key goes away by itself


def test_acquire_sleeps_until_the_slot(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, "MG" + "1" * 32, rate_per_second=20, burst=1)
    for _ in range(5):
        reservation = limiter.acquire(max_wait=5)
        assert reservation.granted
        assert redis_now_us(client) >= reservation.slot_us


def test_a_thousand_at_once_are_paced_not_refused(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, "+15005550008", rate_per_second=1000, burst=10)
    slots: list[int] = []
    refused: list[Reservation] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(125):
            reservation = limiter.acquire(max_wait=5)
            with lock:
                if reservation.granted:
                    slots.append(reservation.slot_us)
                else:
                    refused.append(reservation)

    workers = [threading.Thread(target=work) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert (len(slots), refused) == (1000, [])
    assert_gcra(slots, interval_us=1_000, burst=10)


def test_senders_do_not_share_a_bucket(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    one = RedisRateLimiter(client, "+15005550006", rate_per_second=1, burst=1)
    other = RedisRateLimiter(client, "+15005550007", rate_per_second=1, burst=1)
    assert one.reserve(0).granted and other.reserve(0).granted
    assert not one.reserve(0).granted


def _acquire_many(redis_url: str, sender: str, threads: int, each: int, out: Any) -> None:
    """In a child process: ``threads`` threads acquire ``each`` slots; report (slot, seen) pairs."""
    client = redis.Redis.from_url(redis_url)
    limiter = RedisRateLimiter(client, sender, rate_per_second=40, burst=4)
    taken: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(each):
            reservation = limiter.acquire(max_wait=30)
            assert reservation.granted
            seen = redis_now_us(client)
            with lock:
                taken.append((reservation.slot_us, seen))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put(taken)


def test_processes_and_threads_share_one_rate(redis_url: str) -> None:
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    processes = [
        context.Process(target=_acquire_many, args=(redis_url, "MG" + "2" * 32, 2, 8, out)) for _ in range(3)
    ]
    for process in processes:
        process.start()
    taken = [pair for _ in processes for pair in out.get(timeout=60)]
    for process in processes:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert len(taken) == 3 * 2 * 8  # nothing lost
    slots = [slot for slot, _ in taken]
    assert len(set(slots)) >= len(slots) - 3  # only a burst may share the first instant
    assert_gcra(slots, interval_us=25_000, burst=4)
    assert all(seen >= slot for slot, seen in taken)  # nobody went before their slot


def test_the_local_limiter_paces_threads_the_same_way() -> None:
    limiter = LocalRateLimiter("+15005550006", rate_per_second=50, burst=2)
    slots: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(6):
            reservation = limiter.acquire(max_wait=30)
            with lock:
                slots.append(reservation.slot_us)

    workers = [threading.Thread(target=work) for _ in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert len(slots) == 24
    assert_gcra(slots, interval_us=20_000, burst=2)
    fresh = LocalRateLimiter("x", 1, 1)
    assert fresh.reserve(0).granted and not fresh.reserve(0).granted


@pytest.mark.parametrize(("rate", "burst"), [(0, 1), (-1, 1), (float("inf"), 1), (1, 0), (1, 1.5)])
def test_bad_limits_are_refused(rate: float, burst: Any) -> None:
    with pytest.raises(ValueError):
        LocalRateLimiter("x", rate, burst)


def test_which_limiter_the_settings_give(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> None:
    # The delivery tests run on the in-memory broker: no Redis, so pacing stays in the process.
    assert isinstance(rate_limiter_from_settings("+15005550006", Settings()), LocalRateLimiter)
    monkeypatch.setenv("GIFTQ_SMS_RATE_REDIS_URL", redis_url)
    monkeypatch.setenv("GIFTQ_SMS_RATE_PER_SECOND", "30")
    monkeypatch.setenv("GIFTQ_SMS_BURST", "5")
    limiter = rate_limiter_from_settings("+15005550006", Settings())
    assert isinstance(limiter, RedisRateLimiter)
    assert (limiter.interval_us, limiter.burst, limiter.key) == (33_333, 5, "giftq:sms:pace:+15005550006")
