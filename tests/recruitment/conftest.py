"""A cast for recruitment: the bundled Peruvian program, a campaign with two ad variants, and
a way to write to the platform as a man would (messaging's inbound path and the router)."""

from __future__ import annotations

import datetime as dt
import itertools
from pathlib import Path
from typing import Any

import pytest

from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.router import message_route
from tertulia.messaging.services import Inbound, message_record_inbound

# The fake WhatsApp Cloud API and the webhook replayer, for test_whatsapp.py.
from tests.messaging.channels.conftest import receiver  # noqa: F401
from tests.messaging.channels.whatsapp.conftest import (  # noqa: F401
    _fresh_rate_limits,
    fake,
    make_config,
    make_fake,
    replay,
    wa_config,
)

CONTENT = Path(__file__).resolve().parents[2] / "content"
PHONE = "+51987000111"
START = dt.datetime(2026, 3, 2, 15, 0, tzinfo=dt.UTC)
_ids = itertools.count(1)


@pytest.fixture(autouse=True)
def _content(settings) -> None:  # type: ignore[no-untyped-def]
    settings.TERTULIA_CONTENT_DIR = CONTENT
    settings.TERTULIA_RECRUITMENT_PROGRAM = ""


@pytest.fixture
def program(db):  # type: ignore[no-untyped-def]
    from tertulia.programs.models import Program

    return Program.objects.create(slug="guy-talk", name="Hablemos Entre Patas")


@pytest.fixture
def campaign(program):  # type: ignore[no-untyped-def]
    from tertulia.recruitment.services import campaign_create, variant_create

    campaign = campaign_create(
        program=program, name="Lanzamiento", channel="facebook", whatsapp_number="+51900000001"
    )
    variant_create(campaign=campaign, name="A humor", cost="300", code="HEP-AAAA")
    variant_create(
        campaign=campaign,
        name="B testimonio",
        cost="450",
        code="HEP-BBBB",
        ad_id="120212345678900123",
    )
    return campaign


class Man:
    """Writes to the platform from one number, each message a minute after the last."""

    def __init__(self, phone: str = PHONE, channel: str = "simulated") -> None:
        self.phone = phone
        self.channel = channel
        self.at = START

    def write(
        self,
        text: str = "",
        *,
        button: tuple[str, str] | None = None,
        payload: dict | None = None,
        provider_id: str = "",
    ) -> Message:
        self.at += dt.timedelta(minutes=1)
        message, _ = message_record_inbound(
            Inbound(
                channel=self.channel,
                address=self.phone,
                provider_id=provider_id or f"in-{next(_ids)}",
                received_at=self.at,
                kind="button" if button else "text",
                text=text,
                button_id=button[0] if button else "",
                button_title=button[1] if button else "",
                payload=payload,
            )
        )
        message_route(message_id=message.pk, now=self.at)
        message.refresh_from_db()
        return message

    def replies(self) -> list[str]:
        """Everything queued to him, in order."""
        from tertulia.cohorts.models import Participant
        from tertulia.core.crypto import lookup_hash

        participant = Participant.objects.filter(phone_hash=lookup_hash(self.phone)).first()
        if participant is None:
            return []
        return list(
            Outbox.objects.filter(participant=participant)
            .order_by("id")
            .values_list("body", flat=True)
        )

    def last(self) -> Any:
        from tertulia.cohorts.models import Participant
        from tertulia.core.crypto import lookup_hash

        participant = Participant.objects.get(phone_hash=lookup_hash(self.phone))
        return Outbox.objects.filter(participant=participant).order_by("-id").first()

    @property
    def screening(self) -> Any:
        from tertulia.core.crypto import lookup_hash
        from tertulia.recruitment.models import Screening

        return Screening.objects.get(participant__phone_hash=lookup_hash(self.phone))


@pytest.fixture
def man() -> Man:
    return Man()


SCREENING_OK = ["34", "Sí, vivimos juntos", "si", "si", "1", "En la noche"]
BASELINE_OK = ["Una o dos veces", "Los dos por igual", "A veces"]


def through_screening(man: Man, answers: list[str] = SCREENING_OK) -> None:
    man.write("Hola, quiero saber más de Hablemos Entre Patas (HEP-AAAA)")
    for answer in answers:
        man.write(answer)


def accept_consent(man: Man) -> Message:
    return man.write(button=("rc:consent:accept", "Sí, acepto"))
