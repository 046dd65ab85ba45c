"""The scheduler writes each day's steps once, at the cohort's send time in the man's own time
zone, one day at a time, and closes enrollments when the program ends."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tertulia.cohorts.models import Enrollment
from tertulia.messaging.models import Outbox
from tertulia.messaging.scheduler import outbox_enqueue_due
from tests.conftest import lima

START = dt.date(2026, 3, 2)


def steps_on_day(curriculum, number: int) -> int:  # type: ignore[no-untyped-def]
    return curriculum.days.get(number=number).steps.count()


@pytest.mark.django_db
def test_nothing_is_due_before_the_send_time_of_day_0(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    enroll(cohort)
    report = outbox_enqueue_due(now=lima(START, 18, 59))
    assert report.outbox_written == 0
    assert Outbox.objects.count() == 0


@pytest.mark.django_db
def test_day_0_is_written_at_the_send_time(curriculum, make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    first, second = enroll(cohort), enroll(cohort)
    report = outbox_enqueue_due(now=lima(START, 19, 0))
    per_man = steps_on_day(curriculum, 0)
    assert report.outbox_written == 2 * per_man
    assert report.enrollments_advanced == 2
    for enrollment in (first, second):
        enrollment.refresh_from_db()
        assert enrollment.current_day == 0
        days = set(Outbox.objects.filter(enrollment=enrollment).values_list("day", flat=True))
        assert days == {0}


@pytest.mark.django_db
def test_running_twice_writes_nothing_new(curriculum, make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    enroll(cohort)
    outbox_enqueue_due(now=lima(START, 19, 0))
    again = outbox_enqueue_due(now=lima(START, 19, 5))
    assert again.outbox_written == 0
    assert Outbox.objects.count() == steps_on_day(curriculum, 0)


@pytest.mark.django_db
def test_a_crash_after_writing_the_outbox_never_duplicates_a_step(curriculum, make_cohort, enroll):  # type: ignore[no-untyped-def]
    """If the enrollment's day counter was not advanced (the process died between the two
    statements), the next run finds the rows already there and writes none twice."""
    cohort = make_cohort(start=START)
    enrollment = enroll(cohort)
    outbox_enqueue_due(now=lima(START, 19, 0))
    Enrollment.objects.filter(pk=enrollment.pk).update(current_day=-1, last_scheduled_on=None)
    report = outbox_enqueue_due(now=lima(START, 19, 1))
    assert report.outbox_written == 0
    assert Outbox.objects.count() == steps_on_day(curriculum, 0)
    enrollment.refresh_from_db()
    assert enrollment.current_day == 0


@pytest.mark.django_db
def test_days_follow_one_per_day_after_an_outage(make_cohort, enroll):  # type: ignore[no-untyped-def]
    """The scheduler was down for days 0-2: the man gets day 0 now, day 1 tomorrow, and so on,
    never skipping a day and never two in one day."""
    cohort = make_cohort(start=START)
    enrollment = enroll(cohort)
    outbox_enqueue_due(now=lima(START + dt.timedelta(days=2), 20, 0))
    outbox_enqueue_due(now=lima(START + dt.timedelta(days=2), 21, 0))
    assert set(Outbox.objects.values_list("day", flat=True)) == {0}
    outbox_enqueue_due(now=lima(START + dt.timedelta(days=3), 19, 0))
    assert set(Outbox.objects.values_list("day", flat=True)) == {0, 1}
    enrollment.refresh_from_db()
    assert enrollment.current_day == 1


@pytest.mark.django_db
def test_send_time_is_in_the_participants_time_zone(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    in_lima = enroll(cohort, timezone="America/Lima")
    in_madrid = enroll(cohort, timezone="Europe/Madrid")
    # 19:00 in Madrid is 13:00 in Lima: only the man in Madrid is due.
    outbox_enqueue_due(now=dt.datetime(2026, 3, 2, 18, 0, tzinfo=dt.UTC))
    assert Outbox.objects.filter(enrollment=in_madrid).exists()
    assert not Outbox.objects.filter(enrollment=in_lima).exists()


@pytest.mark.django_db
def test_opted_out_men_get_nothing_more(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    enrollment = enroll(cohort)
    Enrollment.objects.filter(pk=enrollment.pk).update(state=Enrollment.State.OPTED_OUT)
    outbox_enqueue_due(now=lima(START, 19, 0))
    assert Outbox.objects.count() == 0


@pytest.mark.django_db
def test_the_program_end_completes_engaged_men(curriculum, make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    engaged, silent = enroll(cohort), enroll(cohort)
    last = curriculum.last_day
    for day in range(last + 1):
        when = lima(START + dt.timedelta(days=day), 19, 0)
        outbox_enqueue_due(now=when)
        Enrollment.objects.filter(pk=engaged.pk).update(last_engaged_at=when)
    report = outbox_enqueue_due(now=lima(START + dt.timedelta(days=last + 1), 19, 0))
    engaged.refresh_from_db()
    silent.refresh_from_db()
    assert report.completed == 1
    assert engaged.state == Enrollment.State.COMPLETED
    assert engaged.ended_at is not None
    assert silent.state != Enrollment.State.COMPLETED


@pytest.mark.django_db
def test_a_week_of_silence_marks_a_man_dropped(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    enrollment = enroll(cohort)
    Enrollment.objects.filter(pk=enrollment.pk).update(
        enrolled_at=lima(START, 9), last_engaged_at=lima(START, 20)
    )
    outbox_enqueue_due(now=lima(START + dt.timedelta(days=3), 19, 0))
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.ACTIVE
    outbox_enqueue_due(now=lima(START + dt.timedelta(days=8), 19, 0))
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.DROPPED


@pytest.mark.django_db
def test_the_number_of_queries_does_not_grow_with_participants(make_cohort, enroll):  # type: ignore[no-untyped-def]
    """Set-based: scheduling 5 or 40 men in a cohort costs the same number of queries."""
    counts = []
    for size, start in ((5, START), (40, START + dt.timedelta(days=10))):
        cohort = make_cohort(name=f"size {size}", start=start)
        for _ in range(size):
            enroll(cohort)
        Enrollment.objects.exclude(cohort=cohort).update(state=Enrollment.State.COMPLETED)
        with CaptureQueriesContext(connection) as queries:
            outbox_enqueue_due(now=lima(start, 19, 0))
        counts.append(len(queries))
    assert counts[0] == counts[1]


@pytest.mark.django_db
def test_rows_are_due_at_the_send_time_whatever_zone_the_clock_speaks(make_cohort, enroll):  # type: ignore[no-untyped-def]
    """A clock in Lima's zone writes the same instants as one in UTC: on SQLite, where
    datetimes are compared as text, a row written as local time read five hours early."""
    cohort = make_cohort(start=START)
    enroll(cohort)
    send_time = lima(START, 19, 0)
    assert outbox_enqueue_due(now=send_time).outbox_written > 0
    rows = Outbox.objects.all()
    assert not rows.filter(due_at__lt=send_time).exists()
    assert not rows.filter(due_at__lte=send_time - dt.timedelta(minutes=1)).exists()
    assert rows.filter(due_at=send_time).count() == rows.count()
    assert set(rows.values_list("created_at", flat=True)) == {send_time}
