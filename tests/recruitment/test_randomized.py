"""From the ad code to an arm: the man who finishes the baseline is randomized into the recorded
trial by his screening answers, once, and his screening records the arm."""

from __future__ import annotations

from pathlib import Path

import pytest

from tertulia.randomization.config import config_from_dict, config_load
from tertulia.randomization.models import Assignment
from tertulia.randomization.services import trial_create
from tertulia.recruitment.models import Screening

from .conftest import BASELINE_OK, Man, accept_consent, through_screening

pytestmark = pytest.mark.django_db

EXAMPLE_TRIAL = Path(__file__).resolve().parents[2] / "docs" / "examples" / "trial.yaml"


def finish(man: Man) -> Screening:
    man.write("Hola (HEP-AAAA)")
    through_screening(man)
    accept_consent(man)
    man.write(button=("rc:partner:no", "Prefiero que no"))
    for answer in BASELINE_OK:
        man.write(answer)
    return man.screening


def test_finishing_the_baseline_randomizes_him_by_his_strata(campaign, man: Man) -> None:
    trial = trial_create(config=config_load(EXAMPLE_TRIAL))
    screening = finish(man)
    assignment = Assignment.objects.get(trial=trial, participant=screening.participant)
    assert assignment.strata == {"age_band": "30-44", "region": "lima", "cohabiting": "yes"}
    assert assignment.details == {"send_time": "19:00"}
    assert assignment.is_final
    assert screening.state == Screening.State.RANDOMIZED
    assert screening.arm == assignment.arm in {"program", "control"}
    # Writing again after the baseline never draws a second arm.
    man.write("hola")
    assert Assignment.objects.filter(participant=screening.participant).count() == 1


def test_without_a_recorded_trial_he_waits_ready(campaign, man: Man) -> None:
    screening = finish(man)
    assert screening.state == Screening.State.READY
    assert not Assignment.objects.exists()


def test_the_named_trial_is_used(campaign, man: Man, settings) -> None:
    named = trial_create(config=config_load(EXAMPLE_TRIAL))
    other = dict(named.config, trial="otro-ensayo")
    trial_create(config=config_from_dict(other))
    settings.TERTULIA_TRIAL = named.name
    screening = finish(man)
    assert Assignment.objects.get(participant=screening.participant).trial == named


def test_a_demos_trial_is_never_the_one_real_men_go_to(campaign, man: Man) -> None:
    """`tertulia demo --recruit` records its own trial, marked simulated; a man who writes
    later goes to the real trial even though the demo's was recorded last."""
    from tertulia.randomization.models import Trial

    real = trial_create(config=config_load(EXAMPLE_TRIAL))
    demo = trial_create(config=config_from_dict(dict(real.config, trial="hablemos-demo")))
    Trial.objects.filter(pk=demo.pk).update(simulated=True)
    screening = finish(man)
    assert Assignment.objects.get(participant=screening.participant).trial == real
