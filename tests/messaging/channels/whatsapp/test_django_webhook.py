"""The webhook view: the handshake, signatures, the raw store, and exactly-once processing."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tertulia.cohorts.models import Enrollment
from tertulia.messaging.channels.whatsapp.signature import sign
from tertulia.messaging.models import ChannelConfig, Message, Outbox, WebhookEvent

from .conftest import CHANNEL, SECRET, URL, envelope, post_signed, text_message

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_handshake_echoes_the_challenge_only_with_our_token(client, make_config) -> None:  # type: ignore[no-untyped-def]
    make_config()
    params = {"hub.mode": "subscribe", "hub.verify_token": "test-verify-token"}
    ok = client.get(URL, {**params, "hub.challenge": "1158201444"})
    assert ok.status_code == 200
    assert ok.content == b"1158201444"
    assert ok["Content-Type"].startswith("text/plain")
    wrong = client.get(URL, {**params, "hub.verify_token": "nope", "hub.challenge": "1"})
    assert wrong.status_code == 403
    assert client.get(URL, {"hub.challenge": "1"}).status_code == 403
    assert (
        client.get("/webhooks/whatsapp/other/", {**params, "hub.challenge": "1"}).status_code == 404
    )


def test_missing_and_forged_signatures_are_refused_and_nothing_is_kept(
    client, make_config, run_tasks
) -> None:  # type: ignore[no-untyped-def]
    make_config()
    body = envelope(messages=[text_message("51987000001", "Hola", "wamid.A")])
    missing = client.post(URL, data=body, content_type="application/json")
    forged = post_signed(client, body, secret="not-the-secret")
    tampered = client.post(
        URL,
        data=body.replace(b"Hola", b"Chau"),
        content_type="application/json",
        headers={"X-Hub-Signature-256": sign(body, SECRET)},
    )
    run_tasks()
    assert (missing.status_code, forged.status_code, tampered.status_code) == (401, 403, 403)
    assert WebhookEvent.objects.count() == 0
    assert Message.objects.count() == 0


def test_a_signed_inbound_is_stored_raw_encrypted_and_once_when_delivered_twice(
    client, make_config, run_tasks
) -> None:  # type: ignore[no-untyped-def]
    make_config()
    body = envelope(messages=[text_message("51987000001", "Hola grupo", "wamid.B")])
    assert post_signed(client, body).status_code == 200
    assert post_signed(client, body).status_code == 200
    run_tasks()
    assert WebhookEvent.objects.count() == 2
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT body FROM messaging_webhookevent")
        stored = [row[0] for row in cursor.fetchall()]
    assert all("51987000001" not in raw and "Hola" not in raw for raw in stored)
    assert WebhookEvent.objects.first().body == body.decode()
    inbound = Message.objects.get(direction=Message.Direction.IN)
    assert (inbound.channel, inbound.provider_id, inbound.body) == (
        CHANNEL,
        "wamid.B",
        "Hola grupo",
    )
    assert inbound.status == Message.Status.ROUTED
    assert inbound.created_at == dt.datetime.fromtimestamp(1772496000, dt.UTC)


def test_baja_opts_him_out_once_and_is_confirmed_once(
    client, wa_config, fake, make_cohort, enroll, run_tasks
) -> None:  # type: ignore[no-untyped-def]
    cohort = make_cohort()
    cohort.channel = CHANNEL
    cohort.save(update_fields=["channel"])
    enrollment = enroll(cohort, phone="+51987000042")
    body = envelope(messages=[text_message("51987000042", "baja", "wamid.C")])
    post_signed(client, body)
    post_signed(client, body)
    run_tasks()
    enrollment.refresh_from_db()
    assert enrollment.state == Enrollment.State.OPTED_OUT
    inbound = Message.objects.get(direction=Message.Direction.IN)
    assert (inbound.route, inbound.keyword, inbound.enrollment_id) == (
        "keyword",
        "stop",
        enrollment.pk,
    )
    # His confirmation went out through the fake, once.
    assert Outbox.objects.filter(step__isnull=True, status=Outbox.Status.SENT).count() == 1
    assert [e.to for e in fake.log.entries()] == ["51987000042"]


def test_button_and_media_replies_are_stored_with_their_kind(
    client, make_config, run_tasks
) -> None:  # type: ignore[no-untyped-def]
    make_config()
    button = {
        "from": "51987000001",
        "id": "wamid.D",
        "timestamp": "1772496000000",  # milliseconds
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": "ci:1:si", "title": "Sí"}},
    }
    voice = {
        "from": "51987000001",
        "id": "wamid.E",
        "timestamp": "1772496001",
        "type": "audio",
        "audio": {"id": "555", "mime_type": "audio/ogg; codecs=opus", "voice": True},
    }
    odd = {"from": "51987000001", "id": "wamid.F", "timestamp": "1772496002", "type": "unsupported",
           "errors": [{"code": 131051, "title": "Message type unknown"}]}  # fmt: skip
    post_signed(client, envelope(messages=[button, voice, odd]))
    run_tasks()
    by_id = {m.provider_id: m for m in Message.objects.filter(direction=Message.Direction.IN)}
    assert by_id["wamid.D"].kind == "button"
    assert by_id["wamid.D"].payload["button_id"] == "ci:1:si"
    assert by_id["wamid.D"].created_at == dt.datetime.fromtimestamp(1772496000, dt.UTC)
    assert by_id["wamid.E"].kind == "voice"
    assert by_id["wamid.E"].payload["media_id"] == "555"
    assert by_id["wamid.F"].kind == "unsupported"
    assert by_id["wamid.F"].payload["errors"] == [131051]
    assert WebhookEvent.objects.get().problems == ["message type unsupported: error 131051"]


def test_statuses_update_the_message_in_any_order_and_once(client, make_config, run_tasks) -> None:  # type: ignore[no-untyped-def]
    make_config()
    sent_at = dt.datetime(2026, 3, 2, 19, 1, tzinfo=dt.UTC)
    out = Message.objects.create(
        direction=Message.Direction.OUT,
        channel=CHANNEL,
        provider_id="wamid.OUT",
        status=Message.Status.SENT,
        created_at=sent_at,
        sent_at=sent_at,
    )
    failed = Message.objects.create(
        direction=Message.Direction.OUT,
        channel=CHANNEL,
        provider_id="wamid.BAD",
        status=Message.Status.SENT,
        created_at=sent_at,
    )

    def status(mid: str, name: str, ts: int, **extra):  # type: ignore[no-untyped-def]
        return {
            "id": mid,
            "status": name,
            "timestamp": str(ts),
            "recipient_id": "51987000001",
            **extra,
        }

    pricing = {"billable": False, "pricing_model": "PMP", "category": "service"}
    read = envelope(statuses=[status("wamid.OUT", "read", 1772478200)])
    delivered = envelope(
        statuses=[
            status("wamid.OUT", "delivered", 1772478100, pricing=pricing),
            status("wamid.BAD", "failed", 1772478100,
                   errors=[{"code": 131026, "title": "Message undeliverable"}]),
        ]
    )  # fmt: skip
    for body in (read, delivered, read):
        post_signed(client, body)
    run_tasks()
    out.refresh_from_db()
    assert out.status == Message.Status.READ
    assert out.read_at == dt.datetime.fromtimestamp(1772478200, dt.UTC)
    assert out.delivered_at == dt.datetime.fromtimestamp(1772478100, dt.UTC)
    assert (out.pricing_category, out.billable) == ("service", False)
    failed.refresh_from_db()
    assert (failed.status, failed.error_code) == (Message.Status.FAILED, "131026")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "object",
                    "entry",
                    "changes",
                    "value",
                    "messages",
                    "statuses",
                    "id",
                    "from",
                    "type",
                    "text",
                    "body",
                    "timestamp",
                    "status",
                    "errors",
                ]
            ),
            children,
            max_size=5,
        )
    ),  # fmt: skip
    max_leaves=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(st.binary(max_size=200), _json.map(lambda v: json.dumps(v).encode())))
def test_fuzzed_signed_bodies_never_give_a_500_and_are_always_kept(
    client, make_config, run_tasks, body
) -> None:  # type: ignore[no-untyped-def]
    if not ChannelConfig.objects.exists():
        make_config()
    before = WebhookEvent.objects.count()
    assert post_signed(client, body).status_code == 200
    run_tasks()
    assert WebhookEvent.objects.count() == before + 1
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
