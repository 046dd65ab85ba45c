"""Bad input in the recruitment conversation: ages written in words or vaguely, and a man who
wrote BAJA and comes back with VOLVER (only when his program allows it, never randomized twice).
The other cases (answers re-asked twice then a person, a second consent tap, BAJA during
screening, a number already enrolled or in the control arm) are in test_conversation.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tertulia.messaging.models import Message, Outbox
from tertulia.randomization.config import config_load
from tertulia.randomization.models import Assignment
from tertulia.randomization.services import trial_create
from tertulia.recruitment.answers import number_parse
from tertulia.recruitment.config import ConfigError, Question
from tertulia.recruitment.config import config_load as recruitment_load
from tertulia.recruitment.models import Screening, ScreeningAnswer

from .conftest import BASELINE_OK, CONTENT, Man, accept_consent, through_screening

pytestmark = pytest.mark.django_db

AGE = Question(key="age", kind="number", prompt="¿Cuántos años tienes?", min=10, max=99)
EXAMPLE_TRIAL = Path(__file__).resolve().parents[2] / "docs" / "examples" / "trial.yaml"
SCREENING_YAML = CONTENT / "guy-talk" / "recruitment" / "es-PE" / "screening.yaml"


@pytest.mark.parametrize(
    ("typed", "age"),
    [
        ("treinta y dos", 32),
        ("Tengo treinta y dos años", 32),
        ("veintiocho", 28),
        ("dieciocho añitos", 18),
        ("cuarenta y cinco", 45),
        ("tengo 34 años", 34),
        ("treinta y pico", None),  # approximate: asked again
        ("unos 40", None),
        ("más o menos 30", None),
        ("34 o 35", None),
        ("no sé", None),
        ("ciento veinte", None),  # out of range
    ],
)
def test_ages_in_words_are_understood_and_vague_ones_are_not(typed: str, age: int | None) -> None:
    assert number_parse(typed, AGE) == age


def test_an_age_in_words_moves_the_conversation_on(campaign, man: Man) -> None:
    man.write("Hola (HEP-AAAA)")
    man.write("tengo treinta y dos")
    assert man.screening.step == "relationship"
    assert ScreeningAnswer.objects.get(question="age").value == "32"


def test_a_minor_in_words_is_ineligible(campaign, man: Man) -> None:
    man.write("Hola (HEP-AAAA)")
    man.write("dieciséis")
    assert (man.screening.state, man.screening.ineligible_reason) == ("ineligible", "age")


def test_volver_after_baja_picks_up_at_his_question(campaign, man: Man) -> None:
    through_screening(man, ["34", "Sí, vivimos juntos"])
    man.write("BAJA")
    assert man.screening.state == Screening.State.WITHDRAWN
    back = man.write("VOLVER")
    assert (back.route, back.keyword) == (Message.Route.RECRUITMENT, "start")
    screening = man.screening
    assert (screening.state, screening.step, screening.is_withdrawn) == (
        "screening",
        "lives_in_country",
        False,
    )
    assert screening.returned_at == man.at
    queued = list(
        Outbox.objects.filter(status=Outbox.Status.QUEUED, created_at=man.at)
        .order_by("id")
        .values_list("body", flat=True)
    )
    assert queued[0] == "¡Qué bueno que vuelvas, pata! 🙌 Seguimos donde nos quedamos."
    assert queued[1].startswith("¿Vives en el Perú?")
    assert not any("no estás inscrito" in body for body in queued), (
        "the router's answer is replaced"
    )
    # His earlier answers are kept: he goes on from there.
    for answer in ["si", "si", "1", "En la noche"]:
        man.write(answer)
    assert man.screening.state == Screening.State.CONSENT


def test_volver_is_refused_when_the_program_does_not_allow_it(
    campaign, man: Man, tmp_path, settings
) -> None:
    data = yaml.safe_load(SCREENING_YAML.read_text(encoding="utf-8"))
    data["allow_return"] = False
    folder = tmp_path / "guy-talk" / "recruitment" / "es-PE"
    folder.mkdir(parents=True)
    (folder / "screening.yaml").write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    settings.TERTULIA_CONTENT_DIR = tmp_path
    through_screening(man, ["34"])
    man.write("BAJA")
    back = man.write("VOLVER")
    assert back.route == Message.Route.KEYWORD
    assert man.screening.state == Screening.State.WITHDRAWN
    assert man.replies()[-1].startswith("Hola 👋 Ahora no estás inscrito en un grupo.")
    count = len(man.replies())
    man.write("Sí, vivimos juntos")
    assert len(man.replies()) == count, "nothing more is asked"


def test_a_randomized_man_who_comes_back_keeps_his_arm_and_is_not_randomized_again(
    campaign, man: Man
) -> None:
    trial = trial_create(config=config_load(EXAMPLE_TRIAL))
    through_screening(man)
    accept_consent(man)
    man.write(button=("rc:partner:no", "Prefiero que no"))
    for answer in BASELINE_OK:
        man.write(answer)
    arm = man.screening.arm
    assert arm in {"program", "control"}
    man.write("BAJA")
    man.write("VOLVER")
    screening = man.screening
    assert (screening.state, screening.arm, screening.is_withdrawn) == ("randomized", arm, False)
    man.write("Hola (HEP-BBBB)")
    assert man.replies()[-1].startswith("¡Hola de nuevo! 👋 Tú ya estás registrado")
    assert Assignment.objects.filter(trial=trial).count() == 1


def test_a_second_baja_after_coming_back_withdraws_him_again(campaign, man: Man) -> None:
    through_screening(man, ["34"])
    man.write("BAJA")
    man.write("VOLVER")
    man.write("BAJA")
    screening = man.screening
    assert (screening.state, screening.is_withdrawn) == ("withdrawn", True)
    assert screening.withdrawn_at == man.at


def test_a_text_with_an_unknown_placeholder_is_refused(tmp_path) -> None:
    data = yaml.safe_load(SCREENING_YAML.read_text(encoding="utf-8"))
    data["texts"]["randomized_program"] = "Empiezas el {dia}"
    path = tmp_path / "screening.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), "utf-8")
    with pytest.raises(
        ConfigError, match=r"texts.randomized_program: unknown placeholder\(s\) dia"
    ):
        recruitment_load(path)


def test_send_time_options_carry_a_clock_time() -> None:
    config = recruitment_load(SCREENING_YAML)
    send_time = config.question("send_time")
    assert send_time is not None
    assert [o.time for o in send_time.options] == ["08:00", "13:00", "19:00"]
    assert config.allow_return is True


def test_volver_in_the_middle_of_screening_asks_his_question_again(campaign, man: Man) -> None:
    through_screening(man, ["34"])
    back = man.write("VOLVER")
    assert back.route == Message.Route.RECRUITMENT
    queued = Outbox.objects.filter(status=Outbox.Status.QUEUED, created_at=man.at)
    assert [o.body for o in queued] == ["¿Tienes pareja en este momento?"]
    assert man.screening.state == Screening.State.SCREENING
