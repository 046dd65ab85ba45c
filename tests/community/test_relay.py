"""The community relay: what a man writes, says or shows reaches the other members under his
pseudonym, never his number; only men inside their 24-hour window get it at once; held when
pre-moderated, flagged or unreadable; quoted answers; SALIR, PRIVADO and BAJA are respected."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.contrib.auth import get_user_model

from tertulia.cohorts.models import Cohort, Participant
from tertulia.community.models import CommunityPost, Membership, PostDelivery
from tertulia.community.services import post_approve, post_by_facilitator, post_retract
from tertulia.core.crypto import lookup_hash
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.router import message_route
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import outbound_for, outbox_send_batch
from tertulia.messaging.services import Inbound, message_record_inbound
from tertulia.safety.models import AuditLog
from tests.conftest import lima

START = dt.date(2026, 3, 2)
PHONES = ["+51987000001", "+51987000002", "+51987000003"]
_ids = itertools.count(1)


@pytest.fixture
def cohort(make_cohort, enroll):  # type: ignore[no-untyped-def]
    cohort = make_cohort(start=START)
    for phone in PHONES:
        enroll(cohort, phone=phone)
    return cohort


@pytest.fixture
def facilitator(db):  # type: ignore[no-untyped-def]
    return get_user_model().objects.create_user("facilitador", password="x-123456789")


def participant(phone: str) -> Participant:
    return Participant.objects.get(phone_hash=lookup_hash(phone))


def wrote_earlier(*phones: str, at: dt.datetime | None = None) -> None:
    """He wrote to us at `at` (an hour before the posts, by default): his window is open."""
    for phone in phones:
        Message.objects.create(
            direction=Message.Direction.IN,
            participant=participant(phone),
            channel="simulated",
            provider_id=f"earlier-{next(_ids)}",
            body="hola",
            status=Message.Status.ROUTED,
            created_at=at or lima(START, 19),
        )


def write(
    phone: str,
    text: str = "",
    *,
    at: dt.datetime | None = None,
    kind: str = "text",
    payload: dict | None = None,
    button: tuple[str, str] | None = None,
) -> Message:
    at = at or lima(START, 20)
    message, _ = message_record_inbound(
        Inbound(
            channel="simulated",
            address=phone,
            provider_id=f"in-{next(_ids)}",
            received_at=at,
            kind=kind,
            text=text,
            payload=payload,
            button_id=button[0] if button else "",
            button_title=button[1] if button else "",
        )
    )
    message_route(message_id=message.pk, now=at)
    return message


def relayed_to() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in (
        Outbox.objects.filter(step__isnull=True)
        .exclude(status=Outbox.Status.CANCELLED)
        .select_related("participant")
        .order_by("id")
    ):
        out.setdefault(row.participant.phone, []).append(row.body)
    return out


@pytest.mark.django_db
def test_a_post_reaches_the_others_under_his_pseudonym(cohort) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    write(PHONES[0], "Hoy probé lo de respirar tres veces y funcionó")
    sent = relayed_to()
    assert set(sent) == {PHONES[1], PHONES[2]}
    assert sent[PHONES[1]] == ["*Pata 1:* Hoy probé lo de respirar tres veces y funcionó"]
    assert "987000001" not in sent[PHONES[1]][0]
    assert CommunityPost.objects.get().status == CommunityPost.Status.RELAYED
    assert PostDelivery.objects.filter(via=PostDelivery.Via.LIVE).count() == 2


@pytest.mark.django_db
def test_only_men_inside_their_window_get_it_at_once(cohort) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(PHONES[1])
    wrote_earlier(PHONES[2], at=lima(START, 20) - dt.timedelta(hours=25))
    write(PHONES[0], "¿Cómo les fue con el reto de ayer?")
    assert set(relayed_to()) == {PHONES[1]}
    owed = PostDelivery.objects.get(outbox__isnull=True)
    assert owed.enrollment.participant.phone == PHONES[2], "owed to his digest, not lost"


@pytest.mark.django_db
def test_pre_moderation_holds_until_approved(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    Cohort.objects.filter(pk=cohort.pk).update(moderation=Cohort.Moderation.PRE)
    write(PHONES[1], "Una pregunta para el grupo")
    post = CommunityPost.objects.get()
    assert post.status == CommunityPost.Status.HELD and relayed_to() == {}
    assert post_approve(post=post, user=facilitator, now=lima(START, 21))
    assert set(relayed_to()) == {PHONES[0], PHONES[2]}
    assert AuditLog.objects.filter(action="post.approve", actor=facilitator).count() == 1
    assert not post_approve(post=post, user=facilitator, now=lima(START, 22)), "relayed once"
    assert Outbox.objects.count() == 2


@pytest.mark.django_db
def test_a_flagged_message_is_held_even_in_post_moderation(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    write(PHONES[0], "si me vuelve a dejar la voy a matar")
    post = CommunityPost.objects.get()
    assert post.status == CommunityPost.Status.HELD
    assert not post_approve(post=post, user=facilitator), "not while its alert is open"
    others = {p: b for p, b in relayed_to().items() if p != PHONES[0]}
    assert others == {}
    assert not PostDelivery.objects.exists()


@pytest.mark.django_db
def test_retracting_notifies_those_who_got_it_and_cancels_the_rest(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(PHONES[1], PHONES[2])
    write(PHONES[0], "Un mensaje que el facilitador va a retirar")
    # Pata 2's copy went out; Pata 3's is still waiting in the Outbox.
    Outbox.objects.filter(participant=participant(PHONES[1])).update(status=Outbox.Status.SENT)
    post = CommunityPost.objects.get()
    assert post_retract(post=post, user=facilitator, now=lima(START, 21))
    assert relayed_to() == {
        PHONES[1]: [
            "*Pata 1:* Un mensaje que el facilitador va a retirar",
            "El facilitador retiró un mensaje de Pata 1. 🙏",
        ]
    }
    third = Outbox.objects.get(participant=participant(PHONES[2]))
    assert third.status == Outbox.Status.CANCELLED
    post.refresh_from_db()
    assert post.status == CommunityPost.Status.RETRACTED
    assert not post_retract(post=post, user=facilitator), "once"
    assert AuditLog.objects.filter(action="post.retract").count() == 1


@pytest.mark.django_db
def test_facilitator_posts_carry_his_label_and_can_quote(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    post = post_by_facilitator(
        cohort=cohort, user=facilitator, text="¡Buen trabajo!", now=lima(START, 21)
    )
    assert relayed_to()[PHONES[0]] == ["*Facilitador:* ¡Buen trabajo!"]
    assert len(relayed_to()) == 3
    member_post = write(
        PHONES[1], "Me costó mucho pero lo logré, gracias a todos ustedes por el apoyo de siempre"
    )
    answer = post_by_facilitator(
        cohort=cohort,
        user=facilitator,
        text="¡Eso es, Pata 2!",
        now=lima(START, 22),
        reply_to=CommunityPost.objects.get(message=member_post),
    )
    assert relayed_to()[PHONES[0]][-1] == (
        "*Facilitador* responde a Pata 2 («Me costó mucho pero lo logré, gracias a todos "
        "ustedes por…»):\n¡Eso es, Pata 2!"
    )
    assert post.reply_to is None and answer.reply_to is not None


def copy_of(phone: str, post: CommunityPost) -> Outbox:
    return Outbox.objects.get(post_deliveries__post=post, participant=participant(phone))


@pytest.mark.django_db
def test_an_answer_to_a_post_quotes_its_author_and_an_excerpt(cohort) -> None:  # type: ignore[no-untyped-def]
    """A member who got the post answered in a digest reads the quote in the words."""
    wrote_earlier(PHONES[0], PHONES[1])
    wrote_earlier(PHONES[2], at=lima(START, 20) - dt.timedelta(hours=25))
    write(PHONES[0], "Yo respiro tres veces antes de contestar cuando me molesto")
    write(PHONES[2], "PRIVADO hola profe", at=lima(START, 20, 1))  # his digest goes now
    outbox_send_batch(now=lima(START, 20, 2))  # the simulated channel gives provider ids
    copy = Message.objects.get(direction=Message.Direction.OUT, participant=participant(PHONES[1]))
    write(
        PHONES[1],
        "A mí también me sirve",
        payload={"context_id": copy.provider_id},
        at=lima(START, 20, 5),
    )
    first = CommunityPost.objects.get(author__pseudonym="Pata 1")
    answer = CommunityPost.objects.get(author__pseudonym="Pata 2")
    assert answer.reply_to == first
    his = copy_of(PHONES[2], answer)
    assert his.body == (
        "*Pata 2* responde a Pata 1 («Yo respiro tres veces antes de contestar cuando me "
        "molesto»):\n"
        "A mí también me sirve"
    )
    assert "reply_to" not in (his.content or {})


@pytest.mark.django_db
def test_an_answer_quotes_natively_the_copy_each_member_received(cohort) -> None:  # type: ignore[no-untyped-def]
    """WhatsApp's reply context: each member's copy of an answer quotes his own copy of the
    post answered, and its author's copy quotes the message he sent."""
    wrote_earlier(*PHONES)
    write(PHONES[0], "Yo respiro tres veces antes de contestar cuando me molesto")
    outbox_send_batch(now=lima(START, 20, 1))
    first = CommunityPost.objects.get()
    received = {
        phone: Message.objects.get(outbox=copy_of(phone, first)).provider_id for phone in PHONES[1:]
    }
    assert all(received.values())
    write(PHONES[1], "A mí también me sirve", payload={"context_id": received[PHONES[1]]})
    answer = CommunityPost.objects.get(author__pseudonym="Pata 2")
    third = copy_of(PHONES[2], answer)
    assert third.content == {"reply_to": received[PHONES[2]]}
    assert third.body == "*Pata 2:* A mí también me sirve", "the quote is WhatsApp's, not words"
    author = copy_of(PHONES[0], answer)
    assert author.content == {"reply_to": first.message.provider_id}
    message = Message(pk=1, participant=third.participant)
    assert outbound_for(third, message).reply_to == received[PHONES[2]]


@pytest.mark.django_db
def test_an_unknown_quoted_message_is_an_ordinary_post(cohort) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    write(PHONES[1], "Hola grupo", payload={"context_id": "wamid.unknown"})
    assert CommunityPost.objects.get().reply_to is None
    assert relayed_to()[PHONES[0]] == ["*Pata 2:* Hola grupo"]


@pytest.mark.django_db
def test_a_voice_note_is_held_then_relayed_by_its_media_id(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    write(PHONES[0], kind="voice", payload={"media_id": "media-77", "mime_type": "audio/ogg"})
    post = CommunityPost.objects.get()
    assert (post.kind, post.status) == ("voice", CommunityPost.Status.HELD), "triage cannot hear"
    assert post_approve(post=post, user=facilitator, now=lima(START, 21))
    rows = list(Outbox.objects.filter(step__isnull=True).order_by("id"))
    assert len(rows) == 2
    assert {r.content["media_id"] for r in rows} == {"media-77"}, "one upload for everyone"
    assert rows[0].body == "🎙️ Nota de voz de *Pata 1*"
    message = Message(pk=1, participant=rows[0].participant)
    outbound = outbound_for(rows[0], message)
    assert (outbound.kind, outbound.media_id, outbound.media_file) == ("audio", "media-77", None)


@pytest.mark.django_db
def test_unscreened_media_can_be_relayed_at_once_by_setting(cohort, settings) -> None:  # type: ignore[no-untyped-def]
    settings.TERTULIA_COMMUNITY_HOLD_UNSCREENED_MEDIA = False
    wrote_earlier(*PHONES)
    write(PHONES[2], kind="voice", payload={"media_id": "media-78", "mime_type": "audio/ogg"})
    assert CommunityPost.objects.get().status == CommunityPost.Status.RELAYED
    assert Outbox.objects.filter(content__media_id="media-78").count() == 2


@pytest.mark.django_db
def test_an_image_with_a_caption_is_triaged_and_relayed_with_it(cohort) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    image = {"media_id": "media-90", "mime_type": "image/jpeg"}
    write(PHONES[1], "Mi primer almuerzo cocinado por mí", kind="image", payload=image)
    post = CommunityPost.objects.get()
    assert (post.kind, post.status) == ("image", CommunityPost.Status.RELAYED)
    row = Outbox.objects.filter(participant=participant(PHONES[0])).get()
    assert row.content == {"kind": "image", "media_id": "media-90", "mime": "image/jpeg"}
    assert row.body == "*Pata 2:* Mi primer almuerzo cocinado por mí"
    outbound = outbound_for(row, Message(pk=1, participant=row.participant))
    assert (outbound.kind, outbound.caption) == ("image", row.body)

    write(PHONES[2], "si me vuelve a dejar la voy a matar", kind="image", payload=image)
    flagged = CommunityPost.objects.get(author__pseudonym="Pata 3")
    assert flagged.status == CommunityPost.Status.HELD


@pytest.mark.django_db
def test_a_tapped_button_is_never_a_post(cohort) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    write(PHONES[0], kind="button", button=("community:digest", "Ver mensajes"))
    assert not CommunityPost.objects.exists()
    assert relayed_to() == {}


@pytest.mark.django_db
def test_salir_leaves_the_community_but_keeps_the_daily_content(cohort) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    write(PHONES[0], "Un mensaje que aún no le llega a Pata 3")
    write(PHONES[2], "salir")
    member = Membership.objects.get(pseudonym="Pata 3")
    assert member.in_community is False
    to_him = relayed_to()[PHONES[2]]
    assert len(to_him) == 1 and "saliste de la comunidad" in to_him[0], "queued post cancelled"
    write(PHONES[0], "Hola a todos")
    assert all("Hola a todos" not in b for b in relayed_to()[PHONES[2]])
    write(PHONES[2], "Igual quería decirles algo")
    assert not CommunityPost.objects.filter(author=member).exists()
    report = outbox_enqueue_due(now=lima(START, 19, 30))
    assert report.enrollments_advanced == 3


@pytest.mark.django_db
def test_baja_stops_everything_even_posts_already_queued(cohort) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    write(PHONES[0], "Buenas noches, grupo")
    write(PHONES[1], "baja")
    rows = Outbox.objects.filter(participant=participant(PHONES[1]), step__isnull=True)
    statuses = dict(rows.values_list("body", "status"))
    assert statuses["*Pata 1:* Buenas noches, grupo"] == Outbox.Status.CANCELLED
    write(PHONES[2], "¿Alguien más probó el reto?")
    assert not PostDelivery.objects.filter(
        enrollment__participant=participant(PHONES[1]), post__author__pseudonym="Pata 3"
    ).exists()
    report = outbox_enqueue_due(now=lima(START, 19, 30))
    assert report.enrollments_advanced == 2, "no daily content either"


@pytest.mark.django_db
def test_a_private_message_is_never_relayed(cohort) -> None:  # type: ignore[no-untyped-def]
    wrote_earlier(*PHONES)
    message = write(PHONES[0], "PRIVADO tengo un problema en casa")
    assert relayed_to() == {}
    assert not CommunityPost.objects.exists()
    message.refresh_from_db()
    assert message.route == Message.Route.FACILITATOR
