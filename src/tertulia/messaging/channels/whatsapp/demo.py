"""A program run end to end through the WhatsApp channel and the fake Cloud API.

Everything is real except Meta: the fake server listens on 127.0.0.1, our webhook view runs in
an in-process WSGI server, the fake's simulated participants reply by signed webhook, and the
scheduler, sender, webhook store, router and check-ins are the production code. Days advance
on a simulated clock that the fake stamps its webhooks with and measures the 24-hour window
by; HTTP and webhooks run in real time.

Each day opens at the same hour, a day after the last, when his window has just closed: the
day's first step goes as the registry's opening template, the rest waits, and goes free-form
the moment he answers. What still waits a day later fails, visibly.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from tertulia.core.clock import SimulatedClock

if TYPE_CHECKING:
    from tertulia.messaging.models import ChannelConfig

from .fake_server import AcceptedMessage, FakeWhatsApp, TemplateSpec, run_fake_whatsapp

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
    templates: int = 0  # of `sent`, how many went as a template (his window was closed)
    held: int = 0  # waiting at the end of the day for him to write
    expired: int = 0  # of `failed`, how many waited a day for a window that never opened


@dataclass
class DemoReport:
    cohort_id: int
    days: list[DayReport] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    webhook_posts: int = 0
    read: int = 0


def simulated_men(
    reply_probability: float, seed: int
) -> Callable[[AcceptedMessage], list[dict[str, object]]]:
    """How the demo's simulated men answer, as the fake's responder.

    They answer what asks for an answer: a check-in (a tap on one of its buttons, sometimes
    followed by a few words for the group) and a template that opens a day. They do not answer
    plain texts, media or the posts of their community relayed to them: what a man writes is
    relayed to every other member, so a man who answered every relay would set off a chain of
    answers to answers that grows with the group and never ends (that is what hung the demo)."""
    rng = random.Random(seed)
    lock = threading.Lock()
    words = ("Gracias, causa", "Buena pregunta", "Lo intentaré esta semana", "👍")

    def respond(entry: AcceptedMessage) -> list[dict[str, object]]:
        with lock:  # the fake calls this from its own thread
            if entry.type not in ("interactive", "template") or rng.random() >= reply_probability:
                return []
            if entry.type == "template":
                return [{"type": "text", "text": {"body": "¡Hola! Aquí estoy 👋"}}]
            buttons = entry.payload["interactive"]["action"].get("buttons") or []
            if not buttons:
                return []
            reply = rng.choice(buttons)["reply"]
            answers: list[dict[str, object]] = [
                {
                    "type": "interactive",
                    "interactive": {
                        "type": "button_reply",
                        "button_reply": {"id": reply["id"], "title": reply["title"]},
                    },
                }
            ]
            if rng.random() < 0.3:
                answers.append({"type": "text", "text": {"body": rng.choice(words)}})
            return answers

    return respond


def demo_channel_config(name: str, *, token: str, app_secret: str) -> ChannelConfig:
    """The demo's WhatsApp channel NAME, pointed at the in-process fake and ready to send
    (a paused channel from an earlier run is resumed)."""
    from tertulia.messaging.models import ChannelConfig

    config, _ = ChannelConfig.objects.update_or_create(
        name=name,
        defaults={
            "access_token": token,
            "app_secret": app_secret,
            "verify_token": "demo",
            "service_window": True,
            "paused": False,
            "paused_reason": "",
        },
    )
    return config


@contextmanager
def django_server() -> Iterator[str]:
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
    templates: Path | None = None,
    on_day: Callable[[DayReport], None] | None = None,
) -> DemoReport:
    """Run `days` program days for `men` simulated men on `whatsapp:<name>`; returns counts.
    `site_url` is a running server of this project to post webhooks to; by default one is
    started in this process. `templates` is the channel's template registry (YAML); by
    default the bundled content/guy-talk/whatsapp-templates.yaml."""
    from tertulia.core import clock

    simulated = clock.SimulatedClock(dt.datetime.now(LIMA))
    previous = clock.use(simulated)
    try:
        return _demo(
            simulated,
            content=content,
            men=men,
            days=days,
            reply_probability=reply_probability,
            seed=seed,
            name=name,
            site_url=site_url,
            templates=templates,
            on_day=on_day,
        )
    finally:
        clock.use(previous)


def _demo(
    simulated: SimulatedClock,
    *,
    content: Path,
    men: int,
    days: int,
    reply_probability: float,
    seed: int,
    name: str,
    site_url: str | None,
    templates: Path | None,
    on_day: Callable[[DayReport], None] | None,
) -> DemoReport:
    from tertulia.cohorts.services import (
        cohort_create,
        enrollment_create,
        participant_get_or_create,
    )
    from tertulia.core import clock
    from tertulia.messaging.models import ChannelConfig, CheckInResponse, Message
    from tertulia.messaging.scheduler import outbox_enqueue_due
    from tertulia.messaging.sender import outbox_send_batch
    from tertulia.messaging.worker import run_until_idle
    from tertulia.programs.services import curriculum_import

    from .channel import clients_close
    from .handoff import webhook_events_process_pending

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
    with django_server() if site_url is None else nullcontext(site_url.rstrip("/")) as site:
        webhook_url = f"{site}/webhooks/whatsapp/{name}/"
        config = demo_channel_config(name, token=DEMO_TOKEN, app_secret=DEMO_SECRET)
        registry = _demo_templates(config, templates)
        with run_fake_whatsapp(
            token=DEMO_TOKEN,
            app_secret=DEMO_SECRET,
            webhook_url=webhook_url,
            # Meta's rules: free-form only within 24 h of his last message, approved templates
            # only, with the right number of parameters; time is the demo's clock.
            enforce_window=True,
            templates=registry,
            clock=lambda: clock.now().timestamp(),
            reply_probability=1.0,  # each answer is drawn by the responder
            responder=simulated_men(reply_probability, seed),
            # A fresh seed per cohort: the fake's message ids must not repeat an earlier run's.
            seed=seed * 100_003 + cohort.pk,
        ) as fake:
            ChannelConfig.objects.filter(pk=config.pk).update(
                phone_number_id=fake.phone_number_id, base_url=fake.base_url
            )
            report = DemoReport(cohort_id=cohort.pk)
            first = curriculum.first_day
            send_at = (
                dt.datetime.combine(start, cohort.send_time) + dt.timedelta(minutes=1)
            ).time()
            for offset in range(days):
                now = dt.datetime.combine(start + dt.timedelta(days=offset), send_at, tzinfo=LIMA)
                # The process clock follows the days, so each man's pair limit (one message
                # every 6 s) is paced in program time, as the days are.
                simulated.set(now)
                outbox_enqueue_due(now=now)
                templates_before = _templates_sent(fake)
                before = _outbox_counts(cohort.pk)
                # Send what is due, let the fake's statuses and the men's answers come back and
                # be processed, and send what they caused (relayed posts, keyword answers),
                # until the day is quiet.
                while True:
                    claimed = 0
                    while (batch := outbox_send_batch(now=now)).claimed:
                        claimed += batch.claimed
                    _settle(fake, run_until_idle, webhook_events_process_pending)
                    if claimed == 0:
                        break
                after = _outbox_counts(cohort.pk)
                day = DayReport(
                    day=first + offset,
                    sent=after["sent"] - before["sent"],
                    failed=after["failed"] - before["failed"],
                    replies=Message.objects.filter(
                        direction=Message.Direction.IN, enrollment__cohort=cohort
                    ).count(),
                    checkins=CheckInResponse.objects.filter(enrollment__cohort=cohort).count(),
                    templates=_templates_sent(fake) - templates_before,
                    held=after["queued"],
                    expired=after["expired"] - before["expired"],
                )
                report.days.append(day)
                if on_day:
                    on_day(day)
            _settle(fake, run_until_idle, webhook_events_process_pending)
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


def _templates_sent(fake: FakeWhatsApp) -> int:
    return sum(1 for e in fake.log.entries() if e.type == "template")


def _demo_templates(config: ChannelConfig, path: Path | None) -> dict[str, TemplateSpec]:
    """Load the channel's template registry and tell the fake which templates Meta approved."""
    from django.conf import settings

    from tertulia.messaging.models import MessageTemplate

    from .templates import templates_load

    path = path or Path(settings.TERTULIA_CONTENT_DIR) / "guy-talk" / "whatsapp-templates.yaml"
    if path.is_file():
        templates_load(channel=config.name, path=path)
    else:
        MessageTemplate.objects.update_or_create(
            channel=config,
            name="demo_day_opening",
            defaults={"category": "utility", "parameters": ["day", "topic"], "active": True},
        )
    return {
        t.name: TemplateSpec(category=t.category, body_params=len(t.parameters))
        for t in MessageTemplate.objects.filter(channel=config, active=True)
    }


def _outbox_counts(cohort_id: int) -> dict[str, int]:
    """The cohort's Outbox rows by status (the worker also sends, so count rows, not calls)."""
    from django.db.models import Count

    from tertulia.messaging.models import Outbox

    from .reengagement import HELD

    rows = (
        Outbox.objects.filter(enrollment__cohort_id=cohort_id)
        .values("status")
        .annotate(n=Count("id"))
    )
    counts = {"sent": 0, "failed": 0, "queued": 0}
    counts.update({row["status"]: row["n"] for row in rows})
    counts["expired"] = Outbox.objects.filter(
        enrollment__cohort_id=cohort_id, status=Outbox.Status.FAILED, error__startswith=HELD
    ).count()
    return counts


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
