"""Triage listens to the router: every inbound message is classified inside the routing
transaction, so a flagged message is held before anything else can see it."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.dispatch import receiver

from tertulia.messaging.models import Message
from tertulia.messaging.signals import inbound_routed, worker_starting
from tertulia.safety.classifier import configured_classifier
from tertulia.safety.services import message_triage


@receiver(inbound_routed, sender=Message, dispatch_uid="safety.triage")
def triage_inbound(sender: Any, message: Message, now: dt.datetime, **kwargs: Any) -> None:
    message_triage(message, now)


@receiver(worker_starting, dispatch_uid="safety.classifier_ready")
def classifier_ready(sender: Any, **kwargs: Any) -> None:
    """Build the classifier before the worker's first message, not while that message waits."""
    configured_classifier()
