"""Recruitment listens to messaging: it may give a new number that answers an ad a Participant,
and it runs the screening conversation of every man who is not in a cohort. Connected before
safety triage (INSTALLED_APPS order): a message the classifier flags is left for triage to hold
and a person to answer, and a partner's contact is out of his message before triage reads it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.dispatch import receiver

from tertulia.cohorts.models import Participant
from tertulia.messaging.models import Message
from tertulia.messaging.services import Inbound
from tertulia.messaging.signals import inbound_from_unknown, inbound_routed
from tertulia.recruitment.services import participant_for_unknown, recruitment_inbound


@receiver(inbound_from_unknown, dispatch_uid="recruitment.unknown")
def on_unknown(sender: Any, address: str, inbound: Inbound, **kwargs: Any) -> Participant | None:
    return participant_for_unknown(address=address, inbound=inbound)


@receiver(inbound_routed, sender=Message, dispatch_uid="recruitment.inbound")
def on_inbound(sender: Any, message: Message, now: dt.datetime, **kwargs: Any) -> None:
    recruitment_inbound(message, now)
