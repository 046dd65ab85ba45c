"""The hand-off from a stored webhook to its processing: the view stores one row and enqueues
nothing; workers claim stored events in batches (a man's message first), a claim left by a
worker that died is taken again after the lease, and two workers never process one event."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connection

from tertulia.core import clock
from tertulia.core.clock import SimulatedClock
from tertulia.messaging.channels.whatsapp import handoff, processing
from tertulia.messaging.models import ChannelConfig, Message, WebhookEvent
from tests.conftest import require_service

from .conftest import (
    CHANNEL,
    SECRET,
    URL,
    envelope,
    post_signed,
    text_message,
    unconfirmed_send,
)

pytestmark = pytest.mark.django_db(transaction=True)

T0 = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)


def status(message_id: str, state: str = "delivered") -> dict[str, Any]:
    return {"id": message_id, "status": state, "timestamp": "1772496000", "recipient_id": "519"}


@pytest.fixture
def simulated() -> Any:
    previous = clock.use(SimulatedClock(T0))
    yield clock._clock
    clock.use(previous)


def store(*, messages: bool, n: int) -> None:
    if messages:
        body = envelope(messages=[text_message("51987000001", f"Hola {n}", f"wamid.M{n}")])
    else:
        body = envelope(statuses=[status(f"wamid.S{n}")])
    handoff.webhook_event_store(
        channel=CHANNEL, body=body.decode(), received_at=clock.now(), has_messages=messages
    )


def queued_tasks() -> int:
    from django.conf import settings

    if settings.TASKS["default"]["BACKEND"].startswith("django_tasks_rq"):
        import django_rq

        return int(django_rq.get_queue("default").count)
    from django_tasks_db.models import DBTaskResult

    return int(DBTaskResult.objects.count())


def in_threads(count: int, work: Any) -> None:
    """Run `work` in `count` threads that start together, each on its own connection."""
    start = threading.Barrier(count)

    def run() -> None:
        try:
            start.wait()
            work()
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def observe(monkeypatch: Any, record: Any) -> None:
    """Replace processing with `record(event_id, route_inline)`, for events taken one by one
    and for bodies of statuses applied together alike."""

    def together(event_ids: list[int]) -> list[int]:
        for event_id in event_ids:
            record(event_id)
        return []

    monkeypatch.setattr(processing, "webhook_event_process", record)
    monkeypatch.setattr(processing, "webhook_events_process_statuses", together)


def require_postgresql() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("workers in threads need a database they can share: runs on PostgreSQL")
    try:
        connection.ensure_connection()
        usable = connection.is_usable()
    except Exception:  # noqa: BLE001 - any failure means the service is not there
        usable = False
    require_service("PostgreSQL", usable)


def test_the_view_stores_one_row_with_its_priority_and_enqueues_nothing(
    client, make_config, run_tasks
) -> None:  # type: ignore[no-untyped-def]
    make_config()
    message = envelope(messages=[text_message("51987000001", "Hola grupo", "wamid.V1")])
    statuses = envelope(statuses=[status("wamid.unknown")])
    assert post_signed(client, message).status_code == 200
    assert post_signed(client, statuses).status_code == 200
    rows = list(WebhookEvent.objects.order_by("id").values_list("has_messages", "claimed_at"))
    assert rows == [(True, None), (False, None)]
    assert queued_tasks() == 0
    assert WebhookEvent.objects.get(has_messages=True).body == message.decode()

    run_tasks()
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    assert Message.objects.get(provider_id="wamid.V1").body == "Hola grupo"


def test_a_claim_takes_messages_first_then_the_oldest_in_batches(simulated) -> None:  # type: ignore[no-untyped-def]
    for n in range(4):
        store(messages=False, n=n)
    store(messages=True, n=10)
    store(messages=True, n=11)
    ids = list(WebhookEvent.objects.order_by("id").values_list("id", flat=True))
    statuses, messages = ids[:4], ids[4:]

    claims = [handoff.webhook_events_claim(limit=3)[1] for _ in range(3)]
    assert [[e.id for e in claim] for claim in claims] == [
        [*messages, statuses[0]],
        statuses[1:],
        [],
    ]
    assert [e.has_messages for e in claims[0]] == [True, True, False]
    assert WebhookEvent.objects.filter(claimed_at=T0).count() == 6


def test_a_worker_that_dies_between_claim_and_done_leaves_its_events_to_the_next(
    simulated, make_config
) -> None:  # type: ignore[no-untyped-def]
    make_config()
    store(messages=True, n=1)
    store(messages=True, n=2)
    _, dead = handoff.webhook_events_claim()  # and then the worker was killed
    assert len(dead) == 2

    simulated.advance(dt.timedelta(seconds=30))
    assert handoff.webhook_events_claim()[1] == []  # its lease still holds
    assert handoff.webhook_events_drain() == 0

    simulated.advance(dt.timedelta(seconds=31))
    claimed_at, again = handoff.webhook_events_claim()
    assert [e.id for e in again] == [e.id for e in dead]
    assert handoff.webhook_events_process_claimed(claimed_at, again) == 2
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()
    assert sorted(Message.objects.values_list("provider_id", flat=True)) == [
        "wamid.M1",
        "wamid.M2",
    ]


def test_an_event_that_fails_stays_claimed_and_is_tried_again_after_the_lease(
    simulated, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    store(messages=True, n=1)
    real = processing.webhook_event_process
    monkeypatch.setattr(
        processing, "webhook_event_process", lambda event_id, route_inline=True: 1 / 0
    )
    assert handoff.webhook_events_drain() == 0
    monkeypatch.setattr(processing, "webhook_event_process", real)
    assert handoff.webhook_events_drain() == 0  # not before the lease ends
    simulated.advance(handoff.LEASE + dt.timedelta(seconds=1))
    assert handoff.webhook_events_drain() == 1
    assert Message.objects.filter(provider_id="wamid.M1").count() == 1


def test_a_man_s_message_overtakes_the_statuses_of_its_batch(simulated, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store(messages=True, n=0)
    for n in range(1, 3):
        store(messages=False, n=n)
    claimed_at, batch = handoff.webhook_events_claim(limit=3)
    assert [e.has_messages for e in batch] == [True, False, False]

    def route(event_id: int, route_inline: bool = True) -> dict[str, int]:
        store(messages=True, n=9)  # another man writes while this one's post is routed
        WebhookEvent.objects.filter(pk=event_id).update(processed_at=clock.now())
        return {}

    monkeypatch.setattr(processing, "webhook_event_process", route)
    assert handoff.webhook_events_process_claimed(claimed_at, batch) == 1
    _, next_batch = handoff.webhook_events_claim(limit=3)
    assert [e.has_messages for e in next_batch] == [True, False, False]
    assert [e.id for e in next_batch[1:]] == [e.id for e in batch[1:]]


def test_a_batch_routes_its_first_event_in_place_and_shares_out_the_others(
    simulated, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        store(messages=True, n=n)
    claimed_at, batch = handoff.webhook_events_claim(limit=3)
    calls: list[tuple[int, bool]] = []

    def record(event_id: int, route_inline: bool = True) -> dict[str, int]:
        calls.append((event_id, route_inline))
        return {}

    monkeypatch.setattr(processing, "webhook_event_process", record)
    assert handoff.webhook_events_process_claimed(claimed_at, batch) == 3
    assert calls == [(batch[0].id, True), (batch[1].id, False), (batch[2].id, False)]


def test_a_long_batch_renews_its_lease_and_skips_what_another_worker_took(
    simulated, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        store(messages=True, n=n)
    claimed_at, batch = handoff.webhook_events_claim(limit=3)
    seen: list[int] = []

    def slow(event_id: int, route_inline: bool = True) -> dict[str, int]:
        seen.append(event_id)
        if len(seen) == 1:
            # The first event took most of the lease; meanwhile another worker took the third
            # one (as if this worker had stalled past its lease on it).
            simulated.advance(dt.timedelta(seconds=40))
            WebhookEvent.objects.filter(pk=batch[2].id).update(claimed_at=clock.now())
        return {}

    monkeypatch.setattr(processing, "webhook_event_process", slow)
    assert handoff.webhook_events_process_claimed(claimed_at, batch) == 2
    assert seen == [batch[0].id, batch[1].id]
    assert WebhookEvent.objects.get(pk=batch[1].id).claimed_at == T0 + dt.timedelta(seconds=40)


def test_two_workers_claiming_at_once_never_process_the_same_event(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    require_postgresql()
    for n in range(300):
        store(messages=n % 3 == 0, n=n)
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def record(event_id: int, route_inline: bool = True) -> dict[str, int]:
        with lock:
            seen.append((threading.get_ident(), event_id))
        WebhookEvent.objects.filter(pk=event_id).update(processed_at=clock.now())
        return {}

    observe(monkeypatch, record)
    in_threads(4, lambda: handoff.webhook_events_drain(limit=7))
    ids = [event_id for _, event_id in seen]
    assert len(ids) == 300
    assert len(set(ids)) == 300
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()


def test_the_webhook_loop_processes_what_is_stored_while_it_waits(client, make_config) -> None:  # type: ignore[no-untyped-def]
    require_postgresql()
    make_config()
    stop = threading.Event()

    def loop() -> None:
        try:
            handoff.run_forever(stop, poll_seconds=0.02)
        finally:
            connection.close()

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        body = envelope(messages=[text_message("51987000001", "Hola", "wamid.L1")])
        assert post_signed(client, body).status_code == 200
        deadline = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=10)
        while WebhookEvent.objects.filter(processed_at__isnull=True).exists():
            assert dt.datetime.now(dt.UTC) < deadline, "the loop did not process the event"
            stop.wait(0.02)
    finally:
        stop.set()
        thread.join(10)
    assert Message.objects.filter(provider_id="wamid.L1").count() == 1


def test_webhooks_skip_the_middleware_made_for_people(client, make_config) -> None:  # type: ignore[no-untyped-def]
    make_config()
    body = envelope(statuses=[status("wamid.X")])
    response = post_signed(client, body)
    assert response.status_code == 200
    assert response["Content-Length"] == "0"
    assert not response.cookies
    assert "Content-Language" not in response
    assert "X-Frame-Options" not in response
    assert post_signed(client, body, secret="forged").status_code == 403
    refused = client.post(URL, data=body, content_type="application/json", HTTP_HOST="evil.test")
    assert refused.status_code == 400
    assert client.get("/webhooks/whatsapp/test/nothing-here/").status_code == 404
    # Pages for people still have theirs.
    assert "Content-Language" in client.get("/login/")


def test_a_new_app_secret_counts_at_once_and_the_old_one_no_longer(client, make_config) -> None:  # type: ignore[no-untyped-def]
    make_config()
    body = envelope(statuses=[status("wamid.R")])
    assert post_signed(client, body).status_code == 200  # the secret is now cached
    config = ChannelConfig.objects.get(name="test")
    # An UPDATE no signal sees, as when the admin runs in another process.
    ChannelConfig.objects.filter(pk=config.pk).update(app_secret="rotated-secret")
    assert post_signed(client, body, secret="rotated-secret").status_code == 200
    assert post_signed(client, body, secret=SECRET).status_code == 403
    ChannelConfig.objects.filter(pk=config.pk).delete()
    assert post_signed(client, body, secret="rotated-secret").status_code == 404


# --- processing what is pending goes through the claim too ----------------------------------


def test_two_callers_of_process_pending_never_process_one_event_twice(
    simulated, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """Reconciliation and the demos process what is pending while workers run: a second
    caller that starts while the first is in the middle of an event (here inside it, so it
    runs the same on SQLite) takes only what nobody holds."""
    for n in range(12):
        store(messages=n % 4 == 0, n=n)
    seen: list[int] = []
    inner: list[int] = []

    def record(event_id: int, route_inline: bool = True) -> dict[str, int]:
        seen.append(event_id)
        if len(seen) == 1:  # the other caller comes in now
            inner.append(handoff.webhook_events_process_pending())
        WebhookEvent.objects.filter(pk=event_id).update(processed_at=clock.now())
        return {}

    observe(monkeypatch, record)
    outer = handoff.webhook_events_process_pending()
    assert sorted(seen) == sorted(WebhookEvent.objects.values_list("id", flat=True))
    assert len(seen) == len(set(seen)) == 12
    assert inner == [12 - handoff.CLAIM_BATCH]  # the first caller's claimed batch was left to it
    assert outer == handoff.CLAIM_BATCH
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()


def test_process_pending_in_threads_processes_each_event_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    require_postgresql()
    for n in range(200):
        store(messages=n % 3 == 0, n=n)
    seen: list[int] = []
    lock = threading.Lock()

    def record(event_id: int, route_inline: bool = True) -> dict[str, int]:
        with lock:
            seen.append(event_id)
        WebhookEvent.objects.filter(pk=event_id).update(processed_at=clock.now())
        return {}

    observe(monkeypatch, record)
    counts: list[int] = []
    in_threads(2, lambda: counts.append(handoff.webhook_events_process_pending(channel=CHANNEL)))
    assert len(seen) == len(set(seen)) == 200
    assert sum(counts) == 200


def test_process_pending_keeps_to_its_channel_and_its_limit(simulated) -> None:  # type: ignore[no-untyped-def]
    for n in range(3):
        store(messages=True, n=n)
    handoff.webhook_event_store(
        channel="whatsapp:other",
        body=envelope(statuses=[status("wamid.O")]).decode(),
        received_at=clock.now(),
        has_messages=False,
    )
    assert handoff.webhook_events_process_pending(channel=CHANNEL, limit=2) == 2
    assert handoff.webhook_events_process_pending(channel=CHANNEL) == 1
    assert list(
        WebhookEvent.objects.filter(processed_at__isnull=True).values_list("channel", flat=True)
    ) == ["whatsapp:other"]


def test_reconciliation_waits_for_an_event_another_worker_holds(
    simulated, make_config, make_cohort, enroll
) -> None:  # type: ignore[no-untyped-def]
    """A send whose answer was lost: the status that would tell is stored, and another worker
    is applying it. Recovery neither sends it again nor fails it; it asks again, and once the
    event is applied (or its lease ends) the row is settled as sent."""
    from tertulia.messaging.models import Outbox
    from tertulia.messaging.sender import LEASE, outbox_recover_stale

    make_config()
    row, message = unconfirmed_send(enroll(make_cohort(), phone="+51987000001"), T0)
    simulated.advance(dt.timedelta(seconds=5))
    sent = {**status("wamid.LOST", "sent"), "biz_opaque_callback_data": str(message.pk)}
    handoff.webhook_event_store(
        channel=CHANNEL,
        body=envelope(statuses=[sent]).decode(),
        received_at=clock.now(),
        has_messages=False,
    )
    simulated.advance(LEASE + dt.timedelta(minutes=1))
    WebhookEvent.objects.update(claimed_at=clock.now())  # another worker took it just now

    assert outbox_recover_stale(now=clock.now()) == 0
    row.refresh_from_db()
    message.refresh_from_db()
    assert (row.status, message.provider_id) == (Outbox.Status.SENDING, "")

    simulated.advance(handoff.LEASE + dt.timedelta(seconds=1))  # that worker died
    assert outbox_recover_stale(now=clock.now()) == 1
    row.refresh_from_db()
    message.refresh_from_db()
    assert (row.status, message.provider_id) == (Outbox.Status.SENT, "wamid.LOST")
    assert WebhookEvent.objects.get().processed_at is not None


def _awaiting_route(n: int) -> Message:
    """A man's message stored and not yet routed (its routing task still queued)."""
    return Message.objects.create(
        direction=Message.Direction.IN,
        channel=CHANNEL,
        provider_id=f"wamid.R{n}",
        body="Hola",
        status=Message.Status.RECEIVED,
        created_at=clock.now(),
    )


def test_a_worker_leaves_statuses_while_a_message_waits_to_be_routed(simulated) -> None:  # type: ignore[no-untyped-def]
    for n in range(2):
        store(messages=False, n=n)
    waiting = _awaiting_route(1)

    assert handoff.webhook_events_claim(defer_statuses=True)[1] == []
    # Whatever must leave nothing behind (reconciliation, the demo) still takes them.
    assert handoff.webhook_events_drain(defer_statuses=False) == 2

    store(messages=False, n=2)
    store(messages=True, n=3)
    _, batch = handoff.webhook_events_claim(defer_statuses=True)
    assert [e.has_messages for e in batch] == [True]

    Message.objects.filter(pk=waiting.pk).update(status=Message.Status.ROUTED)
    _, batch = handoff.webhook_events_claim(defer_statuses=True)
    assert [e.has_messages for e in batch] == [False]


def test_statuses_wait_no_longer_than_their_patience(simulated) -> None:  # type: ignore[no-untyped-def]
    store(messages=False, n=1)
    _awaiting_route(1)
    assert handoff.webhook_events_claim(defer_statuses=True)[1] == []

    simulated.advance(handoff.STATUS_PATIENCE + dt.timedelta(seconds=1))
    _, batch = handoff.webhook_events_claim(defer_statuses=True)
    assert len(batch) == 1

    # A message whose routing keeps failing holds nothing back after ROUTING_RECENT: a
    # status that has just arrived is taken at once.
    simulated.advance(handoff.ROUTING_RECENT)
    store(messages=False, n=2)
    assert Message.objects.filter(status=Message.Status.RECEIVED).count() == 1
    assert len(handoff.webhook_events_claim(defer_statuses=True)[1]) == 1


# --- bodies of statuses are applied together ------------------------------------------------


def sent_to(enrollment: Any, provider_id: str) -> Message:
    return Message.objects.create(
        direction=Message.Direction.OUT,
        participant=enrollment.participant,
        enrollment=enrollment,
        channel=CHANNEL,
        provider_id=provider_id,
        status=Message.Status.SENT,
        created_at=T0,
    )


def store_statuses(*states: tuple[str, str]) -> None:
    for provider_id, state in states:
        handoff.webhook_event_store(
            channel=CHANNEL,
            body=envelope(statuses=[status(provider_id, state)]).decode(),
            received_at=clock.now(),
            has_messages=False,
        )


def test_with_no_message_waiting_a_claim_takes_more_statuses(simulated) -> None:  # type: ignore[no-untyped-def]
    for n in range(8):
        store(messages=False, n=n)
    assert len(handoff.webhook_events_claim(limit=3, status_limit=6)[1]) == 6
    store(messages=True, n=20)
    _, batch = handoff.webhook_events_claim(limit=3, status_limit=6)
    assert [e.has_messages for e in batch] == [True, False, False]  # a man's message: `limit`


def test_bodies_of_statuses_are_applied_in_one_pass(simulated, make_cohort, enroll) -> None:  # type: ignore[no-untyped-def]
    from django.test.utils import CaptureQueriesContext

    cohort = make_cohort()
    first, second = enroll(cohort), enroll(cohort)
    a, b, c = sent_to(first, "wamid.A"), sent_to(first, "wamid.B"), sent_to(second, "wamid.C")
    store_statuses(("wamid.A", "delivered"), ("wamid.C", "read"), ("wamid.B", "delivered"))
    store_statuses(*[("wamid.gone", "delivered")] * 20)  # messages this database never sent
    claimed_at, batch = handoff.webhook_events_claim(limit=5, status_limit=50)
    assert len(batch) == 23

    with CaptureQueriesContext(connection) as queries:
        assert handoff.webhook_events_process_claimed(claimed_at, batch) == 23
    assert len(queries) < 23, "fewer queries than bodies"
    for message in (a, b, c):
        message.refresh_from_db()
    assert [a.status, b.status, c.status] == ["delivered", "delivered", "read"]
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()


def test_a_body_marked_as_statuses_that_holds_a_message_is_processed_alone(simulated) -> None:  # type: ignore[no-untyped-def]
    store_statuses(("wamid.Z", "delivered"))
    body = envelope(messages=[text_message("51987000001", "Hola", "wamid.H1")])
    handoff.webhook_event_store(
        channel=CHANNEL, body=body.decode(), received_at=clock.now(), has_messages=False
    )
    claimed_at, batch = handoff.webhook_events_claim(limit=5, status_limit=50)
    assert handoff.webhook_events_process_claimed(claimed_at, batch) == 2
    assert Message.objects.filter(provider_id="wamid.H1").count() == 1
    assert not WebhookEvent.objects.filter(processed_at__isnull=True).exists()


def test_when_statuses_cannot_be_applied_together_each_body_is_tried_alone(
    simulated, monkeypatch, make_cohort, enroll, caplog
) -> None:  # type: ignore[no-untyped-def]
    cohort = make_cohort()
    man = enroll(cohort)
    fine, broken = sent_to(man, "wamid.F"), sent_to(man, "wamid.X")
    store_statuses(("wamid.F", "delivered"), ("wamid.X", "delivered"))
    real = processing._apply_statuses

    def fussy(channel: str, statuses: list[Any], now: dt.datetime) -> None:
        if any(s.message_id == "wamid.X" for s in statuses):
            raise RuntimeError("this status cannot be applied")
        real(channel, statuses, now)

    monkeypatch.setattr(processing, "_apply_statuses", fussy)
    claimed_at, batch = handoff.webhook_events_claim(limit=5, status_limit=50)
    assert handoff.webhook_events_process_claimed(claimed_at, batch) == 1
    fine.refresh_from_db()
    broken.refresh_from_db()
    assert (fine.status, broken.status) == ("delivered", "sent")
    unprocessed = WebhookEvent.objects.filter(processed_at__isnull=True)
    assert [e.id for e in unprocessed] == [batch[1].id]  # tried again after the lease
    assert "could not be applied together" in caplog.text


def test_statuses_of_two_numbers_are_applied_in_one_pass_each(simulated, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for n in range(6):
        handoff.webhook_event_store(
            channel=CHANNEL if n % 2 else "whatsapp:other",
            body=envelope(statuses=[status(f"wamid.T{n}")]).decode(),
            received_at=clock.now(),
            has_messages=False,
        )
    passes: list[list[int]] = []

    def together(event_ids: list[int]) -> list[int]:
        passes.append(event_ids)
        WebhookEvent.objects.filter(pk__in=event_ids).update(processed_at=clock.now())
        return []

    monkeypatch.setattr(processing, "webhook_events_process_statuses", together)
    claimed_at, batch = handoff.webhook_events_claim(limit=5, status_limit=50)
    assert handoff.webhook_events_process_claimed(claimed_at, batch) == 6
    ids = [e.id for e in batch]
    assert passes == [ids[0::2], ids[1::2]]  # one pass per number, each in its order


def test_any_waiting_sees_what_a_claim_would_take(simulated) -> None:  # type: ignore[no-untyped-def]
    assert not handoff.webhook_events_any_waiting()
    store(messages=True, n=1)
    assert handoff.webhook_events_any_waiting()
    handoff.webhook_events_claim()
    assert not handoff.webhook_events_any_waiting(), "claimed under a live lease"
    later = clock.now() + handoff.LEASE + dt.timedelta(seconds=1)
    assert handoff.webhook_events_any_waiting(later), "the lease ended: claimable again"
    WebhookEvent.objects.update(processed_at=clock.now())
    assert not handoff.webhook_events_any_waiting(later)
