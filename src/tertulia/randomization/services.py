"""Writes for trials, assignments and the cohorts formed from them."""

from __future__ import annotations

import datetime as dt
import secrets
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction

from tertulia.cohorts.models import Cohort, Participant
from tertulia.cohorts.services import AlreadyEnrolled, cohort_create, enrollment_create
from tertulia.core import clock
from tertulia.programs.models import Curriculum
from tertulia.randomization.blocks import block_draw, sequence
from tertulia.randomization.config import TrialConfig
from tertulia.randomization.formation import Group, cohorts_plan
from tertulia.randomization.models import Assignment, AssignmentRelease, Stratum, Trial
from tertulia.randomization.selectors import program_candidates
from tertulia.recruitment.services import screening_notify_cohort


class TrialLocked(Exception):
    """The trial already has assignments, so its design can no longer change."""


def trial_create(*, config: TrialConfig) -> Trial:
    """Create the trial, or return it unchanged when the same config is loaded again. The seed
    is the config's, or drawn here when it gives none, and recorded either way."""
    stored = config.to_dict()
    with transaction.atomic():
        trial = Trial.objects.select_for_update().filter(name=config.name).first()
        if trial is None:
            seed = config.seed if config.seed is not None else secrets.randbits(63)
            return Trial.objects.create(
                name=config.name, title=config.title, config=stored, seed=seed
            )
        same_seed = config.seed is None or config.seed == trial.seed
        if trial.config == stored and same_seed:
            return trial
        assigned = trial.assignments.count()
        if assigned:
            raise TrialLocked(
                f"trial '{trial.name}' already has {assigned} assignments, so its arms, strata, "
                "block sizes and seed can no longer change; give the new design another name"
            )
        trial.config = stored
        trial.title = config.title
        if config.seed is not None:
            trial.seed = config.seed
        trial.save()
        trial.__dict__.pop("design", None)
        return trial


def assignment_make(
    *,
    trial: Trial,
    participant: Participant,
    strata: Mapping[str, str],
    final: bool = True,
    by: Any = None,
) -> Assignment:
    """Allocate the man to an arm: the next slot of his stratum's block sequence.

    Idempotent: a man already assigned in this trial gets his assignment back, never a new draw
    (whatever `strata` now says). Raises StrataError when a stratum field is missing or has a
    value the trial does not declare. Inputs that are not strata (e.g. preferred send time) are
    kept in `details` for cohort formation. With `final=False` the slot is taken now but the
    arm stays concealed until `assignment_finalize`.
    """
    if existing := _assignment_of(trial, participant):
        return existing
    design = trial.design
    key = design.stratum_key(strata)
    values = {name: str(strata[name]).strip() for name in design.strata}
    details = {k: str(v) for k, v in strata.items() if k not in design.strata}
    try:
        with transaction.atomic():
            # The stratum row is the lock that serializes draws in one stratum (decision 0076).
            locked = Stratum.objects.select_for_update().filter(trial=trial, key=key)
            cursor = locked.first()
            if cursor is None:  # the stratum's first man; two first men may race to create it
                Stratum.objects.bulk_create([Stratum(trial=trial, key=key)], ignore_conflicts=True)
                cursor = locked.get()
            # Checked again under the lock: a concurrent call for the same man has committed.
            if existing := _assignment_of(trial, participant):
                return existing
            slot = cursor.next_slot
            if cursor.block_index < 0 or slot >= cursor.block_start + cursor.block_size:
                index = cursor.block_index + 1
                block = block_draw(config=design, seed=trial.seed, stratum=key, index=index)
                cursor.block_index, cursor.block_start, cursor.block_size = index, slot, block.size
            else:
                block = block_draw(
                    config=design, seed=trial.seed, stratum=key, index=cursor.block_index
                )
            now = clock.now()
            assignment = Assignment.objects.create(
                trial=trial,
                participant=participant,
                stratum=key,
                strata=values,
                details=details,
                slot=slot,
                block_index=cursor.block_index,
                arm=block.arms[slot - cursor.block_start],
                assigned_at=now,
            )
            cursor.next_slot = slot + 1
            cursor.save(update_fields=["next_slot", "block_index", "block_start", "block_size"])
            if final:
                AssignmentRelease.objects.create(
                    assignment=assignment, released_at=now, released_by=by
                )
            return assignment
    except IntegrityError:
        # The same man was assigned at this moment through another stratum's lock.
        if existing := _assignment_of(trial, participant):
            return existing
        raise


def _assignment_of(trial: Trial, participant: Participant) -> Assignment | None:
    return (
        Assignment.objects.select_related("release")
        .filter(trial=trial, participant=participant)
        .first()
    )


def assignment_finalize(*, assignment: Assignment, by: Any = None) -> Assignment:
    """Make a concealed assignment final, so its arm may be seen and acted on. Idempotent."""
    if not assignment.is_final:
        try:
            with transaction.atomic():
                AssignmentRelease.objects.create(
                    assignment=assignment, released_at=clock.now(), released_by=by
                )
                final = Assignment.objects.select_related("release", "trial").get(pk=assignment.pk)
                assignment_notify(assignment=final, now=clock.now())  # now he may be told
        except IntegrityError:
            pass  # released at the same moment by someone else
    return Assignment.objects.select_related("release").get(pk=assignment.pk)


def assignment_latest_start(
    *, trial: Trial, assigned_on: dt.date, start_in_days: int = 1
) -> dt.date:
    """The latest date a program-arm man assigned on `assigned_on` starts: his group opens when
    full or, at the latest, `open_after_days` after its first man was assigned (no later than
    him), and its cohort starts `start_in_days` after opening."""
    return assigned_on + dt.timedelta(days=trial.design.cohorts.open_after_days + start_in_days)


def assignment_notify(*, assignment: Assignment, now: dt.datetime) -> None:
    """Tell a man recruited through the chat his arm, once it is final. Queued inside the
    caller's transaction, so it exists only if the assignment does."""
    from tertulia.recruitment.services import screening_notify_arm

    if not assignment.is_final:
        raise ValueError("an assignment that is not final is never told")
    design = assignment.trial.design
    assigned_on = assignment.assigned_at.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE)).date()
    screening_notify_arm(
        participant=assignment.participant,
        arm=assignment.arm,
        waitlist=assignment.arm == "control" and design.arm("control").waitlist,
        starts_by=(
            assignment_latest_start(trial=assignment.trial, assigned_on=assigned_on)
            if assignment.arm == "program"
            else None
        ),
        now=now,
    )


def assignments_verify(*, trial: Trial) -> list[str]:
    """Recompute every logged arm from the seed; return the discrepancies (none expected)."""
    problems = []
    rows = Assignment.objects.filter(trial=trial).order_by("stratum", "slot")
    by_stratum: dict[str, list[Assignment]] = {}
    for row in rows:
        by_stratum.setdefault(row.stratum, []).append(row)
    for key, logged in by_stratum.items():
        expected = sequence(config=trial.design, seed=trial.seed, stratum=key)
        for position, (row, slot) in enumerate(zip(logged, expected, strict=False)):
            if row.slot != position:
                problems.append(f"{key}: slot {position} is missing from the log")
                break
            if (row.arm, row.block_index) != (slot.arm, slot.block_index):
                problems.append(
                    f"{key}: assignment {row.pk} (slot {row.slot}) does not match the sequence "
                    "the seed gives"
                )
    return problems


# --- cohort formation --------------------------------------------------------------------------


@dataclass
class Formation:
    created: list[Cohort] = field(default_factory=list)
    waiting: list[Group] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def cohorts_form(
    *,
    trial: Trial,
    curriculum: Curriculum,
    today: dt.date | None = None,
    open_on: dt.date | None = None,
    start_in_days: int = 1,
    channel: str = "simulated",
) -> Formation:
    """Open the cohorts that are due: final program-arm men not yet enrolled, grouped by send
    time and region; a group opens a cohort when it is full or when its date has come."""
    rules = trial.design.cohorts
    today = today or clock.now().astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE)).date()
    candidates, problems = program_candidates(trial=trial)
    plan = cohorts_plan(
        candidates,
        capacity=rules.capacity,
        open_after_days=rules.open_after_days,
        today=today,
        open_on=open_on,
    )
    result = Formation(waiting=plan.waiting, problems=problems)
    participants = Participant.objects.in_bulk([i for g in plan.to_open for i in g.participant_ids])
    for group in plan.to_open:
        prefix = f"{trial.name} · {group.region} · {group.send_time:%H:%M}"
        with transaction.atomic():
            number = Cohort.objects.filter(name__startswith=prefix).count() + 1
            cohort = cohort_create(
                curriculum=curriculum,
                name=f"{prefix} · {number}",
                start_date=today + dt.timedelta(days=start_in_days),
                send_time=group.send_time,
                capacity=rules.capacity,
                channel=channel,
            )
            for participant_id in group.participant_ids:
                try:
                    enrollment_create(participant=participants[participant_id], cohort=cohort)
                except AlreadyEnrolled as exc:
                    result.problems.append(f"participant {participant_id}: {exc}")
                    continue
                screening_notify_cohort(
                    participant=participants[participant_id],
                    start=cohort.start_date,
                    send_time=cohort.send_time,
                    now=clock.now(),
                )
        result.created.append(cohort)
    return result
