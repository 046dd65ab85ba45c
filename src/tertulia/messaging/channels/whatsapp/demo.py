"""A program run end to end through the WhatsApp channel and the fake Cloud API.

Everything is real except Meta: the fake server listens on 127.0.0.1, our webhook view runs in
an in-process WSGI server, the fake's simulated participants reply by signed webhook, and the
scheduler, sender, webhook store, router and check-ins are the production code. Days advance
in simulated time; HTTP and webhooks run in real time.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from .fake_server import FakeWhatsApp, run_fake_whatsapp

LIMA = ZoneInfo("America/Lima")
DEMO_SECRET = "demo-app-secret"  # noqa: S105 - shared only with the in-process fake
DEMO_TOKEN = "demo-token"  # noqa: S105


@dataclass
class DayReport:
    day: int
    sent: int
    failed: int
    replies: int
    checkins: int


@dataclass
class DemoReport:
    cohort_id: int
    days: list[DayReport] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    webhook_posts: int = 0
    read: int = 0


@contextmanager
def _django_server() -> Iterator[str]:
    """Serve this Django project on 127.0.0.1 in a thread; yields its base URL."""
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(WSGIHandler())
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def demo_whatsapp(
    *,
    content: Path,
    men: int = 10,
    days: int = 3,
    reply_probability: float = 0.7,
    seed: int = 2022,
    name: str = "demo",
    site_url: str | None = None,
    on_day: Callable[[DayReport], None] | None = None,
) -> DemoReport:
    """Run `days` program days for `men` simulated men on `whatsapp:<name>`; returns counts.
    `site_url` is a running server of this project to post webhooks to; by default one is
    started in this process."""
    from tertulia.cohorts.services import (
        cohort_create,
        enrollment_create,
        participant_get_or_create,
    )
    from tertulia.core import clock
    from tertulia.core.clock import SimulatedClock
    from tertulia.messaging.models import ChannelConfig, CheckInResponse, Message
    from tertulia.messaging.scheduler import outbox_enqueue_due
    from tertulia.messaging.sender import outbox_send_batch
    from tertulia.messaging.worker import run_until_idle
    from tertulia.programs.services import curriculum_import

    from .channel import clients_close
    from .processing import webhook_events_process_pending

    curriculum = curriculum_import(path=content).curriculum
    start = dt.datetime.now(LIMA).date() + dt.timedelta(days=1)
    cohort = cohort_create(
        curriculum=curriculum,
        name=f"WhatsApp demo {dt.datetime.now(LIMA):%Y-%m-%d %H:%M:%S}",
        start_date=start,
        channel=f"whatsapp:{name}",
        capacity=max(men, 1),
    )
    for n in range(men):
        participant, _ = participant_get_or_create(phone=f"+519{cohort.pk % 10**4:04d}{n:04d}")
        enrollment_create(participant=participant, cohort=cohort)
    with _django_server() if site_url is None else nullcontext(site_url.rstrip("/")) as site:
        webhook_url = f"{site}/webhooks/whatsapp/{name}/"
        with run_fake_whatsapp(
            token=DEMO_TOKEN,
            app_secret=DEMO_SECRET,
            webhook_url=webhook_url,
            reply_probability=reply_probability,
            # A fresh seed per cohort: the fake's message ids must not repeat an earlier run's.
            seed=seed * 100_003 + cohort.pk,
        ) as fake:
            ChannelConfig.objects.update_or_create(
                name=name,
                defaults={
                    "phone_number_id": fake.phone_number_id,
                    "access_token": DEMO_TOKEN,
                    "app_secret": DEMO_SECRET,
                    "verify_token": "demo",
                    "base_url": fake.base_url,
                    "paused": False,
                    "paused_reason": "",
                },
            )
            report = DemoReport(cohort_id=cohort.pk)
            first = curriculum.first_day
            send_at = (
                dt.datetime.combine(start, cohort.send_time) + dt.timedelta(minutes=1)
            ).time()
            # The process clock follows the days too, so that each man's pair limit (one
            # message every 6 s) is paced in program time, as the days are.
            days_clock = SimulatedClock(dt.datetime.combine(start, send_at, tzinfo=LIMA))
            real_clock = clock.use(days_clock)
            for offset in range(days):
                now = dt.datetime.combine(start + dt.timedelta(days=offset), send_at, tzinfo=LIMA)
                days_clock.set(now)
                outbox_enqueue_due(now=now)
                sent = failed = 0
                while True:
                    batch = outbox_send_batch(now=now)
                    sent, failed = sent + batch.sent, failed + batch.failed
                    if batch.claimed == 0:
                        break
                _settle(fake, run_until_idle, webhook_events_process_pending)
                # Service answers the router queued (keywords) go out too.
                while outbox_send_batch(now=now).claimed:
                    pass
                day = DayReport(
                    day=first + offset,
                    sent=sent,
                    failed=failed,
                    replies=Message.objects.filter(
                        direction=Message.Direction.IN, enrollment__cohort=cohort
                    ).count(),
                    checkins=CheckInResponse.objects.filter(enrollment__cohort=cohort).count(),
                )
                report.days.append(day)
                if on_day:
                    on_day(day)
            _settle(fake, run_until_idle, webhook_events_process_pending)
            clock.use(real_clock)
            report.accepted = len(fake.log)
            report.duplicates = len(fake.log.duplicate_references())
            report.webhook_posts = fake.webhook_stats.posts
            report.read = Message.objects.filter(
                direction=Message.Direction.OUT,
                enrollment__cohort=cohort,
                status=Message.Status.READ,
            ).count()
            clients_close()
    return report


def _settle(
    fake: FakeWhatsApp, run_until_idle: Callable[[], int], pending: Callable[[], int]
) -> None:
    """Wait until the fake has posted every status and reply, then process them all."""
    for _ in range(5):
        fake.wait_idle(15)
        ran = run_until_idle()
        ran += pending()
        if ran == 0 and fake.wait_idle(0.2):
            return
