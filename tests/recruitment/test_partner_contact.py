"""The partner-contact store: only with his consent, encrypted, apart from his record, seen only
by the partner-survey role, and her number never messaged through his channel."""

from __future__ import annotations

import datetime as dt

import pytest
from django.contrib.auth.models import Group, Permission
from django.db import connection

from tertulia.cohorts.services import participant_get_or_create
from tertulia.core.crypto import lookup_hash
from tertulia.messaging.guards import RecipientBlocked
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.sender import outbox_send_batch
from tertulia.messaging.services import service_message_queue
from tertulia.recruitment.models import Consent, PartnerContact, ScreeningAnswer
from tertulia.recruitment.services import REDACTED

from .conftest import START, Man, accept_consent, through_screening

pytestmark = pytest.mark.django_db

HER_NUMBER = "987 654 999"
HER_E164 = "+51987654999"


def give_partner_contact(man: Man) -> list[Message]:
    through_screening(man)
    accept_consent(man)
    yes = man.write(button=("rc:partner:yes", "Sí, doy permiso"))
    return [yes, man.write("Rosa María"), man.write(HER_NUMBER)]


def test_her_name_and_number_go_only_to_the_encrypted_partner_store(campaign, man: Man) -> None:
    _, name_message, phone_message = give_partner_contact(man)
    contact = PartnerContact.objects.get()
    assert (contact.name, contact.phone) == ("Rosa María", HER_E164)
    assert contact.phone_hash == lookup_hash(HER_E164)
    consent = Consent.objects.get(kind=Consent.Kind.PARTNER_CONTACT)
    assert (contact.consent_id, consent.accepted, consent.version) == (
        consent.pk,
        True,
        "2026-12-v1",
    )
    assert man.screening.state == "baseline"
    # Not in his messages, not in his answers, and not in clear in the database.
    assert {name_message.body, phone_message.body} == {REDACTED}
    assert Message.objects.get(pk=phone_message.pk).body == REDACTED
    stored = [
        a.raw + a.value for a in ScreeningAnswer.objects.filter(question__startswith="partner_")
    ]
    assert stored and not any("Rosa" in s or "987" in s for s in stored)
    with connection.cursor() as cursor:
        cursor.execute("SELECT name, phone FROM recruitment_partnercontact")
        name, phone = cursor.fetchone()
    assert "Rosa" not in name and "987654999" not in phone


def test_an_invalid_or_his_own_number_is_asked_again(campaign, man: Man) -> None:
    through_screening(man)
    accept_consent(man)
    man.write(button=("rc:partner:yes", "Sí, doy permiso"))
    man.write("Rosa")
    man.write("12345")
    assert man.replies()[-2].startswith("Ese número no parece válido")
    man.write(man.phone)
    assert man.replies()[-2].startswith("Ese es tu propio número")
    assert PartnerContact.objects.get().phone == ""
    man.write("+51 987 654 999")
    assert PartnerContact.objects.get().phone == HER_E164


def test_he_can_change_his_mind_and_give_no_contact(campaign, man: Man) -> None:
    through_screening(man)
    accept_consent(man)
    man.write(button=("rc:partner:yes", "Sí, doy permiso"))
    man.write("Rosa")
    man.write("no")
    assert not PartnerContact.objects.exists()
    assert man.screening.state == "baseline"


def test_nothing_can_be_queued_or_sent_to_a_partner_contacts_number(campaign, man: Man) -> None:
    give_partner_contact(man)
    # However her number came to be a participant's (here: enrolled by hand), it is blocked.
    her, _ = participant_get_or_create(phone=HER_E164)
    with pytest.raises(RecipientBlocked):
        service_message_queue(
            participant=her, enrollment=None, channel="simulated", text="Hola", now=START
        )
    row = Outbox.objects.create(
        participant=her, body="Hola", channel="simulated", due_at=START, created_at=START
    )
    report = outbox_send_batch(now=START + dt.timedelta(days=1))
    row.refresh_from_db()
    assert row.status == Outbox.Status.CANCELLED
    assert "partner contact" in row.error
    assert not Message.objects.filter(direction="out", participant=her).exists()
    assert report.sent > 0, "his own messages still go"


def test_a_partner_contacts_number_that_writes_in_is_never_screened(campaign, man: Man) -> None:
    give_partner_contact(man)
    her = Man(phone=HER_E164)
    message = her.write("Hola (HEP-AAAA)")
    assert (message.participant_id, message.route) == (None, Message.Route.FACILITATOR)
    assert Outbox.objects.filter(participant__phone_hash=lookup_hash(HER_E164)).count() == 0


@pytest.fixture
def staff(django_user_model):  # type: ignore[no-untyped-def]
    def make(username: str, *, superuser: bool = False, group: str | None = None):  # type: ignore[no-untyped-def]
        user = django_user_model.objects.create_user(
            username, password="pw-123456", is_staff=True, is_superuser=superuser
        )
        if group:
            user.groups.add(Group.objects.get(name=group))
        else:
            # Every other recruitment permission: still no partner contacts.
            user.user_permissions.add(
                *Permission.objects.filter(content_type__app_label="recruitment")
            )
        return user

    return make


def test_only_the_partner_survey_role_sees_partner_contacts(
    campaign, man: Man, staff, client
) -> None:
    give_partner_contact(man)
    contact = PartnerContact.objects.get()
    url = f"/admin/recruitment/partnercontact/{contact.pk}/change/"
    surveyor = staff("encuestadora", group="partner_survey")
    client.force_login(surveyor)
    assert client.get("/admin/recruitment/partnercontact/").status_code == 200
    page = client.get(url)
    assert page.status_code == 200 and "Rosa María" in page.content.decode()

    for other in (staff("supervisora"), staff("root", superuser=True)):
        client.force_login(other)
        assert client.get("/admin/recruitment/partnercontact/").status_code == 403
        assert client.get(url).status_code == 403
        assert "partnercontact" not in client.get("/admin/").content.decode()
