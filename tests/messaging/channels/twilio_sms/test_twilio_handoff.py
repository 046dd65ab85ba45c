"""Twilio's webhooks use WhatsApp's hand-off (decision 0090): the view checks the signature,
stores the request in one INSERT and answers; a worker's claim applies it, once, however
often Twilio delivers it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest
from django.db import connection

from tertulia.core import clock
from tertulia.messaging.channels.twilio_sms import processing
from tertulia.messaging.channels.whatsapp import handoff
from tertulia.messaging.models import ChannelConfig, Message, WebhookEvent
from tests.messaging.channels.whatsapp.conftest import envelope, text_message

from .conftest import CHANNEL, SMS_PATH, STATUS_PATH
from .test_django_sms import post_signed

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
SID = "SM" + "f" * 32
SMS = {"MessageSid": SID, "From": "+51987000001", "Body": "hola", "NumSegments": "1"}


@pytest.fixture
def simulated() -> Iterator[clock.SimulatedClock]:
    previous = clock.use(clock.SimulatedClock(T0))
    yield clock._clock  # type: ignore[misc]
    clock.use(previous)


@pytest.fixture
def applied(monkeypatch: Any) -> list[int]:
    """The events the Twilio processor is called for (still applied)."""
    calls: list[int] = []
    real = processing.twilio_event_process

    def spy(event_id: int, *, route_inline: bool = True) -> dict[str, int]:
        calls.append(event_id)
        return real(event_id, route_inline=route_inline)

    monkeypatch.setattr(processing, "twilio_event_process", spy)
    return calls


def test_an_sms_is_stored_by_the_view_and_applied_by_a_claim_once(
    sms_config: Any, client: Any, receiver: Any, simulated: Any, applied: list[int]
) -> None:
    assert post_signed(client, receiver, SMS_PATH, SMS).status_code == 200
    [event] = WebhookEvent.objects.all()
    assert (event.channel, event.has_messages, event.signature_ok) == (CHANNEL, True, True)
    assert (event.claimed_at, event.processed_at) == (None, None)
    assert not Message.objects.exists()  # nothing is applied before the answer
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM messaging_webhookevent")
        [(stored,)] = cursor.fetchall()
    assert "hola" not in stored and "51987000001" not in stored  # encrypted at rest

    simulated.advance(dt.timedelta(seconds=5))
    claimed_at, events = handoff.webhook_events_claim()
    assert [(e.id, e.channel) for e in events] == [(event.id, CHANNEL)]
    assert handoff.webhook_events_process_claimed(claimed_at, events) == 1
    message = Message.objects.get()
    assert (message.channel, message.provider_id, message.body) == (CHANNEL, SID, "hola")
    assert message.created_at == T0  # when Twilio posted it, not when it was applied
    assert handoff.webhook_events_drain() == 0
    assert applied == [event.id]
    event.refresh_from_db()
    assert event.processed_at == T0 + dt.timedelta(seconds=5)


def test_a_redelivered_sms_and_status_are_applied_once(
    sms_config: Any, client: Any, receiver: Any, run_tasks: Any, applied: list[int]
) -> None:
    out = Message.objects.create(
        direction=Message.Direction.OUT,
        channel=CHANNEL,
        provider_id="SM" + "1" * 32,
        status=Message.Status.SENT,
        created_at=T0,
    )
    delivered = {"MessageSid": out.provider_id, "MessageStatus": "delivered"}
    for _ in range(2):  # Twilio retries what it thinks failed
        assert post_signed(client, receiver, SMS_PATH, SMS).status_code == 200
        assert post_signed(client, receiver, STATUS_PATH, delivered).status_code == 204
    assert WebhookEvent.objects.count() == 4
    first_delivery = WebhookEvent.objects.filter(has_messages=False).order_by("id")[0]
    run_tasks()
    assert len(applied) == len(set(applied)) == 4  # each stored event once
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    [inbound] = Message.objects.filter(direction=Message.Direction.IN)
    assert inbound.provider_id == SID
    assert inbound.status == Message.Status.ROUTED
    out.refresh_from_db()
    assert out.status == Message.Status.DELIVERED
    assert out.delivered_at == first_delivery.received_at


def test_one_claim_applies_each_channel_s_events_by_its_own_processor(
    sms_config: Any, client: Any, receiver: Any
) -> None:
    ChannelConfig.objects.create(
        name="test", phone_number_id="100000000000001", access_token="t", app_secret="s"
    )
    body = envelope(messages=[text_message("51987000002", "Buenas", "wamid.H1")])
    handoff.webhook_event_store(
        channel="whatsapp:test", body=body.decode(), received_at=T0, has_messages=True
    )
    assert post_signed(client, receiver, SMS_PATH, SMS).status_code == 200
    assert handoff.webhook_events_drain() == 2
    assert set(Message.objects.values_list("channel", "provider_id")) == {
        ("whatsapp:test", "wamid.H1"),
        (CHANNEL, SID),
    }


def test_a_stored_request_that_is_not_twilio_s_is_kept_with_its_problem(sms_config: Any) -> None:
    handoff.webhook_event_store(channel=CHANNEL, body="{}", received_at=T0, has_messages=True)
    assert handoff.webhook_events_drain() == 1
    event = WebhookEvent.objects.get()
    assert event.processed_at is not None
    assert event.problems == ["not a stored Twilio webhook"]
    assert not Message.objects.exists()
