"""The Twilio SMS channel in Django, against the fake Twilio server over real HTTP: sending,
segments and pricing, signed status callbacks and incoming SMS routed like WhatsApp's. The
views store each signed request; workers claim and apply them (`webhook_events_drain`)."""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlencode

import pytest

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.messaging.channel import ChannelError, get_channel
from tertulia.messaging.channels.twilio_sms.signature import SIGNATURE_HEADER, compute
from tertulia.messaging.channels.whatsapp.handoff import webhook_events_drain
from tertulia.messaging.models import Message, Outbox, TwilioConfig, WebhookEvent
from tertulia.messaging.scheduler import outbox_enqueue_due
from tertulia.messaging.sender import outbox_send_batch
from tests.conftest import lima

from .conftest import CHANNEL, FROM, SMS_PATH, STATUS_PATH, TOKEN, public_url

pytestmark = pytest.mark.django_db(transaction=True)

START = dt.date(2026, 3, 2)
T = lima(START, 19, 1)


@pytest.fixture
def day0(make_cohort, enroll):  # type: ignore[no-untyped-def]
    def schedule(*phones: str) -> Cohort:
        cohort = make_cohort(start=START)
        Cohort.objects.filter(pk=cohort.pk).update(channel=CHANNEL)
        for phone in phones:
            enroll(cohort, phone=phone)
        outbox_enqueue_due(now=lima(START, 19, 0))
        return cohort

    return schedule


def test_day_zero_goes_out_as_sms_once_with_segments_pricing_and_statuses(
    day0, sms_config, fake, replay
) -> None:  # type: ignore[no-untyped-def]
    day0("+51987000001", "+51987000002")
    report = outbox_send_batch(now=T)
    # Text and check-in go as SMS; the audio step has no caption, and an SMS cannot carry it.
    assert (report.sent, report.failed) == (4, 2)
    assert outbox_send_batch(now=T).claimed == 0
    entries = fake.log.entries()
    assert sorted(e.to for e in entries) == ["+51987000001"] * 2 + ["+51987000002"] * 2
    assert {e.payload["From"] for e in entries} == {FROM}
    checkin = next(e.payload["Body"] for e in entries if "Listo" in e.payload["Body"])
    assert checkin == "¿Listo para empezar?\nResponde: ¡Listo! / Todavía no"
    out = Message.objects.filter(direction=Message.Direction.OUT)
    sent = out.filter(status=Message.Status.SENT)
    assert {m.provider_id for m in sent} == {e.message_id for e in entries}
    assert set(sent.values_list("pricing_category", "billable", "segments")) == {("sms", True, 1)}
    assert set(out.filter(kind="audio").values_list("status", "provider_id")) == {
        (Message.Status.FAILED, "")
    }

    # Twilio posts sent and delivered to the callback URL of each message, signed.
    assert all(code == 204 for code in replay(fake))
    assert webhook_events_drain() == WebhookEvent.objects.count()
    delivered = out.exclude(kind="audio")
    assert set(delivered.values_list("status", flat=True)) == {Message.Status.DELIVERED}
    assert all(m.delivered_at is not None for m in delivered)


def test_a_long_spanish_text_records_its_segments(sms_config, fake, make_cohort, enroll) -> None:  # type: ignore[no-untyped-def]
    from tertulia.messaging.services import service_message_queue

    enrollment = enroll(make_cohort(), phone="+51987000003")
    # "está" is not GSM-7: UCS-2, 67 characters a segment once split.
    service_message_queue(
        participant=enrollment.participant,
        enrollment=enrollment,
        channel=CHANNEL,
        text="Respira hondo, está bien. " * 6,
        now=T,
    )
    assert outbox_send_batch(now=T).sent == 1
    message = Message.objects.get(direction=Message.Direction.OUT)
    assert message.segments == 3
    assert fake.log.entries()[0].payload["Body"] == "Respira hondo, está bien. " * 6


def test_undelivered_and_failed_statuses_keep_their_error_code(
    day0, sms_config, fake, replay
) -> None:  # type: ignore[no-untyped-def]
    fake.config.undeliverable = frozenset({"+51987000009"})
    day0("+51987000009")
    outbox_send_batch(now=T)
    replay(fake)
    webhook_events_drain()
    failed = Message.objects.filter(direction=Message.Direction.OUT, provider_id__gt="")
    # Undelivered: the carrier gave up after Twilio sent it; Twilio still bills it.
    assert set(failed.values_list("status", "error_code", "billable")) == {
        (Message.Status.FAILED, "30003", True)
    }


def test_a_failed_status_is_not_billable(sms_config, client, receiver) -> None:  # type: ignore[no-untyped-def]
    message = Message.objects.create(
        direction=Message.Direction.OUT,
        channel=CHANNEL,
        provider_id="SM" + "a" * 32,
        status=Message.Status.SENT,
        created_at=T,
        pricing_category="sms",
        billable=True,
    )
    params = {"MessageSid": message.provider_id, "MessageStatus": "failed", "ErrorCode": "30008"}
    assert post_signed(client, receiver, STATUS_PATH, params).status_code == 204
    webhook_events_drain()
    message.refresh_from_db()
    assert (message.status, message.error_code, message.billable) == ("failed", "30008", False)


def post_signed(
    client, receiver, path: str, params: dict[str, str], token: str = TOKEN, query: str = ""
):  # type: ignore[no-untyped-def]
    url = public_url(receiver) + path + query
    return client.post(
        path + query,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={SIGNATURE_HEADER: compute(url, params, token)},
        HTTP_HOST=url.split("/")[2],
    )


def test_baja_by_sms_is_stored_once_routed_and_confirmed_once(
    day0, sms_config, fake, replay, run_tasks
) -> None:  # type: ignore[no-untyped-def]
    cohort = day0("+51987000042")
    outbox_send_batch(now=T)
    replay(fake)
    before = len(fake.log.entries())
    fake.send_inbound("+51987000042", "Baja")
    (request,) = replay.receiver.requests[replay.done :]
    assert replay() == [200]
    # Twilio retries a webhook it thinks failed: the same MessageSid is stored once.
    replay.done -= 1
    assert replay() == [200]
    run_tasks()
    inbound = Message.objects.get(direction=Message.Direction.IN)
    enrollment = Enrollment.objects.get(cohort=cohort)
    assert (inbound.channel, inbound.body, inbound.segments) == (CHANNEL, "Baja", 1)
    assert (inbound.route, inbound.keyword, inbound.enrollment_id) == (
        "keyword",
        "stop",
        enrollment.pk,
    )
    assert enrollment.state == Enrollment.State.OPTED_OUT
    # His confirmation went out as one SMS.
    confirmations = fake.log.entries()[before:]
    assert [e.to for e in confirmations] == ["+51987000042"]
    assert Outbox.objects.filter(step__isnull=True, status=Outbox.Status.SENT).count() == 1
    assert b"Body=Baja" in request.body


def test_missing_forged_and_misdirected_signatures_are_refused(
    sms_config, client, receiver
) -> None:  # type: ignore[no-untyped-def]
    params = {
        "MessageSid": "SM" + "b" * 32,
        "From": "+51987000001",
        "Body": "hola",
        "NumSegments": "1",
    }
    missing = client.post(SMS_PATH, data=params, HTTP_HOST=public_url(receiver).split("/")[2])
    forged = post_signed(client, receiver, SMS_PATH, params, token="not-the-token")
    # Signed for the status URL, posted to the SMS URL: the URL is part of the signature.
    url = public_url(receiver) + STATUS_PATH
    misdirected = client.post(
        SMS_PATH,
        data=urlencode(params),
        content_type="application/x-www-form-urlencoded",
        headers={SIGNATURE_HEADER: compute(url, params, TOKEN)},
        HTTP_HOST=url.split("/")[2],
    )
    tampered_params = {**params, "Body": "chau"}
    tampered = client.post(
        SMS_PATH,
        data=urlencode(tampered_params),
        content_type="application/x-www-form-urlencoded",
        headers={SIGNATURE_HEADER: compute(public_url(receiver) + SMS_PATH, params, TOKEN)},
        HTTP_HOST=url.split("/")[2],
    )
    codes = [r.status_code for r in (missing, forged, misdirected, tampered)]
    assert codes == [403, 403, 403, 403]
    assert not WebhookEvent.objects.exists()  # refused before anything is stored
    assert post_signed(client, receiver, SMS_PATH, params).status_code == 200
    webhook_events_drain()
    assert Message.objects.get().body == "hola"
    other = client.post("/webhooks/twilio/other/sms/", data=params)
    assert other.status_code == 404


def test_a_status_for_a_send_without_an_answer_claims_it_and_reconciles(
    sms_config, client, receiver
) -> None:  # type: ignore[no-untyped-def]
    message = Message.objects.create(
        direction=Message.Direction.OUT,
        channel=CHANNEL,
        status=Message.Status.PENDING,
        created_at=T,
    )
    with pytest.raises(ChannelError, match="cannot tell"):
        get_channel(CHANNEL).reconcile(message.pk)
    params = {"MessageSid": "SM" + "c" * 32, "MessageStatus": "sent", "To": "+51987000001"}
    response = post_signed(client, receiver, STATUS_PATH, params, query=f"?m={message.pk}")
    assert response.status_code == 204
    assert get_channel(CHANNEL).reconcile(message.pk) == "SM" + "c" * 32


def test_rate_limits_are_retried_and_bad_credentials_pause_the_channel(
    day0, sms_config, fake
) -> None:  # type: ignore[no-untyped-def]
    day0("+51987000001")
    fake.force("429")
    report = outbox_send_batch(now=T)
    assert (report.sent, report.retried, report.failed) == (1, 1, 1)
    TwilioConfig.objects.filter(pk=sms_config.pk).update(auth_token="wrong")
    later = T + dt.timedelta(minutes=5)
    report = outbox_send_batch(now=later)
    assert (report.sent, report.retried) == (0, 1)
    sms_config.refresh_from_db()
    assert sms_config.paused and "20003" in sms_config.paused_reason
    assert len(fake.log.entries()) == 1


def test_signed_requests_without_a_message_change_nothing(sms_config, client, receiver) -> None:  # type: ignore[no-untyped-def]
    """A signed but empty or unknown request is answered without a 500 and stores nothing."""
    assert post_signed(client, receiver, SMS_PATH, {"Body": "hola"}).status_code == 200
    unknown = {"MessageSid": "SM" + "d" * 32, "MessageStatus": "delivered"}
    assert post_signed(client, receiver, STATUS_PATH, unknown).status_code == 204
    odd = {"MessageSid": "SM" + "e" * 32, "MessageStatus": "no-such-status", "ErrorCode": "x"}
    assert post_signed(client, receiver, STATUS_PATH, odd, query="?m=abc").status_code == 204
    assert webhook_events_drain() == 3
    assert not Message.objects.exists()
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
