"""The scheduler: what is due now? It answers with set-based SQL: one INSERT and one UPDATE
joined to a temporary table of the due (cohort, time zone) groups, never a Python loop over
participants.

Each run schedules at most one day per enrollment and per local calendar day, the day after
the last one he was given. So a crash, a second run or a late start never sends a day twice
and never skips one; after an outage, missed days follow one a day instead of all at once.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from functools import lru_cache

from django.db import connection, transaction
from django.db.backends.utils import CursorWrapper
from django.db.models import Count, Q

from tertulia.cohorts.models import Cohort, Enrollment, Participant
from tertulia.messaging.models import Outbox
from tertulia.programs.models import Day, Step

DROP_AFTER = dt.timedelta(days=7)


@dataclass(frozen=True)
class Group:
    cohort_id: int
    timezone: str
    due_day: int  # the last day that may be scheduled now (capped at the curriculum's last)
    today: dt.date  # the group's local date
    finished: bool  # the program is over for this group


@dataclass
class ScheduleReport:
    groups: int = 0
    outbox_written: int = 0
    enrollments_advanced: int = 0
    completed: int = 0
    dropped: int = 0


@lru_cache(maxsize=512)
def _zone(name: str) -> zoneinfo.ZoneInfo:
    return zoneinfo.ZoneInfo(name)


def due_groups(now: dt.datetime) -> list[Group]:
    """Every (cohort, time zone) with receiving enrollments, and which day is due there."""
    rows = (
        Enrollment.objects.filter(state__in=Enrollment.RECEIVING)
        .values("cohort_id", "participant__timezone")
        .annotate(n=Count("id"))
    )
    cohorts = {
        c.id: c
        for c in Cohort.objects.filter(id__in={r["cohort_id"] for r in rows}).select_related(
            "curriculum"
        )
    }
    groups = []
    for row in rows:
        cohort = cohorts[row["cohort_id"]]
        local = now.astimezone(_zone(row["participant__timezone"]))
        day = (local.date() - cohort.start_date).days
        if local.time() < cohort.send_time:
            day -= 1
        if day < cohort.curriculum.first_day:
            continue
        groups.append(
            Group(
                cohort_id=cohort.id,
                timezone=row["participant__timezone"],
                due_day=min(day, cohort.curriculum.last_day),
                today=local.date(),
                finished=day > cohort.curriculum.last_day,
            )
        )
    return groups


DUE_TABLE = "tertulia_due"


def _create_due_table(cursor: CursorWrapper, groups: list[Group]) -> None:
    """Load the due groups into a temporary table with a primary key, so that both databases
    join enrollments to it by index (SQLite does not index a VALUES list)."""
    cursor.execute(f"DROP TABLE IF EXISTS {DUE_TABLE}")
    cursor.execute(
        f"CREATE TEMPORARY TABLE {DUE_TABLE} (cohort_id bigint NOT NULL, tz varchar(60) NOT NULL,"
        " due_day integer NOT NULL, today date NOT NULL, PRIMARY KEY (cohort_id, tz))"
    )
    cursor.executemany(
        f"INSERT INTO {DUE_TABLE} (cohort_id, tz, due_day, today) VALUES (%s, %s, %s, %s)",
        [(g.cohort_id, g.timezone, g.due_day, g.today) for g in groups],
    )


def _tables() -> dict[str, str]:
    return {
        "enrollment": Enrollment._meta.db_table,
        "participant": Participant._meta.db_table,
        "cohort": Cohort._meta.db_table,
        "day": Day._meta.db_table,
        "step": Step._meta.db_table,
        "outbox": Outbox._meta.db_table,
    }


# Enrollments of a due group that are owed their next day today.
_OWED = """
    e.participant_id = p.id
    AND due.cohort_id = e.cohort_id AND due.tz = p.timezone
    AND e.state IN ('active', 'dropped')
    AND e.current_day + 1 <= due.due_day
    AND (e.last_scheduled_on IS NULL OR e.last_scheduled_on < due.today)
"""


def _schedule(groups: list[Group], now: dt.datetime) -> tuple[int, int]:
    t = _tables()
    due = f"{DUE_TABLE} due"
    # Only table names are interpolated (from model metadata); every value is a parameter.
    insert = (
        f"INSERT INTO {t['outbox']} (participant_id, enrollment_id, day, step_id, body,"
        " channel, status, due_at, claimed_by, attempts, error, created_at)"
        " SELECT e.participant_id, e.id, d.number, s.id, '', c.channel, 'queued', %s, '', 0,"
        f" '', %s FROM {due}, {t['enrollment']} e, {t['participant']} p, {t['cohort']} c,"
        f" {t['day']} d, {t['step']} s"
        f" WHERE {_OWED} AND c.id = e.cohort_id AND d.curriculum_id = c.curriculum_id"
        " AND d.number = e.current_day + 1 AND s.day_id = d.id"
        " ORDER BY e.id, s.position ON CONFLICT DO NOTHING"
    )
    # The UPDATE matches exactly the enrollments the INSERT served, inside one transaction.
    update = (
        f"UPDATE {t['enrollment']} AS e SET current_day = e.current_day + 1,"
        f" last_scheduled_on = due.today FROM {due}, {t['participant']} p WHERE {_OWED}"
    )
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Losing this transaction in a crash only means the next run writes it again.
            cursor.execute("SET LOCAL synchronous_commit = off")
        _create_due_table(cursor, groups)
        # Adapted as the ORM would: SQLite keeps datetimes as UTC text and compares them as
        # text, so a raw `now` in another zone (-05:00 in Lima) read five hours early there.
        at = connection.ops.adapt_datetimefield_value(now)
        cursor.execute(insert, [at, at])
        written = cursor.rowcount
        cursor.execute(update)
        advanced = cursor.rowcount
        cursor.execute(f"DROP TABLE {DUE_TABLE}")
    return written, advanced


def outbox_enqueue_due(*, now: dt.datetime) -> ScheduleReport:
    """Write the Outbox rows that are due at `now`, and close enrollments whose program ended."""
    report = ScheduleReport()
    groups = due_groups(now)
    report.groups = len(groups)
    if groups:
        with transaction.atomic():
            report.outbox_written, report.enrollments_advanced = _schedule(groups, now)
    finished = [g for g in groups if g.finished]
    with transaction.atomic():
        for g in finished:
            ended = Enrollment.objects.filter(
                cohort_id=g.cohort_id,
                participant__timezone=g.timezone,
                state__in=Enrollment.RECEIVING,
                ended_at__isnull=True,
                current_day__gte=g.due_day,
            )
            # Completed: reached the end still engaged; silent for the last week: dropped.
            report.completed += ended.filter(
                state=Enrollment.State.ACTIVE, last_engaged_at__gte=now - DROP_AFTER
            ).update(state=Enrollment.State.COMPLETED, ended_at=now)
            ended.filter(state=Enrollment.State.ACTIVE).update(state=Enrollment.State.DROPPED)
            ended.update(ended_at=now)
        report.dropped = (
            Enrollment.objects.filter(state=Enrollment.State.ACTIVE, ended_at__isnull=True)
            .filter(
                Q(last_engaged_at__lt=now - DROP_AFTER)
                | Q(last_engaged_at__isnull=True, enrolled_at__lt=now - DROP_AFTER)
            )
            .update(state=Enrollment.State.DROPPED)
        )
    return report
