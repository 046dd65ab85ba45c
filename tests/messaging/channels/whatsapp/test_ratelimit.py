"""The rate limits of a WhatsApp number (ratelimit.py): never more than the configured
messages per second, counted on the fake Cloud API's own log, whether one process sends,
several threads, or several processes sharing the buckets in Redis; each man paced by the
pair limit; inbound messages counted too."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tertulia.core import clock
from tertulia.messaging.channels.whatsapp.client import (
    CloudAPIClient,
    SendResult,
    text_payload,
)
from tertulia.messaging.channels.whatsapp.fake_server import FakeWhatsApp
from tertulia.messaging.models import ChannelConfig, Outbox
from tertulia.messaging.ratelimit import Limits, LocalLimiter, RedisLimiter
from tests.conftest import require_service

from .conftest import TOKEN

RATE = 100  # messages per second in these tests
ROOT = Path(__file__).resolve().parents[4]


@pytest.fixture
def quiet_fake(make_fake: Any) -> FakeWhatsApp:
    """A fake that posts no status webhooks: only the sends load the machine."""
    return make_fake(webhook_url=None)


def redis_url() -> str:
    from django.conf import settings

    url = getattr(settings, "REDIS_URL", None)
    if not url:
        pytest.skip("runs with REDIS_URL set (the PostgreSQL + Redis run)")
    import redis

    try:
        redis.Redis.from_url(url).ping()
    except redis.exceptions.ConnectionError:
        require_service("Redis", False)
    return str(url)


def send_paced(
    limiter: Any, fake: FakeWhatsApp, tag: str, count: int, rate: float, batch: int = 20
) -> None:
    """What a sender does: admit a batch, then send each message at its moment."""
    limits = Limits.for_rate(rate)
    number = fake.phone_number_id
    with CloudAPIClient(
        phone_number_id=fake.phone_number_id, access_token=TOKEN, base_url=fake.base_url
    ) as client:
        waiting = [f"519{tag}{n:06d}" for n in range(count)]
        while waiting:
            numbers, waiting = waiting[:batch], waiting[batch:]
            admission = limiter.admit(fake.phone_number_id, [(n, 1) for n in numbers], limits)
            assert admission.pair_waits == [0.0] * len(numbers)
            payloads = [text_payload(n, "Hola", reference=f"{tag}:{n}")[0] for n in numbers]
            results = client.send_many(
                payloads, reserve=lambda count: limiter.reserve(number, count, limits)
            )
            assert all(isinstance(r, SendResult) for r in results)


def assert_paced(fake: FakeWhatsApp, total: int, rate: float, elapsed: float) -> None:
    assert len(fake.log) == total
    assert fake.log.duplicate_references() == {}
    # Never above the rate in any sliding second, on the fake's own clock...
    assert fake.log.max_rate(1.0) <= rate
    # ...and not far below it (a loose floor: this machine is shared): it paces, not crawls.
    assert total / elapsed >= 0.3 * rate


def test_limits_leave_headroom_and_a_small_burst() -> None:
    limits = Limits.for_rate(1000)
    assert limits.interval == pytest.approx(1 / 800)
    assert limits.tolerance == pytest.approx(19 / 800)
    assert Limits.for_rate(80).tolerance == 0.0  # 2% of 80 rounds down to a burst of one
    with pytest.raises(ValueError, match="positive"):
        Limits.for_rate(0)


def test_a_batch_is_spread_over_time_and_the_next_one_waits_for_it(settings: Any) -> None:
    limiter = LocalLimiter()
    limits = Limits.for_rate(100)  # one message every 1/80 s, a burst of 2
    first = limiter.reserve("n", 81, limits)
    assert first[1] == first[0]
    assert first[-1] - first[0] == pytest.approx(79 / 80, abs=0.01)
    second = limiter.reserve("n", 1, limits)
    assert second[0] - first[0] == pytest.approx(1.0, abs=0.02)
    # Another number has its own bucket.
    assert limiter.reserve("m", 1, limits)[0] <= time.monotonic() + 0.01


def test_a_man_gets_a_burst_then_one_message_every_six_seconds(settings: Any) -> None:
    limiter = LocalLimiter()
    limits = Limits.for_rate(80)
    admission = limiter.admit("n", [("+51987000001", 1)] * 12, limits)
    assert admission.pair_waits[:10] == [0.0] * 10
    assert admission.pair_waits[10] == pytest.approx(6.0, abs=0.05)
    assert admission.pair_waits[11] == pytest.approx(6.0, abs=0.05)  # not counted: not sent
    # Another man is not held back by him.
    assert limiter.admit("n", [("+51987000002", 1)], limits).pair_waits == [0.0]


def test_a_clock_that_goes_back_does_not_block_a_man(settings: Any) -> None:
    limiter = LocalLimiter()
    limits = Limits.for_rate(80)
    later = clock.SimulatedClock(dt.datetime(2027, 1, 1, tzinfo=dt.UTC))
    previous = clock.use(later)
    try:
        limiter.admit("n", [("+51987000001", 1)] * 10, limits)
    finally:
        clock.use(previous)
    assert limiter.admit("n", [("+51987000001", 1)], limits).pair_waits == [0.0]


def test_inbound_messages_use_the_same_bucket(settings: Any) -> None:
    limiter = LocalLimiter()
    limits = Limits.for_rate(100)
    limiter.consume("n", 80, limits)
    assert limiter.reserve("n", 1, limits)[0] - time.monotonic() == pytest.approx(1.0, abs=0.05)


def test_threads_sharing_a_process_never_exceed_the_rate(
    quiet_fake: FakeWhatsApp, settings: Any
) -> None:
    limiter = LocalLimiter()
    start = time.monotonic()
    threads = [
        threading.Thread(target=send_paced, args=(limiter, quiet_fake, str(t), 75, RATE))
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert_paced(quiet_fake, 300, RATE, time.monotonic() - start)


@pytest.mark.django_db
def test_threads_sharing_redis_never_exceed_the_rate(quiet_fake: FakeWhatsApp) -> None:
    limiter = RedisLimiter(redis_url())
    limiter.reset()
    start = time.monotonic()
    threads = [
        threading.Thread(target=send_paced, args=(limiter, quiet_fake, str(t), 75, RATE))
        for t in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert_paced(quiet_fake, 300, RATE, time.monotonic() - start)


PROCESS = """
import sys, time
import aiohttp  # noqa: F401 - imported before the start, not during the first batch
import django
django.setup()
from tertulia.messaging.ratelimit import RedisLimiter
from tests.messaging.channels.whatsapp.test_ratelimit import send_paced

class Fake:
    phone_number_id, base_url = sys.argv[2], sys.argv[3]

limiter = RedisLimiter(sys.argv[1])
print("ready", flush=True)
start_at = float(sys.stdin.readline())
while time.time() < start_at:
    time.sleep(0.002)
send_paced(limiter, Fake, sys.argv[4], int(sys.argv[5]), float(sys.argv[6]))
"""


@pytest.mark.django_db
def test_processes_sharing_redis_never_exceed_the_rate(quiet_fake: FakeWhatsApp) -> None:
    url = redis_url()
    RedisLimiter(url).reset()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tertulia.settings"}
    processes = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", PROCESS, url, quiet_fake.phone_number_id, quiet_fake.base_url]
            + [str(p), "100", str(RATE)],
            env=env,
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for p in range(3)
    ]
    # All three start together, once each has started Django.
    assert [p.stdout.readline().strip() for p in processes if p.stdout] == ["ready"] * 3
    start_at = time.time() + 0.2
    for process in processes:
        assert process.stdin is not None
        process.stdin.write(f"{start_at!r}\n")
        process.stdin.flush()
    assert [p.wait(60) for p in processes] == [0, 0, 0]
    assert_paced(quiet_fake, 300, RATE, time.time() - start_at)


@pytest.mark.django_db(transaction=True)
def test_the_sender_queues_a_paced_message_again_without_counting_an_attempt(
    wa_config: ChannelConfig, fake: FakeWhatsApp, make_cohort: Any, enroll: Any
) -> None:
    from tertulia.messaging.sender import outbox_send_batch

    enrollment = enroll(make_cohort())
    now = dt.datetime.now(dt.UTC)
    Outbox.objects.bulk_create(
        Outbox(
            participant=enrollment.participant,
            body=f"Mensaje {n}",
            channel=wa_config.channel,
            due_at=now,
            created_at=now,
        )
        for n in range(12)
    )
    report = outbox_send_batch(now=now)
    assert (report.sent, report.paced, report.failed, report.retried) == (10, 2, 0, 0)
    assert len(fake.log) == 10
    paced = Outbox.objects.filter(status=Outbox.Status.QUEUED)
    assert paced.count() == 2
    for row in paced:
        assert row.attempts == 0
        assert row.due_at - now == pytest.approx(
            dt.timedelta(seconds=6), abs=dt.timedelta(seconds=1)
        )
    assert outbox_send_batch(now=now).claimed == 0  # not due yet
