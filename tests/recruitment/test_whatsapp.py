"""Attribution and the conversation end to end through the fake WhatsApp Cloud API: the fake
posts Meta-shaped, signed webhooks, which are replayed into the real webhook view; what we
answer goes back out through the fake."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tertulia.core import clock
from tertulia.core.clock import SimulatedClock
from tertulia.messaging.models import Message
from tertulia.messaging.sender import outbox_send_batch
from tertulia.recruitment.models import Consent, Screening

pytestmark = pytest.mark.django_db(transaction=True)

REFERRAL = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "whatsapp" / "referral_ad.json").read_text()
)["entry"][0]["changes"][0]["value"]["messages"][0]["referral"]


@pytest.fixture(autouse=True)
def _conversation_clock() -> Iterator[SimulatedClock]:
    """A man takes a minute or so to answer; the pair limit (one message every few seconds to
    the same person) is paced on this clock, as it is in real time."""
    simulated = SimulatedClock(dt.datetime.now(dt.UTC))
    previous = clock.use(simulated)
    yield simulated
    clock.use(previous)


def _answer_time_passes() -> None:
    simulated = clock.use(clock.SystemClock())
    assert isinstance(simulated, SimulatedClock)
    simulated.advance(dt.timedelta(minutes=1))
    clock.use(simulated)


def deliver(fake, replay, run_tasks) -> None:  # type: ignore[no-untyped-def]
    """Webhooks into the view, routing tasks run, our answers sent through the fake."""
    replay(fake)
    run_tasks()
    _answer_time_passes()
    outbox_send_batch(now=clock.now())
    assert fake.wait_idle(10)


def texts_to(fake: Any, wa_id: str) -> list[dict[str, Any]]:
    return [e.payload for e in fake.log.entries() if e.to == wa_id]


def test_a_first_message_with_the_variant_code_is_attributed_and_answered(
    campaign, wa_config, fake, replay, run_tasks
) -> None:
    fake.send_inbound("51987000301", "Hola, quiero saber más de Hablemos Entre Patas (HEP-AAAA)")
    deliver(fake, replay, run_tasks)
    screening = Screening.objects.get()
    assert (screening.variant.code, screening.attributed_by) == ("HEP-AAAA", "code")
    assert screening.channel == "whatsapp:test"
    assert screening.referral_source_id == ""
    sent = texts_to(fake, "51987000301")
    assert sent[0]["text"]["body"].startswith("¡Hola, pata! 👋")
    assert sent[1]["text"]["body"].startswith("¿Cuántos años tienes?")


def test_a_click_to_whatsapp_referral_attributes_the_ad_and_is_stored(
    campaign, wa_config, fake, replay, run_tasks
) -> None:
    fake.send_inbound("51987000302", "Quiero más información", referral=REFERRAL)
    deliver(fake, replay, run_tasks)
    screening = Screening.objects.get()
    assert (screening.variant.code, screening.attributed_by) == ("HEP-BBBB", "referral")
    assert (
        screening.referral_source_url,
        screening.referral_source_id,
        screening.referral_source_type,
        screening.referral_headline,
    ) == ("https://fb.me/3cr4Wqqkp", "120212345678900123", "ad", "Hablemos entre patas")
    assert screening.ctwa_clid == REFERRAL["ctwa_clid"]
    first = Message.objects.get(direction="in")
    assert first.payload["referral"]["source_id"] == "120212345678900123"
    assert len(texts_to(fake, "51987000302")) == 2


def test_screening_and_consent_by_button_through_the_fake(
    campaign, wa_config, fake, replay, run_tasks
) -> None:
    wa_id = "51987000303"
    fake.send_inbound(wa_id, "Hola (HEP-AAAA)")
    deliver(fake, replay, run_tasks)
    for answer in ["34", "Sí, vivimos juntos", "Sí", "Sí, es mío", "1", "En la noche"]:
        fake.send_inbound(wa_id, answer)
        deliver(fake, replay, run_tasks)
    question = texts_to(fake, wa_id)[-1]
    assert question["type"] == "interactive"
    buttons = question["interactive"]["action"]["buttons"]
    assert [b["reply"]["id"] for b in buttons] == ["rc:consent:accept", "rc:consent:decline"]

    tap = {
        "type": "button_reply",
        "button_reply": {"id": "rc:consent:accept", "title": "Sí, acepto"},
    }
    fake.send_inbound(wa_id, interactive=tap)
    fake.send_inbound(wa_id, interactive=tap)  # a second tap
    deliver(fake, replay, run_tasks)
    consent = Consent.objects.get()
    assert (consent.accepted, consent.channel, consent.version) == (
        True,
        "whatsapp:test",
        "2026-12-v1",
    )
    assert Screening.objects.get().state == Screening.State.PARTNER
