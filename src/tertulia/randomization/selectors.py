"""Reads about assignments. None of them returns the arm of an assignment that is not final."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections import Counter, defaultdict
from dataclasses import dataclass

from django.conf import settings

from tertulia.cohorts.models import Enrollment
from tertulia.core import clock
from tertulia.randomization.formation import Candidate, cohorts_plan, send_time_parse
from tertulia.randomization.models import Assignment, Trial
from tertulia.recruitment.models import Screening


def _local_date(when: dt.datetime) -> dt.date:
    return when.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE)).date()


def _final(trial: Trial, arm: str) -> list[Assignment]:
    return list(
        Assignment.objects.filter(trial=trial, arm=arm, release__isnull=False).order_by(
            "assigned_at", "pk"
        )
    )


def _field(assignment: Assignment, name: str) -> str:
    return str(assignment.strata.get(name) or assignment.details.get(name) or "").strip()


def _candidates(trial: Trial, arm: str) -> tuple[list[Candidate], list[str]]:
    rules = trial.design.cohorts
    enrolled = set(Enrollment.objects.values_list("participant_id", flat=True))
    # A man who wrote BAJA after randomization keeps his arm (intention to treat) but is not
    # put in a cohort, unless he came back with VOLVER.
    enrolled |= {
        s.participant_id
        for s in Screening.objects.filter(withdrawn_at__isnull=False).only(
            "participant_id", "withdrawn_at", "returned_at"
        )
        if s.is_withdrawn
    }
    candidates, problems = [], []
    for row in _final(trial, arm):
        if row.participant_id in enrolled:
            continue
        region = _field(row, rules.region_field)
        try:
            send_time = send_time_parse(_field(row, rules.send_time_field))
        except ValueError as exc:
            problems.append(f"participant {row.participant_id}: {rules.send_time_field}: {exc}")
            continue
        if not region:
            problems.append(f"participant {row.participant_id}: no {rules.region_field} given")
            continue
        candidates.append(
            Candidate(row.participant_id, send_time, region, _local_date(row.assigned_at))
        )
    return candidates, problems


def program_candidates(*, trial: Trial) -> tuple[list[Candidate], list[str]]:
    """Final program-arm men not yet enrolled in any cohort, and the problems that keep
    others out (an unreadable send time, no region)."""
    return _candidates(trial, "program")


@dataclass(frozen=True)
class WaitingRow:
    arm: str
    send_time: dt.time
    region: str
    participant_ids: tuple[int, ...]
    waiting_since: dt.date
    opens_on: dt.date | None  # None for the waitlist control: after the endline

    @property
    def count(self) -> int:
        return len(self.participant_ids)


def waitlist(*, trial: Trial, today: dt.date | None = None) -> list[WaitingRow]:
    """Who is waiting, for which group: program-arm men whose cohort has not opened yet, and
    (if the control arm is a waitlist) control men, who are offered the program after the
    endline."""
    rules = trial.design.cohorts
    today = today or _local_date(clock.now())
    candidates, _ = program_candidates(trial=trial)
    plan = cohorts_plan(
        candidates, capacity=rules.capacity, open_after_days=rules.open_after_days, today=today
    )
    rows = [
        WaitingRow("program", g.send_time, g.region, g.participant_ids, g.waiting_since, g.opens_on)
        for g in plan.waiting
    ]
    if trial.design.arm("control").waitlist:
        controls, _ = _candidates(trial, "control")
        groups: dict[tuple[dt.time, str], list[Candidate]] = defaultdict(list)
        for c in controls:
            groups[(c.send_time, c.region)].append(c)
        for (send_time, region), members in sorted(groups.items()):
            ids = tuple(c.participant_id for c in members)
            since = min(c.assigned_on for c in members)
            rows.append(WaitingRow("control", send_time, region, ids, since, None))
    return rows


@dataclass(frozen=True)
class AssignmentCounts:
    by_arm: dict[str, int]  # final assignments only
    concealed: int  # drawn, not yet final

    @property
    def total(self) -> int:
        return sum(self.by_arm.values()) + self.concealed


def assignment_counts(*, trial: Trial) -> AssignmentCounts:
    rows = Assignment.objects.filter(trial=trial).values_list("arm", "release")
    by_arm: Counter[str] = Counter({arm: 0 for arm in trial.design.arm_names})
    concealed = 0
    for arm, release in rows:
        if release is None:
            concealed += 1
        else:
            by_arm[arm] += 1
    return AssignmentCounts(by_arm=dict(by_arm), concealed=concealed)
