"""The digest: posts a man is owed (his 24-hour window was closed when they were relayed, or his
cohort runs in digest mode) reach him later, grouped.

Outside his window only a template may be sent, so the digest starts with one: an invitation
back (template `community_digest`, whose parameters may be `posts`, the number waiting, and
`group`, his community's name: see content/guy-talk/whatsapp-templates.yaml). The grouped
posts wait until he answers, which opens his window: they go at once from the router
(digest_flush_on_inbound), or at the next clock tick.
In a cohort in digest mode (Cohort.digest_every_hours = N) every man gets his posts grouped,
at most every N hours.

Idempotent and crash-safe: one man's digest is one transaction that queues the Outbox rows and
sets them on his PostDelivery rows, which is what "owed" means. Running the tick twice, or again
after a crash midway, never sends a post twice to a man.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Min, Q, QuerySet

from tertulia.cohorts.models import Enrollment
from tertulia.community.models import CommunityPost, Membership, PostDelivery
from tertulia.community.relay import relay_content, relay_text
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.services import service_message_queue
from tertulia.messaging.window import participants_in_window

logger = logging.getLogger(__name__)

INVITE_TEMPLATE = "community_digest"
# A man who does not answer an invitation is invited again only after this long.
INVITE_AGAIN_AFTER = dt.timedelta(days=7)
# Characters of posts per digest message; more posts go in further messages.
DIGEST_CHARS = 3000

INVITE_TEXT = (
    "¡Hola! 👋 Mientras no estabas, tu grupo siguió conversando ({count}). "
    "Respóndenos cuando quieras y te enviamos lo que compartieron. 💬"
)
DIGEST_HEAD = "📬 Lo que conversó tu grupo:"


@dataclass
class DigestReport:
    invited: int = 0  # men sent the invitation template
    men: int = 0  # men sent their grouped posts
    posts: int = 0  # post deliveries those carried
    messages: int = 0  # Outbox rows written for them


def _owed() -> QuerySet[PostDelivery]:
    return PostDelivery.objects.filter(
        outbox__isnull=True,
        post__status=CommunityPost.Status.RELAYED,
        enrollment__state__in=Enrollment.RECEIVING,
    ).exclude(enrollment__membership__in_community=False)


def _count_words(count: int) -> str:
    return "1 mensaje" if count == 1 else f"{count} mensajes"


def community_digest_due(now: dt.datetime) -> DigestReport:
    """The clock tick's digest pass over every man who is owed posts: send them grouped when
    his window is open (and, in digest mode, his last digest is N hours old); otherwise invite
    him back by template, once (again after INVITE_AGAIN_AFTER)."""
    report = DigestReport()
    owed = list(
        _owed()
        .values(
            "enrollment_id", "enrollment__participant_id", "enrollment__cohort__digest_every_hours"
        )
        .annotate(oldest=Min("created_at"))
        .order_by("enrollment_id")
    )
    if not owed:
        return report
    in_window = participants_in_window((o["enrollment__participant_id"] for o in owed), at=now)
    members = {
        m.enrollment_id: m
        for m in Membership.objects.filter(enrollment_id__in=[o["enrollment_id"] for o in owed])
    }
    for row in owed:
        enrollment_id = row["enrollment_id"]
        member = members.get(enrollment_id)
        hours = row["enrollment__cohort__digest_every_hours"]
        if hours:
            since = (member.last_digest_at if member else None) or row["oldest"]
            if since > now - dt.timedelta(hours=hours):
                continue
        away = row["enrollment__participant_id"] not in in_window
        invited = member.digest_invited_at if member else None
        if away and invited and invited >= now - INVITE_AGAIN_AFTER:
            continue  # his invitation is out; nothing to do until he answers
        try:
            if not away:
                sent = digest_send(enrollment_id, now)
                if sent:
                    report.men += 1
                    report.posts += sent[0]
                    report.messages += sent[1]
            elif digest_invite(enrollment_id, now):
                report.invited += 1
        except Exception:  # one man's failure must not keep the others' digests back
            logger.exception("community digest failed for enrollment %s", enrollment_id)
    return report


def digest_invite(enrollment_id: int, now: dt.datetime) -> bool:
    """Queue the invitation template to a man outside his window, unless he has one
    outstanding. Returns whether it was queued."""
    from tertulia.community.services import membership_for

    with transaction.atomic():
        enrollment = Enrollment.objects.select_related("participant", "cohort").get(
            pk=enrollment_id
        )
        member = membership_for(enrollment, now)
        # The conditional update claims the invitation: two ticks never both send it.
        claimed = Membership.objects.filter(
            Q(digest_invited_at__isnull=True) | Q(digest_invited_at__lt=now - INVITE_AGAIN_AFTER),
            pk=member.pk,
        ).update(digest_invited_at=now)
        if not claimed:
            return False
        count = _owed().filter(enrollment_id=enrollment_id).count()
        service_message_queue(
            participant=enrollment.participant,
            enrollment=enrollment,
            channel=enrollment.cohort.channel,
            text=INVITE_TEXT.format(count=_count_words(count)),
            template=INVITE_TEMPLATE,
            template_values={"posts": str(count), "group": enrollment.cohort.name},
            now=now,
        )
    return True


def digest_send(enrollment_id: int, now: dt.datetime) -> tuple[int, int] | None:
    """Queue everything he is owed, grouped: the text posts in as few messages as fit, each
    voice note or image as its own message. Returns (posts, messages), or None when nothing
    was owed. One transaction: all of it is queued and marked, or none of it."""
    with transaction.atomic():
        owed = list(
            _owed()
            .filter(enrollment_id=enrollment_id)
            .select_for_update(of=("self",), skip_locked=True)
            .select_related("post__author", "post__reply_to__author", "enrollment__cohort")
            .order_by("post__created_at", "post_id")
        )
        if not owed:
            return None
        enrollment = owed[0].enrollment
        groups: list[tuple[Outbox, list[int]]] = []
        text_ids: list[int] = []
        lines: list[str] = []
        size = len(DIGEST_HEAD)

        def row(body: str, content: dict[str, object] | None = None) -> Outbox:
            return Outbox(
                participant_id=enrollment.participant_id,
                enrollment_id=enrollment.pk,
                body=body,
                content=content,
                channel=enrollment.cohort.channel,
                status=Outbox.Status.QUEUED,
                due_at=now,
                created_at=now,
            )

        def close_text() -> None:
            nonlocal text_ids, lines, size
            if text_ids:
                groups.append((row("\n\n".join([DIGEST_HEAD, *lines])), text_ids))
            text_ids, lines, size = [], [], len(DIGEST_HEAD)

        for delivery in owed:
            post = delivery.post
            content = relay_content(post)
            if content is not None:
                groups.append((row(relay_text(post), content), [delivery.pk]))
                continue
            text = relay_text(post)
            if lines and size + len(text) + 2 > DIGEST_CHARS:
                close_text()
            text_ids.append(delivery.pk)
            lines.append(text)
            size += len(text) + 2
        close_text()
        Outbox.objects.bulk_create(outbox for outbox, _ in groups)
        for outbox, ids in groups:
            marked = PostDelivery.objects.filter(id__in=ids, outbox__isnull=True).update(
                outbox=outbox, via=PostDelivery.Via.DIGEST
            )
            if marked != len(ids):
                raise RuntimeError("another digest took these posts; this one is rolled back")
        Membership.objects.filter(enrollment_id=enrollment_id).update(
            last_digest_at=now, digest_invited_at=None
        )
    return len(owed), len(groups)


def digest_flush_on_inbound(message: Message, now: dt.datetime) -> bool:
    """He just wrote, so his window is open: send what he is owed now rather than at the next
    tick. In a cohort in digest mode only when he is answering an invitation (otherwise the
    posts keep to the cohort's rhythm). Returns whether a digest was queued."""
    enrollment = message.enrollment
    if enrollment is None or enrollment.state not in Enrollment.RECEIVING:
        return False
    owed = _owed().filter(enrollment_id=enrollment.pk)
    if enrollment.cohort.digest_every_hours:
        owed = owed.filter(enrollment__membership__digest_invited_at__isnull=False)
    if not owed.exists():
        return False
    return digest_send(enrollment.pk, now) is not None
