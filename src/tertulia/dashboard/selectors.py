"""Reads for the dashboard and reports: the program funnel, retention by day and check-in
response by topic.

Definitions (also in docs/metrics.md):
- active on day d: had not opted out by day d, and read or wrote something on one of days
  d-6..d of his program (a week's window, so one quiet day is not a drop-out);
- completed: reached the last day still engaged; opted out: wrote BAJA;
- check-in response rate of a topic: check-ins answered / check-ins sent, on that topic's days.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import Count
from django.utils.translation import gettext as _

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.community.selectors import waiting_in
from tertulia.dashboard.costs import count_format
from tertulia.messaging.models import CheckInResponse, Message, Outbox
from tertulia.programs.models import Step

if TYPE_CHECKING:
    import pandas as pd

WINDOW_DAYS = 7
MILESTONES = (7, 14, 30)


def _empty_frame() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame()


@dataclass
class Funnel:
    enrolled: int = 0
    active_on: dict[int, int] = field(default_factory=dict)
    completed: int = 0
    opted_out: int = 0
    dropped: int = 0
    retention: pd.DataFrame = field(default_factory=_empty_frame)  # day, cohort, active, share
    checkins_by_topic: pd.DataFrame = field(default_factory=_empty_frame)  # topic, sent, answered
    messages_out: int = 0
    messages_in: int = 0
    waiting_for_facilitator: int = 0

    def share(self, n: int) -> float:
        return n / self.enrolled if self.enrolled else 0.0


def _program_day(times: pd.Series, starts: pd.Series) -> pd.Series:
    import pandas as pd

    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    local_dates = pd.to_datetime(times, utc=True).dt.tz_convert(zone).dt.date
    return pd.Series(
        [(d - s).days for d, s in zip(local_dates, starts, strict=True)], index=times.index
    )


def program_funnel(cohorts: Iterable[Cohort]) -> Funnel:
    import pandas as pd

    cohorts = list(cohorts)
    cohort_ids = [c.id for c in cohorts]
    funnel = Funnel()
    enrollments = pd.DataFrame(
        Enrollment.objects.filter(cohort_id__in=cohort_ids).values(
            "id",
            "cohort_id",
            "state",
            "ended_at",
            "cohort__start_date",
            "cohort__name",
            "cohort__curriculum__last_day",
        )
    )
    if enrollments.empty:
        return funnel
    funnel.enrolled = len(enrollments)
    states = enrollments["state"].value_counts()
    funnel.completed = int(states.get(Enrollment.State.COMPLETED, 0))
    funnel.opted_out = int(states.get(Enrollment.State.OPTED_OUT, 0))
    funnel.dropped = int(states.get(Enrollment.State.DROPPED, 0))
    last_day = int(enrollments["cohort__curriculum__last_day"].max())

    # Engagement events: what he wrote, and when he read what he was sent.
    inbound = Message.objects.filter(
        enrollment__cohort_id__in=cohort_ids, direction=Message.Direction.IN
    ).values_list("enrollment_id", "created_at")
    reads = Message.objects.filter(
        enrollment__cohort_id__in=cohort_ids,
        direction=Message.Direction.OUT,
        read_at__isnull=False,
    ).values_list("enrollment_id", "read_at")
    events = pd.DataFrame([*inbound, *reads], columns=["enrollment_id", "at"])
    starts = enrollments.set_index("id")["cohort__start_date"]
    opt_out_day = enrollments.set_index("id").apply(
        lambda r: (
            _program_day(pd.Series([r["ended_at"]]), pd.Series([r["cohort__start_date"]])).iloc[0]
            if r["state"] == Enrollment.State.OPTED_OUT and pd.notna(r["ended_at"])
            else 10_000
        ),
        axis=1,
    )
    engaged_days: dict[int, set[int]] = {}
    if not events.empty:
        events["day"] = _program_day(events["at"], events["enrollment_id"].map(starts))
        for enrollment_id, days in events.groupby("enrollment_id")["day"]:
            engaged_days[int(enrollment_id)] = set(days.tolist())

    rows = []
    cohort_of = enrollments.set_index("id")["cohort__name"]
    for enrollment_id in enrollments["id"]:
        days = engaged_days.get(int(enrollment_id), set())
        for day in range(0, last_day + 1):
            active = day < opt_out_day[enrollment_id] and any(
                d in days for d in range(day - WINDOW_DAYS + 1, day + 1)
            )
            rows.append((day, cohort_of[enrollment_id], active))
    daily = pd.DataFrame(rows, columns=["day", "cohort", "active"])
    retention = daily.groupby(["day", "cohort"], as_index=False)["active"].agg(["sum", "count"])
    overall = daily.groupby("day", as_index=False)["active"].agg(["sum", "count"])
    overall["cohort"] = "all"
    retention = pd.concat([retention, overall], ignore_index=True)
    retention["share"] = retention["sum"] / retention["count"]
    funnel.retention = retention.rename(columns={"sum": "active", "count": "enrolled"})
    for milestone in MILESTONES:
        if milestone <= last_day:
            funnel.active_on[milestone] = int(
                overall.loc[overall["day"] == milestone, "sum"].iloc[0]
            )

    sent = (
        Outbox.objects.filter(
            enrollment__cohort_id__in=cohort_ids,
            step__kind=Step.Kind.CHECKIN,
            status=Outbox.Status.SENT,
        )
        .values("step__day__topic__slug", "step__day__topic__label")
        .annotate(n=Count("id"))
    )
    answered = dict(
        CheckInResponse.objects.filter(enrollment__cohort_id__in=cohort_ids)
        .values_list("step__day__topic__slug")
        .annotate(n=Count("id"))
    )
    funnel.checkins_by_topic = pd.DataFrame(
        [
            {
                "topic": row["step__day__topic__slug"],
                "label": row["step__day__topic__label"],
                "sent": row["n"],
                "answered": answered.get(row["step__day__topic__slug"], 0),
            }
            for row in sent
        ],
        columns=["topic", "label", "sent", "answered"],
    )
    if not funnel.checkins_by_topic.empty:
        funnel.checkins_by_topic["rate"] = (
            funnel.checkins_by_topic["answered"] / funnel.checkins_by_topic["sent"]
        )
    counts = dict(
        Message.objects.filter(enrollment__cohort_id__in=cohort_ids)
        .values_list("direction")
        .annotate(n=Count("id"))
    )
    funnel.messages_out = counts.get(Message.Direction.OUT, 0)
    funnel.messages_in = counts.get(Message.Direction.IN, 0)
    funnel.waiting_for_facilitator = waiting_in(cohort_ids)
    return funnel


def funnel_lines(funnel: Funnel) -> list[tuple[str, str]]:
    """The funnel as (label, value) lines, for the terminal and the pages."""

    def pct(n: int) -> str:
        return f"{count_format(n)} ({funnel.share(n):.0%})"

    lines = [(_("Enrolled"), count_format(funnel.enrolled))]
    lines += [
        (_("Active on day %(day)s") % {"day": d}, pct(n)) for d, n in funnel.active_on.items()
    ]
    lines += [
        (_("Completed"), pct(funnel.completed)),
        (_("Opted out (BAJA)"), pct(funnel.opted_out)),
        (_("Silent at the end (dropped)"), pct(funnel.dropped)),
        (
            _("Messages sent / received"),
            f"{count_format(funnel.messages_out)} / {count_format(funnel.messages_in)}",
        ),
        (_("Waiting for a facilitator"), count_format(funnel.waiting_for_facilitator)),
    ]
    return lines


def topic_rows(funnel: Funnel) -> list[dict[str, object]]:
    """Check-ins by topic, best answered first."""
    data = funnel.checkins_by_topic
    if data.empty:
        return []
    return list(data.sort_values("rate", ascending=False).to_dict("records"))


def today_in(zone: str) -> dt.date:
    return dt.datetime.now(zoneinfo.ZoneInfo(zone)).date()
