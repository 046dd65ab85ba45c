"""Sending through the WhatsApp channel against the fake Cloud API: the fake's own log shows
every message exactly once, through retries, refusals and requests that may have been
accepted."""

from __future__ import annotations

import datetime as dt

import pytest

from tertulia.messaging.channels.whatsapp import channel as wa_channel
from tertulia.messaging.models import MediaUpload, Message, Outbox
from tertulia.messaging.sender import LEASE, outbox_recover_stale, outbox_send_batch
from tests.conftest import lima

pytestmark = pytest.mark.django_db(transaction=True)

START = dt.date(2026, 3, 2)
T = lima(START, 19, 1)
DAY0 = 3  # text, audio, check-in


def references(fake) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(e.reference for e in fake.log.entries())


def test_day_zero_reaches_the_fake_once_and_statuses_come_back(
    day0, wa_config, fake, replay, run_tasks
) -> None:  # type: ignore[no-untyped-def]
    rows = day0(men=3)
    report = outbox_send_batch(now=T)
    assert (report.sent, report.failed, report.retried) == (len(rows), 0, 0)
    assert outbox_send_batch(now=T).claimed == 0
    out = Message.objects.filter(direction=Message.Direction.OUT)
    assert references(fake) == sorted(str(m.pk) for m in out)
    assert fake.log.duplicate_references() == {}
    assert (
        sorted(e.type for e in fake.log.entries())
        == ["audio"] * 3 + ["interactive"] * 3 + ["text"] * 3
    )
    assert {e.to for e in fake.log.entries()} == {"51987000000", "51987000001", "51987000002"}
    # The audio was uploaded once for the three men, and sent by its media id.
    upload = MediaUpload.objects.get()
    assert {e.payload["audio"]["id"] for e in fake.log.entries() if e.type == "audio"} == {
        upload.media_id
    }
    by_reference = {e.reference: e.message_id for e in fake.log.entries()}
    assert all(m.provider_id == by_reference[str(m.pk)] for m in out)

    replay(fake)
    run_tasks()
    assert set(out.values_list("status", flat=True)) == {Message.Status.READ}
    assert set(out.values_list("pricing_category", "billable")) == {("service", False)}


def test_a_rate_limit_answer_is_retried_and_sent_once(day0, wa_config, fake) -> None:  # type: ignore[no-untyped-def]
    rows = day0()
    fake.force("429")
    report = outbox_send_batch(now=T)
    assert (report.sent, report.retried) == (len(rows) - 1, 1)
    retried = Outbox.objects.get(status=Outbox.Status.QUEUED)
    assert "130429" in retried.error
    assert outbox_send_batch(now=T).claimed == 0  # not before its backoff
    later = outbox_send_batch(now=T + dt.timedelta(minutes=5))
    assert later.sent == 1
    assert references(fake) == sorted(str(m.pk) for m in Message.objects.all())
    assert len(fake.log) == len(rows)


def test_an_undeliverable_number_fails_the_row_without_retry(day0, wa_config, fake) -> None:  # type: ignore[no-untyped-def]
    rows = day0()
    fake.force(131026)
    report = outbox_send_batch(now=T)
    assert (report.sent, report.failed, report.retried) == (len(rows) - 1, 1, 0)
    row = Outbox.objects.get(status=Outbox.Status.FAILED)
    assert row.attempts == 1
    assert (row.message.status, row.message.error_code) == (Message.Status.FAILED, "131026")
    assert outbox_send_batch(now=T + dt.timedelta(days=1)).claimed == 0
    assert len(fake.log) == len(rows) - 1


def test_an_expired_token_pauses_the_channel(day0, fake, wa_config) -> None:  # type: ignore[no-untyped-def]
    day0()
    fake.force(190)
    report = outbox_send_batch(now=T)
    assert report.retried == 1
    wa_config.refresh_from_db()
    assert wa_config.paused
    assert "190" in wa_config.paused_reason
    # Nothing more goes out on a paused channel; the rows wait for staff.
    before = len(fake.log)
    outbox_send_batch(now=T + dt.timedelta(minutes=5))
    assert len(fake.log) == before
    assert not Outbox.objects.filter(status=Outbox.Status.FAILED).exists()


def test_a_request_meta_may_have_accepted_is_reconciled_not_resent(
    day0, make_fake, make_config, replay, run_tasks, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake(hang_seconds=1.0)
    make_config(base_url=fake.base_url, phone_number_id=fake.phone_number_id)
    monkeypatch.setattr(wa_channel, "SEND_TIMEOUT", 0.3)
    rows = day0()
    fake.force("timeout_accepted")
    report = outbox_send_batch(now=T)
    assert (report.sent, report.unknown, report.retried) == (len(rows) - 1, 1, 0)
    waiting = Outbox.objects.get(status=Outbox.Status.SENDING)
    assert waiting.message.provider_id == ""
    # Its 'sent' status names our reference; the webhook gives the Message its provider id.
    replay(fake)
    run_tasks()
    outbox_recover_stale(now=T + LEASE + dt.timedelta(minutes=1))
    waiting.refresh_from_db()
    assert waiting.status == Outbox.Status.SENT
    assert outbox_send_batch(now=T + LEASE + dt.timedelta(minutes=2)).claimed == 0
    assert len(fake.log) == len(rows)
    assert fake.log.duplicate_references() == {}


def test_a_request_meta_never_saw_is_sent_again_after_reconciliation(
    day0, make_fake, make_config, replay, run_tasks, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake(hang_seconds=1.0)
    make_config(base_url=fake.base_url, phone_number_id=fake.phone_number_id)
    monkeypatch.setattr(wa_channel, "SEND_TIMEOUT", 0.3)
    rows = day0()
    fake.force("timeout")
    report = outbox_send_batch(now=T)
    assert report.unknown == 1
    replay(fake)  # the other messages' statuses: the webhook pipeline works
    run_tasks()
    later = T + LEASE + dt.timedelta(minutes=1)
    outbox_recover_stale(now=later)
    assert Outbox.objects.filter(status=Outbox.Status.QUEUED).count() == 1
    assert outbox_send_batch(now=later).sent == 1
    assert len(fake.log) == len(rows)
    assert fake.log.duplicate_references() == {}


def test_without_webhooks_a_maybe_accepted_request_fails_visibly(
    day0, make_fake, make_config, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    fake = make_fake(hang_seconds=1.0, webhook_url=None)
    make_config(base_url=fake.base_url, phone_number_id=fake.phone_number_id)
    monkeypatch.setattr(wa_channel, "SEND_TIMEOUT", 0.3)
    day0()
    fake.force("timeout")
    outbox_send_batch(now=T)
    outbox_recover_stale(now=T + LEASE + dt.timedelta(minutes=1))
    row = Outbox.objects.get(status=Outbox.Status.FAILED)
    assert row.error.startswith("may have been sent")
    assert row.message.error_code == "unknown"


def test_statuses_applied_before_the_sender_records_are_not_undone(
    day0, wa_config, fake, replay, run_tasks, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A fast worker may apply 'delivered' and 'read' before the sender has recorded the send;
    our reference ties them to the Message, and the sender's record does not move it back."""
    rows = day0()
    original = wa_channel.WhatsAppChannel.send_start_all

    def send_then_process_webhooks(self, groups):  # type: ignore[no-untyped-def]
        def then_process(finish):  # type: ignore[no-untyped-def]
            def finish_then_process():  # type: ignore[no-untyped-def]
                results = finish()
                replay(fake)
                run_tasks()
                return results

            return finish_then_process

        return [then_process(finish) for finish in original(self, groups)]

    monkeypatch.setattr(wa_channel.WhatsAppChannel, "send_start_all", send_then_process_webhooks)
    assert outbox_send_batch(now=T).sent == len(rows)
    out = Message.objects.filter(direction=Message.Direction.OUT)
    assert set(out.values_list("status", flat=True)) == {Message.Status.READ}
    assert all(m.provider_id and m.sent_at for m in out)


def test_with_the_pipeline_a_batch_is_recorded_on_the_recorder_thread(
    day0, wa_config, fake, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """A long-lived worker starts a batch's requests and goes on; the recorder thread waits
    for them and records each result, in order, before the worker stops."""
    import threading

    from tertulia.messaging import pipeline
    from tertulia.messaging.sender import outbox_send_start

    rows = day0(men=2)
    recorded_on: list[str] = []
    reports = []
    finish = pipeline.outbox_send_finish

    def watched(batch):  # type: ignore[no-untyped-def]
        recorded_on.append(threading.current_thread().name)
        return finish(batch)

    monkeypatch.setattr(pipeline, "outbox_send_finish", watched)
    pipeline.pipeline_start()
    try:
        first = [r.pk for r in rows[: len(rows) // 2]]
        second = [r.pk for r in rows[len(rows) // 2 :]]
        assert pipeline.send_recorded(outbox_send_start(now=T, ids=first), reports.append) is None
        assert pipeline.send_recorded(outbox_send_start(now=T, ids=second), reports.append) is None
    finally:
        pipeline.pipeline_stop()

    assert recorded_on == ["tertulia-send-recorder"] * 2
    assert [r.sent for r in reports] == [len(first), len(second)]
    assert set(Outbox.objects.values_list("status", flat=True)) == {Outbox.Status.SENT}
    out = Message.objects.filter(direction=Message.Direction.OUT)
    assert all(m.provider_id for m in out)
    assert references(fake) == sorted(str(m.pk) for m in out)

    # Stopped: the next batch is recorded in place, and its report returned.
    assert pipeline.send_recorded(outbox_send_start(now=T, ids=[])) is not None
