"""A `failed` status webhook after Meta accepted a message follows the error table as the same
answer given at once does: 130429, 131056, 131000 and 131016 queue the message again with the
sender's backoff (bounded by its attempts) and slow the buckets down; 131026 leaves it
undeliverable; a repeated delivery of the same failed status is acted on once."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from tertulia.core import clock
from tertulia.messaging import ratelimit
from tertulia.messaging.channel import SUPERSEDED
from tertulia.messaging.channels.whatsapp import channel as wa_channel
from tertulia.messaging.channels.whatsapp.handoff import webhook_events_drain
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.sender import MAX_ATTEMPTS, _sent_record, outbox_send_batch
from tests.conftest import lima

from .conftest import envelope, post_signed, unconfirmed_send

pytestmark = pytest.mark.django_db(transaction=True)

START = dt.date(2026, 3, 2)
T = lima(START, 19, 1)


@pytest.fixture
def slowed(monkeypatch: Any) -> list[tuple[bool, list[str]]]:
    """Every slow-down the channel asks of the buckets (still applied), as (number, men)."""
    calls: list[tuple[bool, list[str]]] = []
    real = wa_channel.slow_down

    def spy(config: Any, *, number: bool, recipients: Any = ()) -> None:
        calls.append((number, list(recipients)))
        real(config, number=number, recipients=recipients)

    monkeypatch.setattr(wa_channel, "slow_down", spy)
    return calls


def refused_by_status(fake: Any, code: int, replay: Any, men: int = 1) -> tuple[Message, Any]:
    """The first message of the day is accepted, then failed by status with `code`; every
    webhook is delivered and processed. Returns its Message and when processing began."""
    fake.force(code, asynchronous=True)
    report = outbox_send_batch(now=T)
    assert report.sent == len(fake.log) and report.retried == 0
    first = fake.log.entries()[0]
    replay(fake)
    began = clock.now()
    webhook_events_drain()
    message = Message.objects.select_related("outbox", "participant").get(pk=int(first.reference))
    assert message.provider_id in (first.message_id, f"{SUPERSEDED}{first.message_id}")
    return message, began


def test_a_throughput_failure_by_status_goes_again_later_and_holds_the_number(
    day0: Any, wa_config: Any, fake: Any, replay: Any, slowed: Any
) -> None:
    day0()
    message, began = refused_by_status(fake, 130429, replay)
    # The number's bucket is held (checked first: the hold lasts a second).
    limits = ratelimit.limits_for(wa_config)
    [moment] = ratelimit.limiter().reserve(wa_config.phone_number_id, 1, limits)
    assert moment - time.monotonic() > ratelimit.THROUGHPUT_HOLD / 2
    assert slowed == [(True, [])]

    row = message.outbox
    assert row.status == Outbox.Status.QUEUED
    assert row.attempts == 1  # the refused send was an attempt; it is not given back
    # Backoff with jitter, as a send refused at once: 15-30 s after the first attempt.
    assert began + dt.timedelta(seconds=15) <= row.due_at
    assert row.due_at <= clock.now() + dt.timedelta(seconds=30)
    assert row.error.startswith("130429 by status webhook")
    assert (message.status, message.error_code) == (Message.Status.PENDING, "")
    assert message.provider_id == f"{SUPERSEDED}{fake.log.entries()[0].message_id}"

    # When it is due it goes again, as a new request, and is delivered.
    report = outbox_send_batch(now=row.due_at)
    assert (report.claimed, report.sent) == (1, 1)
    assert len(fake.log) == 4
    again = fake.log.entries()[3]
    assert again.reference == str(message.pk)
    replay(fake)
    webhook_events_drain()
    message.refresh_from_db()
    assert message.provider_id == again.message_id
    assert message.status in (Message.Status.DELIVERED, Message.Status.READ)


def test_a_pair_limit_failure_by_status_paces_that_man_only(
    day0: Any, wa_config: Any, fake: Any, replay: Any, slowed: Any
) -> None:
    day0(men=2)
    message, _ = refused_by_status(fake, 131056, replay)
    him = message.participant.phone
    other = next(e.to for e in fake.log.entries() if e.to != him.lstrip("+"))
    assert slowed == [(False, [him])]
    admission = ratelimit.limiter().admit(
        wa_config.phone_number_id, [(him, 1), (f"+{other}", 1)], ratelimit.limits_for(wa_config)
    )
    assert admission.pair_waits[0] > 0  # his pair bucket is spent for an interval
    assert admission.pair_waits[1] == 0.0  # the other man got as many messages, and is not
    assert message.outbox.status == Outbox.Status.QUEUED
    assert message.outbox.error.startswith("131056 by status webhook")


@pytest.mark.parametrize("code", [131000, 131016])
def test_transient_failures_by_status_go_again_without_slowing_anything(
    code: int, day0: Any, wa_config: Any, fake: Any, replay: Any, slowed: Any
) -> None:
    day0()
    message, _ = refused_by_status(fake, code, replay)
    assert message.outbox.status == Outbox.Status.QUEUED
    assert message.status == Message.Status.PENDING
    assert slowed == []


def test_an_undeliverable_failure_by_status_is_never_sent_again(
    day0: Any, wa_config: Any, fake: Any, replay: Any, slowed: Any
) -> None:
    day0()
    message, _ = refused_by_status(fake, 131026, replay)
    assert (message.status, message.error_code) == (Message.Status.FAILED, "131026")
    assert message.provider_id == fake.log.entries()[0].message_id
    assert message.outbox.status == Outbox.Status.SENT  # Meta took it; it will not deliver it
    assert slowed == []
    assert outbox_send_batch(now=T + dt.timedelta(hours=2)).claimed == 0
    assert len(fake.log) == 3


def test_a_repeated_failed_status_queues_the_message_once(
    day0: Any, wa_config: Any, fake: Any, replay: Any, slowed: Any
) -> None:
    day0()
    message, _ = refused_by_status(fake, 130429, replay)
    row = message.outbox
    assert row.status == Outbox.Status.QUEUED
    # Meta delivers the whole history again, before and after the message went again.
    replay.done = 0
    replay()
    webhook_events_drain()
    row.refresh_from_db()
    assert (row.status, row.attempts) == (Outbox.Status.QUEUED, 1)
    assert outbox_send_batch(now=row.due_at).sent == 1
    replay.done = 0
    replay(fake)
    webhook_events_drain()
    row.refresh_from_db()
    message.refresh_from_db()
    assert (row.status, row.attempts) == (Outbox.Status.SENT, 2)
    assert message.provider_id == fake.log.entries()[3].message_id
    assert message.status != Message.Status.FAILED
    assert slowed == [(True, [])]  # one failed status, one slow-down
    assert outbox_send_batch(now=row.due_at + dt.timedelta(hours=1)).claimed == 0
    assert len(fake.log) == 4


def test_a_failed_status_past_the_attempts_fails_the_message(
    day0: Any, wa_config: Any, fake: Any, replay: Any
) -> None:
    day0()
    fake.force(131000, asynchronous=True)
    outbox_send_batch(now=T)
    first = fake.log.entries()[0]
    Outbox.objects.filter(message__pk=int(first.reference)).update(attempts=MAX_ATTEMPTS)
    replay(fake)
    webhook_events_drain()
    message = Message.objects.select_related("outbox").get(pk=int(first.reference))
    assert (message.status, message.error_code) == (Message.Status.FAILED, "131000")
    assert message.outbox.status == Outbox.Status.FAILED
    assert "attempts spent" in message.outbox.error
    assert outbox_send_batch(now=T + dt.timedelta(hours=2)).claimed == 0


def test_a_failed_status_that_overtakes_the_sender_s_record_is_not_undone(
    client: Any, make_config: Any, make_cohort: Any, enroll: Any
) -> None:
    """Meta's failed status (naming our reference) is processed before the sender records
    the send's answer: the record does not bring the refused id back, so a repeat of the
    status finds nothing to queue again."""
    make_config()
    cohort = make_cohort(start=START)
    row, message = unconfirmed_send(enroll(cohort, phone="+51987000001"), T)
    failed = {
        "id": "wamid.RACE",
        "status": "failed",
        "timestamp": "1772496000",
        "recipient_id": "51987000001",
        "biz_opaque_callback_data": str(message.pk),
        "errors": [{"code": 131016, "title": "Service unavailable"}],
    }
    body = envelope(statuses=[failed])
    assert post_signed(client, body).status_code == 200
    webhook_events_drain()
    _sent_record([(message.pk, "wamid.RACE")], T)  # the sender's record comes late
    message.refresh_from_db()
    row.refresh_from_db()
    assert message.provider_id == f"{SUPERSEDED}wamid.RACE"
    assert message.status == Message.Status.PENDING
    assert row.status == Outbox.Status.QUEUED
    Outbox.objects.filter(pk=row.pk).update(status=Outbox.Status.SENDING)  # claimed again
    assert post_signed(client, body).status_code == 200
    webhook_events_drain()
    row.refresh_from_db()
    assert row.status == Outbox.Status.SENDING
