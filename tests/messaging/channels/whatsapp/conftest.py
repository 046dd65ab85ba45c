"""Fixtures for the Django side of the WhatsApp channel: a configured channel "whatsapp:test"
pointing at the fake Cloud API, whose webhooks land in `receiver` and are replayed into the
real view through Django's test client (so every body the view sees is one Meta-shaped,
signed POST)."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tertulia.messaging.channels.whatsapp.fake_server import FakeWhatsApp, run_fake_whatsapp
from tertulia.messaging.channels.whatsapp.signature import SIGNATURE_HEADER, sign

from ..conftest import Receiver

TOKEN = "test-token"  # noqa: S105 - the fake's, not a credential
SECRET = "test-app-secret"  # noqa: S105
VERIFY = "test-verify-token"  # noqa: S105
URL = "/webhooks/whatsapp/test/"
CHANNEL = "whatsapp:test"


@pytest.fixture(autouse=True)
def _fresh_rate_limits(settings: Any) -> Iterator[None]:
    """Each test starts with full buckets: the same numbers recur from test to test."""
    from tertulia.messaging import ratelimit

    ratelimit.limiter().reset()
    yield


@pytest.fixture
def make_fake(receiver: Receiver) -> Iterator[Any]:
    """Start fakes posting their webhooks to `receiver`; all stop at the end of the test."""
    started: list[Any] = []

    def make(**overrides: Any) -> FakeWhatsApp:
        options = {"token": TOKEN, "app_secret": SECRET, "webhook_url": receiver.url, "seed": 3}
        context = run_fake_whatsapp(**{**options, **overrides})
        fake = context.__enter__()
        started.append(context)
        return fake

    yield make
    for context in reversed(started):
        context.__exit__(None, None, None)


@pytest.fixture
def fake(make_fake: Any) -> FakeWhatsApp:
    return make_fake()


@pytest.fixture
def make_config(db: None) -> Iterator[Any]:
    from tertulia.messaging.channels.whatsapp.channel import clients_close
    from tertulia.messaging.models import ChannelConfig

    # Off by default: most tests here are about retries, statuses and exactly-once, sent to men
    # who never wrote; test_window_send.py turns the 24-hour window on.
    def make(  # type: ignore[no-untyped-def]
        base_url: str = "http://127.0.0.1:9",
        phone_number_id: str = "100000000000001",
        service_window: bool = False,
    ):
        return ChannelConfig.objects.create(
            service_window=service_window,
            name="test",
            phone_number_id=phone_number_id,
            access_token=TOKEN,
            app_secret=SECRET,
            verify_token=VERIFY,
            base_url=base_url,
        )

    yield make
    clients_close()


@pytest.fixture
def wa_config(make_config: Any, fake: FakeWhatsApp):  # type: ignore[no-untyped-def]
    return make_config(base_url=fake.base_url, phone_number_id=fake.phone_number_id)


def post_signed(client: Any, body: bytes, secret: str = SECRET) -> Any:
    return client.post(
        URL,
        data=body,
        content_type="application/json",
        headers={SIGNATURE_HEADER: sign(body, secret)},
    )


class Replayer:
    """Posts what the fake sent to `receiver` into the Django view, each request once."""

    def __init__(self, receiver: Receiver, client: Any) -> None:
        self.receiver = receiver
        self.client = client
        self.done = 0

    def __call__(self, fake: FakeWhatsApp | None = None) -> int:
        if fake is not None:
            assert fake.wait_idle(10)
        time.sleep(0.05)
        with self.receiver.lock:
            pending = self.receiver.requests[self.done :]
        for request in pending:
            response = self.client.post(
                URL,
                data=request.body,
                content_type="application/json",
                headers={SIGNATURE_HEADER: request.headers[SIGNATURE_HEADER]},
            )
            assert response.status_code == 200
        self.done += len(pending)
        return len(pending)


@pytest.fixture
def replay(receiver: Receiver, client: Any) -> Replayer:
    return Replayer(receiver, client)


def envelope(*, messages: list[dict[str, Any]] = (), statuses: list[dict[str, Any]] = ()) -> bytes:  # type: ignore[assignment]
    """A Meta-shaped webhook body."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "51900000001", "phone_number_id": "100000000000001"},
    }
    if messages:
        value["contacts"] = [
            {"profile": {"name": "P"}, "wa_id": m["from"]} for m in messages if "from" in m
        ]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "200000000000001", "changes": [{"field": "messages", "value": value}]}],
    }
    return json.dumps(body).encode()


def text_message(
    wa_id: str, text: str, message_id: str, timestamp: int = 1772496000
) -> dict[str, Any]:
    return {
        "from": wa_id,
        "id": message_id,
        "timestamp": str(timestamp),
        "type": "text",
        "text": {"body": text},
    }


def unconfirmed_send(enrollment: Any, at: Any) -> tuple[Any, Any]:
    """An Outbox row a sender claimed at `at` and its Message, written before the send, whose
    answer the sender has not recorded (in flight, or lost in a crash)."""
    from tertulia.messaging.models import Message, Outbox

    row = Outbox.objects.create(
        participant=enrollment.participant,
        enrollment=enrollment,
        channel=CHANNEL,
        status=Outbox.Status.SENDING,
        due_at=at,
        claimed_at=at,
        created_at=at,
        attempts=1,
    )
    message = Message.objects.create(
        direction=Message.Direction.OUT,
        participant=enrollment.participant,
        enrollment=enrollment,
        channel=CHANNEL,
        outbox=row,
        status=Message.Status.PENDING,
        created_at=at,
    )
    return row, message


# The day a cohort of the send tests starts; its day 0 is queued at 19:00 Lima time.
DAY0_START = dt.date(2026, 3, 2)


@pytest.fixture
def day0(make_cohort: Any, enroll: Any) -> Any:
    """Day 0 of a cohort on whatsapp:test queued for `men` men; returns a function that gives
    the queued Outbox rows."""
    from tertulia.cohorts.models import Cohort
    from tertulia.messaging.models import Outbox
    from tertulia.messaging.scheduler import outbox_enqueue_due
    from tests.conftest import lima

    def schedule(men: int = 1) -> list[Outbox]:
        cohort = make_cohort(start=DAY0_START)
        Cohort.objects.filter(pk=cohort.pk).update(channel=CHANNEL)
        for n in range(men):
            enroll(cohort, phone=f"+51987{n:06d}")
        outbox_enqueue_due(now=lima(DAY0_START, 19, 0))
        return list(Outbox.objects.order_by("id"))

    return schedule
