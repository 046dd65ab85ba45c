"""Reads for recruitment reports: how many men reached each stage of the recruitment funnel,
per ad variant, counted in the database (one query for the stages, one per variant list).

Each stage counts men who also reached every stage before it, so the counts always form a
funnel (randomization.funnel_stats refuses counts that grow). "Active on day 7" uses the
dashboard's definition (dashboard.selectors: not opted out by day 7, and read or wrote something
on one of days 1..7 of his cohort); "completed" is an enrollment that ended completed.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.messaging.models import Message
from tertulia.programs.models import Program
from tertulia.randomization.funnel_stats import STAGES
from tertulia.recruitment.models import AdVariant, Campaign, Screening

ACTIVE_DAY = 7
WINDOW_DAYS = 7  # the dashboard's window: one quiet day is not a drop-out
UNATTRIBUTED = "(unattributed)"


@dataclass
class FunnelCounts:
    by_variant: dict[str, dict[str, int]] = field(default_factory=dict)  # code -> stage -> n
    costs: dict[str, float] = field(default_factory=dict)  # code -> what its ads cost
    names: dict[str, str] = field(default_factory=dict)  # code -> variant name
    currency: str = "PEN"


def _local_midnight(day: dt.date) -> dt.datetime:
    zone = zoneinfo.ZoneInfo(settings.TIME_ZONE)
    return dt.datetime.combine(day, dt.time(0), tzinfo=zone)


def _active_on(day: int, cohorts: list[Cohort]) -> Q:
    """Enrollments active on program day `day`, one condition per cohort (cohorts are few)."""
    condition = Q(pk__in=[])
    for cohort in cohorts:
        since = _local_midnight(cohort.start_date + dt.timedelta(days=day - WINDOW_DAYS + 1))
        until = _local_midnight(cohort.start_date + dt.timedelta(days=day + 1))
        wrote = Message.objects.filter(
            enrollment=OuterRef("pk"),
            direction=Message.Direction.IN,
            created_at__gte=since,
            created_at__lt=until,
        )
        read = Message.objects.filter(
            enrollment=OuterRef("pk"),
            direction=Message.Direction.OUT,
            read_at__gte=since,
            read_at__lt=until,
        )
        opted_out_before = Q(state=Enrollment.State.OPTED_OUT, ended_at__lt=until)
        condition |= Q(cohort=cohort) & ~opted_out_before & (Exists(wrote) | Exists(read))
    return condition


def campaigns_of(program: Program) -> list[Campaign]:
    """The program's campaigns, newest first."""
    return list(Campaign.objects.filter(program=program).order_by("-created_at", "-id"))


def funnel_counts(
    campaign: Campaign | None = None, *, program: Program | None = None
) -> FunnelCounts:
    """Men at each stage per ad variant code (and UNATTRIBUTED for men who came without one,
    when no campaign is given). Variants nobody came through are listed with zeros. `program`
    keeps one program's men and variants."""
    screenings = Screening.objects.all()
    variants = AdVariant.objects.select_related("campaign").order_by("id")
    if campaign is not None:
        screenings = screenings.filter(variant__campaign=campaign)
        variants = variants.filter(campaign=campaign)
    if program is not None:
        screenings = screenings.filter(program=program)
        variants = variants.filter(campaign__program=program)
    cohorts = list(
        Cohort.objects.filter(
            enrollments__participant__screening__in=screenings.values("pk")
        ).distinct()
    )
    his = Enrollment.objects.filter(participant=OuterRef("participant"))
    reached = {
        "started": Q(),
        "eligible": Q(screened_at__isnull=False, ineligible_reason=""),
        "consented": Q(consented_at__isnull=False),
        "baseline_done": Q(baseline_completed_at__isnull=False),
        "randomized": Q(randomized_at__isnull=False),
        "active_day7": Q(_active7=True),
        "completed": Q(_completed=True),
    }
    chain = Q()
    aggregates = {}
    for stage in STAGES:
        chain &= reached[stage]
        aggregates[stage] = Count("pk", filter=chain) if stage != "started" else Count("pk")
    rows = (
        screenings.annotate(
            _active7=Exists(his.filter(_active_on(ACTIVE_DAY, cohorts))),
            _completed=Exists(his.filter(state=Enrollment.State.COMPLETED)),
        )
        .values("variant__code")
        .annotate(**aggregates)
        .order_by()
    )
    found: dict[str, dict[str, Any]] = {
        row["variant__code"] or UNATTRIBUTED: dict(row) for row in rows
    }
    result = FunnelCounts()
    for item in variants:
        row: dict[str, Any] = found.pop(item.code, {})
        result.by_variant[item.code] = {stage: int(row.get(stage, 0)) for stage in STAGES}
        result.costs[item.code] = float(item.cost)
        result.names[item.code] = item.name
        result.currency = item.campaign.currency
    for code, rest in found.items():  # men whose variant is outside `variants`: unattributed
        result.by_variant[code] = {stage: int(rest[stage]) for stage in STAGES}
        result.names[code] = code
    return result
