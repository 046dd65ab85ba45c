"""Reads for the facilitator inbox. Access is decided here, once: a facilitator sees his own
cohorts; a supervisor sees the program."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from tertulia.messaging.models import Message
from tertulia.safety.services import is_supervisor


def messages_waiting_for(user: Any) -> QuerySet[Message]:
    """Inbound messages that were not a keyword or a check-in answer and nobody has handled."""
    waiting = Message.objects.filter(
        direction=Message.Direction.IN,
        route=Message.Route.FACILITATOR,
        handled_at__isnull=True,
        # A message that raised an alert is shown with its alert, not twice.
        alerts__isnull=True,
    )
    if not is_supervisor(user):
        waiting = waiting.filter(enrollment__cohort__facilitator=user)
    return waiting.select_related("enrollment__cohort").order_by("created_at", "pk")


def access_message(user: Any, message_id: int) -> Message:
    """The inbound message `message_id` if `user` may handle it; 404 otherwise (an outsider
    must not learn that it exists)."""
    message = (
        Message.objects.filter(pk=message_id, direction=Message.Direction.IN)
        .select_related("enrollment__cohort")
        .first()
    )
    if message is None:
        raise Http404
    if is_supervisor(user):
        return message
    cohort = message.enrollment.cohort if message.enrollment else None
    if cohort is None or cohort.facilitator_id != user.pk:
        raise Http404
    return message
