"""What a member's inbound message does in his community: SALIR leaves it, PRIVADO (or
PRIVATE) keeps a message between him and the facilitator, BAJA cancels the posts still queued
for him, anything else he writes becomes a post. Whatever he writes opens his 24-hour window,
so the posts his digest owes him go out. Runs after safety triage (see INSTALLED_APPS), so a
flagged message is always held."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.dispatch import receiver

from tertulia.cohorts.models import Enrollment
from tertulia.community.digest import digest_flush_on_inbound
from tertulia.community.relay import relay_cancel_queued
from tertulia.community.services import membership_leave, post_from_message
from tertulia.messaging.models import Message
from tertulia.messaging.router import normalize_keyword
from tertulia.messaging.services import service_message_queue
from tertulia.messaging.signals import inbound_routed

LEAVE = {"SALIR", "LEAVE"}
PRIVATE_PREFIXES = ("PRIVADO", "PRIVATE")

LEFT_TEXT = (
    "Listo, saliste de la comunidad: ya no verás los mensajes del grupo ni ellos los tuyos. "
    "Las cápsulas diarias te siguen llegando. Para dejar todo, escribe *BAJA*."
)


@receiver(inbound_routed, dispatch_uid="community.inbound")
def on_inbound(sender: Any, message: Message, now: dt.datetime, **kwargs: Any) -> None:
    if message.enrollment is None:
        return
    if message.enrollment.state == Enrollment.State.OPTED_OUT:
        # BAJA stops everything: relayed posts not yet sent go nowhere.
        relay_cancel_queued([message.enrollment.pk])
        return
    if message.route != Message.Route.FACILITATOR:
        digest_flush_on_inbound(message, now)
        return
    words = (message.body or "").strip().split(maxsplit=1)
    first = normalize_keyword(words[0]) if words else ""
    if normalize_keyword(message.body or "") in LEAVE:
        membership_leave(message.enrollment, now)
        if message.participant is not None:
            service_message_queue(
                participant=message.participant,
                enrollment=message.enrollment,
                channel=message.channel,
                text=LEFT_TEXT,
                now=now,
            )
        return
    digest_flush_on_inbound(message, now)
    if first in PRIVATE_PREFIXES:
        return  # for the facilitator only; never relayed
    post_from_message(message, now)
