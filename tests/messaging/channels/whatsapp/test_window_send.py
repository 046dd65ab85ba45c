"""The 24-hour window on the WhatsApp send path, against a fake that enforces it like Meta:
free-form inside it, the mapped template outside it, and one template resend after a 131047,
whether Meta refuses at once or accepts and fails the message by status webhook."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from tertulia.cohorts.models import Cohort
from tertulia.core import clock
from tertulia.messaging.channels.whatsapp.reengagement import HOLD_LIMIT
from tertulia.messaging.channels.whatsapp.templates import templates_load
from tertulia.messaging.models import Message, Outbox, WebhookEvent
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import (
    LEASE,
    _claim,
    _load,
    _messages_for,
    outbox_recover_stale,
    outbox_send_batch,
)
from tertulia.messaging.services import Inbound, message_record_inbound, service_message_queue
from tests.conftest import lima

from .conftest import CHANNEL
from .test_templates import REGISTRY

pytestmark = pytest.mark.django_db(transaction=True)

START = dt.date(2026, 3, 2)
T = lima(START, 19, 1)
PHONE = "+51987000001"
WA_ID = PHONE[1:]


@pytest.fixture
def sim() -> Iterator[clock.SimulatedClock]:
    simulated = clock.SimulatedClock(T)
    previous = clock.use(simulated)
    yield simulated
    clock.use(previous)


@pytest.fixture
def window_fake(make_fake: Any, make_config: Any, sim: clock.SimulatedClock) -> Any:
    """A fake that enforces the window on the test's clock; the channel follows the window
    and has the bundled registry. Returns a function taking the fake's options."""

    def make(**options: Any) -> Any:
        fake = make_fake(enforce_window=True, clock=lambda: clock.now().timestamp(), **options)
        make_config(
            base_url=fake.base_url, phone_number_id=fake.phone_number_id, service_window=True
        )
        templates_load(channel="test", path=REGISTRY)
        return fake

    return make


@pytest.fixture
def man(make_cohort: Any, enroll: Any) -> Any:
    cohort = make_cohort(start=START)
    Cohort.objects.filter(pk=cohort.pk).update(channel=CHANNEL)
    return enroll(cohort, phone=PHONE)


def he_writes(fake: Any, at: dt.datetime, provider_id: str = "wamid.in1") -> None:
    """He wrote to us at `at`: our store and the fake both know."""
    message_record_inbound(
        Inbound(channel=CHANNEL, address=PHONE, provider_id=provider_id, received_at=at,
                text="hola")
    )  # fmt: skip
    fake.open_window(WA_ID, at=at.timestamp())


def sent_types(fake: Any) -> list[str]:
    return [e.type for e in fake.log.entries()]


def test_inside_his_window_the_day_goes_free_form(window_fake: Any, man: Any) -> None:
    fake = window_fake()
    he_writes(fake, T - dt.timedelta(hours=3))
    outbox_enqueue_due(now=T)
    report = outbox_send_batch(now=T)
    assert (report.sent, report.held, report.failed) == (3, 0, 0)
    assert sent_types(fake) == ["text", "audio", "interactive"]
    assert not Message.objects.filter(payload__has_key="template").exists()


def test_outside_it_the_day_opens_with_its_template_and_the_rest_waits_for_him(
    window_fake: Any, man: Any, replay: Any, run_tasks: Any, sim: clock.SimulatedClock
) -> None:
    fake = window_fake()
    he_writes(fake, T - dt.timedelta(hours=25))  # yesterday's window has closed
    outbox_enqueue_due(now=T)
    report = outbox_send_batch(now=T)
    assert (report.sent, report.held, report.failed) == (1, 2, 0)
    [opening] = fake.log.entries()
    assert opening.type == "template" and opening.template == "hep_bienvenida"  # day 0's own
    first = Message.objects.get(pk=int(opening.reference))
    assert first.payload["template"] == "hep_bienvenida"
    assert first.outbox.step.position == 1
    held = Outbox.objects.filter(status=Outbox.Status.QUEUED)
    assert held.count() == 2 and all(r.error.startswith("window closed") for r in held)
    assert all(r.attempts == 0 for r in held)  # waiting is not a failed attempt
    assert outbox_send_batch(now=T).claimed == 0

    # He answers the template: his window opens and the rest of the day goes at once.
    sim.advance(dt.timedelta(minutes=5))
    fake.send_inbound(WA_ID, "Aquí estoy")
    replay(fake)
    run_tasks()
    later = outbox_send_batch(now=clock.now())
    assert (later.sent, later.held) == (2, 0)
    assert sent_types(fake) == ["template", "audio", "interactive"]
    assert fake.log.duplicate_references() == {}


def test_what_waits_fails_visibly_if_he_never_writes(window_fake: Any, man: Any, sim: Any) -> None:
    window_fake()
    outbox_enqueue_due(now=T)
    outbox_send_batch(now=T)
    sim.advance(HOLD_LIMIT + dt.timedelta(minutes=1))
    report = outbox_send_batch(now=clock.now())
    assert (report.claimed, report.failed) == (2, 2)
    failed = Outbox.objects.filter(status=Outbox.Status.FAILED)
    assert all("has not written for 23 h" in r.error for r in failed)
    assert set(Message.objects.filter(status=Message.Status.FAILED).values_list(
        "error_code", flat=True)) == {"window_closed"}  # fmt: skip


def test_a_service_message_goes_as_the_template_it_names(window_fake: Any, man: Any) -> None:
    fake = window_fake()
    for template in ("hep_aviso", "no_such_template"):
        service_message_queue(
            participant=man.participant, enrollment=man, channel=CHANNEL, text="Hola",
            now=T, template=template,
        )  # fmt: skip
    report = outbox_send_batch(now=T)
    assert (report.sent, report.failed) == (1, 1)
    assert [e.template for e in fake.log.entries()] == ["hep_aviso"]
    refused = Outbox.objects.get(status=Outbox.Status.FAILED)
    assert "template 'no_such_template' is not in the registry of whatsapp:test" in refused.error


def test_a_131047_answer_sends_the_template_once(window_fake: Any, man: Any) -> None:
    """We think his window is open, Meta does not (it refuses at once): the day's first step
    goes again as its template in the same batch; the others, which have none, wait."""
    fake = window_fake(window_sync=True)
    message_record_inbound(
        Inbound(channel=CHANNEL, address=PHONE, provider_id="wamid.x", received_at=T, text="hola")
    )  # fmt: skip  (our store only: the fake never saw it)
    outbox_enqueue_due(now=T)
    report = outbox_send_batch(now=T)
    assert (report.sent, report.held, report.failed) == (1, 2, 0)
    [entry] = fake.log.entries()
    assert entry.type == "template"
    first = Message.objects.get(pk=int(entry.reference))
    assert first.provider_id == entry.message_id
    assert first.payload["reengaged_after"] == {"code": 131047, "via": "answer"}
    assert first.payload["template"] == "hep_bienvenida"
    # Meta's word stands until he writes again, though our own window says open.
    assert outbox_send_batch(now=T + dt.timedelta(hours=1)).sent == 0


def test_a_131047_status_after_acceptance_sends_the_template_once(
    window_fake: Any, man: Any, replay: Any, run_tasks: Any
) -> None:
    fake = window_fake()  # refuses by failed status webhook, after accepting
    message_record_inbound(
        Inbound(channel=CHANNEL, address=PHONE, provider_id="wamid.x", received_at=T,
                text="hola")
    )  # fmt: skip
    outbox_enqueue_due(now=T)
    assert outbox_send_batch(now=T).sent == 3
    assert sent_types(fake) == ["text", "audio", "interactive"]
    refused_id = fake.log.entries()[0].message_id
    replay(fake)
    run_tasks()
    first = Message.objects.get(pk=int(fake.log.entries()[0].reference))
    assert first.payload["reengaged_after"] == {"code": 131047, "via": "status"}
    assert first.status == Message.Status.PENDING
    assert first.outbox.status == Outbox.Status.QUEUED
    # The first goes again as its template; the two without one wait until he writes.
    report = outbox_send_batch(now=T)
    assert (report.sent, report.held) == (1, 2)
    assert sent_types(fake) == ["text", "audio", "interactive", "template"]
    replay(fake)
    run_tasks()
    first.refresh_from_db()
    assert first.provider_id == fake.log.entries()[3].message_id != refused_id
    assert first.status == Message.Status.READ
    assert first.payload["template"] == "hep_bienvenida"
    # A repeated delivery of the old failure changes nothing and sends nothing.
    replay.done = 0
    replay()
    run_tasks()
    first.refresh_from_db()
    assert first.status == Message.Status.READ
    assert outbox_send_batch(now=T + dt.timedelta(minutes=5)).claimed == 0
    assert len(fake.log) == 4


def test_a_refused_template_is_never_sent_again(
    window_fake: Any, man: Any, replay: Any, run_tasks: Any
) -> None:
    fake = window_fake(window_sync=True)
    message_record_inbound(
        Inbound(channel=CHANNEL, address=PHONE, provider_id="wamid.x", received_at=T,
                text="hola")
    )  # fmt: skip
    service_message_queue(
        participant=man.participant, enrollment=man, channel=CHANNEL, text="Hola", now=T,
        template="hep_aviso",
    )  # fmt: skip
    # At once: the free-form is refused (the window), then its template too (forced).
    fake.force(131047)
    fake.force(131047)
    report = outbox_send_batch(now=T)
    assert (report.sent, report.failed) == (0, 1)
    row = Outbox.objects.get()
    assert row.error.endswith("; the template was refused too: not sent again")
    assert (row.message.status, row.message.error_code) == (Message.Status.FAILED, "131047")
    assert outbox_send_batch(now=T + dt.timedelta(days=1)).claimed == 0
    assert len(fake.log) == 0

    # By status: accepted, then failed with 131047, it goes again as its template; when the
    # template is accepted and then fails the same way, it stays failed.
    service_message_queue(
        participant=man.participant, enrollment=man, channel=CHANNEL, text="Hola otra vez",
        now=T, template="hep_aviso",
    )  # fmt: skip
    fake.force("131047_async")
    assert outbox_send_batch(now=T).sent == 1
    replay(fake)
    run_tasks()
    fake.force("131047_async")
    assert outbox_send_batch(now=T).sent == 1
    replay(fake)
    run_tasks()
    message = Message.objects.filter(direction=Message.Direction.OUT).latest("id")
    assert (message.status, message.error_code) == (Message.Status.FAILED, "131047")
    assert message.payload["reengaged_after"] == {"code": 131047, "via": "status"}
    assert outbox_send_batch(now=T + dt.timedelta(hours=1)).claimed == 0
    assert sent_types(fake) == ["text", "template"]


def test_a_crash_between_the_refusal_and_the_template_is_never_taken_for_a_send(
    window_fake: Any, man: Any, replay: Any, run_tasks: Any, sim: Any
) -> None:
    """Meta accepted the day's first message, then failed it with 131047 by status: its row
    is queued again to go as the template. A sender claims it and dies before the template
    leaves. Recovery must not take the refused send's (superseded) id for the template's:
    the row goes back to the queue and the template goes once."""
    fake = window_fake()  # refuses by failed status webhook, after accepting
    message_record_inbound(
        Inbound(channel=CHANNEL, address=PHONE, provider_id="wamid.x", received_at=T, text="hola")
    )
    outbox_enqueue_due(now=T)
    assert outbox_send_batch(now=T).sent == 3
    replay(fake)
    run_tasks()
    first = Message.objects.get(pk=int(fake.log.entries()[0].reference))
    assert first.provider_id.startswith("superseded:")
    assert first.outbox.status == Outbox.Status.QUEUED

    # A sender claims the rows and writes nothing more: it died before sending.
    claimed = _claim(500, T)
    _load(claimed)
    _messages_for(claimed, T)
    assert first.outbox_id in {r.id for r in claimed}
    # Webhooks keep arriving after the claim (the pipeline works), none for a template.
    WebhookEvent.objects.create(
        channel=CHANNEL, body="{}", received_at=T + dt.timedelta(minutes=1), processed_at=T
    )
    later = T + LEASE + dt.timedelta(minutes=1)
    outbox_recover_stale(now=later)
    first.refresh_from_db()
    assert first.outbox.status == Outbox.Status.QUEUED, "never 'sent' on a superseded id"
    assert first.status != Message.Status.SENT
    assert len(fake.log) == 3

    report = outbox_send_batch(now=later)
    assert report.sent == 1
    assert [e.type for e in fake.log.entries()] == ["text", "audio", "interactive", "template"]
    replay(fake)
    run_tasks()
    first.refresh_from_db()
    assert first.provider_id == fake.log.entries()[3].message_id
    assert first.outbox.status == Outbox.Status.SENT
    assert outbox_send_batch(now=later + dt.timedelta(minutes=5)).sent == 0
    assert len(fake.log) == 4


def test_without_webhooks_since_the_claim_the_row_fails_visibly_not_sent(
    window_fake: Any, man: Any, replay: Any, run_tasks: Any, sim: Any
) -> None:
    """The same crash, and nothing has come from Meta since: recovery cannot tell whether the
    template left, so the row fails where staff see it; it is never marked sent."""
    fake = window_fake()
    message_record_inbound(
        Inbound(channel=CHANNEL, address=PHONE, provider_id="wamid.x", received_at=T, text="hola")
    )
    outbox_enqueue_due(now=T)
    outbox_send_batch(now=T)
    replay(fake)
    run_tasks()
    claimed_at = T + dt.timedelta(minutes=2)
    claimed = _claim(500, claimed_at)
    _load(claimed)
    _messages_for(claimed, claimed_at)
    outbox_recover_stale(now=claimed_at + LEASE + dt.timedelta(minutes=1))
    first = Message.objects.get(pk=int(fake.log.entries()[0].reference))
    first.refresh_from_db()
    assert first.outbox.status == Outbox.Status.FAILED
    assert first.outbox.error.startswith("may have been sent")
    assert first.status == Message.Status.FAILED
