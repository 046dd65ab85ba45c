"""`bulk_insert`: the relay's many-row insert, on either database."""

from __future__ import annotations

import datetime as dt
import decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tertulia.core.bulk import _NotJSON, bulk_insert, json_ready
from tertulia.messaging.models import Message, Outbox
from tests.core.conftest import make_people

pytestmark = pytest.mark.django_db

NOW = dt.datetime(2026, 12, 3, 15, 30, 12, 345678, tzinfo=dt.UTC)


def test_rows_are_stored_as_given_and_get_their_own_ids() -> None:
    people = make_people(5)
    rows = [
        Outbox(
            participant=person,
            body=f"Hola {n}, ¿cómo va tu semana?",
            content={"kind": "text", "reply_to": f"wamid.{n}"} if n % 2 else None,
            channel="whatsapp:bulk",
            due_at=NOW + dt.timedelta(minutes=n),
            created_at=NOW,
        )
        for n, person in enumerate(people)
    ]
    with CaptureQueriesContext(connection) as queries:
        returned = bulk_insert(rows)
    assert returned == rows
    if connection.vendor == "postgresql":
        # One statement with one parameter, whatever the number of rows.
        assert len(queries) == 1 and "json_to_recordset" in queries[0]["sql"]
    assert len({r.pk for r in rows}) == 5 and all(r.pk for r in rows)
    for n, row in enumerate(rows):
        stored = Outbox.objects.get(pk=row.pk)
        # Each id leads to its own row: the body, the JSON and the times line up.
        assert stored.participant_id == people[n].pk
        assert stored.body == f"Hola {n}, ¿cómo va tu semana?"
        assert stored.content == ({"kind": "text", "reply_to": f"wamid.{n}"} if n % 2 else None)
        assert stored.due_at == NOW + dt.timedelta(minutes=n)
        assert stored.status == Outbox.Status.QUEUED  # the field's default
        assert not row._state.adding


def test_the_body_is_encrypted_at_rest() -> None:
    (person,) = make_people(1)
    (row,) = bulk_insert(
        [Outbox(participant=person, body="texto privado", channel="w", due_at=NOW, created_at=NOW)]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM messaging_outbox WHERE id = %s", [row.pk])
        (raw,) = cursor.fetchone()
    assert "texto privado" not in str(raw)
    assert Outbox.objects.get(pk=row.pk).body == "texto privado"


def test_inserted_rows_can_be_referenced_at_once() -> None:
    people = make_people(3)
    outboxes = bulk_insert(
        [Outbox(participant=p, body="x", channel="w", due_at=NOW, created_at=NOW) for p in people]
    )
    messages = bulk_insert(
        [
            Message(
                participant=p,
                outbox=o,
                direction=Message.Direction.OUT,
                channel="w",
                status=Message.Status.PENDING,
                created_at=NOW,
            )
            for p, o in zip(people, outboxes, strict=True)
        ]
    )
    pairs = set(
        Message.objects.filter(pk__in=[m.pk for m in messages]).values_list(
            "outbox_id", "participant_id"
        )
    )
    assert pairs == {(o.pk, p.pk) for o, p in zip(outboxes, people, strict=True)}


def test_a_preset_id_and_an_empty_list() -> None:
    (person,) = make_people(1)
    assert bulk_insert([]) == []
    row = Outbox(pk=987654, participant=person, body="y", channel="w", due_at=NOW, created_at=NOW)
    bulk_insert([row])
    assert Outbox.objects.get(pk=987654).body == "y"


def test_values_json_cannot_carry_send_the_rows_through_bulk_create() -> None:
    assert json_ready(NOW) == "2026-12-03T15:30:12.345678+00:00"
    assert json_ready(decimal.Decimal("0.0125")) == "0.0125"
    with pytest.raises(_NotJSON):
        json_ready(b"\x00binary")


def test_a_column_left_to_its_database_default() -> None:
    (person,) = make_people(1)
    (row,) = bulk_insert(
        [Outbox(participant=person, body="d", channel="w", due_at=NOW, created_at=NOW)]
    )
    # `template` has only a database default: the database fills it in.
    assert Outbox.objects.get(pk=row.pk).template == ""
