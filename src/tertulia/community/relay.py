"""The relay itself: one post to every other member of its community, over each man's own 1:1
chat, under the author's pseudonym. Set-based: one post to 49 men is two bulk inserts (the
Outbox rows and the PostDelivery rows), whatever the cohort's size.

Only men inside their 24-hour service window get a post at once (free-form messages are only
allowed there); the others are owed it, and the digest (community.digest) brings it later."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from tertulia.cohorts.models import Enrollment
from tertulia.community.models import CommunityPost, Membership, PostDelivery
from tertulia.core.bulk import bulk_insert
from tertulia.messaging.models import Message, Outbox
from tertulia.messaging.window import participants_in_window

FACILITATOR_LABEL = "Facilitador"
EXCERPT_CHARS = 60
# WhatsApp's message types for what a member can post; a voice note is sent as audio.
MEDIA_KINDS = {"image": "image", "voice": "audio", "audio": "audio", "video": "video"}


def label_for(post: CommunityPost) -> str:
    """How the others see the author: his pseudonym, or the facilitator's label."""
    return post.author.pseudonym if post.author_id and post.author else FACILITATOR_LABEL


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The start of a post, cut at a word, to quote it in an answer."""
    flat = " ".join(text.split())
    if len(flat) <= limit:
        return flat
    cut = flat[:limit].rsplit(" ", 1)[0] or flat[:limit]
    return cut.rstrip(" ,.;:") + "…"


def _quoted(post: CommunityPost) -> str:
    original = post.reply_to
    if original is None:
        return ""
    what = excerpt(original.body) if original.body else _media_word(original.kind)
    return f"responde a {label_for(original)} («{what}»)"


def _media_word(kind: str) -> str:
    return {"image": "una foto", "voice": "una nota de voz", "audio": "un audio"}.get(
        kind, "un mensaje"
    )


def relay_text(post: CommunityPost, *, quote: bool = True) -> str:
    """What the others read: the label, the quoted post if he answered one, then his words.
    For a voice note or image this is its caption (a voice note's follows the audio). Without
    `quote` the answer names only its author's label: WhatsApp shows the quoted copy above it
    (see quoted_copies)."""
    label = label_for(post)
    quoted = _quoted(post) if quote else ""
    if post.kind in ("voice", "audio"):
        head = f"🎙️ Nota de voz de *{label}*" + (f", {quoted}" if quoted else "")
        return f"{head}: {post.body}" if post.body else head
    if quoted:
        return f"*{label}* {quoted}:\n{post.body}".rstrip()
    return f"*{label}:* {post.body}" if post.body else f"*{label}*"


def relay_content(post: CommunityPost) -> dict[str, Any] | None:
    """The Outbox content of a media post (relayed by the provider's media id), or None."""
    media_id = (post.media or {}).get("media_id")
    if post.kind not in MEDIA_KINDS or not media_id:
        return None
    return {
        "kind": MEDIA_KINDS[post.kind],
        "media_id": str(media_id),
        "mime": str((post.media or {}).get("mime", "")),
    }


def recipients(post: CommunityPost, *, fresh: bool = False) -> list[tuple[int, int]]:
    """(enrollment id, participant id) of every member the post is owed to: still receiving,
    still in the community, not its author, and not already given it (a `fresh` post, just
    created, has given it to nobody: one subquery less on the relay's hot path)."""
    left = Membership.objects.filter(cohort_id=post.cohort_id, in_community=False)
    rows = Enrollment.objects.filter(
        cohort_id=post.cohort_id, state__in=Enrollment.RECEIVING
    ).exclude(id__in=left.values("enrollment_id"))
    if post.author_id:
        rows = rows.exclude(membership__id=post.author_id)
    if not fresh:
        rows = rows.exclude(id__in=PostDelivery.objects.filter(post=post).values("enrollment_id"))
    return list(rows.order_by("id").values_list("id", "participant_id"))


def quoted_copies(post: CommunityPost, enrollment_ids: Iterable[int]) -> dict[int, str]:
    """For an answer to a post: per member, the provider's id of what he has in his chat of the
    post answered (the copy relayed to him alone, or, for its author, his own message), so
    that his copy of the answer can quote it natively. A member who got it grouped in a
    digest, or whose copy has no provider id yet, is left out: his copy quotes it in words."""
    original = post.reply_to
    ids = list(enrollment_ids)
    if original is None or not ids:
        return {}
    found: dict[int, str] = dict(
        Message.objects.filter(
            direction=Message.Direction.OUT,
            outbox__post_deliveries__post=original,
            outbox__post_deliveries__via=PostDelivery.Via.LIVE,
            outbox__post_deliveries__enrollment_id__in=ids,
        )
        .exclude(provider_id="")
        .exclude(provider_id__contains=":")  # a send Meta refused and we replaced
        .values_list("outbox__post_deliveries__enrollment_id", "provider_id")
    )
    if original.message_id and original.author_id:
        own = (
            Message.objects.filter(pk=original.message_id, enrollment_id__in=ids)
            .exclude(provider_id="")
            .values_list("enrollment_id", "provider_id")
            .first()
        )
        if own is not None and own[0] is not None:
            found[own[0]] = own[1]
    return found


def post_relay(post: CommunityPost, now: dt.datetime, *, fresh: bool = False) -> int:
    """Relay the post: queued at once to the members inside their window (none in a cohort in
    digest mode), owed to the rest. Marks it relayed (a `fresh` post was created relayed);
    returns how many were queued at once. The caller holds the post (a lock or its creation),
    so it is relayed once."""
    cohort = post.cohort
    targets = recipients(post, fresh=fresh)
    live: set[int] = set()
    if not cohort.digest_every_hours:
        live = participants_in_window((p for _, p in targets), at=now)
    text = relay_text(post)
    content = relay_content(post)
    live_targets = [(e, p) for e, p in targets if p in live]
    quoting = quoted_copies(post, (e for e, _ in live_targets)) if post.reply_to_id else {}
    plain = relay_text(post, quote=False) if quoting else text
    outboxes = {
        enrollment_id: Outbox(
            participant_id=participant_id,
            enrollment_id=enrollment_id,
            body=plain if enrollment_id in quoting else text,
            content=(
                {**(content or {}), "reply_to": quoting[enrollment_id]}
                if enrollment_id in quoting
                else content
            ),
            channel=cohort.channel,
            status=Outbox.Status.QUEUED,
            due_at=now,
            created_at=now,
        )
        for enrollment_id, participant_id in live_targets
    }
    bulk_insert(list(outboxes.values()))
    bulk_insert(
        [
            PostDelivery(
                post=post,
                enrollment_id=enrollment_id,
                outbox=outboxes.get(enrollment_id),
                via=PostDelivery.Via.LIVE if enrollment_id in outboxes else "",
                created_at=now,
            )
            for enrollment_id, _ in targets
        ]
    )
    if not fresh:
        CommunityPost.objects.filter(pk=post.pk).update(
            status=CommunityPost.Status.RELAYED, relayed_at=now
        )
    post.status = CommunityPost.Status.RELAYED
    post.relayed_at = now
    return len(outboxes)


def post_answered(message: Message) -> CommunityPost | None:
    """The post a member answered with WhatsApp's reply (the `context.id` of his message is the
    provider id of the relayed copy he received), or None. A digest that grouped several posts
    names none of them."""
    context_id = str((message.payload or {}).get("context_id", ""))
    if not context_id or message.participant_id is None:
        return None
    outbox_id = (
        Message.objects.filter(
            channel=message.channel,
            direction=Message.Direction.OUT,
            provider_id=context_id,
            participant_id=message.participant_id,
        )
        .values_list("outbox_id", flat=True)
        .first()
    )
    if outbox_id is None:
        return None
    post_ids = list(
        PostDelivery.objects.filter(outbox_id=outbox_id).values_list("post_id", flat=True)[:2]
    )
    if len(post_ids) != 1:
        return None
    return CommunityPost.objects.filter(pk=post_ids[0]).select_related("author").first()


def relay_cancel_queued(enrollment_ids: Iterable[int]) -> int:
    """Cancel relayed posts still waiting in the Outbox for these men (after BAJA, SALIR or a
    retraction): they go nowhere now. Returns how many were cancelled."""
    ids = list(enrollment_ids)
    return Outbox.objects.filter(
        enrollment_id__in=ids,
        status=Outbox.Status.QUEUED,
        id__in=PostDelivery.objects.filter(enrollment_id__in=ids, outbox__isnull=False).values(
            "outbox_id"
        ),
    ).update(status=Outbox.Status.CANCELLED)
