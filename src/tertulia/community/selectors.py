"""Reads for the facilitator inbox. Access is decided here, once: a facilitator sees his own
cohorts; a supervisor sees the program."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404

from tertulia.community.models import CommunityPost
from tertulia.messaging.models import Message
from tertulia.safety.models import Alert
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


def posts_held_for(user: Any) -> QuerySet[CommunityPost]:
    """Posts waiting for approval in this person's cohorts, oldest first."""
    # A post under an open alert is shown with its alert; it comes here once resolved.
    held = CommunityPost.objects.filter(status=CommunityPost.Status.HELD).exclude(
        message__alerts__status=Alert.Status.OPEN
    )
    if not is_supervisor(user):
        held = held.filter(cohort__facilitator=user)
    return held.select_related("cohort", "author").order_by("created_at", "pk")


def access_post(user: Any, post_id: int) -> CommunityPost:
    post = CommunityPost.objects.filter(pk=post_id).select_related("cohort", "author").first()
    if post is None or not (is_supervisor(user) or post.cohort.facilitator_id == user.pk):
        raise Http404
    return post
