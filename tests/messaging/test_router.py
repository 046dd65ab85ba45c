"""Keywords, check-in answers and everything else: each inbound message is stored once and
ends somewhere; nothing is dropped."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from tertulia.cohorts.models import Enrollment
from tertulia.messaging.models import CheckInResponse, Message, Outbox
from tertulia.messaging.router import message_route
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import outbox_send_batch
from tertulia.messaging.services import Inbound, message_record_inbound
from tertulia.simulation.models import SimulatedDelivery
from tests.conftest import lima

START = dt.date(2026, 3, 2)
PHONE = "+51987000111"
_ids = itertools.count(1)


@pytest.fixture
def man(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    enrollment = enroll(cohort, phone=PHONE)
    outbox_enqueue_due(now=lima(START, 19, 0))
    outbox_send_batch(now=lima(START, 19, 0))
    return enrollment


def write(text: str = "", *, at: dt.datetime | None = None, button_id: str = "",
          button_title: str = "", provider_id: str | None = None) -> Message:  # fmt: skip
    at = at or lima(START, 20)
    message, _ = message_record_inbound(
        Inbound(
            channel="simulated",
            address=PHONE,
            provider_id=provider_id or f"in-{next(_ids)}",
            received_at=at,
            kind="button" if button_id else "text",
            text=text,
            button_id=button_id,
            button_title=button_title,
        )
    )
    message_route(message_id=message.pk, now=at)
    message.refresh_from_db()
    return message


def replies_to_him() -> list[str]:
    return list(
        Outbox.objects.filter(step__isnull=True).order_by("id").values_list("body", flat=True)
    )


@pytest.mark.django_db
def test_baja_opts_out_with_one_confirmation_and_nothing_after(man, curriculum):  # type: ignore[no-untyped-def]
    message = write("baja")
    man.refresh_from_db()
    assert message.route == Message.Route.KEYWORD
    assert man.state == Enrollment.State.OPTED_OUT
    assert len(replies_to_him()) == 1
    assert "VOLVER" in replies_to_him()[0]

    write("BAJA!!")
    assert len(replies_to_him()) == 1, "a second BAJA gets no second confirmation"

    before = Outbox.objects.filter(step__isnull=False).count()
    for day in range(1, curriculum.last_day + 2):
        now = lima(START + dt.timedelta(days=day), 19, 0)
        outbox_enqueue_due(now=now)
        outbox_send_batch(now=now)
    assert Outbox.objects.filter(step__isnull=False).count() == before
    delivered_after = SimulatedDelivery.objects.filter(
        message_id__in=Message.objects.filter(direction="out", created_at__gt=lima(START, 20))
    )
    assert [d.kind for d in delivered_after] == ["text"]  # only his confirmation


@pytest.mark.django_db
def test_baja_cancels_steps_already_queued(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    enrollment = enroll(cohort, phone=PHONE)
    outbox_enqueue_due(now=lima(START, 19, 0))  # written, not yet sent
    write("Baja")
    outbox_send_batch(now=lima(START, 20, 1))
    assert not Outbox.objects.filter(enrollment=enrollment, step__isnull=False,
                                     status=Outbox.Status.SENT).exists()  # fmt: skip
    assert SimulatedDelivery.objects.count() == 1


@pytest.mark.django_db
def test_stop_in_english_also_opts_out(man):  # type: ignore[no-untyped-def]
    write("STOP")
    man.refresh_from_db()
    assert man.state == Enrollment.State.OPTED_OUT


@pytest.mark.django_db
def test_ayuda_answers_with_the_hotline(man):  # type: ignore[no-untyped-def]
    message = write("Ayuda")
    assert message.keyword == "help"
    (reply,) = replies_to_him()
    assert "Línea 100" in reply
    assert "24 horas" in reply
    man.refresh_from_db()
    assert man.state == Enrollment.State.ACTIVE


@pytest.mark.django_db
def test_volver_opts_back_in(man):  # type: ignore[no-untyped-def]
    write("BAJA")
    write("volver", at=lima(START, 21))
    man.refresh_from_db()
    assert man.state == Enrollment.State.ACTIVE
    assert "vuelta" in replies_to_him()[-1]
    report = outbox_enqueue_due(now=lima(START + dt.timedelta(days=1), 19, 0))
    assert report.enrollments_advanced == 1


@pytest.mark.django_db
def test_a_button_answer_is_recorded_against_its_day(man, curriculum):  # type: ignore[no-untyped-def]
    step = curriculum.days.get(number=0).steps.get(kind="checkin")
    message = write(button_id=f"ci:{step.pk}:si", button_title="¡Listo!")
    assert message.route == Message.Route.CHECKIN
    answer = CheckInResponse.objects.get(enrollment=man)
    assert (answer.day, answer.answer_key, answer.step_id) == (0, "si", step.pk)
    man.refresh_from_db()
    assert man.checkins_answered == 1


@pytest.mark.django_db
def test_a_typed_answer_matching_a_button_counts(man):  # type: ignore[no-untyped-def]
    message = write("todavia no")
    assert message.route == Message.Route.CHECKIN
    assert CheckInResponse.objects.get(enrollment=man).answer_key == "no"


@pytest.mark.django_db
def test_an_unknown_message_waits_for_a_facilitator(man):  # type: ignore[no-untyped-def]
    message = write("Oye, una consulta sobre el reto de hoy")
    assert message.route == Message.Route.FACILITATOR
    assert message.handled_at is None
    assert message.body == "Oye, una consulta sobre el reto de hoy"
    assert replies_to_him() == []


@pytest.mark.django_db
def test_a_message_from_an_unknown_number_is_stored(db):  # type: ignore[no-untyped-def]
    message, created = message_record_inbound(
        Inbound(
            channel="simulated",
            address="+51911222333",
            provider_id="x1",
            received_at=lima(START, 20),
            text="hola",
        )  # fmt: skip
    )
    assert created and message.participant is None
    assert message_route(message_id=message.pk, now=lima(START, 20)) == Message.Route.FACILITATOR


@pytest.mark.django_db
def test_a_redelivered_message_is_stored_once(man):  # type: ignore[no-untyped-def]
    write("hola", provider_id="wamid.1")
    write("hola", provider_id="wamid.1")
    assert Message.objects.filter(direction="in").count() == 1
    man.refresh_from_db()
    assert man.replies == 1


@pytest.mark.django_db
def test_message_bodies_are_encrypted_at_rest(man):  # type: ignore[no-untyped-def]
    from django.db import connection

    write("mi secreto")
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM messaging_message WHERE direction = 'in'")
        (raw,) = cursor.fetchone()
    assert "secreto" not in raw
