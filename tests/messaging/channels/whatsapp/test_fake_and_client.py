"""The client against the in-process fake server: the same HTTP and JSON as Meta's."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tertulia.messaging.channels.whatsapp.client import (
    AsyncCloudAPIClient,
    CloudAPIClient,
    CloudAPIError,
    buttons_payload,
    media_payload,
    template_payload,
    text_payload,
)
from tertulia.messaging.channels.whatsapp.errors import Action
from tertulia.messaging.channels.whatsapp.fake_server import (
    FakeWhatsApp,
    TemplateSpec,
    run_fake_whatsapp,
)
from tertulia.messaging.channels.whatsapp.signature import SIGNATURE_HEADER, verify
from tertulia.messaging.channels.whatsapp.webhook import (
    InboundEvent,
    StatusEvent,
    parse_envelope,
)

from ..conftest import Receiver

TOKEN = "test-token"
SECRET = "test-app-secret"
TO = "51987654321"


def client_for(fake: FakeWhatsApp, **kwargs: object) -> CloudAPIClient:
    return CloudAPIClient(
        phone_number_id=fake.phone_number_id,
        access_token=str(kwargs.pop("token", TOKEN)),
        base_url=fake.base_url,
        **kwargs,  # type: ignore[arg-type]
    )


def statuses(receiver: Receiver) -> list[StatusEvent]:
    return [s for r in receiver.requests for s in parse_envelope(r.body).statuses]


def inbound(receiver: Receiver) -> list[InboundEvent]:
    return [m for r in receiver.requests for m in parse_envelope(r.body).inbound]


@pytest.fixture
def fake() -> Iterator[FakeWhatsApp]:
    with run_fake_whatsapp(token=TOKEN, app_secret=SECRET, hang_seconds=5) as server:
        yield server


def test_send_text_success_and_log(fake: FakeWhatsApp) -> None:
    with client_for(fake) as client:
        (payload,) = text_payload(TO, "Hola Carlos", reference="outbox:1")
        result = client.send(payload)
    assert result.provider_id.startswith("wamid.")
    assert result.wa_id == TO and result.input == TO
    assert result.message_status == "accepted"
    (entry,) = fake.log.entries()
    assert (entry.message_id, entry.to, entry.reference, entry.type) == (
        result.provider_id,
        TO,
        "outbox:1",
        "text",
    )
    assert len(entry.body_sha256) == 64


def test_rate_limit_fault(fake: FakeWhatsApp) -> None:
    fake.force("429")
    with client_for(fake) as client, pytest.raises(CloudAPIError) as info:
        client.send(text_payload(TO, "x")[0])
    error = info.value
    assert (error.code, error.http_status, error.action) == (130429, 429, Action.RETRY)
    assert error.maybe_accepted is False and error.fbtrace_id
    assert error.title == "Rate limit hit"
    assert len(fake.log) == 0


def test_server_error_fault(fake: FakeWhatsApp) -> None:
    fake.force("5xx")
    with client_for(fake) as client, pytest.raises(CloudAPIError) as info:
        client.send(text_payload(TO, "x")[0])
    assert info.value.http_status == 503 and info.value.action is Action.RETRY
    assert info.value.maybe_accepted is False


def test_timeout_before_acceptance_is_maybe_accepted_but_not_logged(fake: FakeWhatsApp) -> None:
    fake.force("timeout")
    with client_for(fake, timeout=0.3) as client, pytest.raises(CloudAPIError) as info:
        client.send(text_payload(TO, "x")[0])
    assert info.value.maybe_accepted is True
    assert info.value.action is Action.RETRY and info.value.code is None
    assert len(fake.log) == 0


def test_a_batch_gives_up_on_a_request_that_outlives_the_timeout(fake: FakeWhatsApp) -> None:
    """send_many times requests out itself (one watchdog, no timer per request): the slow one
    is reported maybe accepted, the others are not held back by it."""
    fake.force("timeout")
    with client_for(fake, timeout=0.5) as client:
        started = time.monotonic()
        results = client.send_many([text_payload(TO, f"m{n}")[0] for n in range(5)])
        elapsed = time.monotonic() - started
    failed = [r for r in results if isinstance(r, CloudAPIError)]
    assert len(failed) == 1 and failed[0].maybe_accepted is True
    assert failed[0].action is Action.RETRY
    assert len(fake.log) == 4
    assert 0.5 <= elapsed < 3.0


def test_timeout_after_acceptance_can_be_reconciled_by_status(
    receiver: Receiver,
) -> None:
    with run_fake_whatsapp(
        token=TOKEN, app_secret=SECRET, webhook_url=receiver.url, hang_seconds=5
    ) as fake:
        fake.force("timeout_accepted")
        with client_for(fake, timeout=0.3) as client, pytest.raises(CloudAPIError) as info:
            client.send(text_payload(TO, "x", reference="outbox:7")[0])
        assert info.value.maybe_accepted is True
        # Meta did accept it: the log has it, and its status webhook names our reference.
        assert [e.reference for e in fake.log.entries()] == ["outbox:7"]
        assert receiver.wait_for(lambda _: len(statuses(receiver)) >= 3)
    assert {s.biz_opaque_callback_data for s in statuses(receiver)} == {"outbox:7"}


def test_connection_refused_is_not_maybe_accepted() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = CloudAPIClient(
        phone_number_id="1", access_token=TOKEN, base_url=f"http://127.0.0.1:{port}"
    )
    with client, pytest.raises(CloudAPIError) as info:
        client.send(text_payload(TO, "x")[0])
    assert info.value.maybe_accepted is False and info.value.action is Action.RETRY


def test_reengagement_synchronous(fake: FakeWhatsApp) -> None:
    fake.force(131047)
    with client_for(fake) as client, pytest.raises(CloudAPIError) as info:
        client.send(text_payload(TO, "x")[0])
    assert info.value.code == 131047
    assert info.value.action is Action.RESEND_AS_TEMPLATE
    assert info.value.details and "24 hours" in info.value.details


def test_reengagement_by_failed_status_webhook(receiver: Receiver) -> None:
    with run_fake_whatsapp(token=TOKEN, app_secret=SECRET, webhook_url=receiver.url) as fake:
        fake.force("131047_async")
        with client_for(fake) as client:
            result = client.send(text_payload(TO, "x", reference="outbox:3")[0])
        assert receiver.wait_for(lambda _: statuses(receiver))
        fake.wait_idle()
    (status,) = statuses(receiver)
    assert status.message_id == result.provider_id
    assert status.status == "failed" and status.error_code == 131047
    assert status.biz_opaque_callback_data == "outbox:3"


def test_auth_and_phone_number_errors(fake: FakeWhatsApp) -> None:
    payload = text_payload(TO, "x")[0]
    with client_for(fake, token="wrong") as client, pytest.raises(CloudAPIError) as info:
        client.send(payload)
    assert (info.value.code, info.value.http_status) == (190, 401)
    assert info.value.action is Action.PAUSE_CHANNEL
    fake.expire_token()
    with client_for(fake) as client, pytest.raises(CloudAPIError) as info:
        client.send(payload)
    assert (info.value.code, info.value.subcode) == (190, 463)
    fake.renew_token()
    other = CloudAPIClient(phone_number_id="999", access_token=TOKEN, base_url=fake.base_url)
    with other, pytest.raises(CloudAPIError) as info:
        other.send(payload)
    assert (info.value.code, info.value.subcode) == (100, 33)
    assert info.value.action is Action.FAIL_VISIBLY


def test_invalid_payloads_get_meta_error_codes(fake: FakeWhatsApp) -> None:
    with client_for(fake) as client:
        with pytest.raises(CloudAPIError) as info:
            client.send({"messaging_product": "whatsapp", "to": TO, "text": {"body": "x" * 5000}})
        assert info.value.code == 100 and "4096" in (info.value.details or "")
        bad_buttons = buttons_payload(TO, "b", [("a", "A")])
        bad_buttons["interactive"]["action"]["buttons"] *= 4
        with pytest.raises(CloudAPIError) as info:
            client.send(bad_buttons)
        assert info.value.code == 131009
        with pytest.raises(CloudAPIError) as info:
            client.send({"messaging_product": "whatsapp", "to": TO, "type": "image", "image": {}})
        assert info.value.code == 131008
    assert len(fake.log) == 0


def test_media_upload_lookup_and_send_by_id(tmp_path: Path) -> None:
    audio = tmp_path / "dia1.ogg"
    audio.write_bytes(b"OggS" + bytes(1000))
    with run_fake_whatsapp(token=TOKEN, strict_media=True) as fake, client_for(fake) as client:
        media_id = client.upload_media(audio, "audio/ogg")
        info = client.get_media(media_id)
        assert info.mime_type == "audio/ogg" and info.file_size == 1004 and info.url
        client.send(media_payload(TO, "audio", media_id=media_id))
        fake.expire_media(media_id)
        with pytest.raises(CloudAPIError) as error:
            client.send(media_payload(TO, "audio", media_id=media_id))
        assert error.value.code == 131053
        assert [e.type for e in fake.log.entries()] == ["audio"]


def test_signed_status_webhooks_with_pricing(receiver: Receiver) -> None:
    templates = {"dia_inicio": TemplateSpec(category="utility", body_params=1)}
    with run_fake_whatsapp(
        token=TOKEN, app_secret=SECRET, webhook_url=receiver.url, templates=templates
    ) as fake:
        with client_for(fake) as client:
            text_id = client.send(text_payload(TO, "Hola")[0]).provider_id
            template_id = client.send(
                template_payload(TO, "dia_inicio", "es", ["Carlos"])
            ).provider_id
            with pytest.raises(CloudAPIError) as info:
                client.send(template_payload(TO, "no_such_template", "es"))
            assert info.value.code == 132001 and info.value.action is Action.PAUSE_CHANNEL
        assert receiver.wait_for(lambda _: len(statuses(receiver)) >= 6)
    for request in receiver.requests:
        assert verify(request.body, request.headers[SIGNATURE_HEADER], SECRET)
        assert not verify(request.body, request.headers[SIGNATURE_HEADER], "other")
    by_message: dict[str, list[StatusEvent]] = {}
    for status in statuses(receiver):
        by_message.setdefault(status.message_id, []).append(status)
    assert [s.status for s in by_message[text_id]] == ["sent", "delivered", "read"]
    sent_text, sent_template = by_message[text_id][0], by_message[template_id][0]
    assert (sent_text.pricing_category, sent_text.billable) == ("service", False)
    assert (sent_template.pricing_category, sent_template.billable) == ("utility", True)
    assert sent_template.recipient_id == TO


def test_simulated_participants_reply_to_buttons(receiver: Receiver) -> None:
    with run_fake_whatsapp(
        token=TOKEN, app_secret=SECRET, webhook_url=receiver.url, reply_probability=1.0, seed=1
    ) as fake:
        with client_for(fake) as client:
            result = client.send(
                buttons_payload(TO, "¿Hiciste el reto?", [("y", "Sí"), ("n", "No")])
            )
        assert receiver.wait_for(lambda _: inbound(receiver))
    (reply,) = inbound(receiver)
    assert reply.type == "interactive" and reply.button_payload in {"y", "n"}
    assert reply.context_message_id == result.provider_id
    assert reply.wa_id == TO


def test_send_inbound_text_button_and_user_id(receiver: Receiver) -> None:
    with run_fake_whatsapp(app_secret=SECRET, webhook_url=receiver.url) as fake:
        first = fake.send_inbound(TO, "Hola, quiero participar", name="Carlos")
        fake.send_inbound(TO, button=("day:1:start", "Empezar"))
        fake.send_inbound("", "Hola", user_id="PE.1502576394655843")
        assert receiver.wait_for(lambda _: len(inbound(receiver)) == 3)
    events = {e.message_id: e for e in inbound(receiver)}
    assert events[first].text == "Hola, quiero participar"
    assert events[first].profile_name == "Carlos"
    kinds = {(e.type, e.button_payload, e.user_id) for e in events.values()}
    assert ("button", "day:1:start", None) in kinds
    assert ("text", None, "PE.1502576394655843") in kinds


def test_enforced_window_fails_free_form_until_the_participant_writes(
    receiver: Receiver,
) -> None:
    with run_fake_whatsapp(
        token=TOKEN, app_secret=SECRET, webhook_url=receiver.url, enforce_window=True
    ) as fake:
        with client_for(fake) as client:
            closed = client.send(text_payload(TO, "Hola")[0]).provider_id
            template = client.send(template_payload(TO, "dia_inicio", "es")).provider_id
            fake.send_inbound(TO, "Hola")
            opened = client.send(text_payload(TO, "Hola de nuevo")[0]).provider_id
        assert receiver.wait_for(lambda _: len(statuses(receiver)) >= 7)
    final = {s.message_id: s for s in statuses(receiver) if s.status in ("failed", "sent")}
    assert final[closed].error_code == 131047
    assert final[template].status == "sent"
    assert final[opened].status == "sent"


def test_a_window_refused_at_once_uses_metas_envelope_and_follows_the_fakes_clock() -> None:
    moment = [1_772_496_000.0]
    with run_fake_whatsapp(
        token=TOKEN, enforce_window=True, window_sync=True, clock=lambda: moment[0]
    ) as fake:
        with client_for(fake) as client:
            with pytest.raises(CloudAPIError) as refused:
                client.send(text_payload(TO, "Hola")[0])
            assert (refused.value.code, refused.value.http_status) == (131047, 400)
            assert refused.value.action is Action.RESEND_AS_TEMPLATE
            assert "24 hours" in (refused.value.details or "")
            client.send(template_payload(TO, "dia_inicio", "es"))  # a template always goes
            fake.open_window(TO)
            moment[0] += 23.9 * 3600
            client.send(text_payload(TO, "Sigue abierta")[0])
            moment[0] += 0.2 * 3600  # 24 h and 6 min after he wrote
            with pytest.raises(CloudAPIError, match="code=131047"):
                client.send(text_payload(TO, "Ya cerró")[0])
        assert [e.type for e in fake.log.entries()] == ["template", "text"]


def test_throughput_and_pair_limits() -> None:
    with run_fake_whatsapp(token=TOKEN, mps_limit=5) as fake, client_for(fake) as client:
        codes: list[int | None] = []
        for i in range(8):
            try:
                client.send(text_payload(f"5198765{i:04d}", "x")[0])
                codes.append(None)
            except CloudAPIError as error:
                codes.append(error.code)
        assert codes[:5] == [None] * 5 and set(codes[5:]) == {130429}
        assert fake.log.max_rate(1.0) <= 5
    with run_fake_whatsapp(token=TOKEN, pair_limit=(2, 6.0)) as fake, client_for(fake) as client:
        client.send(text_payload(TO, "1")[0])
        client.send(text_payload(TO, "2")[0])
        with pytest.raises(CloudAPIError) as info:
            client.send(text_payload(TO, "3")[0])
        assert info.value.code == 131056 and info.value.action is Action.RETRY


def test_duplicate_webhook_deliveries(receiver: Receiver) -> None:
    with run_fake_whatsapp(
        token=TOKEN,
        webhook_url=receiver.url,
        duplicate_webhook_probability=1.0,
        statuses=("sent",),
    ) as fake:
        with client_for(fake) as client:
            client.send(text_payload(TO, "x")[0])
        assert receiver.wait_for(lambda r: len(r) == 2)
    assert receiver.requests[0].body == receiver.requests[1].body


def test_exactly_once_log_and_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "accepted.jsonl"
    with run_fake_whatsapp(token=TOKEN, log_path=str(path)) as fake, client_for(fake) as client:
        client.send(text_payload(TO, "Hola secreto", reference="outbox:1")[0])
        client.send(text_payload(TO, "Hola secreto", reference="outbox:1")[0])
        client.send(text_payload(TO, "Otro", reference="outbox:2")[0])
        assert list(fake.log.duplicate_references()) == ["outbox:1"]
        assert len(fake.log.duplicate_contents()) == 1
        stats = httpx.get(f"{fake.base_url}/_fake/stats").json()
        assert stats["accepted"] == 3 and stats["duplicate_references"] == 1
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["reference"] for line in lines] == ["outbox:1", "outbox:1", "outbox:2"]
    assert "secreto" not in path.read_text()  # hashes, never bodies


def test_async_client() -> None:
    async def scenario(fake: FakeWhatsApp) -> tuple[int, CloudAPIError]:
        async with AsyncCloudAPIClient(
            phone_number_id=fake.phone_number_id,
            access_token=TOKEN,
            base_url=fake.base_url,
            timeout=0.3,
        ) as client:
            results = await asyncio.gather(
                *(client.send(text_payload(TO, f"m{i}")[0]) for i in range(20))
            )
            fake.force("timeout_accepted")
            try:
                await client.send(text_payload(TO, "late")[0])
            except CloudAPIError as error:
                return len({r.provider_id for r in results}), error
        raise AssertionError("expected a timeout")

    with run_fake_whatsapp(token=TOKEN, hang_seconds=5) as fake:
        count, error = asyncio.run(scenario(fake))
    assert count == 20
    assert error.maybe_accepted and error.action is Action.RETRY


def test_cli_serves_until_terminated() -> None:
    code = (
        "from tertulia.messaging.channels.whatsapp.cli import fake_whatsapp; "
        "fake_whatsapp(prog_name='fake-whatsapp')"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    process = subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--token", TOKEN, "--fault-429", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("fake WhatsApp Cloud API on http://127.0.0.1:")
        base_url = first.rsplit(" ", 1)[-1].strip()
        client = CloudAPIClient(
            phone_number_id="100000000000001", access_token=TOKEN, base_url=base_url
        )
        with client:
            assert client.send(text_payload(TO, "x")[0]).provider_id
    finally:
        process.terminate()
        deadline = time.monotonic() + 5
        while process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0


def test_send_many_keeps_order_and_returns_errors_in_place(fake: FakeWhatsApp) -> None:
    payloads = [text_payload(TO, f"m{i}", reference=f"outbox:{i}")[0] for i in range(30)]
    payloads[7] = {"messaging_product": "whatsapp", "to": TO, "type": "text", "text": {}}
    with client_for(fake) as client:
        results = client.send_many(payloads, concurrency=8)
        assert client.send_many([]) == []
    assert len(results) == 30
    error = results[7]
    assert isinstance(error, CloudAPIError) and error.code == 131008
    ok = [r for i, r in enumerate(results) if i != 7]
    assert all(not isinstance(r, CloudAPIError) for r in ok)
    by_reference = {e.reference: e.message_id for e in fake.log.entries()}
    for i, result in enumerate(results):
        if i != 7:
            assert not isinstance(result, CloudAPIError)
            assert by_reference[f"outbox:{i}"] == result.provider_id
