"""The sender hands each Outbox row to its channel exactly once, even across crashes."""

from __future__ import annotations

import datetime as dt

import pytest

from tertulia.messaging.channel import ChannelError, Outbound, SendResult, register
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.ratelimit import PacedError
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import (
    _claim,
    _load,
    _messages_for,
    outbox_recover_stale,
    outbox_send_batch,
    outbox_send_batches,
    retry_delay,
)
from tertulia.messaging.services import service_message_queue
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


class Scripted:
    """A channel kind whose answers the test sets: one result per message, in order."""

    kind = "scripted"
    answers: list[object] = []
    seen: list[Outbound] = []

    def send_many(self, outbounds):  # type: ignore[no-untyped-def]
        Scripted.seen += outbounds
        return [Scripted.answers.pop(0) for _ in outbounds]

    def reconcile(self, message_id: int) -> str | None:
        return None


@pytest.fixture
def scripted(make_cohort, enroll):  # type: ignore[no-untyped-def]
    """Service messages queued for `n` men on a scripted channel; returns a function."""
    register("scripted", Scripted)
    Scripted.answers, Scripted.seen = [], []
    cohort = make_cohort(start=START)

    def queue(n: int) -> list[Outbox]:
        return [
            service_message_queue(
                participant=enroll(cohort).participant,
                enrollment=None,
                channel="scripted:test",
                text=f"Hola {k}",
                now=lima(START, 19, 0),
            )
            for k in range(n)
        ]

    return queue


@pytest.mark.django_db
def test_rows_that_failed_together_come_back_spread_out(scripted):  # type: ignore[no-untyped-def]
    """Exponential backoff with jitter: twenty rows refused at once (a burst of 130429) are
    retried at twenty different moments in the upper half of each attempt's interval."""
    rows = scripted(20)
    now = lima(START, 19, 1)
    Scripted.answers = [ChannelError("throttled", code="130429") for _ in rows]
    assert outbox_send_batch(now=now).retried == 20
    first = [(r.due_at - now).total_seconds() for r in Outbox.objects.order_by("id")]
    assert all(15.0 <= d <= 30.0 for d in first)
    assert len(set(first)) == 20
    assert set(Outbox.objects.values_list("attempts", flat=True)) == {1}

    later = now + dt.timedelta(minutes=1)
    Scripted.answers = [ChannelError("throttled", code="130429") for _ in rows]
    assert outbox_send_batch(now=later).retried == 20
    second = [(r.due_at - later).total_seconds() for r in Outbox.objects.order_by("id")]
    assert all(30.0 <= d <= 60.0 for d in second)
    assert len(set(second)) == 20
    # The cap holds however often it failed.
    assert all(1800 <= retry_delay(n) <= 3600 for n in (8, 20, 10_000))


@pytest.mark.django_db
def test_paced_and_held_rows_wait_without_spending_an_attempt(scripted):  # type: ignore[no-untyped-def]
    """One requeue path: a rate limit's wait (retry_after) and a closed window's hold
    (retry_at) put the row back for then without counting a try; a failure counts one."""
    rows = scripted(4)
    now = lima(START, 19, 1)
    held_until = now + dt.timedelta(minutes=30)
    Scripted.answers = [
        PacedError(12.0),
        ChannelError("window closed: held", code="window_closed", retry_at=held_until),
        ChannelError("boom", code="http503"),
        ChannelError("no such number", code="131026", permanent=True),
    ]
    report = outbox_send_batch(now=now)
    assert (report.paced, report.held, report.retried, report.failed) == (1, 1, 1, 1)
    paced, held, retried, failed = Outbox.objects.order_by("id")
    assert (paced.status, paced.attempts, paced.due_at) == (
        Outbox.Status.QUEUED,
        0,
        now + dt.timedelta(seconds=12),
    )
    assert (held.status, held.attempts, held.due_at) == (Outbox.Status.QUEUED, 0, held_until)
    assert (retried.status, retried.attempts) == (Outbox.Status.QUEUED, 1)
    assert failed.status == Outbox.Status.FAILED
    assert [r.id for r in (paced, held, retried, failed)] == [r.id for r in rows]
    # Every message carried its row's channel and its text.
    assert [o.text for o in Scripted.seen] == ["Hola 0", "Hola 1", "Hola 2", "Hola 3"]
    assert {o.channel for o in Scripted.seen} == {"scripted:test"}


@pytest.mark.django_db
def test_batches_in_a_row_send_each_row_once_and_say_when_nothing_is_left(scripted):  # type: ignore[no-untyped-def]
    """The next batch is claimed while the one before is in flight: every row still goes once,
    and the reports add up; a run that stops early says there may be more."""
    rows = scripted(7)
    now = lima(START, 19, 1)
    Scripted.answers = [SendResult(provider_id=f"p{n}") for n in range(7)]
    report, drained = outbox_send_batches(now=now, limit=3, batches=2)
    assert (report.claimed, report.sent, drained) == (6, 6, False)
    report, drained = outbox_send_batches(now=now, limit=3, batches=5)
    assert (report.claimed, report.sent, drained) == (1, 1, True)
    assert [o.text for o in Scripted.seen] == [f"Hola {n}" for n in range(7)]
    assert set(Outbox.objects.values_list("status", flat=True)) == {Outbox.Status.SENT}
    assert sorted(Message.objects.values_list("provider_id", flat=True)) == sorted(
        f"p{n}" for n in range(len(rows))
    )


@pytest.mark.django_db
def test_the_clock_s_tick_sends_rows_that_were_queued_without_a_task(
    scheduled, run_tasks, django_capture_on_commit_callbacks
):  # type: ignore[no-untyped-def]
    from tertulia.messaging.tasks import schedule_due_task

    later = lima(START, 19, 5)  # the day's rows were written at 19:00; nothing sent them
    with django_capture_on_commit_callbacks(execute=True):
        assert schedule_due_task.call(later.isoformat())["outbox_written"] == 0
    run_tasks()
    assert not Outbox.objects.filter(status=Outbox.Status.QUEUED).exists()
    assert SimulatedDelivery.objects.count() == Outbox.objects.count() > 0


@pytest.mark.django_db
def test_the_tick_leaves_rows_to_a_send_in_progress(scheduled, django_capture_on_commit_callbacks):  # type: ignore[no-untyped-def]
    from tertulia.messaging.tasks import schedule_due_task

    later = lima(START, 19, 5)
    Outbox.objects.filter(pk=Outbox.objects.first().pk).update(status=Outbox.Status.SENDING)
    with django_capture_on_commit_callbacks() as queued:
        schedule_due_task.call(later.isoformat())
    assert queued == [], "a send chain is running: no second one"
    Outbox.objects.filter(status=Outbox.Status.SENDING).update(status=Outbox.Status.QUEUED)
    with django_capture_on_commit_callbacks() as queued:
        report = schedule_due_task.call((later - dt.timedelta(minutes=4, seconds=30)).isoformat())
    assert report["outbox_written"] == 0
    assert queued == [], "due for less than a minute: its own task is on its way"
    with django_capture_on_commit_callbacks() as queued:
        schedule_due_task.call(later.isoformat())
    assert len(queued) == 1
