"""Writes for communities and the facilitator inbox. The relay goes over each man's own 1:1
chat (WhatsApp groups hold too few people and unofficial group tools get numbers banned): a
post is queued on the Outbox once per member, under the author's pseudonym (community.relay),
or owed to his digest when his 24-hour window is closed (community.digest). Every facilitator
action goes to the audit log."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q, QuerySet

from tertulia.cohorts.models import Cohort, Enrollment
from tertulia.community.models import CommunityPost, InboxSeen, Membership, PostDelivery
from tertulia.community.relay import (
    FACILITATOR_LABEL,
    MEDIA_KINDS,
    label_for,
    post_answered,
    post_relay,
    relay_cancel_queued,
)
from tertulia.core import clock
from tertulia.messaging.models import Message, Outbox
from tertulia.safety.models import Alert
from tertulia.safety.services import SUPERVISOR_GROUP, audit_record, message_is_held

__all__ = ["FACILITATOR_LABEL", "post_relay"]


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


def _unscreened(message: Message) -> bool:
    """A voice note, or an image or video without words: triage cannot read it."""
    return message.kind in MEDIA_KINDS and not (message.body or "").strip()


def hold_unscreened_media() -> bool:
    return bool(getattr(settings, "TERTULIA_COMMUNITY_HOLD_UNSCREENED_MEDIA", True))


def post_from_message(message: Message, now: dt.datetime) -> CommunityPost | None:
    """Make a community post of what a member wrote or sent (text, voice note, image): relayed
    at once in post-moderation, held in pre-moderation, and always held when safety triage
    raised an alert on it or could not read it (see hold_unscreened_media). A quoted reply
    keeps the post it answers. A tapped button is an answer to us, never a post."""
    enrollment = message.enrollment
    if enrollment is None or enrollment.state not in Enrollment.RECEIVING:
        return None
    media_id = str((message.payload or {}).get("media_id", ""))
    is_media = message.kind in MEDIA_KINDS and bool(media_id)
    if message.kind == "button" or not (message.body or is_media):
        return None
    member = membership_for(enrollment, now)
    if not member.in_community:
        return None
    cohort = enrollment.cohort
    held = (
        message_is_held(message.pk)
        or cohort.moderation == Cohort.Moderation.PRE
        or (is_media and _unscreened(message) and hold_unscreened_media())
    )
    post, created = CommunityPost.objects.get_or_create(
        message=message,
        defaults={
            "cohort": cohort,
            "author": member,
            "body": message.body or "",
            "kind": message.kind if is_media else "text",
            "media": (
                {"media_id": media_id, "mime": str(message.payload.get("mime_type", ""))}
                if is_media
                else {}
            ),
            "reply_to": post_answered(message),
            "status": CommunityPost.Status.HELD if held else CommunityPost.Status.RELAYED,
            "relayed_at": None if held else now,
            "created_at": message.created_at,
        },
    )
    if created and not held:
        post_relay(post, now, fresh=True)
    return post


def post_by_facilitator(
    *,
    cohort: Cohort,
    user: Any,
    text: str,
    now: dt.datetime,
    reply_to: CommunityPost | None = None,
) -> CommunityPost:
    """The facilitator writes to his group, under the facilitator's label; `reply_to` quotes
    the member's post he answers."""
    post = CommunityPost.objects.create(
        cohort=cohort,
        facilitator=user,
        body=text,
        reply_to=reply_to,
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


RETRACT_NOTICE = "El facilitador retiró un mensaje de {label}. 🙏"


def post_retract(*, post: CommunityPost, user: Any, now: dt.datetime | None = None) -> bool:
    """Withdraw a post. Copies still waiting in the Outbox or owed to a digest never go; the
    members who did receive it get a short notice."""
    now = now or clock.now()
    with transaction.atomic():
        locked = (
            CommunityPost.objects.select_for_update(of=("self",))
            .select_related("author", "cohort")
            .get(pk=post.pk)
        )
        if locked.status == CommunityPost.Status.RETRACTED:
            return False
        CommunityPost.objects.filter(pk=locked.pk).update(status=CommunityPost.Status.RETRACTED)
        deliveries = PostDelivery.objects.filter(post=locked, outbox__isnull=False)
        Outbox.objects.filter(
            id__in=deliveries.values("outbox_id"), status=Outbox.Status.QUEUED
        ).update(status=Outbox.Status.CANCELLED)
        received = list(
            deliveries.exclude(outbox__status=Outbox.Status.CANCELLED)
            .filter(enrollment__state__in=Enrollment.RECEIVING)
            .values_list("enrollment_id", "enrollment__participant_id")
            .distinct()
        )
        notice = RETRACT_NOTICE.format(label=label_for(locked))
        Outbox.objects.bulk_create(
            Outbox(
                participant_id=participant_id,
                enrollment_id=enrollment_id,
                body=notice,
                channel=locked.cohort.channel,
                status=Outbox.Status.QUEUED,
                due_at=now,
                created_at=now,
            )
            for enrollment_id, participant_id in received
        )
        audit_record(actor=user, action="post.retract", obj=locked, now=now)
    return True


def membership_leave(enrollment: Enrollment, now: dt.datetime) -> None:
    """SALIR: he leaves the community and keeps the daily content. Posts still queued for him
    are cancelled; the ones a digest owed him are never sent (the digest skips him)."""
    member = membership_for(enrollment, now)
    Membership.objects.filter(pk=member.pk).update(in_community=False)
    relay_cancel_queued([enrollment.pk])


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


def inbox_mark_seen(
    *, user: Any, items: Iterable[tuple[str, int]], now: dt.datetime | None = None
) -> int:
    """Record that `user` has seen these inbox items ((kind, id) pairs, kinds of
    InboxSeen.Kind); seeing one twice changes nothing. Returns how many were new to him."""
    now = now or clock.now()
    wanted = set(items)
    if not wanted:
        return 0
    created = InboxSeen.objects.bulk_create(
        [InboxSeen(user=user, kind=k, object_id=i, seen_at=now) for k, i in wanted],
        ignore_conflicts=True,
    )
    return len(created)


# --- keeping the per-facilitator unread state small -----------------------------------------

# How long a facilitator's "seen" mark is kept: the inbox shows open items, which are new.
SEEN_KEEP_DAYS = 90


@dataclass(frozen=True)
class SeenPruned:
    """What `inbox_seen_prune` removed, by reason (a row counts once, for the first)."""

    old: int = 0  # seen before the cut-off
    gone: int = 0  # its alert, post or message no longer exists
    no_access: int = 0  # its facilitator is inactive or no longer sees that cohort

    @property
    def total(self) -> int:
        return self.old + self.gone + self.no_access


def _seen_items() -> dict[str, tuple[QuerySet[Any], str]]:
    """Each kind's item, matched to an InboxSeen row, and the path to its cohort's
    facilitator (who may see it, besides supervisors: community.selectors)."""
    return {
        InboxSeen.Kind.ALERT: (
            Alert.objects.filter(pk=OuterRef("object_id")),
            "cohort__facilitator",
        ),
        InboxSeen.Kind.POST: (
            CommunityPost.objects.filter(pk=OuterRef("object_id")),
            "cohort__facilitator",
        ),
        InboxSeen.Kind.MESSAGE: (
            Message.objects.filter(pk=OuterRef("object_id"), direction=Message.Direction.IN),
            "enrollment__cohort__facilitator",
        ),
    }


def inbox_seen_prune(*, days: int = SEEN_KEEP_DAYS, now: dt.datetime | None = None) -> SeenPruned:
    """Delete the InboxSeen rows no one needs: seen more than `days` days ago, about an item
    that no longer exists, or of a person who can no longer see it (inactive, or no longer the
    facilitator of its cohort; a supervisor sees every cohort). A deleted row only makes an
    item show as unread again, should it still be open. Run daily (README)."""
    if days < 1:
        raise ValueError("days must be at least 1")
    now = now or clock.now()
    items = _seen_items()
    gone = Q()
    reachable = Q()
    for kind, (item, facilitator) in items.items():
        gone |= Q(~Exists(item), kind=kind)
        reachable |= Q(Exists(item.filter(**{facilitator: OuterRef("user")})), kind=kind)
    supervisors = get_user_model().objects.filter(
        Q(is_superuser=True) | Q(groups__name=SUPERVISOR_GROUP)
    )
    no_access = Q(user__is_active=False) | (~Q(user__in=supervisors.values("pk")) & ~reachable)
    with transaction.atomic():
        old = InboxSeen.objects.filter(seen_at__lt=now - dt.timedelta(days=days)).delete()[0]
        removed_gone = InboxSeen.objects.filter(gone).delete()[0]
        removed_access = InboxSeen.objects.filter(no_access).delete()[0]
    return SeenPruned(old=old, gone=removed_gone, no_access=removed_access)
