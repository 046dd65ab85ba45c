"""The community relay: what a man writes reaches the other members under his pseudonym,
never his number; held when pre-moderated or flagged; SALIR and PRIVADO are respected."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest
from django.contrib.auth import get_user_model

from tertulia.cohorts.models import Cohort
from tertulia.community.models import CommunityPost, Membership
from tertulia.community.services import post_approve, post_by_facilitator, post_retract
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.router import message_route
from tertulia.messaging.scheduler import outbox_enqueue_due
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


def write(phone: str, text: str) -> Message:
    at = lima(START, 20)
    message, _ = message_record_inbound(
        Inbound(
            channel="simulated",
            address=phone,
            provider_id=f"in-{next(_ids)}",
            received_at=at,
            text=text,
        )  # fmt: skip
    )
    message_route(message_id=message.pk, now=at)
    return message


def relayed_to() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for row in Outbox.objects.filter(step__isnull=True).select_related("participant"):
        out.setdefault(row.participant.phone, []).append(row.body)
    return out


@pytest.mark.django_db
def test_a_post_reaches_the_others_under_his_pseudonym(cohort) -> None:  # type: ignore[no-untyped-def]
    write(PHONES[0], "Hoy probé lo de respirar tres veces y funcionó")
    sent = relayed_to()
    assert set(sent) == {PHONES[1], PHONES[2]}
    assert sent[PHONES[1]] == ["*Pata 1:* Hoy probé lo de respirar tres veces y funcionó"]
    assert "987000001" not in sent[PHONES[1]][0]
    assert CommunityPost.objects.get().status == CommunityPost.Status.RELAYED


@pytest.mark.django_db
def test_pre_moderation_holds_until_approved(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    Cohort.objects.filter(pk=cohort.pk).update(moderation=Cohort.Moderation.PRE)
    write(PHONES[1], "Una pregunta para el grupo")
    post = CommunityPost.objects.get()
    assert post.status == CommunityPost.Status.HELD and relayed_to() == {}
    assert post_approve(post=post, user=facilitator, now=lima(START, 21))
    assert set(relayed_to()) == {PHONES[0], PHONES[2]}
    assert AuditLog.objects.filter(action="post.approve", actor=facilitator).count() == 1
    assert not post_approve(post=post, user=facilitator, now=lima(START, 22)), "relayed once"


@pytest.mark.django_db
def test_a_flagged_message_is_held_even_in_post_moderation(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    write(PHONES[0], "si me vuelve a dejar la voy a matar")
    post = CommunityPost.objects.get()
    assert post.status == CommunityPost.Status.HELD
    assert not post_approve(post=post, user=facilitator), "not while its alert is open"
    others = {p: b for p, b in relayed_to().items() if p != PHONES[0]}
    assert others == {}


@pytest.mark.django_db
def test_retracting_sends_a_short_notice(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    write(PHONES[0], "Un mensaje que el facilitador va a retirar")
    post = CommunityPost.objects.get()
    assert post_retract(post=post, user=facilitator, now=lima(START, 21))
    notices = [b for b in relayed_to()[PHONES[1]] if "retiró" in b]
    assert notices == ["El facilitador retiró un mensaje de Pata 1. 🙏"]
    post.refresh_from_db()
    assert post.status == CommunityPost.Status.RETRACTED


@pytest.mark.django_db
def test_facilitator_posts_carry_his_label(cohort, facilitator) -> None:  # type: ignore[no-untyped-def]
    post_by_facilitator(cohort=cohort, user=facilitator, text="¡Buen trabajo!", now=lima(START, 21))
    assert relayed_to()[PHONES[0]] == ["*Facilitador:* ¡Buen trabajo!"]
    assert len(relayed_to()) == 3


@pytest.mark.django_db
def test_salir_leaves_the_community_but_keeps_the_daily_content(cohort) -> None:  # type: ignore[no-untyped-def]
    write(PHONES[2], "salir")
    member = Membership.objects.get(enrollment__participant__phone_hash__isnull=False,
                                    pseudonym="Pata 3")  # fmt: skip
    assert member.in_community is False
    assert "saliste de la comunidad" in relayed_to()[PHONES[2]][0]
    write(PHONES[0], "Hola a todos")
    assert all("Hola a todos" not in b for b in relayed_to()[PHONES[2]])
    report = outbox_enqueue_due(now=lima(START, 19, 30))
    assert report.enrollments_advanced == 3


@pytest.mark.django_db
def test_a_private_message_is_never_relayed(cohort) -> None:  # type: ignore[no-untyped-def]
    message = write(PHONES[0], "PRIVADO tengo un problema en casa")
    assert relayed_to() == {}
    assert not CommunityPost.objects.exists()
    message.refresh_from_db()
    assert message.route == Message.Route.FACILITATOR
