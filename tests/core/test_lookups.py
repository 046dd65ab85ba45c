"""`__any`: the list lookup the outbound path uses for its batches."""

from __future__ import annotations

import datetime as dt

import pytest

from tertulia.cohorts.models import Participant
from tertulia.messaging.models import Message, Outbox
from tests.core.conftest import make_people

pytestmark = pytest.mark.django_db


def test_any_matches_exactly_the_listed_ids() -> None:
    people = make_people(4)
    wanted = [people[0].pk, people[2].pk, 10**9]
    found = set(Participant.objects.filter(id__any=wanted).values_list("id", flat=True))
    assert found == {people[0].pk, people[2].pk}


def test_any_on_text_and_on_an_empty_list() -> None:
    make_people(3)
    found = Participant.objects.filter(phone_hash__any=["core-1", "nobody"])
    assert [p.phone_hash for p in found] == ["core-1"]
    assert not Participant.objects.filter(id__any=[]).exists()


def test_any_through_a_relation() -> None:
    person = make_people(1)[0]
    now = dt.datetime.now(dt.UTC)
    outbox = Outbox.objects.create(
        participant=person, body="hola", channel="whatsapp", due_at=now, created_at=now
    )
    message = Message.objects.create(
        participant=person,
        outbox=outbox,
        direction=Message.Direction.OUT,
        channel="whatsapp",
        status=Message.Status.PENDING,
        created_at=now,
    )
    assert list(
        Message.objects.filter(outbox_id__any=[outbox.pk]).values_list("id", flat=True)
    ) == [message.pk]
    assert not Message.objects.filter(outbox_id__any=[outbox.pk + 1]).exists()
