"""The community relay through the WhatsApp channel, against the fake Cloud API: a post that
arrives by webhook leaves for the others from the task that processed the webhook; an answer
quotes natively each member's own copy of the post; a voice note or image whose media id Meta
refuses is uploaded again once and sent."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.utils import timezone

from tertulia.cohorts.models import Cohort
from tertulia.community.digest import community_digest_due
from tertulia.community.models import CommunityPost
from tertulia.messaging.channels.whatsapp.client import CloudAPIClient
from tertulia.messaging.channels.whatsapp.processing import webhook_event_process
from tertulia.messaging.channels.whatsapp.templates import templates_load
from tertulia.messaging.models import ChannelConfig, MediaUpload, Message, Outbox, WebhookEvent
from tertulia.messaging.sender import outbox_send_batch

from .conftest import CHANNEL, TOKEN, envelope, text_message
from .test_templates import REGISTRY

pytestmark = pytest.mark.django_db(transaction=True)

MEN = ["51987000000", "51987000001", "51987000002"]


@pytest.fixture
def community(make_cohort, enroll, wa_config):  # type: ignore[no-untyped-def]
    """Three men of a cohort on whatsapp:test, each with his window open (he wrote an hour
    ago)."""
    cohort = make_cohort()
    Cohort.objects.filter(pk=cohort.pk).update(channel=CHANNEL)
    earlier = timezone.now() - dt.timedelta(hours=1)
    for n, wa_id in enumerate(MEN):
        enrollment = enroll(cohort, phone=f"+{wa_id}")
        Message.objects.create(
            direction=Message.Direction.IN,
            participant=enrollment.participant,
            enrollment=enrollment,
            channel=CHANNEL,
            provider_id=f"wamid.earlier{n}",
            body="hola",
            status=Message.Status.ROUTED,
            created_at=earlier,
        )
    return cohort


def arrives(*messages: dict) -> int:  # type: ignore[type-arg]
    """A webhook body stored as the view stores it; returns the event's id."""
    event = WebhookEvent.objects.create(
        channel=CHANNEL,
        body=envelope(messages=list(messages)).decode(),
        received_at=timezone.now(),
        signature_ok=True,
    )
    return event.pk


def now_ts() -> int:
    return int(timezone.now().timestamp())


def copies(fake, since: int = 0) -> dict[str, dict]:  # type: ignore[no-untyped-def,type-arg]
    """What the fake accepted after the first `since` entries, by recipient."""
    return {e.to: e.payload for e in fake.log.entries()[since:]}


def test_a_post_is_relayed_by_the_task_that_processed_its_webhook(community, fake) -> None:  # type: ignore[no-untyped-def]
    event = arrives(text_message(MEN[0], "Hoy respiré antes de contestar", "wamid.p1", now_ts()))
    webhook_event_process(event)  # no other task runs
    sent = copies(fake)
    assert set(sent) == {MEN[1], MEN[2]}
    assert sent[MEN[1]]["text"]["body"] == "*Pata 1:* Hoy respiré antes de contestar"
    assert set(Outbox.objects.values_list("status", flat=True)) == {Outbox.Status.SENT}


def test_several_posts_in_one_webhook_are_shared_with_routing_tasks(
    community, fake, run_tasks
) -> None:  # type: ignore[no-untyped-def]
    event = arrives(
        text_message(MEN[0], "Primero yo", "wamid.p1", now_ts()),
        text_message(MEN[1], "Luego yo", "wamid.p2", now_ts()),
    )
    webhook_event_process(event)
    assert len(fake.log) == 2, "the first post went from the webhook's task"
    waiting = Message.objects.get(provider_id="wamid.p2")
    assert waiting.status == Message.Status.RECEIVED, "the second is left to a routing task"
    run_tasks()
    assert len(fake.log) == 4
    assert fake.log.duplicate_references() == {}


def test_an_answer_quotes_each_members_own_copy(community, fake) -> None:  # type: ignore[no-untyped-def]
    webhook_event_process(arrives(text_message(MEN[0], "¿Cómo les fue?", "wamid.p1", now_ts())))
    first = {e.to: e.message_id for e in fake.log.entries()}
    seen = len(fake.log)
    answer = text_message(MEN[1], "Me fue bien", "wamid.p2", now_ts())
    answer["context"] = {"from": "51900000001", "id": first[MEN[1]]}
    webhook_event_process(arrives(answer))
    sent = copies(fake, seen)
    assert set(sent) == {MEN[0], MEN[2]}
    assert sent[MEN[2]]["context"] == {"message_id": first[MEN[2]]}, "his own copy, not MEN[1]'s"
    assert sent[MEN[0]]["context"] == {"message_id": "wamid.p1"}, "the author: his own message"
    assert sent[MEN[2]]["text"]["body"] == "*Pata 2:* Me fue bien"


@pytest.fixture
def photo_id(fake, tmp_path: Path) -> str:
    """A member's photo as Meta holds it (its media id comes in his message)."""
    path = tmp_path / "photo.jpg"
    path.write_bytes(b"\xff\xd8\xff" + b"0" * 2000)
    client = CloudAPIClient(
        phone_number_id=fake.phone_number_id, access_token=TOKEN, base_url=fake.base_url
    )
    try:
        return client.upload_media(path, "image/jpeg")
    finally:
        client.close()


def photo_message(media_id: str) -> dict:  # type: ignore[type-arg]
    return {
        "from": MEN[0],
        "id": "wamid.photo",
        "timestamp": str(now_ts()),
        "type": "image",
        "image": {"id": media_id, "mime_type": "image/jpeg", "caption": "Mi familia hoy"},
    }


def test_media_meta_refuses_is_uploaded_again_once_and_sent(community, fake, photo_id) -> None:  # type: ignore[no-untyped-def]
    fake.force(131053, times=2)  # Meta: the media id cannot be used for these sends
    webhook_event_process(arrives(photo_message(photo_id)))
    sent = copies(fake)
    assert set(sent) == {MEN[1], MEN[2]}
    fresh = {payload["image"]["id"] for payload in sent.values()}
    assert len(fresh) == 1 and photo_id not in fresh, "one new upload for everyone"
    assert MediaUpload.objects.get().media_id in fresh
    assert sent[MEN[1]]["image"]["caption"] == "*Pata 1:* Mi familia hoy"
    assert set(Outbox.objects.values_list("status", flat=True)) == {Outbox.Status.SENT}


def test_media_meta_no_longer_has_fails_visibly(community, fake, photo_id) -> None:  # type: ignore[no-untyped-def]
    fake.force(131053, times=2)
    fake.expire_media(photo_id)
    webhook_event_process(arrives(photo_message(photo_id)))
    assert len(fake.log) == 0
    assert set(Outbox.objects.values_list("status", flat=True)) == {Outbox.Status.FAILED}


def test_the_digest_invitation_names_the_posts_waiting_and_his_group(community, fake) -> None:  # type: ignore[no-untyped-def]
    """Outside his window a man owed posts is invited back by the `community_digest` template,
    with how many posts wait and his community's name, never anything about him."""
    ChannelConfig.objects.filter(name="test").update(service_window=True)
    templates_load(channel="test", path=REGISTRY)
    away = Message.objects.get(provider_id="wamid.earlier2")
    Message.objects.filter(pk=away.pk).update(created_at=timezone.now() - dt.timedelta(days=2))
    for n, text in enumerate(["Hoy respiré", "Yo también"]):
        webhook_event_process(arrives(text_message(MEN[n], text, f"wamid.p{n}", now_ts())))
    assert CommunityPost.objects.count() == 2
    seen = len(fake.log)
    assert community_digest_due(timezone.now()).invited == 1
    outbox_send_batch(now=timezone.now())
    sent = copies(fake, seen)
    assert set(sent) == {MEN[2]}
    template = sent[MEN[2]]["template"]
    assert template["name"] == "community_digest"
    parameters = [p["text"] for p in template["components"][0]["parameters"]]
    assert parameters == ["2", "Cohorte A"]


def test_a_batch_of_events_can_leave_its_routing_to_tasks(community, fake, run_tasks) -> None:  # type: ignore[no-untyped-def]
    """A worker that processes many stored events at once hands their messages to routing
    tasks, so other workers share them."""
    event = arrives(text_message(MEN[0], "Hoy respiré", "wamid.p1", now_ts()))
    webhook_event_process(event, route_inline=False)
    assert len(fake.log) == 0
    assert Message.objects.get(provider_id="wamid.p1").status == Message.Status.RECEIVED
    run_tasks()
    assert len(fake.log) == 2
