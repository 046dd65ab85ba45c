"""Setting up and running the demo: simulated cohorts through the real delivery engine."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from tertulia.cohorts.models import Cohort, Enrollment, Participant
from tertulia.cohorts.services import cohort_create, enrollment_create, participant_get_or_create
from tertulia.messaging.models import Message
from tertulia.programs.models import Curriculum
from tertulia.programs.services import curriculum_import
from tertulia.simulation.engine import Simulation
from tertulia.simulation.models import SimulatedDelivery
from tertulia.simulation.population import Behaviour, population


@dataclass
class DemoRun:
    curriculum: Curriculum
    cohorts: list[Cohort]


def demo_reset() -> int:
    """Remove the previous demo's simulated cohorts and men (never real ones)."""
    with transaction.atomic():
        cohorts = Cohort.objects.filter(simulated=True)
        men = Participant.objects.filter(enrollments__cohort__in=cohorts).distinct()
        message_ids = Message.objects.filter(participant__in=men).values_list("id", flat=True)
        SimulatedDelivery.objects.filter(message_id__in=list(message_ids)).delete()
        removed = men.count()
        men.delete()
        cohorts.delete()
    return removed


def demo_setup(
    *, content: Path, cohorts: int, size: int, seed: int, behaviour: Behaviour, today: dt.date
) -> tuple[DemoRun, Simulation]:
    curriculum = curriculum_import(path=content).curriculum
    days = curriculum.last_day - curriculum.first_day + 1
    # The simulated program ends today, so the live dashboard shows it as just finished.
    start = today - dt.timedelta(days=days)
    made: list[Cohort] = []
    men = population(seed=seed, size=cohorts * size, behaviour=behaviour)
    with transaction.atomic():
        for c in range(cohorts):
            cohort = cohort_create(
                curriculum=curriculum,
                name=f"Demo {c + 1}",
                start_date=start,
                send_time=dt.time(19, 0),
                capacity=size,
                channel="simulated",
            )
            Cohort.objects.filter(pk=cohort.pk).update(simulated=True)
            for man in men[c * size : (c + 1) * size]:
                participant, _ = participant_get_or_create(phone=man.phone)
                enrollment = enrollment_create(participant=participant, cohort=cohort)
                Enrollment.objects.filter(pk=enrollment.pk).update(
                    enrolled_at=dt.datetime.combine(
                        start - dt.timedelta(days=1), dt.time(12), tzinfo=dt.UTC
                    )
                )
            made.append(cohort)
    topic_of_day = dict(curriculum.days.values_list("number", "topic__slug"))
    simulation = Simulation(cohorts=made, men=men, behaviour=behaviour, topic_of_day=topic_of_day)
    return DemoRun(curriculum=curriculum, cohorts=made), simulation


def demo_run(simulation: Simulation, on_day: Callable[[int], None] | None = None) -> None:
    simulation.run(on_day=on_day)
