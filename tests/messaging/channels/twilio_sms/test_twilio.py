from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl

import pytest

from tertulia.messaging.channels.twilio_sms.client import TwilioSMSClient, TwilioSMSError
from tertulia.messaging.channels.twilio_sms.fake_server import FakeTwilio, run_fake_twilio
from tertulia.messaging.channels.twilio_sms.signature import SIGNATURE_HEADER, compute, verify
from tertulia.messaging.channels.whatsapp.errors import Action

from ..conftest import Receiver

TOKEN = "twilio-token"
SID = "AC" + "1" * 32
TO = "+51987654321"


def test_signature_roundtrip_and_forgery() -> None:
    url = "https://example.org/webhooks/sms/status?channel=3"
    params = {"MessageSid": "SM1", "MessageStatus": "delivered", "To": TO}
    signature = compute(url, params, TOKEN)
    assert verify(url, params, signature, TOKEN)
    assert not verify(url, {**params, "MessageStatus": "failed"}, signature, TOKEN)
    assert not verify(url, params, signature, "other-token")
    assert not verify(url, params, None, TOKEN)
    assert not verify(url, params, "", TOKEN)


def client_for(fake: FakeTwilio, **kwargs: object) -> TwilioSMSClient:
    return TwilioSMSClient(
        account_sid=SID,
        auth_token=str(kwargs.pop("token", TOKEN)),
        from_number="+15550001111",
        base_url=fake.base_url,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture
def fake() -> Iterator[FakeTwilio]:
    with run_fake_twilio(account_sid=SID, auth_token=TOKEN, hang_seconds=5) as server:
        yield server


def test_send_through_official_client(fake: FakeTwilio) -> None:
    result = client_for(fake).send(TO, "Respira hondo tres veces. " * 8)
    assert result.sid.startswith("SM") and len(result.sid) == 34
    assert result.status == "queued" and result.num_segments == 2
    (entry,) = fake.log.entries()
    assert entry.to == TO and entry.message_id == result.sid


@pytest.mark.parametrize(
    ("fault", "code", "http_status", "action"),
    [
        ("429", 20429, 429, Action.RETRY),
        ("5xx", 20500, 500, Action.RETRY),
        (21610, 21610, 400, Action.UNDELIVERABLE),
    ],
)
def test_errors_map_to_actions(
    fake: FakeTwilio, fault: str | int, code: int, http_status: int, action: Action
) -> None:
    fake.force(fault)
    with pytest.raises(TwilioSMSError) as info:
        client_for(fake).send(TO, "x")
    assert (info.value.code, info.value.http_status, info.value.action) == (
        code,
        http_status,
        action,
    )
    assert not info.value.maybe_accepted


def test_validation_and_auth_errors(fake: FakeTwilio) -> None:
    with pytest.raises(TwilioSMSError) as info:
        client_for(fake).send("51987", "x")
    assert info.value.code == 21211 and info.value.action is Action.UNDELIVERABLE
    assert "51987" not in str(info.value)
    with pytest.raises(TwilioSMSError) as info:
        client_for(fake, token="wrong").send(TO, "x")
    assert info.value.code == 20003 and info.value.action is Action.PAUSE_CHANNEL


def test_timeout_is_maybe_accepted(fake: FakeTwilio) -> None:
    fake.force("timeout")
    with pytest.raises(TwilioSMSError) as info:
        client_for(fake, timeout=0.3).send(TO, "x")
    assert info.value.maybe_accepted and info.value.action is Action.RETRY


def test_signed_status_callbacks_and_inbound(receiver: Receiver) -> None:
    with run_fake_twilio(
        account_sid=SID,
        auth_token=TOKEN,
        inbound_url=receiver.url,
        undeliverable=frozenset({"+51900000009"}),
    ) as fake:
        client = client_for(fake, status_callback=receiver.url)
        ok = client.send(TO, "Hola")
        bad = client.send("+51900000009", "Hola")
        fake.send_inbound(TO, "STOP")
        assert receiver.wait_for(lambda r: len(r) >= 5)
    forms = []
    for request in receiver.requests:
        params = dict(parse_qsl(request.body.decode()))
        assert verify(receiver.url, params, request.headers[SIGNATURE_HEADER], TOKEN)
        forms.append(params)
    by_sid: dict[str, list[str | None]] = {}
    for form in forms:
        by_sid.setdefault(form["MessageSid"], []).append(form.get("MessageStatus"))
    assert by_sid[ok.sid] == ["sent", "delivered"]
    assert by_sid[bad.sid] == ["sent", "undelivered"]
    assert [f["ErrorCode"] for f in forms if f.get("MessageStatus") == "undelivered"] == ["30003"]
    assert any(f.get("Body") == "STOP" and f["SmsStatus"] == "received" for f in forms)
