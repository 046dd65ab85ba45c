"""Randomize a man the moment recruitment says he is ready (consent given, baseline done), in
the same transaction as his last baseline answer: the assignment exists only if his answer
was stored, and never twice."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from django.conf import settings
from django.dispatch import receiver

from tertulia.cohorts.models import Participant
from tertulia.randomization.models import Trial
from tertulia.randomization.services import assignment_make, assignment_notify
from tertulia.recruitment.services import randomization_inputs, screening_mark_randomized
from tertulia.recruitment.signals import baseline_completed

logger = logging.getLogger(__name__)


def current_trial() -> Trial | None:
    """The trial new men are randomized into: `TERTULIA_TRIAL` names it; without it, the trial
    recorded last, a demo's excepted. None when no trial is recorded (men then wait as ready)."""
    name = getattr(settings, "TERTULIA_TRIAL", "")
    if name:
        return Trial.objects.get(name=name)
    return Trial.objects.filter(simulated=False).order_by("-created_at", "-id").first()


@receiver(baseline_completed, dispatch_uid="randomization.baseline_completed")
def randomize_when_ready(
    sender: Any, *, participant: Participant, now: dt.datetime, **kwargs: Any
) -> None:
    trial = current_trial()
    if trial is None:
        logger.warning("a participant is ready but no trial is recorded: nobody randomized")
        return
    assignment = assignment_make(
        trial=trial, participant=participant, strata=randomization_inputs(participant)
    )
    screening_mark_randomized(participant=participant, arm=assignment.arm, now=now)
    if assignment.is_final:  # a concealed arm is never told, not even to him
        assignment_notify(assignment=assignment, now=now)
