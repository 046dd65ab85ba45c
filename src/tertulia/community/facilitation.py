"""What a facilitator does from the inbox besides moderating: answer one man privately, write
to the whole group, open a man's thread. Each action is written to the audit log. Moderation
(approve, retract) lives in `community.services`."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.community.models import CommunityPost, PrivateReply
from tertulia.community.selectors import private_waiting_of
from tertulia.community.services import (
    FACILITATOR_LABEL,
    post_approve,
    post_by_facilitator,
    post_retract,
)
from tertulia.core import clock
from tertulia.messaging.models import Message
from tertulia.messaging.services import service_message_queue
from tertulia.messaging.tasks import send_outbox_task
from tertulia.safety.services import audit_record

# Long enough for a caring answer, short enough for one chat bubble on a phone.
MAX_REPLY_CHARS = 1000
PRIVATE_LABEL = f"{FACILITATOR_LABEL} (solo para ti)"


def _send_soon() -> None:
    """Start sending what an action queued once it is committed. The ticker only starts the
    sender when curriculum is due, so a relay approved after the day's send (or after the 30
    days) would otherwise wait in the Outbox."""
    transaction.on_commit(lambda: send_outbox_task.enqueue())


class ReplyRefused(ValueError):
    """The reply was not sent; the message says what to change."""


def _clean(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ReplyRefused(_("Write something before sending."))
    if len(text) > MAX_REPLY_CHARS:
        raise ReplyRefused(
            _("The reply is %(n)d characters long; keep it under %(max)d.")
            % {"n": len(text), "max": MAX_REPLY_CHARS}
        )
    return text


def private_reply_send(
    *, enrollment: Enrollment, user: Any, text: str, now: dt.datetime | None = None
) -> PrivateReply:
    """Queue a message to him alone on his own chat. It answers his oldest private message
    still waiting (what the supervisor's response time measures) and marks all his waiting
    private messages handled."""
    now = now or clock.now()
    body = _clean(text)
    # After the 30 days he may still write and be answered; after BAJA nothing is sent.
    if enrollment.state == Enrollment.State.OPTED_OUT:
        raise ReplyRefused(_("He asked to stop (BAJA): nothing more can be sent to him."))
    with transaction.atomic():
        waiting = list(private_waiting_of(enrollment).select_for_update(of=("self",)))
        outbox = service_message_queue(
            participant=enrollment.participant,
            enrollment=enrollment,
            channel=enrollment.cohort.channel,
            text=f"*{PRIVATE_LABEL}:* {body}",
            now=now,
        )
        reply = PrivateReply.objects.create(
            enrollment=enrollment,
            facilitator=user,
            in_reply_to=waiting[0] if waiting else None,
            outbox=outbox,
            body=body,
            created_at=now,
        )
        if waiting:
            Message.objects.filter(pk__in=[m.pk for m in waiting]).update(handled_at=now)
        audit_record(
            actor=user,
            action="reply.private",
            obj=reply,
            now=now,
            details={"enrollment": enrollment.pk, "answered": [m.pk for m in waiting]},
        )
        _send_soon()
    return reply


def group_post_send(
    *, cohort: Cohort, user: Any, text: str, now: dt.datetime | None = None
) -> CommunityPost:
    """A facilitator's post to his whole community, labelled as the facilitator's and relayed
    through the same relay as the members' posts (audited there as post.create)."""
    body = _clean(text)
    with transaction.atomic():
        post = post_by_facilitator(cohort=cohort, user=user, text=body, now=now or clock.now())
        _send_soon()
    return post


def held_post_approve(*, post: CommunityPost, user: Any, now: dt.datetime | None = None) -> bool:
    """Approve a held post (audited in `post_approve`) and send the relay right away."""
    with transaction.atomic():
        approved = post_approve(post=post, user=user, now=now)
        if approved:
            _send_soon()
    return approved


def relayed_post_retract(*, post: CommunityPost, user: Any, now: dt.datetime | None = None) -> bool:
    """Retract a post (audited in `post_retract`) and send the members' notice right away."""
    with transaction.atomic():
        retracted = post_retract(post=post, user=user, now=now)
        if retracted:
            _send_soon()
    return retracted


def thread_open(*, enrollment: Enrollment, user: Any, now: dt.datetime | None = None) -> None:
    """Reading one man's thread shows his private words: who read them is recorded."""
    audit_record(
        actor=user,
        action="thread.open",
        obj=enrollment,
        now=now or clock.now(),
        details={"cohort": enrollment.cohort_id},
    )
