"""Safety triage as the router runs it: a flagged message raises alerts with evidence, is held
for the facilitator, and he gets one caring reply with the referral that fits; nothing is
dropped; alerts escalate to supervisors when nobody handles them; staff actions are audited."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.contrib.auth.models import Group, User
from django.core.exceptions import PermissionDenied

from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.router import message_route
from tertulia.messaging.services import Inbound, message_record_inbound
from tertulia.safety.models import Alert, AuditLog, Notification, Referral
from tertulia.safety.services import (
    alert_resolve,
    alerts_escalate_due,
    alerts_open_for_facilitator,
    message_is_held,
    message_triage,
)
from tertulia.safety.tasks import escalate_alerts_task
from tests.conftest import lima

START = dt.date(2026, 3, 2)
PHONE = "+51987000222"
OTHER = "+51987000333"
_ids = itertools.count(1)

THREAT = "la voy a matar si me deja"


@pytest.fixture
def facilitator(db) -> User:  # type: ignore[no-untyped-def]
    return User.objects.create_user("rosa", password="x")


@pytest.fixture
def supervisor(db) -> User:  # type: ignore[no-untyped-def]
    user = User.objects.create_user("jefa", password="x")
    user.groups.add(Group.objects.get_or_create(name="supervisor")[0])
    return user


@pytest.fixture
def man(make_cohort, enroll, facilitator):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    cohort.facilitator = facilitator
    cohort.save()
    return enroll(cohort, phone=PHONE)


def write(text: str, *, phone: str = PHONE, at: dt.datetime | None = None,
          provider_id: str | None = None) -> Message:  # fmt: skip
    at = at or lima(START, 20)
    message, _ = message_record_inbound(
        Inbound(
            channel="simulated",
            address=phone,
            provider_id=provider_id or f"safety-{next(_ids)}",
            received_at=at,
            text=text,
        )
    )
    message_route(message_id=message.pk, now=at)
    message.refresh_from_db()
    return message


def replies() -> list[Outbox]:
    return list(Outbox.objects.filter(step__isnull=True).order_by("id"))


@pytest.mark.django_db
def test_peru_referrals_are_seeded() -> None:
    names = set(Referral.objects.filter(country="PE").values_list("name", flat=True))
    assert {"Línea 100", "Chat 100", "Centros Emergencia Mujer (CEM)"} <= names
    assert Referral.objects.filter(country="PE", kind="mental_health", phone="113").exists()


@pytest.mark.django_db
def test_a_threat_raises_an_alert_holds_it_and_queues_a_caring_reply_to_him(man, facilitator):  # type: ignore[no-untyped-def]
    message = write(THREAT)

    alert = Alert.objects.get()
    assert alert.category == "threat_to_partner"
    assert alert.message_id == message.pk
    assert alert.participant_id == man.participant_id
    assert alert.cohort_id == man.cohort_id
    assert alert.status == Alert.Status.OPEN
    assert any(item["text"] == "la voy a matar" for item in alert.evidence)
    assert alert.notified_facilitator_at == lima(START, 20)
    assert Notification.objects.filter(recipient=facilitator, alert=alert, kind="alert").exists()

    # Held, and never dropped: the message is stored, with its body, waiting for a person.
    assert message.route == Message.Route.FACILITATOR
    assert message.status == Message.Status.ROUTED
    assert message.body == THREAT
    assert message_is_held(message.pk)

    [reply] = replies()
    assert reply.participant_id == man.participant_id
    assert reply.channel == message.channel
    assert reply.enrollment_id == man.pk
    assert "Línea 100" in reply.body
    assert "Chat 100" in reply.body
    assert "Centros Emergencia Mujer" in reply.body
    assert "113" not in reply.body
    assert reply.body.startswith("Gracias")


@pytest.mark.django_db
def test_evidence_is_encrypted_at_rest(man) -> None:  # type: ignore[no-untyped-def]
    from django.db import connection

    write(THREAT)
    table = Alert._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT evidence FROM {table}")  # noqa: S608
        [(raw,)] = cursor.fetchall()
    assert "matar" not in raw


@pytest.mark.django_db
def test_football_raises_nothing(man) -> None:  # type: ignore[no-untyped-def]
    message = write("el domingo matamos a Alianza en el clásico 3-0")
    assert not Alert.objects.exists()
    assert not message_is_held(message.pk)
    assert message.route == Message.Route.FACILITATOR  # the router's own route, unchanged
    assert replies() == []


@pytest.mark.django_db
def test_keywords_still_work_and_raise_nothing(man) -> None:  # type: ignore[no-untyped-def]
    message = write("AYUDA")
    assert message.route == Message.Route.KEYWORD
    assert not Alert.objects.exists()


@pytest.mark.django_db
def test_a_redelivered_message_raises_one_alert_and_one_reply(man) -> None:  # type: ignore[no-untyped-def]
    first = write(THREAT, provider_id="wamid.same")
    again = write(THREAT, provider_id="wamid.same")
    assert first.pk == again.pk
    message_triage(first, lima(START, 20, 1))  # even if triage itself ran twice
    assert Alert.objects.count() == 1
    assert len(replies()) == 1
    assert Message.objects.filter(direction="in").count() == 1


@pytest.mark.django_db
def test_several_categories_raise_one_alert_each_and_one_reply(man) -> None:  # type: ignore[no-untyped-def]
    write("me dan ganas de matarme, y le pegué a mi esposa")
    assert set(Alert.objects.values_list("category", flat=True)) == {
        "self_harm",
        "violence_disclosure",
    }
    [reply] = replies()
    # Self-harm leads: the mental-health line first, then Línea 100 for the violence.
    assert reply.body.index("113") < reply.body.index("Línea 100")
    assert "Chat 100" not in reply.body


@pytest.mark.django_db
def test_self_harm_alone_points_to_the_mental_health_line(man) -> None:  # type: ignore[no-untyped-def]
    write("ya no quiero vivir, me quiero matar")
    assert Alert.objects.get().category == "self_harm"
    [reply] = replies()
    assert "113" in reply.body and "opción 5" in reply.body
    assert "Línea 100" not in reply.body


@pytest.mark.django_db
def test_harassment_gets_the_community_rules(man) -> None:  # type: ignore[no-untyped-def]
    write("cállate idiota, eres una basura")
    assert Alert.objects.get().category == "harassment"
    [reply] = replies()
    assert "sin insultos" in reply.body
    assert "Línea 100" not in reply.body


@pytest.mark.django_db
def test_an_english_speaker_gets_english(man) -> None:  # type: ignore[no-untyped-def]
    man.participant.language = "en"
    man.participant.save()
    write(THREAT)
    [reply] = replies()
    assert reply.body.startswith("Thank you")
    assert "Línea 100" in reply.body


@pytest.mark.django_db
def test_escalation_after_15_minutes_notifies_supervisors_and_not_before(man, supervisor):  # type: ignore[no-untyped-def]
    write(THREAT, at=lima(START, 20))
    assert alerts_escalate_due(lima(START, 20, 14)) == 0
    assert not Notification.objects.filter(kind="escalation").exists()

    assert alerts_escalate_due(lima(START, 20, 15)) == 1
    alert = Alert.objects.get()
    assert alert.escalated_at == lima(START, 20, 15)
    escalated_to = Notification.objects.filter(kind="escalation").values_list("recipient")
    assert [pk for (pk,) in escalated_to] == [supervisor.pk]
    assert alerts_escalate_due(lima(START, 20, 30)) == 0, "escalated once"
    assert Notification.objects.filter(kind="escalation").count() == 1


@pytest.mark.django_db
def test_escalation_minutes_are_configurable(man, supervisor, settings):  # type: ignore[no-untyped-def]
    settings.TERTULIA_ALERT_ESCALATE_MINUTES = 5
    write(THREAT, at=lima(START, 20))
    assert alerts_escalate_due(lima(START, 20, 4)) == 0
    assert alerts_escalate_due(lima(START, 20, 5)) == 1


@pytest.mark.django_db
def test_a_handled_alert_is_not_escalated(man, facilitator, supervisor):  # type: ignore[no-untyped-def]
    write(THREAT, at=lima(START, 20))
    alert_resolve(Alert.objects.get(), facilitator, "Lo llamé.", now=lima(START, 20, 5))
    assert alerts_escalate_due(lima(START, 21)) == 0
    assert not Notification.objects.filter(kind="escalation").exists()


@pytest.mark.django_db
def test_the_escalation_task_runs(man, supervisor, run_tasks):  # type: ignore[no-untyped-def]
    write(THREAT, at=lima(START, 20))
    escalate_alerts_task.enqueue(lima(START, 20, 20).isoformat())
    run_tasks()
    assert Alert.objects.get().escalated_at == lima(START, 20, 20)
    assert Notification.objects.filter(recipient=supervisor, kind="escalation").exists()


@pytest.mark.django_db
def test_a_cohort_without_facilitator_goes_to_supervisors_at_once(make_cohort, enroll, supervisor):  # type: ignore[no-untyped-def]
    enroll(make_cohort(start=START), phone=PHONE)
    write(THREAT, at=lima(START, 20))
    alert = Alert.objects.get()
    assert alert.escalated_at == lima(START, 20)
    assert Notification.objects.filter(recipient=supervisor, kind="escalation").exists()


@pytest.mark.django_db
def test_an_unknown_number_raises_an_alert_and_gets_no_reply(db, supervisor) -> None:  # type: ignore[no-untyped-def]
    message = write(THREAT, phone="+51999000999")
    assert message.participant_id is None
    assert Alert.objects.get().category == "threat_to_partner"
    assert replies() == []


@pytest.mark.django_db
def test_a_facilitator_sees_only_his_cohorts_alerts(  # type: ignore[no-untyped-def]
    man, make_cohort, enroll, facilitator, supervisor
):
    other_facilitator = User.objects.create_user("otro", password="x")
    other = make_cohort(name="Cohorte B", start=START)
    other.facilitator = other_facilitator
    other.save()
    enroll(other, phone=OTHER)
    write("ya no quiero vivir", phone=OTHER)
    write(THREAT)

    mine = list(alerts_open_for_facilitator(facilitator))
    assert [a.category for a in mine] == ["threat_to_partner"]
    assert [a.category for a in alerts_open_for_facilitator(other_facilitator)] == ["self_harm"]
    # A supervisor sees the program, most urgent first.
    assert [a.category for a in alerts_open_for_facilitator(supervisor)] == [
        "threat_to_partner",
        "self_harm",
    ]
    with pytest.raises(PermissionDenied):
        alert_resolve(mine[0], other_facilitator, "no es mío")


@pytest.mark.django_db
def test_resolving_writes_an_audit_row(man, facilitator) -> None:  # type: ignore[no-untyped-def]
    write(THREAT)
    alert = alert_resolve(Alert.objects.get(), facilitator, "Lo llamé, está más calmado.",
                          now=lima(START, 20, 7))  # fmt: skip
    alert.refresh_from_db()
    assert alert.status == Alert.Status.HANDLED
    assert alert.handled_by == facilitator
    assert alert.handled_at == lima(START, 20, 7)
    assert alert.note == "Lo llamé, está más calmado."
    assert not alerts_open_for_facilitator(facilitator).exists()
    entry = AuditLog.objects.get(action="alert.resolve")
    assert entry.actor == facilitator
    assert entry.object_type == "safety.alert"
    assert entry.object_id == str(alert.pk)
    assert entry.at == lima(START, 20, 7)
    assert "calmado" not in str(entry.details), "the note stays encrypted on the alert"
    # Resolving again is a no-op, not a second entry.
    alert_resolve(alert, facilitator, "otra vez")
    assert AuditLog.objects.filter(action="alert.resolve").count() == 1
    # The message is still there, still held, with its body.
    assert alert.message.body == THREAT
    assert message_is_held(alert.message_id)


@pytest.mark.django_db
def test_audit_rows_cannot_be_updated_or_deleted(man, facilitator) -> None:  # type: ignore[no-untyped-def]
    write(THREAT)
    alert_resolve(Alert.objects.get(), facilitator, "")
    entry = AuditLog.objects.get(action="alert.resolve")
    entry.action = "alert.nothing"
    with pytest.raises(PermissionDenied):
        entry.save()
    with pytest.raises(PermissionDenied):
        entry.delete()
    with pytest.raises(PermissionDenied):
        AuditLog.objects.filter(pk=entry.pk).update(action="x")
    with pytest.raises(PermissionDenied):
        AuditLog.objects.all().delete()
    assert AuditLog.objects.get(pk=entry.pk).action == "alert.resolve"


@pytest.mark.django_db
def test_the_audit_admin_is_read_only(admin_client) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.admin.sites import site

    from tertulia.safety.models import AuditLog as Log

    admin = site._registry[Log]
    request = type("R", (), {"user": User(is_superuser=True, is_staff=True)})()
    assert not admin.has_add_permission(request)
    assert not admin.has_change_permission(request)
    assert not admin.has_delete_permission(request)
    assert admin_client.get("/admin/safety/auditlog/").status_code == 200
    filtered = admin_client.get("/admin/safety/alert/?category=self_harm&status=open")
    assert filtered.status_code == 200


@pytest.mark.django_db
def test_postgresql_refuses_raw_changes_to_the_audit_log(man, facilitator) -> None:  # type: ignore[no-untyped-def]
    from django.db import DatabaseError, connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the database trigger exists on PostgreSQL only")
    write(THREAT)
    entry = AuditLog.objects.get(action="alert.raise")
    for sql in ("UPDATE safety_auditlog SET action = 'x'", "DELETE FROM safety_auditlog"):
        with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditLog.objects.get(pk=entry.pk).action == "alert.raise"


@pytest.mark.django_db
def test_escalation_reaches_the_operator_when_no_supervisor_exists(man) -> None:  # type: ignore[no-untyped-def]
    """On a fresh install the only account is the superuser `tertulia serve` creates."""
    operator = User.objects.create_superuser("admin", "", "x-123456789")
    write(THREAT, at=lima(START, 20))
    assert alerts_escalate_due(lima(START, 20, 15)) == 1
    escalated_to = Notification.objects.filter(kind="escalation").values_list("recipient")
    assert [pk for (pk,) in escalated_to] == [operator.pk]
