"""Fixtures for the Django side of the Twilio SMS channel: "twilio:test" pointing at the fake
Twilio server, whose status callbacks and incoming SMS land in `receiver` over real HTTP and
are replayed into the real views with the host they were signed for."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from tertulia.messaging.channels.twilio_sms.fake_server import FakeTwilio, run_fake_twilio
from tertulia.messaging.channels.twilio_sms.signature import SIGNATURE_HEADER

from ..conftest import Receiver

SID = "AC" + "2" * 32
TOKEN = "twilio-test-token"
FROM = "+15550001111"
CHANNEL = "twilio:test"
SMS_PATH = "/webhooks/twilio/test/sms/"
STATUS_PATH = "/webhooks/twilio/test/status/"


def public_url(receiver: Receiver) -> str:
    parts = urlsplit(receiver.url)
    return f"{parts.scheme}://{parts.netloc}"


@pytest.fixture
def fake(receiver: Receiver) -> Iterator[FakeTwilio]:
    with run_fake_twilio(
        account_sid=SID,
        auth_token=TOKEN,
        inbound_url=public_url(receiver) + SMS_PATH,
        hang_seconds=2,
        seed=5,
    ) as server:
        yield server


@pytest.fixture
def sms_config(db: None, fake: FakeTwilio, receiver: Receiver):  # type: ignore[no-untyped-def]
    from tertulia.messaging.models import TwilioConfig

    return TwilioConfig.objects.create(
        name="test",
        account_sid=SID,
        auth_token=TOKEN,
        from_number=FROM,
        base_url=fake.base_url,
        public_url=public_url(receiver),
    )


class Replayer:
    """Posts what reached `receiver` into the Django views, each request once, with the Host
    it was sent to (the signature covers the URL)."""

    def __init__(self, receiver: Receiver, client: Any) -> None:
        self.receiver = receiver
        self.client = client
        self.done = 0
        self.host = urlsplit(receiver.url).netloc

    def __call__(self, fake: FakeTwilio | None = None, expect: int = 200) -> list[int]:
        if fake is not None:
            assert fake.wait_idle(10)
        time.sleep(0.05)
        with self.receiver.lock:
            pending = self.receiver.requests[self.done :]
        codes = []
        for request in pending:
            response = self.client.post(
                request.path,
                data=request.body,
                content_type="application/x-www-form-urlencoded",
                headers={SIGNATURE_HEADER: request.headers.get(SIGNATURE_HEADER, "")},
                HTTP_HOST=self.host,
            )
            codes.append(response.status_code)
        self.done += len(pending)
        return codes


@pytest.fixture
def replay(receiver: Receiver, client: Any) -> Replayer:
    return Replayer(receiver, client)
