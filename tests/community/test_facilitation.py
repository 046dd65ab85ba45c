"""What a facilitator does from the inbox: private replies, group posts, threads, search and
the supervisor's view. Each facilitator reaches only his cohorts, and every action is audited."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.utils import timezone

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.community.facilitation import ReplyRefused, private_reply_send
from tertulia.community.models import (
    CommunityPost,
    InboxSeen,
    PostDelivery,
    PrivateReply,
    QuickReply,
)
from tertulia.community.selectors import search
from tertulia.core import clock
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.router import message_route
from tertulia.messaging.services import Inbound, message_record_inbound
from tertulia.safety.models import Alert, AuditLog
from tertulia.safety.services import alert_resolve
from tests.conftest import lima

START = dt.date(2026, 3, 2)
HOUR = dt.timedelta(hours=1)
MIN5 = dt.timedelta(minutes=5)
MINE = ["+51987000001", "+51987000002"]
THEIRS = "+51987000009"
_ids = itertools.count(1)


@pytest.fixture
def cast(make_cohort, enroll):  # type: ignore[no-untyped-def]
    """A facilitator with a cohort of two men, another facilitator with one man, and a
    supervisor."""
    users = get_user_model().objects
    facilitator = users.create_user("facilitador", password="x-123456789")
    outsider = users.create_user("otro", password="x-123456789")
    supervisor = users.create_user("supervisora", password="x-123456789")
    supervisor.groups.add(Group.objects.create(name="supervisor"))
    mine = make_cohort(name="Cohorte Lima")
    Cohort.objects.filter(pk=mine.pk).update(facilitator=facilitator)
    theirs = make_cohort(name="Cohorte Piura")
    Cohort.objects.filter(pk=theirs.pk).update(facilitator=outsider)
    mine_men = [enroll(mine, phone=p) for p in MINE]
    their_man = enroll(theirs, phone=THEIRS)
    return {
        "facilitator": facilitator,
        "outsider": outsider,
        "supervisor": supervisor,
        "mine": Cohort.objects.get(pk=mine.pk),
        "theirs": Cohort.objects.get(pk=theirs.pk),
        "men": mine_men,
        "their_man": their_man,
    }


def wrote_an_hour_ago(phone: str) -> None:
    """He wrote an hour ago (not routed): his 24-hour window is open now."""
    message_record_inbound(
        Inbound(
            channel="simulated",
            address=phone,
            provider_id=f"in-{next(_ids)}",
            received_at=clock.now() - dt.timedelta(hours=1),
            text="hola",
        )
    )


def write(phone: str, text: str, at: dt.datetime | None = None) -> Message:
    at = at or lima(START, 20)
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
    message.refresh_from_db()
    return message


@pytest.mark.django_db
def test_a_private_reply_goes_to_him_alone_and_answers_his_waiting_messages(client, cast) -> None:  # type: ignore[no-untyped-def]
    man = cast["men"][0]
    asked = write(MINE[0], "PRIVADO tengo una duda sobre el reto")
    client.force_login(cast["facilitator"])
    before = set(Outbox.objects.values_list("pk", flat=True))
    response = client.post(f"/inbox/members/{man.pk}/reply/", {"text": "Claro, cuéntame"})
    assert response.status_code == 200
    new = Outbox.objects.exclude(pk__in=before)
    assert [(o.participant_id, o.channel) for o in new] == [(man.participant_id, "simulated")]
    assert new.get().body == "*Facilitador (solo para ti):* Claro, cuéntame"
    reply = PrivateReply.objects.get()
    assert reply.in_reply_to_id == asked.pk and reply.facilitator == cast["facilitator"]
    asked.refresh_from_db()
    assert asked.handled_at is not None
    entry = AuditLog.objects.get(action="reply.private")
    assert entry.actor == cast["facilitator"] and entry.details["answered"] == [asked.pk]
    assert "Claro, cuéntame" in response.content.decode()


@pytest.mark.django_db
def test_an_empty_or_long_reply_is_refused_with_what_to_fix(client, cast) -> None:  # type: ignore[no-untyped-def]
    man = cast["men"][0]
    client.force_login(cast["facilitator"])
    response = client.post(
        f"/inbox/members/{man.pk}/reply/", {"text": "  "}, HTTP_ACCEPT_LANGUAGE="en"
    )
    assert response.status_code == 400
    assert "Write something before sending." in response.content.decode()
    with pytest.raises(ReplyRefused, match="1001 characters long; keep it under 1000"):
        private_reply_send(enrollment=man, user=cast["facilitator"], text="a" * 1001)
    assert not PrivateReply.objects.exists() and not AuditLog.objects.exists()


@pytest.mark.django_db
def test_nothing_is_sent_to_a_man_who_asked_to_stop(cast) -> None:  # type: ignore[no-untyped-def]
    man = cast["men"][0]
    Enrollment.objects.filter(pk=man.pk).update(state=Enrollment.State.OPTED_OUT)
    man.refresh_from_db()
    with pytest.raises(ReplyRefused, match="BAJA"):
        private_reply_send(enrollment=man, user=cast["facilitator"], text="Hola")
    assert not Outbox.objects.filter(step__isnull=True).exists()


@pytest.mark.django_db
def test_a_group_post_is_labelled_as_the_facilitators_and_relayed(client, cast) -> None:  # type: ignore[no-untyped-def]
    inside, outside = cast["men"]
    # Only the first man wrote in the last 24 hours: he gets the post at once, the other in his
    # digest.
    wrote_an_hour_ago(MINE[0])
    client.force_login(cast["facilitator"])
    response = client.post(
        f"/inbox/cohorts/{cast['mine'].pk}/post/", {"text": "Buenas noches, patas"}
    )
    assert response.status_code == 200
    post = CommunityPost.objects.get()
    assert post.facilitator == cast["facilitator"] and post.status == CommunityPost.Status.RELAYED
    bodies = [(o.participant_id, o.body) for o in Outbox.objects.filter(step__isnull=True)]
    assert bodies == [(inside.participant_id, "*Facilitador:* Buenas noches, patas")]
    owed = PostDelivery.objects.get(enrollment=outside)
    assert owed.post == post and owed.outbox is None
    assert AuditLog.objects.filter(action="post.create", actor=cast["facilitator"]).count() == 1


@pytest.mark.django_db
def test_opening_a_thread_shows_pseudonyms_never_numbers_and_is_audited(client, cast) -> None:  # type: ignore[no-untyped-def]
    man = cast["men"][1]
    write(MINE[1], "Buenazo el audio")
    write(MINE[1], "PRIVADO me cuesta hablar con mi jerma")
    client.force_login(cast["facilitator"])
    html = client.get(f"/inbox/members/{man.pk}/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Pata 2" in html
    assert "me cuesta hablar con mi jerma" in html and "Buenazo el audio" in html
    assert "987000002" not in html
    entry = AuditLog.objects.get(action="thread.open")
    assert (entry.actor, entry.object_id) == (cast["facilitator"], str(man.pk))
    cohort_html = client.get(f"/inbox/cohorts/{cast['mine'].pk}/").content.decode()
    assert "Pata 1" in cohort_html and "Pata 2" in cohort_html
    assert "987000001" not in cohort_html and "987000002" not in cohort_html


@pytest.mark.django_db
def test_a_facilitator_reaches_only_his_cohorts(client, cast) -> None:  # type: ignore[no-untyped-def]
    their_man = cast["their_man"]
    write(THEIRS, "PRIVADO algo mío")
    post = CommunityPost.objects.create(
        cohort=cast["theirs"], body="x", status="relayed", created_at=lima(START, 20)
    )
    client.force_login(cast["facilitator"])
    refused = [
        client.get(f"/inbox/cohorts/{cast['theirs'].pk}/"),
        client.get(f"/inbox/cohorts/{cast['theirs'].pk}/items/"),
        client.get(f"/inbox/members/{their_man.pk}/"),
        client.get(f"/inbox/members/{their_man.pk}/items/"),
        client.post(f"/inbox/members/{their_man.pk}/reply/", {"text": "hola"}),
        client.post(f"/inbox/cohorts/{cast['theirs'].pk}/post/", {"text": "hola"}),
        client.post(f"/inbox/posts/{post.pk}/retract/"),
    ]
    assert [r.status_code for r in refused] == [404] * len(refused)
    forbidden = client.get("/supervisor/")
    assert forbidden.status_code == 403
    assert "Esta página no es para tu cuenta" in forbidden.content.decode()  # not Django's own
    assert not PrivateReply.objects.exists()
    assert CommunityPost.objects.get(pk=post.pk).status == "relayed"
    assert not AuditLog.objects.exclude(action="alert.raise").exists()
    html = client.get("/inbox/").content.decode()
    assert "Cohorte Lima" in html and "Cohorte Piura" not in html and "algo mío" not in html


@pytest.mark.django_db
def test_a_supervisor_sees_every_cohort_of_the_program(client, cast) -> None:  # type: ignore[no-untyped-def]
    write(THEIRS, "PRIVADO algo mío")
    client.force_login(cast["supervisor"])
    assert client.get(f"/inbox/members/{cast['their_man'].pk}/").status_code == 200
    html = client.get("/inbox/").content.decode()
    assert "Cohorte Lima" in html and "Cohorte Piura" in html and "algo mío" in html


@pytest.mark.django_db
def test_retracting_a_post_is_audited(client, cast) -> None:  # type: ignore[no-untyped-def]
    write(MINE[0], "Gracias, me sirvió lo de hoy")
    post = CommunityPost.objects.get()
    client.force_login(cast["facilitator"])
    assert client.post(f"/inbox/posts/{post.pk}/retract/").status_code == 200
    post.refresh_from_db()
    assert post.status == CommunityPost.Status.RETRACTED
    entry = AuditLog.objects.get(action="post.retract")
    assert (entry.actor, entry.object_id) == (cast["facilitator"], str(post.pk))


@pytest.mark.django_db
def test_search_decrypts_only_his_own_cohorts(client, cast) -> None:  # type: ignore[no-untyped-def]
    write(MINE[0], "PRIVADO Mi mamá está enferma")
    write(THEIRS, "PRIVADO mi mama también")
    result = search(cast["facilitator"], "MAMA")
    assert [m.body for m, _ in result.messages] == ["PRIVADO Mi mamá está enferma"]
    assert [name for _, name in result.messages] == ["Pata 1"]
    assert [name for _, name in search(cast["facilitator"], "pata 2").members] == ["Pata 2"]
    client.force_login(cast["facilitator"])
    html = client.get("/inbox/search/", {"q": "mama"}).content.decode()
    assert "Mi mamá está enferma" in html and "también" not in html


@pytest.mark.django_db
def test_search_stops_at_its_bound_and_says_so(cast) -> None:  # type: ignore[no-untyped-def]
    for i in range(5):
        write(MINE[0], f"PRIVADO mensaje {i}", at=lima(START, 20, i))
    result = search(cast["facilitator"], "mensaje", scan_limit=3)
    assert result.truncated and result.scanned == 3
    assert [m.body for m, _ in result.messages] == [f"PRIVADO mensaje {i}" for i in (4, 3, 2)]


@pytest.mark.django_db
def test_the_supervisor_view_shows_open_alerts_and_median_response_times(client, cast) -> None:  # type: ignore[no-untyped-def]
    facilitator = cast["facilitator"]
    first = write(MINE[0], "si me vuelve a dejar la voy a matar", at=lima(START, 20))
    write(MINE[1], "la voy a matar a esa", at=lima(START, 20, 5))
    alert_resolve(Alert.objects.get(message=first), facilitator, now=lima(START, 20, 10))
    write(MINE[0], "PRIVADO una duda", at=lima(START, 21))
    private_reply_send(
        enrollment=cast["men"][0], user=facilitator, text="Dime", now=lima(START, 21, 30)
    )
    client.force_login(cast["supervisor"])
    response = client.get("/supervisor/?start=2026-03-01&end=2026-03-02", follow=True)
    html = response.content.decode()
    lima_row = html[html.index("facilitador") : html.index("</tr>", html.index("facilitador"))]
    assert "10 min" in lima_row  # alert raised 20:00, resolved 20:10
    assert "30 min" in lima_row  # private message 21:00, answered 21:30
    assert '<span class="badge hot">1</span>' in lima_row  # the second alert is still open
    assert '<td data-label="Alertas generadas">2</td>' in lima_row


def supervisor_row(client, query: str = "") -> str:  # type: ignore[no-untyped-def]
    html = client.get(f"/supervisor/{query}", follow=True).content.decode()
    return html[html.index("facilitador") : html.index("</tr>", html.index("facilitador"))]


@pytest.mark.django_db
def test_the_supervisor_figures_cover_the_last_seven_days_unless_asked(client, cast) -> None:  # type: ignore[no-untyped-def]
    """Response times and alerts raised count within the window (default: the last 7 days,
    today included); what is open is shown as it is now, whenever it was raised."""
    facilitator = cast["facilitator"]
    now = clock.now()
    old = write(MINE[0], "si me vuelve a dejar la voy a matar", at=now - dt.timedelta(days=9))
    alert_resolve(Alert.objects.get(message=old), facilitator, now=old.created_at + HOUR)
    recent = write(MINE[1], "la voy a matar a esa", at=now - dt.timedelta(days=2))
    alert_resolve(Alert.objects.get(message=recent), facilitator, now=recent.created_at + MIN5)
    write(MINE[0], "la voy a matar, lo juro", at=now - dt.timedelta(days=20))  # still open
    client.force_login(cast["supervisor"])
    row = supervisor_row(client)
    assert '<td data-label="Alertas generadas">1</td>' in row
    assert "5 min" in row and "60 min" not in row
    assert '<span class="badge hot">1</span>' in row, "open alerts whatever the window"
    day = timezone.localtime(now - dt.timedelta(days=9)).date().isoformat()
    earlier = supervisor_row(client, f"?start={day}&end={day}")
    assert '<td data-label="Alertas generadas">1</td>' in earlier and "60 min" in earlier
    today = timezone.localdate().isoformat()
    swapped = supervisor_row(client, f"?start={today}&end={day}")
    assert "33 min" in swapped and "(n=2)" in swapped, "a window given backwards is put right"


@pytest.mark.django_db
def test_unread_is_counted_for_each_facilitator(client, cast) -> None:  # type: ignore[no-untyped-def]
    """What one person has seen stays unread for another; opening a man's thread sees his
    items, and 'mark all as seen' sees what the inbox showed."""
    write(MINE[0], "PRIVADO una duda")
    write(MINE[1], "PRIVADO otra duda")
    client.force_login(cast["facilitator"])
    items = client.get("/inbox/items/").content.decode()
    assert "2 nuevos para ti" in items and "2 pendientes" in items
    client.get(f"/inbox/members/{cast['men'][0].pk}/")
    items = client.get("/inbox/items/").content.decode()
    assert "1 nuevo para ti" in items and "2 pendientes" in items
    client.force_login(cast["supervisor"])
    assert "2 nuevos para ti" in client.get("/inbox/items/").content.decode()
    seen = client.post("/inbox/seen/", {"upto": clock.now().isoformat()}).content.decode()
    assert "0 nuevos para ti" in seen and "2 pendientes" in seen
    client.force_login(cast["facilitator"])
    assert "1 nuevo para ti" in client.get("/inbox/items/").content.decode()
    assert InboxSeen.objects.filter(user=cast["supervisor"]).count() == 2


@pytest.mark.django_db
def test_mark_all_as_seen_leaves_what_arrived_after_the_page_was_drawn(client, cast) -> None:  # type: ignore[no-untyped-def]
    write(MINE[0], "PRIVADO una duda", at=lima(START, 20))
    write(MINE[1], "PRIVADO llegó después", at=lima(START, 21))
    client.force_login(cast["facilitator"])
    html = client.post("/inbox/seen/", {"upto": lima(START, 20, 30).isoformat()}).content.decode()
    assert "1 nuevo para ti" in html


@pytest.mark.django_db
def test_warm_quick_replies_are_seeded_and_offered(client, cast) -> None:  # type: ignore[no-untyped-def]
    assert QuickReply.objects.filter(language="es", active=True).count() >= 5
    client.force_login(cast["facilitator"])
    html = client.get(f"/inbox/members/{cast['men'][0].pk}/").content.decode()
    assert "Gracias por contarlo, causa" in html


@pytest.mark.django_db
def test_a_relayed_post_is_in_the_feed_not_among_private_messages(client, cast) -> None:  # type: ignore[no-untyped-def]
    write(MINE[0], "Buenazo el audio de hoy")
    write(MINE[1], "PRIVADO solo para ti")
    client.force_login(cast["facilitator"])
    inbox = client.get("/inbox/items/", HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "solo para ti" in inbox and "Buenazo el audio" not in inbox
    assert "1 pendiente" in inbox
    feed = client.get(f"/inbox/cohorts/{cast['mine'].pk}/items/").content.decode()
    assert "Buenazo el audio de hoy" in feed and "solo para ti" not in feed


@pytest.mark.django_db
def test_an_approved_post_and_a_private_reply_are_sent_at_once(
    client, cast, run_tasks, django_capture_on_commit_callbacks
) -> None:  # type: ignore[no-untyped-def]
    Cohort.objects.filter(pk=cast["mine"].pk).update(moderation=Cohort.Moderation.PRE)
    write(MINE[0], "Pregunta para el grupo")
    post = CommunityPost.objects.get()
    wrote_an_hour_ago(MINE[1])
    client.force_login(cast["facilitator"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/inbox/posts/{post.pk}/approve/")
        client.post(f"/inbox/members/{cast['men'][0].pk}/reply/", {"text": "Gracias, pata"})
    run_tasks()
    sent = {(o.participant_id, o.body): o.status for o in Outbox.objects.filter(step__isnull=True)}
    assert sent[(cast["men"][1].participant_id, "*Pata 1:* Pregunta para el grupo")] == "sent"
    assert sent[(cast["men"][0].participant_id, "*Facilitador (solo para ti):* Gracias, pata")] == (
        "sent"
    )


@pytest.mark.django_db
def test_a_refused_page_is_logged_on_one_line(client, caplog) -> None:  # type: ignore[no-untyped-def]
    from django.contrib.auth import get_user_model

    client.force_login(get_user_model().objects.create_user("solo", password="x-123456789"))
    with caplog.at_level("WARNING", logger="django.request"):
        assert client.get("/supervisor/").status_code == 403
    refused = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in refused] == ["Forbidden (Permission denied): /supervisor/"]
    assert refused[0].exc_info is None
