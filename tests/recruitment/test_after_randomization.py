"""What a man is told once he is randomized: the program arm that he is in and by when his group
starts, the control arm (a waitlist) that he will be asked again in some months and then offered
the program; never an arm that is not final, never anything to his partner's number; and, when
his cohort opens, the day it starts."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest
from django.conf import settings

from tertulia.core.crypto import lookup_hash
from tertulia.messaging.models import Outbox
from tertulia.randomization.config import config_load
from tertulia.randomization.models import Assignment
from tertulia.randomization.services import assignment_make, cohorts_form, trial_create
from tertulia.recruitment.models import Screening
from tertulia.recruitment.services import randomization_inputs

from .conftest import BASELINE_OK, Man, accept_consent, through_screening

pytestmark = pytest.mark.django_db

EXAMPLE_TRIAL = Path(__file__).resolve().parents[2] / "docs" / "examples" / "trial.yaml"
READY = "¡Listo, pata! 🎉 Ya estás registrado."
IN = "¡Estás dentro, pata! 🎉"
WAITLIST = "¡Gracias por animarte, pata! 🙌 Ya quedaste registrado en el estudio."


def finish(man: Man, *, partner: bool = False) -> Screening:
    through_screening(man)
    accept_consent(man)
    if partner:
        man.write(button=("rc:partner:yes", "Sí, doy permiso"))
        man.write("Rosa")
        man.write("987 654 999")
    else:
        man.write(button=("rc:partner:no", "Prefiero que no"))
    for answer in BASELINE_OK:
        man.write(answer)
    return man.screening


def trial_with(arm: str, *, waitlist: bool = True):  # type: ignore[no-untyped-def]
    """The example trial with every man drawn into `arm` (a 1:0 ratio is not allowed, so the
    other arm gets a ratio the blocks never reach: blocks of 1 hold only the first arm)."""
    config = config_load(EXAMPLE_TRIAL)
    data = config.to_dict()
    arms = [a for a in data["arms"] if a["name"] == arm] + [
        a for a in data["arms"] if a["name"] != arm
    ]
    for a in arms:
        if a["name"] == "control":
            a["waitlist"] = waitlist
    data["arms"] = arms
    return data


WEEKDAYS = ("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo")
MONTHS = "enero febrero marzo abril mayo junio julio agosto septiembre octubre noviembre diciembre"


def spanish(day: dt.date) -> str:
    return f"{WEEKDAYS[day.weekday()]} {day.day} de {MONTHS.split()[day.month - 1]}"


def _local(when: dt.datetime) -> dt.date:
    return when.astimezone(zoneinfo.ZoneInfo(settings.TIME_ZONE)).date()


@pytest.fixture
def trial(db):  # type: ignore[no-untyped-def]
    return trial_create(config=config_load(EXAMPLE_TRIAL))


def test_a_program_arm_man_is_told_he_is_in_and_by_when_his_group_starts(
    campaign, man: Man, trial, monkeypatch
) -> None:
    monkeypatch.setattr("tertulia.randomization.services.block_draw", _always("program"))
    screening = finish(man)
    assignment = Assignment.objects.get(participant=screening.participant)
    assert (assignment.arm, screening.arm) == ("program", "program")
    told = man.replies()[-1]
    assert told.startswith(IN)
    latest = _local(assignment.assigned_at) + dt.timedelta(days=14 + 1)
    assert f"empieza a más tardar el *{spanish(latest)}*" in told
    assert "prefieren los mensajes en la noche" in told
    assert READY not in "".join(man.replies()), "told his arm, not 'we will let you know'"
    assert "{" not in told


def test_a_control_arm_man_is_thanked_and_told_of_the_waitlist(
    campaign, man: Man, trial, monkeypatch
) -> None:
    monkeypatch.setattr("tertulia.randomization.services.block_draw", _always("control"))
    screening = finish(man)
    assert screening.arm == "control"
    told = man.replies()[-1]
    assert told.startswith(WAITLIST)
    assert "En unos meses te escribiremos para hacerte otra vez unas preguntas cortas" in told
    assert "te invitaremos a *Hablemos Entre Patas*" in told
    assert IN not in "".join(man.replies())


def test_a_control_arm_that_is_no_waitlist_promises_no_program(
    campaign, man: Man, monkeypatch
) -> None:
    from tertulia.randomization.config import config_from_dict

    trial_create(config=config_from_dict(trial_with("control", waitlist=False)))
    monkeypatch.setattr("tertulia.randomization.services.block_draw", _always("control"))
    finish(man)
    assert man.replies()[-1].startswith(READY)
    assert WAITLIST not in "".join(man.replies())


def test_a_concealed_assignment_is_not_told(campaign, man: Man, trial) -> None:
    """An arm drawn but not final (concealed) is never sent, not even to him."""
    from tertulia.randomization import receivers

    def concealed(sender, *, participant, now, **kwargs):  # type: ignore[no-untyped-def]
        assignment_make(
            trial=trial,
            participant=participant,
            strata=randomization_inputs(participant),
            final=False,
        )

    from tertulia.recruitment.signals import baseline_completed

    baseline_completed.disconnect(dispatch_uid="randomization.baseline_completed")
    baseline_completed.connect(concealed, dispatch_uid="test.concealed")
    try:
        finish(man)
    finally:
        baseline_completed.disconnect(dispatch_uid="test.concealed")
        baseline_completed.connect(
            receivers.randomize_when_ready, dispatch_uid="randomization.baseline_completed"
        )
    assert Assignment.objects.get().is_final is False
    replies = "".join(man.replies())
    assert IN not in replies and WAITLIST not in replies
    assert man.replies()[-1].startswith(READY)
    # Once it is final he is told, once.
    from tertulia.randomization.services import assignment_finalize

    final = assignment_finalize(assignment=Assignment.objects.get())
    told = man.replies()[-1]
    assert told.startswith(IN if final.arm == "program" else WAITLIST)
    count = len(man.replies())
    assignment_finalize(assignment=Assignment.objects.get())
    assert len(man.replies()) == count


def test_nothing_about_his_arm_goes_to_his_partners_number(
    campaign, man: Man, trial, monkeypatch
) -> None:
    monkeypatch.setattr("tertulia.randomization.services.block_draw", _always("program"))
    finish(man, partner=True)
    told = Outbox.objects.order_by("-id").first()
    assert told.body.startswith(IN)
    assert told.participant.phone_hash == lookup_hash(man.phone)
    assert not Outbox.objects.filter(participant__phone_hash=lookup_hash("+51987654999")).exists()


def test_when_his_cohort_opens_he_is_told_the_day_it_starts(
    campaign, man: Man, trial, monkeypatch, curriculum
) -> None:
    monkeypatch.setattr("tertulia.randomization.services.block_draw", _always("program"))
    screening = finish(man)
    formed = cohorts_form(
        trial=trial, curriculum=curriculum, today=dt.date(2026, 12, 7), open_on=dt.date(2026, 12, 7)
    )
    [cohort] = formed.created
    assert cohort.send_time == dt.time(19, 0)
    assert cohort.enrollments.get().participant == screening.participant
    told = man.replies()[-1]
    assert told.startswith("¡Ya tenemos tu grupo, pata! 🙌 Empiezas el *martes 8 de diciembre*")
    assert "a eso de las 19:00" in told


def test_a_man_who_wrote_baja_after_randomization_keeps_his_arm_but_joins_no_cohort(
    campaign, man: Man, trial, monkeypatch, curriculum
) -> None:
    monkeypatch.setattr("tertulia.randomization.services.block_draw", _always("program"))
    finish(man)
    man.write("BAJA")
    screening = man.screening
    assert (screening.state, screening.arm, screening.is_withdrawn) == (
        "randomized",
        "program",
        True,
    )
    formed = cohorts_form(trial=trial, curriculum=curriculum, open_on=dt.date(2026, 12, 7))
    assert formed.created == []


def _always(arm: str):  # type: ignore[no-untyped-def]
    """A block_draw whose every slot is `arm`: to test what each arm is told."""
    from tertulia.randomization import blocks

    real = blocks.block_draw

    def draw(**kwargs):  # type: ignore[no-untyped-def]
        block = real(**kwargs)
        return blocks.Block(index=block.index, arms=tuple(arm for _ in block.arms))

    return draw
