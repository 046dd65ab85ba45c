"""Exactly once, on the fake's own log: the client contract the sender builds on (faults
injected, retries by the error table, maybe-accepted requests reconciled through status
webhooks), then the whole path (outbox, rate limiter, HTTP, status rows) with a fifth of the
sends failing, and with a worker process killed with SIGKILL in the middle of a batch."""

from __future__ import annotations

import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tertulia.cohorts.models import Cohort
from tertulia.messaging import sender
from tertulia.messaging.channels.whatsapp import channel as wa_channel
from tertulia.messaging.channels.whatsapp.client import CloudAPIClient, CloudAPIError, text_payload
from tertulia.messaging.channels.whatsapp.errors import Action
from tertulia.messaging.channels.whatsapp.fake_server import FakeWhatsApp, run_fake_whatsapp
from tertulia.messaging.channels.whatsapp.webhook import parse_envelope
from tertulia.messaging.models import ChannelConfig, Message, Outbox
from tertulia.messaging.scheduler import outbox_enqueue_due
from tests.conftest import lima

from ..conftest import Received, Receiver
from .conftest import CHANNEL


def references_seen(requests: list[Received]) -> set[str]:
    return {
        s.biz_opaque_callback_data
        for request in requests
        for s in parse_envelope(request.body).statuses
        if s.biz_opaque_callback_data
    }


def test_faults_never_duplicate_or_lose_a_message(receiver: Receiver) -> None:
    rng = random.Random(5)
    with run_fake_whatsapp(
        token="t",
        webhook_url=receiver.url,
        fault_429=0.06,
        fault_5xx=0.06,
        fault_timeout=0.04,
        fault_timeout_accepted=0.04,
        hang_seconds=1.0,
        statuses=("sent",),
        seed=11,
    ) as fake:
        client = CloudAPIClient(
            phone_number_id=fake.phone_number_id, access_token="t", base_url=fake.base_url,
            timeout=0.2,
        )  # fmt: skip
        outcomes: dict[str, str] = {}
        with client:
            for n in range(150):
                reference = f"outbox:{n}"
                payload = text_payload(f"5198{n:07d}", f"Día {n}", reference=reference)[0]
                for attempt in range(1, 20):
                    try:
                        outcomes[reference] = client.send(payload).provider_id
                        break
                    except CloudAPIError as error:
                        assert error.action is Action.RETRY
                        if error.maybe_accepted:
                            # Reconcile: a status naming our reference means Meta has it.
                            if receiver.wait_for(
                                lambda requests, r=reference: r in references_seen(requests), 0.5
                            ):
                                outcomes[reference] = "reconciled"
                                break
                        time.sleep(rng.uniform(0.0005, min(0.01, 0.001 * 2**attempt)))
        assert fake.wait_idle()
    assert len(outcomes) == 150
    assert fake.log.duplicate_references() == {}
    assert {e.reference for e in fake.log.entries()} == set(outcomes)
    assert "reconciled" in outcomes.values()  # the maybe-accepted path was exercised


# -- the whole path: outbox -> rate limiter -> HTTP -> status rows ----------------------------

START = dt.date(2026, 3, 2)
T = lima(START, 19, 1)
ROOT = Path(__file__).resolve().parents[4]
RATE = 40  # the channel's messages per second in these tests


def day0_for(make_cohort: Any, enroll: Any, men: int) -> int:
    """Day 0 (text, audio, check-in) queued on whatsapp:test for `men` men; the row count."""
    cohort = make_cohort(start=START)
    Cohort.objects.filter(pk=cohort.pk).update(channel=CHANNEL)
    for n in range(men):
        enroll(cohort, phone=f"+51987{n:06d}")
    outbox_enqueue_due(now=lima(START, 19, 0))
    return Outbox.objects.count()


def assert_each_message_reached_the_fake_once(fake: FakeWhatsApp, rows: int) -> None:
    out = Message.objects.filter(direction=Message.Direction.OUT)
    assert Outbox.objects.filter(status=Outbox.Status.SENT).count() == rows
    assert out.count() == rows
    assert fake.log.duplicate_references() == {}
    # The fake's own log holds exactly our messages, each once, under its own id.
    assert sorted(e.reference for e in fake.log.entries()) == sorted(str(m.pk) for m in out)
    by_reference = {e.reference: e.message_id for e in fake.log.entries()}
    assert all(m.provider_id == by_reference[str(m.pk)] for m in out)
    assert fake.log.max_rate(1.0) <= RATE


@pytest.mark.django_db(transaction=True)
def test_a_fifth_of_sends_failing_still_delivers_each_message_once_within_the_rate(
    make_fake: Any, make_config: Any, make_cohort: Any, enroll: Any, replay: Any, run_tasks: Any,
    monkeypatch: Any,
) -> None:  # fmt: skip
    """20% of requests fail: 429, 5xx, hangs Meta never saw and hangs after it accepted."""
    fake = make_fake(
        fault_429=0.07,
        fault_5xx=0.07,
        fault_timeout=0.03,
        fault_timeout_accepted=0.03,
        hang_seconds=1.0,
        statuses=("sent",),
        seed=20,
    )
    ChannelConfig.objects.filter(pk=make_config(fake.base_url, fake.phone_number_id).pk).update(
        messages_per_second=RATE
    )
    monkeypatch.setattr(wa_channel, "SEND_TIMEOUT", 0.3)
    # This test is about delivery under faults, not about when the sender gives up.
    monkeypatch.setattr(sender, "MAX_ATTEMPTS", 20)
    rows = day0_for(make_cohort, enroll, men=40)
    now, failures = T, 0
    for _ in range(40):
        while (report := sender.outbox_send_batch(now=now, limit=50)).claimed:
            failures += report.retried + report.unknown
        replay(fake)  # every status the fake posted, through the real view
        run_tasks()
        # After the lease, what a dead or timed-out send left 'sending' is settled from them.
        now += sender.LEASE + dt.timedelta(minutes=1)
        sender.outbox_recover_stale(now=now)
        if Outbox.objects.filter(status=Outbox.Status.SENT).count() == rows:
            break
    assert failures >= rows // 10  # the faults did happen
    assert_each_message_reached_the_fake_once(fake, rows)


WORKER = """
import sys, datetime as dt
import django
django.setup()
from tertulia.messaging.sender import outbox_send_batch
now = dt.datetime.fromisoformat(sys.argv[1])
print("ready", flush=True)
while outbox_send_batch(now=now, limit=20).claimed:
    pass
"""


def start_worker(now: dt.datetime) -> subprocess.Popen[str]:
    """A sender process on the test database (what `tertulia worker` runs for each task)."""
    from django.conf import settings
    from django.db import connection

    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tertulia.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{db['NAME']}",
        # The test's keys and media store (the audio step's file is under MEDIA_ROOT).
        "SECRET_KEY": settings.SECRET_KEY,
        "TERTULIA_DATA_KEY": ",".join(settings.TERTULIA_DATA_KEYS),
        "TERTULIA_VAR_DIR": str(Path(settings.MEDIA_ROOT).parent),
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", WORKER, now.isoformat()],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdout.readline().strip() == "ready"
    return process


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_batch_and_restarted_sends_each_message_once(
    make_fake: Any, make_config: Any, make_cohort: Any, enroll: Any, replay: Any, run_tasks: Any
) -> None:
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("a worker process needs a database it can share: runs on PostgreSQL")
    fake = make_fake(latency_ms=20, statuses=("sent",))
    ChannelConfig.objects.filter(pk=make_config(fake.base_url, fake.phone_number_id).pk).update(
        messages_per_second=RATE
    )
    rows = day0_for(make_cohort, enroll, men=50)
    worker = start_worker(T)
    # Batches of 20 leave at the paced rate; kill -9 once a batch is half out.
    deadline = time.monotonic() + 60
    while not (len(fake.log) >= 30 and len(fake.log) % 20 >= 8) and worker.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.002)
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    assert 0 < len(fake.log) < rows
    assert Outbox.objects.filter(status=Outbox.Status.SENDING).exists()  # killed mid-batch

    # Restart: the statuses Meta posted settle what the dead worker sent, the rest goes again.
    replay(fake)
    run_tasks()
    later = T + sender.LEASE + dt.timedelta(minutes=1)
    sender.outbox_recover_stale(now=later)
    assert not Outbox.objects.filter(status=Outbox.Status.SENDING).exists()
    restarted = start_worker(later)
    assert restarted.wait(60) == 0
    assert_each_message_reached_the_fake_once(fake, rows)
