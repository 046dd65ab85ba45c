"""The sender hands each Outbox row to its channel exactly once, even across crashes."""

from __future__ import annotations

import datetime as dt

import pytest

from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import (
    _claim,
    _load,
    _messages_for,
    outbox_recover_stale,
    outbox_send_batch,
)
from tertulia.simulation.models import SimulatedDelivery
from tests.conftest import lima

START = dt.date(2026, 3, 2)


@pytest.fixture
def scheduled(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    enrollments = [enroll(cohort) for _ in range(3)]
    outbox_enqueue_due(now=lima(START, 19, 0))
    return enrollments


@pytest.mark.django_db
def test_each_step_reaches_the_channel_once(scheduled):  # type: ignore[no-untyped-def]
    now = lima(START, 19, 1)
    first = outbox_send_batch(now=now)
    second = outbox_send_batch(now=now)
    rows = Outbox.objects.count()
    assert first.sent == rows
    assert second.claimed == 0
    assert SimulatedDelivery.objects.count() == rows
    assert Message.objects.filter(status=Message.Status.SENT, direction="out").count() == rows
    scheduled[0].refresh_from_db()
    assert scheduled[0].messages_sent == rows // 3


@pytest.mark.django_db
def test_check_in_buttons_carry_their_question(scheduled, curriculum):  # type: ignore[no-untyped-def]
    outbox_send_batch(now=lima(START, 19, 1))
    checkin = SimulatedDelivery.objects.filter(kind="buttons").first()
    step = curriculum.days.get(number=0).steps.get(kind="checkin")
    assert [b["id"] for b in checkin.buttons] == [f"ci:{step.pk}:si", f"ci:{step.pk}:no"]
    assert [b["title"] for b in checkin.buttons] == ["¡Listo!", "Todavía no"]


@pytest.mark.django_db
def test_a_crash_before_the_channel_call_sends_once_after_recovery(scheduled):  # type: ignore[no-untyped-def]
    """The sender claimed rows and wrote their Message rows, then died before calling the
    channel: recovery finds the provider never saw them, requeues, and they go out once."""
    crash_at = lima(START, 19, 1)
    claimed = _claim(500, crash_at)
    _load(claimed)
    _messages_for(claimed, crash_at)
    assert SimulatedDelivery.objects.count() == 0

    later = crash_at + dt.timedelta(minutes=30)
    assert outbox_recover_stale(now=later) == len(claimed)
    report = outbox_send_batch(now=later)
    assert report.sent == len(claimed)
    assert SimulatedDelivery.objects.count() == len(claimed)
    # The retry reused the Message rows written before the crash.
    assert Message.objects.filter(direction="out").count() == len(claimed)


@pytest.mark.django_db
def test_a_crash_after_the_channel_accepted_is_not_resent(scheduled):  # type: ignore[no-untyped-def]
    """The channel accepted the messages but the sender died before recording it: recovery
    learns the provider ids from the channel and marks them sent without sending again."""
    now = lima(START, 19, 1)
    outbox_send_batch(now=now)
    # Rewind our own records to 'sending' without provider ids, as if the process had died.
    Outbox.objects.update(status=Outbox.Status.SENDING, claimed_at=now)
    Message.objects.update(provider_id="", status=Message.Status.PENDING)
    delivered = SimulatedDelivery.objects.count()

    outbox_recover_stale(now=now + dt.timedelta(minutes=30))
    report = outbox_send_batch(now=now + dt.timedelta(minutes=30))
    assert report.claimed == 0
    assert SimulatedDelivery.objects.count() == delivered
    assert not Outbox.objects.exclude(status=Outbox.Status.SENT).exists()
    assert not Message.objects.filter(provider_id="").exists()
