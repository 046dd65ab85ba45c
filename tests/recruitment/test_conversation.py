"""The screening conversation driven through messaging's inbound path and the router:
eligible and ineligible men, answers not understood, consent, baseline, withdrawal and
refusal of re-enrolment."""

from __future__ import annotations

import pytest
from django.db import connection

from tertulia.messaging.models import Message, Outbox
from tertulia.recruitment.models import Consent, Response, Screening, ScreeningAnswer
from tertulia.recruitment.services import (
    AlreadyRandomized,
    NotReady,
    randomization_inputs,
    screening_mark_randomized,
)
from tertulia.recruitment.signals import baseline_completed

from .conftest import BASELINE_OK, SCREENING_OK, Man, accept_consent, through_screening

pytestmark = pytest.mark.django_db


@pytest.fixture
def completed() -> list[dict]:
    received: list[dict] = []

    def receiver(sender, **kwargs):  # type: ignore[no-untyped-def]
        received.append(kwargs)

    baseline_completed.connect(receiver, dispatch_uid="test.completed")
    yield received
    baseline_completed.disconnect(dispatch_uid="test.completed")


def test_an_eligible_man_goes_from_the_ad_code_to_ready_for_randomization(
    campaign, man: Man, completed
) -> None:
    first = man.write("Hola, quiero saber más de Hablemos Entre Patas (HEP-AAAA)")
    assert first.route == Message.Route.RECRUITMENT
    screening = man.screening
    assert (screening.variant.code, screening.attributed_by, screening.state) == (
        "HEP-AAAA",
        "code",
        Screening.State.SCREENING,
    )
    assert "Hablemos Entre Patas" in man.replies()[0]
    assert man.replies()[1].startswith("¿Cuántos años tienes?")

    for answer in SCREENING_OK:
        assert man.write(answer).route == Message.Route.RECRUITMENT
    assert man.screening.state == Screening.State.CONSENT
    assert man.screening.screened_at is not None

    accept_consent(man)
    consent = Consent.objects.get(kind=Consent.Kind.STUDY)
    assert (consent.version, consent.accepted, consent.channel) == ("2026-12-v1", True, "simulated")
    assert consent.at == man.at
    assert man.screening.state == Screening.State.PARTNER

    man.write(button=("rc:partner:no", "Prefiero que no"))
    assert man.screening.state == Screening.State.BASELINE
    for answer in BASELINE_OK:
        man.write(answer)

    screening = man.screening
    assert screening.state == Screening.State.READY
    assert screening.baseline_completed_at == man.at
    assert "Ya estás registrado" in man.replies()[-1].replace("ya", "Ya")
    assert [c["participant"] for c in completed] == [screening.participant]
    assert dict(
        Response.objects.filter(instrument="baseline").values_list("question", "value")
    ) == {"talk_frequency": "some", "chores_share": "both", "anger_control": "sometimes"}
    assert randomization_inputs(screening.participant) == {
        "age_band": "30-44",
        "region": "lima",
        "cohabiting": "yes",
        "send_time": "19:00",
    }
    # Every answer is a row, encrypted at rest.
    assert ScreeningAnswer.objects.filter(valid=True).count() == 6 + 1 + 1 + 3
    with connection.cursor() as cursor:
        cursor.execute("SELECT raw FROM recruitment_screeninganswer")
        assert all("vivimos" not in row[0] for row in cursor.fetchall())


def test_the_consent_text_goes_in_short_parts_and_ends_with_buttons(campaign, man: Man) -> None:
    through_screening(man)
    rows = list(Outbox.objects.order_by("id"))
    parts = [r for r in rows if r.body.startswith(("Antes de inscribirte", "2/3", "3/3"))]
    assert len(parts) == 3
    assert all(len(p.body) < 500 for p in parts)
    question = rows[-1]
    assert question.body == "¿Aceptas participar en el programa y en el estudio?"
    assert question.buttons == [
        {"id": "rc:consent:accept", "title": "Sí, acepto"},
        {"id": "rc:consent:decline", "title": "No, gracias"},
    ]


def test_a_region_question_with_many_options_is_a_numbered_list(campaign, man: Man) -> None:
    through_screening(man, SCREENING_OK[:4])
    assert "1. Lima y Callao\n2. Costa norte" in man.replies()[-1]
    man.write("Cusco")
    assert ScreeningAnswer.objects.filter(question="region").last().value == "andes"


def test_an_unreadable_age_is_asked_twice_more_then_a_person_takes_over(
    campaign, man: Man, django_user_model
) -> None:
    from tertulia.community.selectors import messages_waiting_for

    man.write("Hola (HEP-AAAA)")
    first = man.write("treinta y pico")
    assert first.route == Message.Route.RECRUITMENT
    assert man.replies()[-2] == "Escribe solo tu edad en números, por ejemplo: 34 🙏"
    assert man.replies()[-1].startswith("¿Cuántos años tienes?")
    man.write("no sé")
    before = len(man.replies())
    third = man.write("mmm")
    assert third.route == Message.Route.FACILITATOR
    screening = man.screening
    assert (screening.needs_person, screening.invalid_count, screening.step) == (True, 3, "age")
    assert man.replies()[before:] == [
        "Gracias por tu paciencia 🙌 Una persona de nuestro equipo te va a escribir por aquí "
        "para ayudarte a seguir."
    ]
    fourth = man.write("???")
    assert fourth.route == Message.Route.FACILITATOR
    assert len(man.replies()) == before + 1, "no more automatic questions while a person helps"
    supervisor = django_user_model.objects.create_superuser("sup", password="x")  # noqa: S106
    assert [m.pk for m in messages_waiting_for(supervisor)] == [third.pk, fourth.pk]
    assert ScreeningAnswer.objects.filter(question="age", valid=False).count() == 4

    man.write("34")  # he answers after all: the conversation goes on
    screening = man.screening
    assert (screening.needs_person, screening.step) == (False, "relationship")


def test_a_minor_is_thanked_told_of_help_and_asked_nothing_more(campaign, man: Man) -> None:
    man.write("Hola (HEP-AAAA)")
    man.write("Tengo 16 años")
    screening = man.screening
    assert (screening.state, screening.ineligible_reason) == (Screening.State.INELIGIBLE, "age")
    goodbye = man.replies()[-1]
    assert goodbye.startswith("Gracias por tu tiempo")
    assert "*Línea 100*" in goodbye and "113" in goodbye
    assert goodbye.index("*Línea 100*") < goodbye.index("113")
    count = len(man.replies())
    reply = man.write("20")
    assert reply.route == Message.Route.FACILITATOR
    assert len(man.replies()) == count
    again = man.write("Hola (HEP-BBBB)")
    assert again.route == Message.Route.RECRUITMENT
    assert man.replies()[-1].startswith("¡Hola de nuevo! 👋 Ya revisamos tus respuestas")
    assert Screening.objects.count() == 1


def test_a_man_without_a_partner_is_ineligible(campaign, man: Man) -> None:
    through_screening(man, ["40", "No tengo pareja"])
    assert (man.screening.state, man.screening.ineligible_reason) == ("ineligible", "relationship")


def test_a_second_tap_on_acepto_is_ignored(campaign, man: Man) -> None:
    through_screening(man)
    accept_consent(man)
    count = len(man.replies())
    again = accept_consent(man)
    assert again.route == Message.Route.RECRUITMENT
    assert Consent.objects.count() == 1
    assert len(man.replies()) == count
    assert man.screening.state == Screening.State.PARTNER


def test_declining_consent_ends_the_conversation_kindly(campaign, man: Man) -> None:
    through_screening(man)
    man.write(button=("rc:consent:decline", "No, gracias"))
    assert man.screening.state == Screening.State.DECLINED
    assert Consent.objects.get().accepted is False
    assert man.replies()[-1].startswith("Entendido, gracias por tu sinceridad")


def test_baja_during_screening_stops_everything_and_is_recorded(campaign, man: Man) -> None:
    man.write("Hola (HEP-AAAA)")
    man.write("34")
    queued = Outbox.objects.filter(status=Outbox.Status.QUEUED).count()
    assert queued >= 3
    stop = man.write("BAJA")
    assert (stop.route, stop.keyword) == (Message.Route.KEYWORD, "stop")
    screening = man.screening
    assert screening.state == Screening.State.WITHDRAWN
    assert screening.withdrawn_at == man.at
    still = Outbox.objects.filter(status=Outbox.Status.QUEUED)
    assert [r.body for r in still] == [man.replies()[-1]]
    assert still.get().body.startswith("Listo, ya no te enviaremos más mensajes")
    count = len(man.replies())
    after = man.write("Sí, vivimos juntos")
    assert after.route == Message.Route.FACILITATOR
    assert len(man.replies()) == count
    with pytest.raises(NotReady):
        randomization_inputs(screening.participant)


def test_an_enrolled_man_who_answers_an_ad_is_told_kindly_and_not_screened(
    campaign, man: Man, make_cohort, enroll
) -> None:
    enrollment = enroll(make_cohort(), phone=man.phone)
    message = man.write("Hola, quiero saber más (HEP-AAAA)")
    assert message.route == Message.Route.RECRUITMENT
    assert man.replies()[-1].startswith("¡Hola de nuevo! 👋 Tú ya estás registrado")
    assert not Screening.objects.exists()
    # Without an ad code his messages are his community's, as before.
    other = man.write("Buenas noches, grupo")
    assert other.route == Message.Route.FACILITATOR
    assert other.enrollment_id == enrollment.pk


def test_a_man_in_the_control_arm_is_refused_and_never_randomized_again(campaign, man: Man) -> None:
    through_screening(man)
    accept_consent(man)
    man.write("no")
    for answer in BASELINE_OK:
        man.write(answer)
    participant = man.screening.participant
    screening_mark_randomized(participant=participant, arm="control", now=man.at)
    again = man.write("Hola (HEP-BBBB)")
    assert again.route == Message.Route.RECRUITMENT
    assert man.replies()[-1].startswith("¡Hola de nuevo! 👋 Tú ya estás registrado")
    assert (man.screening.state, man.screening.arm) == (Screening.State.RANDOMIZED, "control")
    with pytest.raises(AlreadyRandomized):
        screening_mark_randomized(participant=participant, arm="program", now=man.at)
    assert Screening.objects.count() == 1


def test_a_number_that_names_no_ad_waits_for_a_person_unless_the_program_recruits_all(
    campaign, settings
) -> None:
    from tertulia.cohorts.models import Participant

    stranger = Man(phone="+51987000222")
    message = stranger.write("Hola")
    assert (message.route, message.participant_id) == (Message.Route.FACILITATOR, None)
    assert not Participant.objects.exists()

    settings.TERTULIA_RECRUITMENT_PROGRAM = "guy-talk"
    message = stranger.write("Hola")
    assert message.route == Message.Route.RECRUITMENT
    assert (stranger.screening.variant, stranger.screening.attributed_by) == (None, "")


def test_help_during_screening_is_answered_and_the_question_still_stands(
    campaign, man: Man
) -> None:
    man.write("Hola (HEP-AAAA)")
    help_message = man.write("AYUDA")
    assert help_message.route == Message.Route.KEYWORD
    assert "Línea 100" in man.replies()[-1]
    man.write("34")
    assert man.screening.step == "relationship"


def test_a_disclosure_during_screening_is_held_for_a_person_not_taken_as_an_answer(
    campaign, man: Man
) -> None:
    from tertulia.safety.models import Alert

    man.write("Hola (HEP-AAAA)")
    count = len(man.replies())
    message = man.write("ayer le pegué a mi esposa")
    assert message.route == Message.Route.FACILITATOR
    alert = Alert.objects.get(message=message)
    assert (alert.category, alert.participant_id) == (
        "violence_disclosure",
        man.screening.participant_id,
    )
    new = man.replies()[count:]
    assert len(new) == 1 and "Línea 100" in new[0], "only triage's caring reply, no re-ask"
    screening = man.screening
    assert (screening.step, screening.invalid_count) == ("age", 0)


def test_a_threat_at_the_partner_step_is_held_and_never_stored_as_her_name(
    campaign, man: Man
) -> None:
    from tertulia.recruitment.models import PartnerContact
    from tertulia.safety.models import Alert

    through_screening(man)
    accept_consent(man)
    man.write(button=("rc:partner:yes", "Sí, doy permiso"))
    message = man.write("la voy a matar")
    assert Alert.objects.filter(message=message, category="threat_to_partner").exists()
    assert not PartnerContact.objects.exists()
    assert Message.objects.get(pk=message.pk).body == "la voy a matar"


def test_two_first_messages_that_race_start_one_screening(campaign, man: Man) -> None:
    from tertulia.messaging.services import Inbound, message_record_inbound
    from tertulia.recruitment.services import attribution_for, screening_start

    man.write("Hola (HEP-AAAA)")
    # The second first message was stored before the first one's screening existed.
    late, _ = message_record_inbound(
        Inbound(
            channel="simulated",
            address=man.phone,
            provider_id="late-1",
            received_at=man.at,
            text="Hola (HEP-AAAA), tengo 34",
        )
    )
    screening_start(message=late, attribution=attribution_for(late.body, {}), now=man.at)
    assert Screening.objects.count() == 1
    assert ScreeningAnswer.objects.get().value == "34"
    assert late.route == Message.Route.RECRUITMENT
