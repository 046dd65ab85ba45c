"""Her name and number do not stay in the raw webhook bodies: removed when his answer is taken,
and by the sweep for re-deliveries; other bodies are left as they were."""

from __future__ import annotations

import datetime as dt

import pytest
from click.testing import CliRunner

from tertulia.cli import main
from tertulia.messaging.models import Message, WebhookEvent
from tertulia.recruitment.models import PartnerContact, ScreeningAnswer
from tertulia.recruitment.retention import body_redact
from tertulia.recruitment.services import REDACTED, REDACTED_UNCLEAR
from tests.messaging.channels.whatsapp.conftest import envelope, text_message

from .conftest import Man, accept_consent, through_screening

pytestmark = pytest.mark.django_db

CHANNEL = "whatsapp:test"


def event(
    man: Man, text: str, message_id: str, *, later: dt.timedelta = dt.timedelta()
) -> WebhookEvent:
    """The raw body that brings his next message, stored as the webhook view stores it."""
    wa_id = man.phone.lstrip("+")
    stamp = int((man.at + dt.timedelta(minutes=1)).timestamp())
    body = envelope(messages=[text_message(wa_id, text, message_id, timestamp=stamp)])
    return WebhookEvent.objects.create(
        channel=CHANNEL,
        body=body.decode(),
        received_at=man.at + dt.timedelta(minutes=1, seconds=2) + later,
        signature_ok=True,
        processed_at=man.at + dt.timedelta(minutes=1, seconds=3) + later,
    )


@pytest.fixture
def man_on_whatsapp(campaign) -> Man:  # type: ignore[no-untyped-def]
    man = Man(phone="+51987000444", channel=CHANNEL)
    through_screening(man)
    accept_consent(man)
    man.write(button=("rc:partner:yes", "Sí, doy permiso"))
    return man


def test_her_name_and_number_are_removed_from_the_bodies_that_brought_them(
    man_on_whatsapp: Man,
) -> None:
    man = man_on_whatsapp
    other = event(man, "Buenas noches", "wamid.OTHER")
    name_event = event(man, "Rosa María", "wamid.NAME")
    man.write("Rosa María", provider_id="wamid.NAME")
    phone_event = event(man, "987 654 999", "wamid.PHONE")
    man.write("987 654 999", provider_id="wamid.PHONE")
    assert PartnerContact.objects.get().phone == "+51987654999"
    for stored in (name_event, phone_event):
        body = WebhookEvent.objects.get(pk=stored.pk).body
        assert "Rosa" not in body and "987 654 999" not in body
        assert REDACTED in body
        assert man.phone.lstrip("+") in body  # his own number: the body is still his message
    assert WebhookEvent.objects.get(pk=other.pk).body == other.body


def test_an_unclear_number_is_not_kept_either(man_on_whatsapp: Man) -> None:
    man = man_on_whatsapp
    man.write("Rosa")
    stored = event(man, "987 65", "wamid.BAD")
    reply = man.write("987 65", provider_id="wamid.BAD")
    assert Message.objects.get(pk=reply.pk).body == REDACTED_UNCLEAR
    assert ScreeningAnswer.objects.filter(question="partner_phone", valid=False).get().raw == (
        REDACTED_UNCLEAR
    )
    assert "987 65" not in WebhookEvent.objects.get(pk=stored.pk).body


def test_the_sweep_removes_them_from_a_re_delivery_days_later(man_on_whatsapp: Man) -> None:
    man = man_on_whatsapp
    event(man, "Rosa María", "wamid.NAME")
    man.write("Rosa María", provider_id="wamid.NAME")
    # Meta delivers the same webhook again two days later: stored, deduplicated, not routed.
    again = event(man, "Rosa María", "wamid.NAME", later=dt.timedelta(days=2))
    assert "Rosa" in WebhookEvent.objects.get(pk=again.pk).body
    result = CliRunner().invoke(main, ["recruit", "redact-webhooks"])
    assert result.exit_code == 0, result.output
    assert "removed partner-contact answers from 1." in result.output
    assert "Rosa" not in WebhookEvent.objects.get(pk=again.pk).body
    again_result = CliRunner().invoke(main, ["recruit", "redact-webhooks", "--days", "30"])
    assert "removed partner-contact answers from 0." in again_result.output


def test_a_body_without_the_message_is_left_alone() -> None:
    body = envelope(messages=[text_message("51987000444", "Hola", "wamid.X")]).decode()
    assert body_redact(body, {"wamid.Y"}, REDACTED) is None
    assert body_redact("not json", {"wamid.X"}, REDACTED) is None
    assert REDACTED in (body_redact(body, {"wamid.X"}, REDACTED) or "")


def test_an_sms_body_is_redacted_too(campaign) -> None:  # type: ignore[no-untyped-def]
    """Twilio's webhooks are stored as WhatsApp's are: a man recruited by SMS (where the
    program recruits everyone who writes) leaves her name in no stored form either."""
    from tertulia.messaging.channels.twilio_sms.processing import SMS, twilio_event_body

    man = Man(phone="+51987000555", channel="twilio:test")
    through_screening(man)
    accept_consent(man)
    man.write(button=("rc:partner:yes", "Sí, doy permiso"))
    sid = "SM" + "7" * 32
    form = {"MessageSid": sid, "From": man.phone, "Body": "Rosa María", "NumSegments": "1"}
    stored = WebhookEvent.objects.create(
        channel="twilio:test",
        body=twilio_event_body(SMS, form),
        received_at=man.at + dt.timedelta(minutes=1),
        signature_ok=True,
    )
    man.write("Rosa María", provider_id=sid)
    body = WebhookEvent.objects.get(pk=stored.pk).body
    assert "Rosa" not in body and REDACTED in body
    assert man.phone in body
    assert body_redact(body, {"SM-other"}, REDACTED) is None
