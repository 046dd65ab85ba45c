"""The facilitator inbox: alerts first, then what waits for a person; each facilitator sees only
his cohorts, and what he does is audited."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.contrib.auth import get_user_model

from tertulia.messaging.models import Message
from tertulia.messaging.router import message_route
from tertulia.messaging.services import Inbound, message_record_inbound
from tertulia.safety.models import Alert, AuditLog
from tests.conftest import lima

START = dt.date(2026, 3, 2)
_ids = itertools.count(1)


@pytest.fixture
def cast(make_cohort, enroll):  # type: ignore[no-untyped-def]
    users = get_user_model().objects
    facilitator = users.create_user("facilitador", password="x-123456789")
    outsider = users.create_user("otro", password="x-123456789")
    mine = make_cohort(name="Cohorte Lima")
    mine.facilitator = facilitator
    mine.save()
    theirs = make_cohort(name="Cohorte Piura")
    theirs.facilitator = outsider
    theirs.save()
    enroll(mine, phone="+51987000001")
    enroll(theirs, phone="+51987000002")
    return facilitator, outsider


def write(phone: str, text: str) -> Message:
    at = lima(START, 20)
    message, _ = message_record_inbound(
        Inbound(
            channel="simulated",
            address=phone,
            provider_id=f"in-{next(_ids)}",
            received_at=at,
            text=text,
        )
    )
    message_route(message_id=message.pk, now=at)
    return message


@pytest.mark.django_db
def test_the_inbox_shows_alerts_first_and_only_his_cohorts(client, cast) -> None:  # type: ignore[no-untyped-def]
    facilitator, _ = cast
    write("+51987000001", "PRIVADO Una consulta sobre el reto de hoy")
    write("+51987000001", "si me vuelve a dejar la voy a matar")
    write("+51987000002", "Mensaje de otra cohorte")
    client.force_login(facilitator)
    html = client.get("/inbox/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert html.index("Alertas de seguridad") < html.index("Una consulta sobre el reto")
    assert "la voy a matar" in html
    assert "Mensaje de otra cohorte" not in html
    assert "2 pendientes" in html


@pytest.mark.django_db
def test_resolving_an_alert_removes_it_and_is_audited(client, cast) -> None:  # type: ignore[no-untyped-def]
    facilitator, _ = cast
    write("+51987000001", "si me vuelve a dejar la voy a matar")
    alert = Alert.objects.get()
    client.force_login(facilitator)
    response = client.post(f"/inbox/alerts/{alert.pk}/resolve/", {"note": "Lo llamé"})
    assert response.status_code == 200
    alert.refresh_from_db()
    assert alert.status == Alert.Status.HANDLED
    assert AuditLog.objects.filter(actor=facilitator, object_id=str(alert.pk)).exists()


@pytest.mark.django_db
def test_another_facilitator_cannot_resolve_or_handle(client, cast) -> None:  # type: ignore[no-untyped-def]
    _, outsider = cast
    write("+51987000001", "si me vuelve a dejar la voy a matar")
    waiting = write("+51987000001", "PRIVADO Una consulta")
    client.force_login(outsider)
    alert = Alert.objects.get()
    assert client.post(f"/inbox/alerts/{alert.pk}/resolve/").status_code == 404
    assert client.post(f"/inbox/messages/{waiting.pk}/handled/").status_code == 404
    alert.refresh_from_db()
    waiting.refresh_from_db()
    assert alert.status == Alert.Status.OPEN and waiting.handled_at is None


@pytest.mark.django_db
def test_marking_a_message_handled_is_audited_once(client, cast) -> None:  # type: ignore[no-untyped-def]
    facilitator, _ = cast
    waiting = write("+51987000001", "PRIVADO Una consulta")
    client.force_login(facilitator)
    client.post(f"/inbox/messages/{waiting.pk}/handled/")
    client.post(f"/inbox/messages/{waiting.pk}/handled/")
    waiting.refresh_from_db()
    assert waiting.handled_at is not None
    assert AuditLog.objects.filter(action="message.handled").count() == 1
    assert "Una consulta" not in client.get("/inbox/items/").content.decode()


@pytest.mark.django_db
def test_the_inbox_needs_a_login(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/inbox/").status_code == 302


@pytest.mark.django_db
def test_a_held_post_is_approved_from_the_inbox(client, cast) -> None:  # type: ignore[no-untyped-def]
    from tertulia.cohorts.models import Cohort
    from tertulia.community.models import CommunityPost

    facilitator, outsider = cast
    Cohort.objects.filter(name="Cohorte Lima").update(moderation=Cohort.Moderation.PRE)
    write("+51987000001", "Pregunta para el grupo")
    post = CommunityPost.objects.get()
    client.force_login(outsider)
    assert client.post(f"/inbox/posts/{post.pk}/approve/").status_code == 404
    client.force_login(facilitator)
    assert "Pregunta para el grupo" in client.get("/inbox/").content.decode()
    client.post(f"/inbox/posts/{post.pk}/approve/")
    post.refresh_from_db()
    assert post.status == CommunityPost.Status.RELAYED


@pytest.mark.django_db
def test_a_flagged_post_is_never_offered_for_approval_even_once_resolved(client, cast) -> None:  # type: ignore[no-untyped-def]
    from tertulia.community.models import CommunityPost

    facilitator, _ = cast
    write("+51987000001", "si me vuelve a dejar la voy a matar")
    alert = Alert.objects.get()
    client.force_login(facilitator)
    client.post(f"/inbox/alerts/{alert.pk}/resolve/")
    html = client.get("/inbox/items/").content.decode()
    assert "la voy a matar" not in html
    assert CommunityPost.objects.get().status == CommunityPost.Status.HELD


@pytest.mark.django_db
def test_the_inbox_says_what_an_approval_and_a_resolution_did(  # type: ignore[no-untyped-def]
    client, cast, enroll, request
) -> None:
    from tertulia.cohorts.models import Cohort
    from tertulia.community.models import CommunityPost
    from tertulia.core import clock
    from tertulia.core.clock import SimulatedClock

    facilitator, _ = cast
    previous = clock.use(SimulatedClock(lima(START, 21)))  # an hour after they wrote
    request.addfinalizer(lambda: clock.use(previous))
    lima_cohort = Cohort.objects.get(name="Cohorte Lima")
    Cohort.objects.filter(pk=lima_cohort.pk).update(moderation=Cohort.Moderation.PRE)
    enroll(lima_cohort, phone="+51987000011")
    enroll(lima_cohort, phone="+51987000012")
    write("+51987000012", "PRIVADO Una duda")  # his 24-hour window is open; the first man's is not
    write("+51987000011", "Hola a todos")
    held = CommunityPost.objects.get()
    client.force_login(facilitator)
    html = client.post(f"/inbox/posts/{held.pk}/approve/").content.decode()
    # Never back to its author: one man now, one in his digest.
    assert "Reenviada: 1 hombre la recibe ahora, 1 en su próximo resumen." in html
    again = client.post(f"/inbox/posts/{held.pk}/approve/").content.decode()
    assert "Otra persona ya atendió esta publicación." in again

    feed = client.get(f"/inbox/cohorts/{lima_cohort.pk}/items/").content.decode()
    assert "Enviada ahora a 1 hombre, 1 en un resumen" in feed

    write("+51987000001", "si me vuelve a dejar la voy a matar")
    alert = Alert.objects.get()
    resolved = client.post(f"/inbox/alerts/{alert.pk}/resolve/").content.decode()
    assert "Alerta resuelta. El mensaje sigue retenido: nunca se reenvía." in resolved
    thread = client.get(f"/inbox/members/{alert.enrollment_id}/items/").content.decode()
    assert "retenido, no reenviado" in thread
    assert "alerta resuelta: amenaza" in thread


@pytest.mark.django_db
def test_what_waits_is_counted_as_the_inbox_lists_it(cast) -> None:  # type: ignore[no-untyped-def]
    from tertulia.cohorts.models import Cohort
    from tertulia.community.selectors import waiting_in
    from tertulia.dashboard.selectors import program_funnel

    lima_cohort = Cohort.objects.get(name="Cohorte Lima")
    write("+51987000001", "Buenazo el reto de hoy")  # relayed: nothing to do
    assert waiting_in([lima_cohort.pk]) == 0
    write("+51987000001", "PRIVADO Una consulta")
    write("+51987000001", "si me vuelve a dejar la voy a matar")  # its alert, counted once
    assert waiting_in([lima_cohort.pk]) == 2
    assert program_funnel([lima_cohort]).waiting_for_facilitator == 2


@pytest.mark.django_db
def test_the_alert_admin_quotes_the_words_and_names_him_by_pseudonym(admin_client, cast) -> None:  # type: ignore[no-untyped-def]
    write("+51987000001", "si me vuelve a dejar la voy a matar")
    alert = Alert.objects.get()
    page = admin_client.get(f"/admin/safety/alert/{alert.pk}/change/").content.decode()
    assert "“la voy a matar”" in page
    assert "Pata 1" in page
    assert "987000001" not in page and "{&#x27;text&#x27;" not in page
    assert "amenaza a su pareja · abierta" in page  # its title, not "threat_to_partner"


@pytest.mark.django_db
def test_resolving_an_alert_someone_else_resolved_says_so(client, admin_user, cast) -> None:  # type: ignore[no-untyped-def]
    facilitator, _ = cast
    write("+51987000001", "si me vuelve a dejar la voy a matar")
    alert = Alert.objects.get()
    client.force_login(admin_user)
    client.post(f"/inbox/alerts/{alert.pk}/resolve/", {"note": "Llamé a la Línea 100"})
    client.force_login(facilitator)
    late = client.post(f"/inbox/alerts/{alert.pk}/resolve/", {"note": "Yo también"})
    assert (
        "Otra persona resolvió esta alerta primero; tu nota no se guardó." in late.content.decode()
    )
    alert.refresh_from_db()
    assert alert.note == "Llamé a la Línea 100"
