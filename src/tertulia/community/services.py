"""Writes for communities and the facilitator inbox. The relay goes over each man's own 1:1
chat (WhatsApp groups hold too few people and unofficial group tools get numbers banned): a
post is queued on the Outbox once per member, under the author's pseudonym. Every facilitator
action goes to the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from django.db import IntegrityError, transaction

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.community.models import CommunityPost, Membership
from tertulia.core import clock
from tertulia.messaging.models import Message
from tertulia.messaging.services import service_message_queue
from tertulia.safety.services import audit_record, message_is_held

FACILITATOR_LABEL = "Facilitador"


def membership_for(enrollment: Enrollment, now: dt.datetime) -> Membership:
    """His membership, created on first need with a stable pseudonym ("Pata 17": his place in
    the cohort's enrolment order)."""
    existing = Membership.objects.filter(enrollment=enrollment).first()
    if existing:
        return existing
    rank = Enrollment.objects.filter(cohort_id=enrollment.cohort_id, id__lte=enrollment.id).count()
    for pseudonym in (f"Pata {rank}", f"Pata {enrollment.pk}"):
        try:
            with transaction.atomic():
                return Membership.objects.create(
                    enrollment=enrollment,
                    cohort_id=enrollment.cohort_id,
                    pseudonym=pseudonym,
                    joined_at=now,
                )
        except IntegrityError:
            found = Membership.objects.filter(enrollment=enrollment).first()
            if found:
                return found
    raise RuntimeError(f"no free pseudonym for enrollment {enrollment.pk}")


def _recipients(cohort: Cohort, exclude: Enrollment | None, now: dt.datetime) -> list[Enrollment]:
    enrollments = list(
        Enrollment.objects.filter(cohort=cohort, state__in=Enrollment.RECEIVING)
        .exclude(membership__in_community=False)
        .select_related("participant", "cohort")
    )
    return [e for e in enrollments if exclude is None or e.pk != exclude.pk]


def post_relay(post: CommunityPost, now: dt.datetime) -> int:
    """Queue the post to every other member still in the community; return how many."""
    label = post.author.pseudonym if post.author else FACILITATOR_LABEL
    author = post.author.enrollment if post.author else None
    sent = 0
    for enrollment in _recipients(post.cohort, author, now):
        service_message_queue(
            participant=enrollment.participant,
            enrollment=enrollment,
            channel=enrollment.cohort.channel,
            text=f"*{label}:* {post.body}",
            now=now,
        )
        sent += 1
    CommunityPost.objects.filter(pk=post.pk).update(
        status=CommunityPost.Status.RELAYED, relayed_at=now
    )
    post.status = CommunityPost.Status.RELAYED
    return sent


def post_from_message(message: Message, now: dt.datetime) -> CommunityPost | None:
    """Make a community post of what a member wrote: relayed at once in post-moderation, held in
    pre-moderation, and always held when safety triage raised an alert on it."""
    enrollment = message.enrollment
    if enrollment is None or enrollment.state not in Enrollment.RECEIVING or not message.body:
        return None
    member = membership_for(enrollment, now)
    if not member.in_community:
        return None
    cohort = enrollment.cohort
    held = message_is_held(message.pk) or cohort.moderation == Cohort.Moderation.PRE
    post, created = CommunityPost.objects.get_or_create(
        message=message,
        defaults={
            "cohort": cohort,
            "author": member,
            "body": message.body,
            "status": CommunityPost.Status.HELD if held else CommunityPost.Status.RELAYED,
            "created_at": message.created_at,
        },
    )
    if created and not held:
        post_relay(post, now)
    return post


def post_by_facilitator(*, cohort: Cohort, user: Any, text: str, now: dt.datetime) -> CommunityPost:
    post = CommunityPost.objects.create(
        cohort=cohort,
        facilitator=user,
        body=text,
        status=CommunityPost.Status.HELD,
        created_at=now,
    )
    post_relay(post, now)
    audit_record(actor=user, action="post.create", obj=post, now=now)
    return post


def post_approve(*, post: CommunityPost, user: Any, now: dt.datetime | None = None) -> bool:
    """Relay a held post. A post still under an open alert is not relayed."""
    now = now or clock.now()
    with transaction.atomic():
        locked = CommunityPost.objects.select_for_update().get(pk=post.pk)
        if locked.status != CommunityPost.Status.HELD:
            return False
        if locked.message_id and message_is_held(locked.message_id):
            return False
        post_relay(locked, now)
        audit_record(actor=user, action="post.approve", obj=locked, now=now)
    return True


def post_retract(*, post: CommunityPost, user: Any, now: dt.datetime | None = None) -> bool:
    """Withdraw a relayed post; the members who received it get a short notice."""
    now = now or clock.now()
    with transaction.atomic():
        locked = (
            CommunityPost.objects.select_for_update(of=("self",))
            .select_related("author__enrollment", "cohort")
            .get(pk=post.pk)
        )
        if locked.status == CommunityPost.Status.RETRACTED:
            return False
        was_relayed = locked.status == CommunityPost.Status.RELAYED
        CommunityPost.objects.filter(pk=locked.pk).update(status=CommunityPost.Status.RETRACTED)
        if was_relayed:
            label = locked.author.pseudonym if locked.author else FACILITATOR_LABEL
            author = locked.author.enrollment if locked.author else None
            for enrollment in _recipients(locked.cohort, author, now):
                service_message_queue(
                    participant=enrollment.participant,
                    enrollment=enrollment,
                    channel=enrollment.cohort.channel,
                    text=f"El facilitador retiró un mensaje de {label}. 🙏",
                    now=now,
                )
        audit_record(actor=user, action="post.retract", obj=locked, now=now)
    return True


def membership_leave(enrollment: Enrollment, now: dt.datetime) -> None:
    """SALIR: he leaves the community and keeps the daily content."""
    member = membership_for(enrollment, now)
    Membership.objects.filter(pk=member.pk).update(in_community=False)


def message_mark_handled(*, message: Message, user: Any, now: dt.datetime | None = None) -> bool:
    """Mark a waiting message handled; False when it already was (nothing is logged twice)."""
    now = now or clock.now()
    with transaction.atomic():
        changed = Message.objects.filter(pk=message.pk, handled_at__isnull=True).update(
            handled_at=now
        )
        if changed:
            audit_record(actor=user, action="message.handled", obj=message, now=now)
    return bool(changed)
